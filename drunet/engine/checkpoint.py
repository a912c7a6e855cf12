"""Weights as safetensors with their configuration inside: loadable without pickle.

The configuration (a JSON string in the safetensors metadata) is everything needed to rebuild
the model and its preprocessing — name, channels, classes, model arguments, normalisation — so
prediction never asks the user to re-enter them.
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
from drunet.config import ExperimentConfig, config_from_dict, config_to_dict, save_config
from drunet.errors import DrunetError
from drunet.models import create_model

CONFIG_KEY = "drunet_config"


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / ``torch.compile`` wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_weights(path: str | Path, model: nn.Module, config: ExperimentConfig) -> None:
    """Write ``model``'s state dict and ``config`` to ``path`` (``.safetensors``) atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    metadata = {CONFIG_KEY: json.dumps(config_to_dict(config))}
    atomic_write_bytes(path, save(state, metadata=metadata))


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
            "files written by `drunet train`"
        ) from None
    metadata = _metadata(data)
    if CONFIG_KEY not in metadata:
        raise DrunetError(
            f"{path} holds weights but no drunet configuration; it was not written by drunet"
        )
    try:
        config_data = json.loads(metadata[CONFIG_KEY])
    except json.JSONDecodeError as err:
        raise DrunetError(
            f"{path} holds a damaged drunet configuration ({err}); re-export the weights"
        ) from None
    if not isinstance(config_data, dict):
        raise DrunetError(f"{path} holds a damaged drunet configuration (not a mapping)")
    config = config_from_dict(config_data, source=f"{path} metadata")
    return state, config


def _metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header.
    header_len = int.from_bytes(data[:8], "little")
    header: dict[str, Any] = json.loads(data[8 : 8 + header_len])
    return header.get("__metadata__", {}) or {}


def build_model(config: ExperimentConfig) -> nn.Module:
    """The model a configuration describes (training and prediction both call this)."""
    model_cfg = config.model
    if model_cfg.in_channels is None:
        raise DrunetError("model.in_channels is not set (it is inferred from the data)")
    try:
        return create_model(
            model_cfg.name,
            in_channels=model_cfg.in_channels,
            out_channels=model_cfg.out_channels,
            **model_cfg.params,
        )
    except ValueError as err:
        raise DrunetError(f"cannot build model from config key 'model': {err}") from None


def load_model(path: str | Path) -> tuple[nn.Module, ExperimentConfig]:
    """Rebuild the model stored in ``path`` and load its weights (eval mode, CPU)."""
    state, config = read_weights(path)
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise DrunetError(f"weights in {path} do not fit the model they describe: {err}") from None
    return model.eval(), config


def save_config_and_weights(
    run_dir: Path, weights_name: str, model: nn.Module, config: ExperimentConfig
) -> None:
    """Write ``config.yaml`` and ``weights_name`` into a run folder (both atomically)."""
    save_config(config, run_dir / "config.yaml")
    save_weights(run_dir / weights_name, model, config)
