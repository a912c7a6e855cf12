"""Weights and the configuration that rebuilds them: the one home training, prediction and
export share (it knows models and configs, nothing of trainers or files of images).

One format: a ``.safetensors`` file whose metadata holds the configuration as JSON — name,
channels, classes, model arguments, normalisation — so a model is rebuilt, never unpickled, and
prediction never asks the user to re-enter its settings. It is found three ways:

* a run folder (``runs/<name>/best.safetensors``, else ``last.safetensors``);
* a ``save_pretrained`` folder (``model.safetensors``, plus a readable ``config.json`` copy and
  a model card: :mod:`drunet.hub.pretrained`), local or ``hf:org/name`` on the Hugging Face Hub
  (fetched into the local cache: :mod:`drunet.hub.fetch`);
* the ``.safetensors`` file itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from drunet.atomic import atomic_write_bytes
from drunet.config import ExperimentConfig, ModelSpec, config_from_dict, config_to_dict, save_config
from drunet.errors import DrunetError
from drunet.hub.fetch import HubModel, hub_folder, parse_hub_name
from drunet.models import create_model
from drunet.models.registry import family_for, family_of

# What a run folder holds.
BEST = "best.safetensors"
LAST = "last.safetensors"
CONFIG = "config.yaml"
METRICS = "metrics.csv"
STATE = "state.pt"
PROGRESS = "progress.png"
# What a save_pretrained folder holds.
PRETRAINED = "model.safetensors"
PRETRAINED_CONFIG = "config.json"

CONFIG_KEY = "drunet_config"
_MAX_HEADER = 100 * 2**20  # a safetensors JSON header larger than this is not ours


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / ``torch.compile`` wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def build_model(config: ExperimentConfig | ModelSpec) -> nn.Module:
    """The model a configuration describes (training, prediction and export all call this)."""
    spec = config.model.spec() if isinstance(config, ExperimentConfig) else config
    try:
        return create_model(spec.name, spec.in_channels, spec.out_channels, **spec.kwargs)
    except ValueError as err:
        raise DrunetError(f"cannot build model from config key 'model': {err}") from None


def save_weights(path: str | Path, model: nn.Module, config: ExperimentConfig) -> None:
    """Write ``model``'s state dict with ``config`` inside to ``path`` atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    metadata = {CONFIG_KEY: json.dumps(config_to_dict(config))}
    atomic_write_bytes(path, save(state, metadata=metadata))


