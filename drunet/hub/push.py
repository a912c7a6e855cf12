"""``push_to_hub``: a model or a run as a Hugging Face Hub model repository, in one call.

The folder :func:`~drunet.hub.pretrained.save_pretrained` writes (``model.safetensors``,
``config.json``, ``README.md``) is uploaded with ``huggingface_hub.upload_folder`` into
``org/name`` (created if missing, public unless ``private``). ``huggingface_hub``'s login
(``hf auth login``) or ``HF_TOKEN`` authenticate; nothing is sent with ``HF_HUB_OFFLINE`` set.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from drunet.checkpoint import config_for, load_model, unwrap, weights_path
from drunet.config import ExperimentConfig, updated
from drunet.errors import DrunetError
from drunet.hub.card import METRICS
from drunet.hub.fetch import import_hub, is_repo_id, offline
from drunet.hub.pretrained import FILES, save_pretrained

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` did: the files of the folder, where it kept them (``None``: a
    temporary folder, removed) and the Hub commit's URL (``None``: a dry run)."""

    files: tuple[str, ...]
    folder: Path | None
    url: str | None


def push_to_hub(
    source: nn.Module | str | Path,
    repo_id: str,
    *,
    config: ExperimentConfig | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
    folder: str | Path | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
) -> PushResult:
    """Upload ``source`` — a model (with ``config``, else its own arguments), a run folder (its
    best weights, metrics and data in the card) or a weights file — to the Hub as ``repo_id``.

    ``folder`` keeps the uploaded folder there (else a temporary one); ``dry_run`` writes it
    and uploads nothing (it needs ``folder``); ``revision`` is the branch to commit to.
    """
    if "/" not in repo_id or not is_repo_id(repo_id):
        raise DrunetError(
            f"{repo_id!r} is not a Hub repository id; write ORG/NAME (your user or organisation "
            "name, then the model's: letters, digits, '-', '_', '.')"
        )
    if dry_run and folder is None:
        raise DrunetError("a dry run keeps the folder it would upload: name it (--out DIR)")
    hub = None if dry_run else _online_hub()
    run: Path | None = None
    if isinstance(source, nn.Module):
        model, config = source, config or config_for(unwrap(source))
    else:
        path = weights_path(source)
        model, config = load_model(path)
        run = path.parent if (path.parent / METRICS).is_file() else None
    with tempfile.TemporaryDirectory(prefix="drunet-push-") as temporary:
        target = Path(folder) if folder is not None else Path(temporary)
        save_pretrained(
            model,
            target,
            shareable(config),
            run=run,
            repo_id=repo_id,
            license=license,
            datasets=datasets,
            overwrite=overwrite,
        )
        url = (
            None
            if hub is None
            else _upload(hub, target, repo_id, private, revision, commit_message)
        )
    return PushResult(FILES, None if folder is None else Path(folder), url)


def shareable(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` without this machine's paths, as it is published: the data folder and the
    split file keep their names only, the runs folder its default, and starting weights that
    were a local file their file name (a Hub name ``hf:…`` or a pretrained name is kept).
    Nothing a prediction reads (model, normalisation, classes) is a path."""
    layout = config.data.layout
    changes: dict[str, Any] = {"runs_dir": Path("runs")}
    for key, value in (
        ("data.root", config.data.root),
        ("data.layout.images", layout.images),
        ("data.layout.masks", layout.masks),
        ("data.layout.split_file", layout.split_file),
    ):
        if value is not None:
            changes[key] = Path(Path(value).name)
    for key, text in (
        ("train.init_from", config.train.init_from),
        ("train.encoder_weights", config.train.encoder_weights),
    ):
        if text is not None and ("/" in text or "\\" in text) and not text.startswith("hf:"):
            changes[key] = Path(text).name
    return updated(config, changes)


def _online_hub() -> Any:
    hub = import_hub()
    if offline():
        raise DrunetError("HF_HUB_OFFLINE is set: nothing can be pushed; unset it to upload")
    return hub


def _upload(
    hub: Any,
    folder: Path,
    repo_id: str,
    private: bool,
    revision: str | None,
    message: str | None,
) -> str:
    errors = hub.errors
    try:
        hub.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            hub.create_branch(repo_id, branch=revision, exist_ok=True)
        info = hub.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            allow_patterns=list(FILES),  # never the .drunet-manifest beside them
            revision=revision,
            commit_message=message or "Upload drunet model",
        )
    except (errors.HfHubHTTPError, errors.LocalTokenNotFoundError, OSError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DrunetError(
            f"pushing to {repo_id} failed: {text}; log in with `hf auth login` (or set HF_TOKEN) "
            "with a token that may write to it"
        ) from None
    url = str(getattr(info, "commit_url", info))
    log.info("pushed %s to %s: %s", folder, repo_id, url)
    return url
