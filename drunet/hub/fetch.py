"""``hf:org/name`` models: the Hub repository's files in the local Hugging Face cache.

A model is fetched only when the user names it with ``hf:`` (``--model hf:org/name``,
``--init-from hf:org/name``) or passes a repository id to :func:`drunet.from_pretrained`; every
other name is a local path. ``huggingface_hub``'s ``snapshot_download`` does the work, so its
cache (``HF_HUB_CACHE`` / ``HF_HOME``), tokens and mirrors apply; with ``HF_HUB_OFFLINE=1`` only
the cache is read. ``hf:org/name@revision`` pins a branch, tag or commit.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drunet import __version__
from drunet.errors import DrunetError

log = logging.getLogger(__name__)

PREFIX = "hf:"
INSTALL = 'pip install "drunet[hub]"'
# The Hub's own rule for repository ids: [org/]name, letters, digits, "-", "_", "."; at most
# 96 characters each; no "--" or ".." (huggingface_hub's validate_repo_id).
_PART = r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_REPO = re.compile(rf"(?:{_PART}/)?{_PART}")
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class HubModel:
    """A model repository on the Hub: ``repo_id`` (``org/name``) at ``revision`` (None: main)."""

    repo_id: str
    revision: str | None = None

    def at(self, revision: str) -> HubModel:
        """The same repository at ``revision`` (a commit pins what was read)."""
        return HubModel(self.repo_id, revision)

    def __str__(self) -> str:
        return PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_hub_name(text: str) -> HubModel | None:
    """The repository ``text`` names when it starts with ``hf:`` (``hf:org/name[@revision]``),
    else ``None``; a malformed id after ``hf:`` is a ``DrunetError``."""
    if not text.startswith(PREFIX):
        return None
    repo_id, at, revision = text[len(PREFIX) :].partition("@")
    if not is_repo_id(repo_id) or (at and not revision):
        raise DrunetError(
            f"{text!r} is not a Hugging Face model name; write hf:ORG/NAME (letters, digits, "
            "'-', '_', '.'), optionally hf:ORG/NAME@REVISION"
        )
    return HubModel(repo_id, revision or None)


def is_repo_id(text: str) -> bool:
    """Whether ``text`` is a valid Hub repository id (``name`` or ``org/name``)."""
    return bool(_REPO.fullmatch(text)) and "--" not in text and ".." not in text


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set now (read at each call: huggingface_hub reads it once,
    when it is first imported)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def import_hub() -> Any:
    """The ``huggingface_hub`` module, or a ``DrunetError`` naming the extra to install."""
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError:
        raise DrunetError(
            f"Hugging Face Hub models need the huggingface_hub package: {INSTALL}"
        ) from None


def hub_folder(model: HubModel, files: list[str]) -> Path:
    """The local folder holding ``files`` of ``model``: the cached snapshot, downloaded first
    unless ``HF_HUB_OFFLINE`` is set or it is already complete in the cache."""
    hub = import_hub()
    errors = importlib.import_module("huggingface_hub.errors")
    local_only = offline()
    try:
        folder = hub.snapshot_download(
            model.repo_id,
            revision=model.revision,
            allow_patterns=files,
            local_files_only=local_only,
            library_name="drunet",
            library_version=__version__,
        )
    except errors.LocalEntryNotFoundError:  # offline, or the Hub out of reach: not cached
        raise DrunetError(_not_cached(model, local_only)) from None
    except (errors.RepositoryNotFoundError, errors.GatedRepoError) as err:
        raise DrunetError(
            f"{model}: the Hub has no such model repository, or it is private or gated "
            f"({type(err).__name__}); check the name, or log in with `hf auth login`"
        ) from None
    except errors.RevisionNotFoundError:
        raise DrunetError(f"{model}: the repository has no revision {model.revision!r}") from None
    except (errors.HfHubHTTPError, OSError, ValueError) as err:  # the Hub, the disk, the cache
        raise DrunetError(f"{model}: cannot fetch it from the Hub: {_first_line(err)}") from None
    log.info("%s: %s", model, folder)
    return Path(folder)


def _not_cached(model: HubModel, local_only: bool) -> str:
    why = (
        "HF_HUB_OFFLINE is set, so only the local cache is read"
        if local_only
        else "the Hub cannot be reached"
    )
    return (
        f"{model} is not in the local Hugging Face cache and {why}; fetch it once where the Hub "
        f"is reachable (unset HF_HUB_OFFLINE; `hf download {model.repo_id}`), or pass a local "
        "save_pretrained folder"
    )


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
