"""``push_to_hub`` / ``drunet push``: the save_pretrained folder handed to
``huggingface_hub.upload_folder``. The Hub calls are replaced: no test touches the network."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
from typer.testing import CliRunner

from drunet.checkpoint import PRETRAINED, load_model
from drunet.cli.main import app
from drunet.config import updated
from drunet.errors import DrunetError
from drunet.hub.card import CARD
from drunet.hub.pretrained import FILES
from drunet.hub.push import push_to_hub

X = torch.randn(1, 1, 40, 48, generator=torch.Generator().manual_seed(2))


class FakeHub:
    """Records create_repo / create_branch / upload_folder and what the uploaded folder held."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.uploaded: dict[str, bytes] = {}
        self.folder: Path | None = None
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr(huggingface_hub, "create_repo", self.create_repo)
        monkeypatch.setattr(huggingface_hub, "create_branch", self.create_branch)
        monkeypatch.setattr(huggingface_hub, "upload_folder", self.upload_folder)

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", (repo_id, kwargs)))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_branch", (repo_id, kwargs)))

    def upload_folder(self, **kwargs: Any) -> str:
        self.calls.append(("upload_folder", kwargs))
        self.folder = Path(kwargs["folder_path"])
        for path in self.folder.iterdir():  # what upload_folder would send
            if any(fnmatch.fnmatch(path.name, p) for p in kwargs["allow_patterns"]):
                self.uploaded[path.name] = path.read_bytes()
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/abc123"


def test_a_run_is_uploaded_as_the_hub_folder(monkeypatch, trained_run: Path, tmp_path) -> None:
    hub = FakeHub(monkeypatch)
    result = push_to_hub(trained_run, "lab/cells", private=True, license="mit")
    assert result.url == "https://huggingface.co/lab/cells/commit/abc123" and result.folder is None
    names = [name for name, _ in hub.calls]
    assert names == ["create_repo", "upload_folder"]
    assert hub.calls[0][1] == ("lab/cells", {"private": True, "exist_ok": True})
    upload = hub.calls[1][1]
    assert upload["repo_id"] == "lab/cells" and upload["revision"] is None
    assert sorted(hub.uploaded) == sorted(FILES)  # never the .drunet-manifest
    (tmp_path / PRETRAINED).write_bytes(hub.uploaded[PRETRAINED])
    torch.testing.assert_close(
        load_model(tmp_path)[0](X), load_model(trained_run)[0](X), atol=0, rtol=0
    )
    card = hub.uploaded[CARD].decode()
    assert "license: mit" in card and "hf:lab/cells" in card and "model-index" in card
    assert hub.folder is not None and not hub.folder.exists()  # the temporary folder is gone


def test_no_local_path_is_published(monkeypatch, trained_run: Path, tmp_path) -> None:
    """The trained run's config holds this machine's data folder and runs folder; the pushed
    config.json, the weights' own config and the card hold the folder's name only."""
    hub = FakeHub(monkeypatch)
    model, config = load_model(trained_run)
    root = config.data.root
    assert root is not None and root.is_absolute()  # what the run recorded: a local path
    local = updated(config, {"train.init_from": "/home/me/weights/start.safetensors"})
    push_to_hub(model, "lab/cells", config=local, datasets=["lab/cells-data"])
    published = json.loads(hub.uploaded["config.json"])
    assert published["data"]["root"] == root.name and published["runs_dir"] == "runs"
    assert published["train"]["init_from"] == "start.safetensors"
    (tmp_path / PRETRAINED).write_bytes(hub.uploaded[PRETRAINED])
    stored = load_model(tmp_path)[1]
    assert stored.data.root == Path(root.name) and stored.train.init_from == "start.safetensors"
    everything = b"".join(hub.uploaded.values())
    assert str(root.parent).encode() not in everything and b"/home/me" not in everything
    # what a prediction reads is unchanged
    assert stored.data.normalization == config.data.normalization and stored.model == config.model


def test_a_model_is_pushed_to_a_branch(monkeypatch, trained_run: Path, tmp_path) -> None:
    hub = FakeHub(monkeypatch)
    model, config = load_model(trained_run)
    result = push_to_hub(model, "lab/cells", config=config, revision="v2", folder=tmp_path / "k")
    assert [name for name, _ in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[1][1] == ("lab/cells", {"branch": "v2", "exist_ok": True})
    assert hub.calls[2][1]["revision"] == "v2" and hub.folder == tmp_path / "k"
    assert result.folder == tmp_path / "k" and (tmp_path / "k" / PRETRAINED).is_file()
    assert "No metrics were recorded" in hub.uploaded[CARD].decode()  # a bare model: no run


def test_a_dry_run_writes_and_uploads_nothing(monkeypatch, trained_run, tmp_path) -> None:
    hub = FakeHub(monkeypatch)
    result = push_to_hub(trained_run, "lab/cells", folder=tmp_path / "out", dry_run=True)
    assert result.url is None and hub.calls == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name in FILES) == sorted(FILES)
    with pytest.raises(DrunetError, match="--out DIR"):
        push_to_hub(trained_run, "lab/cells", dry_run=True)


def test_what_cannot_be_pushed_is_refused_before_any_call(monkeypatch, trained_run) -> None:
    with pytest.raises(DrunetError, match="HF_HUB_OFFLINE is set"):  # the fixture sets it
        push_to_hub(trained_run, "lab/cells")
    hub = FakeHub(monkeypatch)
    for bad in ("cells", "lab/cells/x", "lab/ce lls"):
        with pytest.raises(DrunetError, match="write ORG/NAME"):
            push_to_hub(trained_run, bad)
    assert hub.calls == []


def test_an_upload_failure_is_one_line(monkeypatch, trained_run) -> None:
    FakeHub(monkeypatch)

    def refused(**kwargs: Any) -> None:
        raise OSError("403 Forbidden: you cannot write to lab/cells\nmore detail")

    monkeypatch.setattr(huggingface_hub, "upload_folder", refused)
    with pytest.raises(DrunetError) as err:
        push_to_hub(trained_run, "lab/cells")
    assert str(err.value).startswith("pushing to lab/cells failed: 403 Forbidden")
    assert "hf auth login" in str(err.value) and "\n" not in str(err.value)


def test_drunet_push(monkeypatch, trained_run: Path, tmp_path: Path) -> None:
    hub = FakeHub(monkeypatch)
    runner = CliRunner()
    args = ["push", str(trained_run), "lab/cells", "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--license", "mit", "--dataset", "lab/em", "--private"])
    assert result.exit_code == 0, result.output
    assert "pushed lab/cells: https://huggingface.co/lab/cells/commit/abc123" in result.output
    assert "--model hf:lab/cells" in result.output
    assert hub.calls[0][1] == ("lab/cells", {"private": True, "exist_ok": True})
    assert "- lab/em" in hub.uploaded[CARD].decode()
    dry = runner.invoke(app, ["push", str(trained_run), "lab/cells", "--dry-run"])
    assert dry.exit_code == 2 and len(dry.output.strip().splitlines()) == 1
    assert "--out DIR" in dry.output and len(hub.calls) == 2
