"""Starting weights: stored weights adapted into a new model, by one rule.

Two sources start a run: another run's weights (``train.init_from``, :func:`init_from`) and an
encoder's weights (``train.encoder_weights``, :func:`load_encoder_weights`: a local file, or a
pretrained name found in the local Hugging Face cache — drunet never downloads). Both go through
:func:`adapt_state`: a tensor whose name and shape match loads as stored; a convolution that
reads the image (the family's ``input_convs``: the stem, DRUNet's refine conv) and differs only
in the image's channel count has its image part adapted (:func:`adapt_input_channels`) and any
feature channels before the image loaded as stored; every other tensor keeps its fresh
initialisation (a head for another class count). This module opens the files;
:mod:`drunet.models` never does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load
from torch import nn

from drunet.checkpoint import read_weights, unwrap, weights_path
from drunet.errors import ConfigError, DrunetError
from drunet.hub.fetch import parse_hub_name
from drunet.models.registry import FAMILIES, family_of


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``(O, C, kH, kW)`` conv weight → ``(O, in_channels, kH, kW)``, the way smp adapts a stem.

    For one channel the kernels are summed over the input channels (a grey image equals an RGB
    image with three equal channels, so the response is unchanged); for more channels the trained
    kernels are repeated cyclically and scaled by ``C / in_channels`` so the activation magnitude
    stays what the network saw.
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a conv weight (O, C, kH, kW), got shape {tuple(weight.shape)}")
    trained = weight.shape[1]
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if in_channels == trained:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(in_channels) % trained
    return weight[:, index] * (trained / in_channels)


@dataclass
class Adapted:
    """What :func:`adapt_state` did with each tensor of the new model."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)  # to load (strict=False)
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # image channels adapted
    reinitialised: list[str] = field(default_factory=list)  # no counterpart: kept fresh


def adapt_state(
    target: dict[str, torch.Tensor],
    stored: dict[str, torch.Tensor],
    input_convs: dict[str, int],
) -> Adapted:
    """``stored`` fitted to ``target`` (both keyed by the model's names); ``input_convs`` maps
    each conv weight that reads the image to the feature channels ``F`` it reads first."""
    result = Adapted()
    for key, fresh in target.items():
        old = stored.get(key)
        if old is not None and old.shape == fresh.shape:
            result.state[key] = old
            result.loaded.append(key)
        elif (
            old is not None
            and key in input_convs
            and _image_part_differs(old, fresh, input_convs[key])
        ):
            features = input_convs[key]
            image = adapt_input_channels(old[:, features:], fresh.shape[1] - features)
            result.state[key] = torch.cat([old[:, :features], image], dim=1).to(fresh.dtype)
            result.adapted.append(key)
        else:
            result.reinitialised.append(key)
    return result


def _image_part_differs(old: torch.Tensor, new: torch.Tensor, features: int) -> bool:
    """Both are conv weights with the same outputs and kernel and at least one image channel
    after ``features`` feature channels: only the image's channel count differs."""
    return (
        old.ndim == new.ndim == 4
        and old.shape[0] == new.shape[0]
        and old.shape[2:] == new.shape[2:]
        and min(old.shape[1], new.shape[1]) > features
    )


def _summary(keys: list[str]) -> str:
    shown = ", ".join(keys[:4]) + (f" … and {len(keys) - 4} more" if len(keys) > 4 else "")
    return f" ({shown})" if keys else ""


@dataclass
class InitReport:
    """What :func:`init_from` did with each tensor of the new model."""

    source: Path
    recorded: str  # what the run records: an absolute path, or hf:org/name@commit
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # input channels adapted
    reinitialised: list[str] = field(default_factory=list)  # no counterpart: kept fresh

    def summary(self) -> str:
        return (
            f"initialised from {self.source}: loaded {len(self.loaded)} tensors, adapted "
            f"{len(self.adapted)}{_summary(self.adapted)}, re-initialised "
            f"{len(self.reinitialised)}{_summary(self.reinitialised)}"
        )


def init_from(model: nn.Module, source: str | Path) -> InitReport:
    """Start ``model`` from the weights at ``source`` (a run, ``save_pretrained`` folder — a path
    or ``hf:org/name`` —, or ``.safetensors``) by :func:`adapt_state`'s rule. Errors name
    ``train.init_from``."""
    try:
        path = weights_path(source)
        stored, _ = read_weights(path)
    except DrunetError as err:
        raise DrunetError(f"train.init_from (--init-from): {err}") from None
    bare = unwrap(model)
    family = family_of(bare)
    convs = {} if family is None else family.input_convs(bare)
    result = adapt_state(bare.state_dict(), stored, convs)
    if not result.loaded and not result.adapted:
        raise DrunetError(
            f"train.init_from (--init-from) {source}: none of its tensors fit this model "
            f"({type(bare).__name__}); start from a run of the same model family"
        )
    bare.load_state_dict(result.state, strict=False)
    hub = parse_hub_name(source) if isinstance(source, str) else None
    # A Hub model is recorded at the commit it was read from (its snapshot folder's name).
    recorded = str(hub.at(path.parent.name)) if hub is not None else str(path.resolve())
    return InitReport(path, recorded, result.loaded, result.adapted, result.reinitialised)


