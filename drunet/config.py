"""Typed experiment configuration: YAML files and flags load into these models, nothing else.

Every section forbids unknown keys, so a typo in a YAML file or a ``--set`` override is an
error naming the key rather than a silently ignored setting. The effective configuration
(with values inferred from the data, such as channels, classes and normalisation) is written
into each run folder and stored inside the weights, so prediction rebuilds the exact model.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from drunet.atomic import atomic_write_text
from drunet.bounds import check_experiment
from drunet.config_loss import LossTerm
from drunet.config_model import MAX_CLASSES, ModelConfig, ModelSpec
from drunet.config_postprocess import PostprocessConfig
from drunet.config_train import TrainConfig
from drunet.configs import find_config
from drunet.datasets.options import (
    AugmentationOptions,
    ContextSlices,
    LayoutOptions,
    MaskOptions,
    NormalizationOptions,
)
from drunet.errors import ConfigError

__all__ = [
    "MAX_CLASSES",
    "DataConfig",
    "ExperimentConfig",
    "LossTerm",
    "ModelConfig",
    "ModelSpec",
    "TrainConfig",
    "apply_overrides",
    "compose_config",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "set_fields",
    "updated",
]


class _Section(BaseModel):
    # NaN and infinity are never a setting (``--lr inf`` would train a run of NaN losses).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Where the images are, how they are read, normalised, augmented and batched.

    ``layout`` finds and splits the pairs (folder layouts, explicit folders, split files,
    k-fold); ``masks`` says how masks are read (0/255, colour map, ignore value, class names);
    ``normalization`` is computed from the training images once and stored with the run;
    ``augmentation`` sets the training patch size, foreground oversampling and the transforms.
    """

    root: Path | None = None
    layout: LayoutOptions = Field(default_factory=LayoutOptions)
    masks: MaskOptions = Field(default_factory=MaskOptions)
    normalization: NormalizationOptions = Field(default_factory=NormalizationOptions)
    augmentation: AugmentationOptions = Field(default_factory=AugmentationOptions)
    batch_size: int = Field(default=4, ge=1)
    # Loader processes; None: by device (≤ 4 on CUDA: the GPU never waits; 0 on a CPU: no core lost)
    num_workers: int | None = Field(default=None, ge=0, le=64)
    cache: bool = False  # keep decoded images in memory
    # 2.5D: each slice fed with its k neighbour slices per side as extra channels
    # (stack pages or numbered files, edges repeated; drunet/datasets/context.py).
    context_slices: ContextSlices = 0
    mpp: float | None = Field(default=None, gt=0)  # µm/px of the images; giant/files.py uses it


class ExperimentConfig(_Section):
    """One training run: model, data and training settings, and where the run folder goes."""

    name: str | None = None  # run folder name; None → "<timestamp>-<model>"
    runs_dir: Path = Path("runs")
    model: ModelConfig = Field(default_factory=ModelConfig)
    # Weighted loss terms, e.g. [{name: dice, weight: 1}, {name: ce, weight: 1}]; None → Dice + CE.
    loss: list[LossTerm] | None = Field(default=None, min_length=1)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)  # mask clean-ups

    @model_validator(mode="before")
    @classmethod
    def _older_channels_last(cls, data: Any) -> Any:
        # Configs stored before the memory format became the model's own property (run folders'
        # config.yaml, weights' metadata, user files) held train.channels_last, which made the
        # trainer convert the model. The key is dropped; a true moves to
        # model.params.channels_last unless the params already set it (their value wins).
        if not isinstance(data, dict):
            return data
        train = data.get("train")
        if not isinstance(train, dict) or "channels_last" not in train:
            return data
        data, train = dict(data), dict(train)
        legacy = train.pop("channels_last")
        data["train"] = train
        model = data.get("model")
        if legacy is not True or not (model is None or isinstance(model, dict)):
            return data
        model = dict(model or {})
        params = model.get("params")
        params = params.model_dump() if isinstance(params, BaseModel) else params
        if params is None or isinstance(params, dict):
            params = dict(params or {})
            if params.get("channels_last") is None:
                params["channels_last"] = True
            data["model"] = {**model, "params": params}
        return data

    @model_validator(mode="after")
    def _within_bounds(self, info: ValidationInfo) -> ExperimentConfig:
        # drunet.bounds: the work and memory the values imply. A configuration stored with
        # weights is not checked: its batch and patch describe how it was trained (perhaps on a
        # larger machine), not work this process will do; training validates its own.
        if not (info.context or {}).get("stored"):
            check_experiment(self)
        return self


_M = TypeVar("_M", bound=BaseModel)
_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 80, 80
MAX_VALUES = 100_000  # values in one config document, YAML aliases expanded


def _short(value: object) -> str:
    """A bounded repr: an error about a huge value must not be huge itself."""
    return _REPR.repr(value)


