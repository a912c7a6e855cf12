"""Fingerprints kept between commands, so ``drunet verify``, ``drunet plan`` and ``drunet train``
measure a dataset once (the run folder then keeps its own copy, ``fingerprint.json``).

The key is a SHA-256 of everything the fingerprint depends on: each training pair's paths, sizes
and modification times, the mask options, classes, split and the measuring bounds — a file
changed, added or removed gives another key, so a stale entry is never read. Entries are
``<key>.json`` in ``$DRUNET_CACHE_DIR``, by default ``$XDG_CACHE_HOME/drunet/fingerprints``
(``~/.cache/drunet/fingerprints``); ``DRUNET_CACHE_DIR=off`` measures every time. An entry that
cannot be read is measured again; a folder that cannot be written only loses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drunet.datasets import MaskOptions, Pair
from drunet.plan.fingerprint import Fingerprint, compute_fingerprint, save_fingerprint

log = logging.getLogger(__name__)

CACHE_ENV = "DRUNET_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where fingerprints are kept (None: ``DRUNET_CACHE_DIR=off``)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "drunet" / "fingerprints"


def cached_fingerprint(
    pairs: Sequence[Pair], masks: MaskOptions | None = None, **options: Any
) -> Fingerprint:
    """:func:`~drunet.plan.fingerprint.compute_fingerprint` of ``pairs`` with ``options``,
    read from the cache when an entry has the same key (see the module docstring)."""
    folder = cache_dir()
    if folder is None:
        return compute_fingerprint(pairs, masks, **options)
    path = folder / f"{_key(pairs, masks or MaskOptions(), options)}.json"
    try:
        return Fingerprint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:  # no entry yet, or a damaged one: measure
        log.debug("fingerprint not cached at %s: %s", path, err)
    fingerprint = compute_fingerprint(pairs, masks, **options)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_fingerprint(fingerprint, path)
    except OSError as err:
        log.debug("fingerprint cache %s not written: %s", folder, err)
    return fingerprint


def _key(pairs: Sequence[Pair], masks: MaskOptions, options: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([masks.model_dump(mode="json"), options], default=str).encode())
    for pair in pairs:
        digest.update(repr(pair).encode())  # the files, the page of a stack, a numbered slice
        for path in (*pair.image_files, pair.mask):
            try:
                stat = Path(path).stat()
                stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            digest.update(f"{Path(path).resolve()}|{stamp}\n".encode())
    return digest.hexdigest()[:32]
