"""The Hub tests run offline: an empty Hugging Face cache in a temporary folder, HF_HUB_OFFLINE
set, and :func:`fill_cache` laying out a repository the way ``huggingface_hub`` stores one
(``models--org--name/{blobs,refs,snapshots}``). One run trained through the CLI (with its
``metrics.csv`` and ``fingerprint.json``) is shared by the module's tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import make_synthetic
from tests.conftest import tiny_recipe


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, offline. huggingface_hub reads its variables once, when imported, so its
    constants are set too; ``drunet.hub.fetch`` reads HF_HUB_OFFLINE at each call."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def fill_cache(cache: Path, repo_id: str, folder: Path, ref: str = "main") -> str:
    """Put the files of ``folder`` into ``cache`` as revision ``ref`` of ``repo_id``, laid out as
    huggingface_hub does (content in ``blobs/``, ``snapshots/<commit>/<file>`` symlinks to them,
    ``refs/<ref>`` holding the commit); return the commit hash."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    commit = hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return commit


@pytest.fixture(scope="session")
def hub_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(
        tmp_path_factory.mktemp("hub-data") / "cells", num_images=6, sizes=((48, 48),), seed=5
    )


@pytest.fixture(scope="session")
def trained_run(hub_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of ``drunet train`` (2 short epochs): best weights, metrics.csv, fingerprint.json."""
    base = tmp_path_factory.mktemp("hub-run")
    (base / "tiny.yaml").write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 2})))
    args = ["train", "--data", str(hub_data), "--config", str(base / "tiny.yaml")]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(base / "runs"), "--name", "tiny"])
    assert result.exit_code == 0, result.output
    return base / "runs" / "tiny"