def check_size(data: object, source: str) -> None:
    """Refuse a document holding more than ``MAX_VALUES`` values once its YAML aliases are
    expanded (a few lines of aliases can stand for billions: "billion laughs")."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(
                f"config {source} holds more than {MAX_VALUES:,} values once its YAML aliases "
                "(*name) are expanded; write the values out, without aliases of aliases"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors():
        # An empty loc is the file as a whole; a key "" must still show as ''.
        loc = item["loc"]
        key = ".".join(str(part) for part in loc) if loc else "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"'{key}': {item['msg']} (got {_short(item.get('input'))})")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def config_from_dict(
    data: dict[str, Any], source: str = "config", *, stored: bool = False
) -> ExperimentConfig:
    """Validate a plain dict; errors name every bad key (``ConfigError``). ``stored``: the
    configuration that came with weights (prediction, export), whose training batch and patch
    are not held to this machine's work bounds."""
    try:
        config = ExperimentConfig.model_validate(data, context={"stored": stored})
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
    try:  # free-form values are stored with the run (run folder, weights): they must serialise
        config_to_dict(config)
    except ValueError as err:  # a YAML alias used inside itself, ~250 levels deep, raw bytes
        raise ConfigError(
            f"invalid configuration in {source}: 'data.augmentation.ops' holds a value that "
            f"cannot be saved with the run ({err}); write it out as plain numbers, strings, "
            "lists and mappings"
        ) from None
    return config


def load_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML experiment file, or a bundled one by name (``"isbi2012"``), into an
    :class:`ExperimentConfig`."""
    path = find_config(path)
    return config_from_dict(_read_document(path), source=str(path))


def _read_document(path: Path) -> dict[str, Any]:
    """The mapping a YAML experiment file holds, not yet validated (size-checked)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:  # e.g. saved as Latin-1 / UTF-16, or not a text file
        raise ConfigError(
            f"cannot read config {path}: it is not UTF-8 text (byte {err.start} is "
            f"{err.object[err.start : err.start + 1]!r}); save it with UTF-8 encoding"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    except RecursionError:  # PyYAML recurses once per level: "[[[[…" a few hundred deep
        raise ConfigError(
            f"config {path} nests lists or mappings too deeply to read; check its brackets"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    check_size(data, str(path))
    return data


def compose_config(
    file: str | Path | None = None,
    overrides: Sequence[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """The one configuration a command runs with, from every source in one order of precedence:

        defaults  <  ``file`` (``--config``)  <  ``overrides`` (``--set key=value``)  <  ``flags``

    A later source wins for the keys it sets. The sources are merged as plain mappings first and
    validated once, so a value that depends on another key sees the final one whichever source
    set it (``--fold 6 --set data.layout.folds=7`` is fold 6 of 7). Explicit flags come last: a
    flag is the most specific thing the user typed. ``flags`` maps dotted keys to typed values
    (``None`` = flag not given); their text is never parsed as YAML.
    """
    data: dict[str, Any] = {}
    sources = []
    if file is not None:
        path = find_config(file)
        data = _read_document(path)
        sources.append(str(path))
    for item in overrides:
        key, value = _parse_override(item)
        _set(data, key, value, f"override {item!r}")
    if overrides:
        sources.append("--set " + " ".join(overrides))
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    for key, value in given.items():
        _set(data, key, str(value) if isinstance(value, Path) else value, f"--{key}")
    if given:
        sources.append("command-line flags")
    return config_from_dict(data, source=" + ".join(sources) or "defaults")


def _number(text: str) -> Any:
    # PyYAML (YAML 1.1) reads "3e-4" as a string; users mean a number.
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _set(data: dict[str, Any], key: str, value: Any, what: str) -> None:
    """Set dotted ``key`` in a plain mapping; a missing section is created (validation names
    an unknown one), a value in the way of a section is an error naming the key."""
    node = data
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{what}: unknown key '{'.'.join(parts[: depth + 1])}'")
        node = child
    node[parts[-1]] = value


def _parse_override(item: str) -> tuple[str, Any]:
    """``key.sub=value`` → the key and its value read as YAML (numbers as numbers)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like key.sub=value (e.g. train.lr=0.01)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except (yaml.YAMLError, RecursionError):  # not YAML (or absurdly nested): the text
        value = raw
    if isinstance(value, str):
        value = _number(value)
    check_size(value, f"override {key}")
    return key, value


def set_fields(config: ExperimentConfig, values: dict[str, Any]) -> ExperimentConfig:
    """Set typed fields by dotted key and re-validate: ``{"name": "2024"}`` sets the *string*
    ``"2024"``. Flag text is never parsed as YAML (see :func:`compose_config`)."""
    data = config_to_dict(config)
    for key, value in values.items():
        _set(data, key, str(value) if isinstance(value, Path) else value, f"--{key}")
    return config_from_dict(data, source="command-line flags")


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``--set key.sub=value`` strings (values parsed as YAML) and re-validate everything.

    ``train.lr=3e-4``, ``model.params.init_features=16``, ``data.root=/data/em``. An unknown
    section or key is an error naming it, like a bad value.
    """
    data = config_to_dict(config)
    for item in overrides:
        key, value = _parse_override(item)
        _set(data, key, value, f"override {item!r}")
    return config_from_dict(data, source="overrides " + " ".join(overrides))


def updated(config: ExperimentConfig, changes: Mapping[str, Any]) -> ExperimentConfig:
    """A copy of ``config`` with dotted keys replaced (``{"train.epochs": 30}``); ``config``
    itself is never changed. The values are trusted (the program's own, such as what the data
    decided): they are not validated again."""
    for key, value in changes.items():
        config = _replaced(config, key.split("."), value)
    return config


def _replaced(section: _M, path: list[str], value: Any) -> _M:
    head, rest = path[0], path[1:]
    if head not in type(section).model_fields:
        raise KeyError(f"{type(section).__name__} has no field {head!r}")
    new = _replaced(getattr(section, head), rest, value) if rest else value
    return section.model_copy(update={head: new})


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """A JSON/YAML-safe dict (paths as strings) that :func:`config_from_dict` reads back."""
    return config.model_dump(mode="json")


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the configuration as YAML."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    atomic_write_text(path, text)