def save_config_and_weights(
    run_dir: Path, weights_name: str, model: nn.Module, config: ExperimentConfig
) -> None:
    """Write ``config.yaml`` and ``weights_name`` into a run folder (both atomically)."""
    save_config(config, run_dir / CONFIG)
    save_weights(run_dir / weights_name, model, config)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ExperimentConfig]:
    """The state dict and configuration stored in a drunet ``.safetensors`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DrunetError(f"cannot read weights {path}: {err.strerror}") from None
    try:
        state = load(data)
    except (SafetensorError, ValueError) as err:
        raise DrunetError(
            f"{path} is not a safetensors weights file ({err}); drunet loads only .safetensors "
            "files written by `drunet train` or save_pretrained"
        ) from None
    config = config_from_dict(_stored_config(path, data), source=f"{path} metadata", stored=True)
    return family_for(config.model.name).upgrade_state(state), config


def _stored_config(path: Path, data: bytes) -> dict[str, Any]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header.
    header_len = int.from_bytes(data[:8], "little")
    try:
        if header_len > _MAX_HEADER:
            raise ValueError(f"a {header_len}-byte header")
        header = json.loads(data[8 : 8 + header_len])
        metadata = header.get("__metadata__") or {}
        if CONFIG_KEY not in metadata:
            raise DrunetError(
                f"{path} holds weights but no drunet configuration; it was not written by drunet"
            )
        config = json.loads(metadata[CONFIG_KEY])
    except (ValueError, RecursionError, AttributeError, TypeError) as err:
        raise DrunetError(
            f"{path} holds a damaged drunet configuration ({type(err).__name__}); re-export the "
            "weights"
        ) from None
    if not isinstance(config, dict):
        raise DrunetError(f"{path} holds a damaged drunet configuration (not a mapping)")
    return config


def load_model(path: str | Path) -> tuple[nn.Module, ExperimentConfig]:
    """Rebuild the model stored at ``path`` (any of the three forms) with its weights, eval, CPU."""
    path = weights_path(path)
    state, config = read_weights(path)
    # Untrusted: a few bytes can declare a DRUNet of gigabytes; count it on the meta device
    # first (when the family builds without running the network: see ModelFamily).
    if family_for(config.model.name).builds_on_meta:
        with torch.device("meta"):
            declared = sum(t.numel() for t in build_model(config).state_dict().values())
        if declared > (held := sum(t.numel() for t in state.values())):
            raise DrunetError(
                f"weights in {path} do not fit the model they describe: its configuration "
                f"declares {declared:,} values, the file holds {held:,}"
            )
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise DrunetError(f"weights in {path} do not fit the model they describe: {err}") from None
    return model.eval(), config


def config_for(model: nn.Module) -> ExperimentConfig:
    """A configuration that rebuilds ``model`` (a registered family's network built by hand)."""
    family = family_of(model)
    out_channels = getattr(model, "out_channels", None)
    if family is None or not isinstance(out_channels, int):
        raise DrunetError(
            f"{type(model).__name__} is not a drunet model; save a network of a registered "
            "family (drunet.models.create_model)"
        )
    if out_channels == 2:
        raise DrunetError(
            "a model with 2 logit channels has no drunet configuration: drunet trains binary "
            "segmentation with one logit; build it with out_channels=1 (or >= 3 classes)"
        )
    name, params = family.describe(model)
    model_cfg = {
        "name": name,
        "in_channels": model.in_channels,
        "num_classes": 2 if out_channels == 1 else out_channels,
        "params": params,
    }
    return config_from_dict({"model": model_cfg}, source=f"{type(model).__name__} arguments")


def weights_path(model: str | Path) -> Path:
    """The weights file a run folder, ``save_pretrained`` folder (a path or ``hf:org/name``) or
    weights path stands for."""
    hub = parse_hub_name(model) if isinstance(model, str) else None
    if hub is not None:
        return _hub_weights(hub)
    path = Path(model)
    if path.is_dir():
        for name in (BEST, LAST, PRETRAINED):
            if (path / name).is_file():
                return path / name
        raise DrunetError(
            f"{path} holds no {BEST}, {LAST} or {PRETRAINED}; pass a run folder, a "
            "save_pretrained folder or a .safetensors file"
        )
    if path.is_file():
        return path
    raise DrunetError(f"{path}: no such run folder or weights file")


def _hub_weights(model: HubModel) -> Path:
    folder = hub_folder(model, [PRETRAINED, PRETRAINED_CONFIG])
    if not (folder / PRETRAINED).is_file():
        raise DrunetError(
            f"{model} holds no {PRETRAINED}: it is not a model saved by drunet's save_pretrained "
            "or `drunet push`"
        )
    return folder / PRETRAINED


def latest_run(runs_dir: str | Path) -> Path:
    """The most recently modified run folder in ``runs_dir`` that holds best weights."""
    runs_dir = Path(runs_dir)
    candidates = [p.parent for p in runs_dir.glob(f"*/{BEST}")] if runs_dir.is_dir() else []
    if not candidates:
        raise DrunetError(
            f"no trained run found in {runs_dir}/ (looked for */{BEST}); train one with "
            "`drunet train --data DIR` or pass --model RUN_DIR_OR_WEIGHTS"
        )
    return max(candidates, key=lambda p: (p / BEST).stat().st_mtime)


def resolve_weights(model: str | Path | None, runs_dir: str | Path = "runs") -> Path:
    """Weights from ``--model`` (any of the three forms) or, when ``None``, the latest run."""
    return latest_run(runs_dir) / BEST if model is None else weights_path(model)