def load_encoder_weights(model: nn.Module, weights: str) -> list[str]:
    """Load ``weights`` (``train.encoder_weights``: a local ``.safetensors`` or PyTorch state
    dict of tensors, or a pretrained name found in the local Hugging Face cache) into the
    encoder of ``model``; return the names of adapted input convolutions."""
    family = family_of(model)
    if family is None or family.pretrained is None:
        takers = [f for f in FAMILIES if f.pretrained is not None]
        shown = "; ".join(f"{f.tag} models ({', '.join(f.shown_names)})" for f in takers)
        raise ConfigError(
            f"train.encoder_weights applies to {shown}, not to this {type(model).__name__} "
            f"(given {weights}); start it from other weights with train.init_from"
        )
    encoder = family.encoder(model)
    prefix = next(name for name, module in model.named_modules() if module is encoder)
    path = _encoder_file(weights, family.pretrained(model))
    stored = {f"{prefix}.{key}": value for key, value in read_state_file(path).items()}
    target = {k: v for k, v in model.state_dict().items() if k.startswith(f"{prefix}.")}
    result = adapt_state(target, stored, family.input_convs(model))
    if not result.loaded and not result.adapted:
        raise DrunetError(
            f"train.encoder_weights: {path} does not hold weights of this encoder (none of its "
            f"{len(stored)} keys match the encoder's {len(target)})"
        )
    for key in result.reinitialised:
        if key in stored:
            raise DrunetError(
                f"train.encoder_weights: {path}: {key[len(prefix) + 1 :]} has shape "
                f"{tuple(stored[key].shape)} but the encoder needs {tuple(target[key].shape)}; "
                "these are weights of another encoder"
            )
    # smp encoders override load_state_dict (dropping classifier keys); non-strict keeps
    # files saved from a full torchvision/timm model usable.
    model.load_state_dict(result.state, strict=False)
    return result.adapted


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a ``.safetensors`` file, or a PyTorch file read with
    ``weights_only=True`` (no pickled code runs); any other content is a ``DrunetError``."""
    fix = (
        "drunet reads .safetensors files or PyTorch files holding only a state dict of tensors; "
        "save the encoder's state dict with safetensors.torch.save_file where it was made"
    )
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DrunetError(f"train.encoder_weights: cannot read {path}: {err.strerror}") from None
    if path.suffix == ".safetensors":
        try:
            state = load(data)
        except (SafetensorError, ValueError) as err:
            raise DrunetError(
                f"train.encoder_weights: {path} is not a valid .safetensors file ({err}); {fix}"
            ) from None
    else:
        try:
            with warnings.catch_warnings():  # torch's advice on pickle protocols: not the user's
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a pickle of objects, a damaged archive: the file, not us
            raise DrunetError(
                f"train.encoder_weights: {path} is not a state dict of tensors "
                f"({type(err).__name__}); {fix}"
            ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DrunetError(
            f"train.encoder_weights: {path} does not hold a flat state dict of tensors "
            f"(got {type(state).__name__}); {fix}"
        )
    return state


def _encoder_file(weights: str, pretrained: dict[str, tuple[str, str | None]]) -> Path:
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if weights in pretrained:
        repo, revision = pretrained[weights]
        cached = _hf_cached(repo, revision)
        if cached is not None:
            return cached
        raise DrunetError(
            f"train.encoder_weights {weights!r} is not in the local Hugging Face cache, and "
            f'drunet never downloads. On a machine with network run: python -c "from '
            f"huggingface_hub import hf_hub_download; hf_hub_download('{repo}', "
            f"'model.safetensors', revision='{revision}')\" and copy ~/.cache/huggingface here "
            "(or pass the downloaded model.safetensors as a path)"
        )
    raise DrunetError(
        f"train.encoder_weights {weights!r}: no such file, and not a pretrained name of this "
        f"encoder ({', '.join(pretrained) or 'none'}); pass the path of a .safetensors or .pt "
        "state dict"
    )


def _hf_cached(repo: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "model.safetensors", revision=revision)
    return Path(found) if isinstance(found, str) else None
