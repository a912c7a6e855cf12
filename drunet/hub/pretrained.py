"""``save_pretrained`` / ``from_pretrained``: a model as the folder the Hugging Face Hub expects.

A ``save_pretrained`` folder holds ``model.safetensors`` (weights, the configuration inside),
``config.json`` (the same configuration, readable: the Hub's convention) and ``README.md`` (the
model card, :mod:`drunet.hub.card`). It loads wherever drunet takes a model — a local folder
path, or ``hf:org/name`` once it is on the Hub (:mod:`drunet.hub.fetch`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from drunet.atomic import atomic_write_text
from drunet.checkpoint import (
    PRETRAINED,
    PRETRAINED_CONFIG,
    config_for,
    load_model,
    save_weights,
    unwrap,
    weights_path,
)
from drunet.config import ExperimentConfig, config_to_dict
from drunet.errors import DrunetError
from drunet.hub.card import CARD, METRICS, model_card, read_run
from drunet.hub.fetch import PREFIX, is_repo_id
from drunet.outputs import claim_outputs

FILES = (PRETRAINED, PRETRAINED_CONFIG, CARD)


def save_pretrained(
    model: nn.Module,
    directory: str | Path,
    config: ExperimentConfig | None = None,
    *,
    run: str | Path | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``model.safetensors`` (config inside), ``config.json`` and the model card
    ``README.md`` into ``directory``; return it.

    ``config`` defaults to the model's own arguments (no preprocessing); ``run``, the run folder
    the model comes from, adds its best validation scores and training data to the card;
    ``repo_id``, ``license`` and ``datasets`` (Hub dataset ids) go into the card too. A file
    there that drunet did not write is refused unless ``overwrite`` (:mod:`drunet.outputs`).
    """
    directory = Path(directory)
    config = config or config_for(unwrap(model))
    facts = None if run is None else read_run(run, config.train.monitor)
    card = model_card(config, facts, repo_id=repo_id, license=license, datasets=datasets)
    claim_outputs(directory, FILES, overwrite=overwrite)
    save_weights(directory / PRETRAINED, model, config)
    text = json.dumps(config_to_dict(config), indent=2) + "\n"
    atomic_write_text(directory / PRETRAINED_CONFIG, text)
    atomic_write_text(directory / CARD, card)
    return directory


def save_run(
    run: str | Path,
    directory: str | Path,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """:func:`save_pretrained` of a run folder's best weights (or a weights file), its metrics
    and training data in the card."""
    path = weights_path(run)
    model, config = load_model(path)
    folder = path.parent if (path.parent / METRICS).is_file() else None
    return save_pretrained(
        model,
        directory,
        config,
        run=folder,
        repo_id=repo_id,
        license=license,
        datasets=datasets,
        overwrite=overwrite,
    )


def from_pretrained(name: str | Path) -> nn.Module:
    """The model ``name`` stands for, with its weights, in eval mode: a ``save_pretrained``
    folder, a run folder or a ``.safetensors`` file; ``hf:org/name[@revision]``; or ``org/name``
    when no such local path exists — fetched through the local Hugging Face cache
    (:mod:`drunet.hub.fetch`)."""
    return load_model(pretrained_path(name))[0]


def pretrained_path(name: str | Path) -> Path:
    """The weights file :func:`from_pretrained` loads for ``name``."""
    text = str(name)
    if isinstance(name, Path) or Path(text).exists() or "/" not in text or not is_repo_id(text):
        return weights_path(name)
    try:
        return weights_path(PREFIX + text)
    except DrunetError as err:
        raise DrunetError(f"{text} is no local folder or file; as a Hub model: {err}") from None
