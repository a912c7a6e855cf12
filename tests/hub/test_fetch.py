"""``hf:org/name`` and ``from_pretrained("org/name")`` through a pre-filled Hugging Face cache,
offline: the same logits as the saved model, revisions, and the errors a user can act on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch

from drunet.checkpoint import PRETRAINED, PRETRAINED_CONFIG, build_model, weights_path
from drunet.config import config_from_dict
from drunet.errors import DrunetError
from drunet.hub.fetch import HubModel, parse_hub_name
from drunet.hub.pretrained import from_pretrained, save_pretrained
from drunet.weights import init_from
from tests.conftest import randomise_batch_norms, tiny_recipe
from tests.hub.conftest import fill_cache

X = torch.randn(2, 1, 24, 40, generator=torch.Generator().manual_seed(0))


def saved_model(folder: Path, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = config_from_dict(tiny_recipe(model={"in_channels": 1, "num_classes": 2}))
    model = randomise_batch_norms(build_model(config), seed).eval()
    save_pretrained(model, folder, config)
    return model


@pytest.fixture
def cached(tmp_path: Path, hf_cache: Path) -> tuple[torch.nn.Module, str]:
    """A model saved with save_pretrained and put in the cache as org/name (main)."""
    model = saved_model(tmp_path / "saved")
    return model, fill_cache(hf_cache, "org/name", tmp_path / "saved")


def test_hub_names_parse_and_malformed_ones_are_refused() -> None:
    assert parse_hub_name("hf:org/name") == HubModel("org/name")
    assert parse_hub_name("hf:org/my.model_v2@v1.0") == HubModel("org/my.model_v2", "v1.0")
    assert parse_hub_name("hf:gpt2") == HubModel("gpt2")
    assert str(HubModel("org/name", "dev")) == "hf:org/name@dev"
    assert parse_hub_name("runs/org/name") is None and parse_hub_name("org/name") is None
    for bad in ("hf:", "hf:org//name", "hf:org/name@", "hf:-org/name", "hf:org/a--b", "hf:a/b/c"):
        with pytest.raises(DrunetError, match="hf:ORG/NAME"):
            parse_hub_name(bad)


def test_the_filled_cache_is_what_huggingface_hub_reads(cached, hf_cache: Path) -> None:
    _, commit = cached
    (repo,) = huggingface_hub.scan_cache_dir(hf_cache).repos
    assert repo.repo_id == "org/name" and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == commit and revision.refs == frozenset({"main"})
    names = {f.file_name for f in revision.files}
    assert {PRETRAINED, PRETRAINED_CONFIG} <= names


@pytest.mark.parametrize("name", ["org/name", "hf:org/name", "hf:org/name@main"])
def test_from_pretrained_reads_the_cache_offline(cached, name: str) -> None:
    model, _ = cached
    loaded = from_pretrained(name)
    assert not loaded.training
    torch.testing.assert_close(loaded(X), model(X), atol=0, rtol=0)


def test_a_commit_or_a_branch_picks_its_snapshot(tmp_path: Path, hf_cache: Path) -> None:
    first = saved_model(tmp_path / "v1", seed=1)
    second = saved_model(tmp_path / "v2", seed=2)
    commit = fill_cache(hf_cache, "org/name", tmp_path / "v1")
    fill_cache(hf_cache, "org/name", tmp_path / "v2", ref="v2")
    assert weights_path(f"hf:org/name@{commit}").parent.name == commit
    torch.testing.assert_close(from_pretrained(f"hf:org/name@{commit}")(X), first(X))
    torch.testing.assert_close(from_pretrained("hf:org/name@v2")(X), second(X), atol=0, rtol=0)
    assert not torch.equal(first(X), second(X))


def test_offline_with_an_empty_cache_names_the_repo_and_the_variable() -> None:
    with pytest.raises(DrunetError) as err:
        from_pretrained("hf:org/absent")
    message = str(err.value)
    assert "hf:org/absent is not in the local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "\n" not in message


def test_a_cached_repo_without_drunet_weights_says_so(tmp_path: Path, hf_cache: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / PRETRAINED_CONFIG).write_text("{}")
    fill_cache(hf_cache, "org/other", tmp_path / "other")
    with pytest.raises(DrunetError, match=f"hf:org/other holds no {PRETRAINED}"):
        weights_path("hf:org/other")


def test_without_huggingface_hub_one_line_names_the_extra(monkeypatch, cached) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if absent
    with pytest.raises(DrunetError) as err:
        from_pretrained("hf:org/name")
    assert 'pip install "drunet[hub]"' in str(err.value) and "\n" not in str(err.value)


def test_online_the_model_files_are_asked_for(monkeypatch, tmp_path: Path) -> None:
    model = saved_model(tmp_path / "remote")
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_snapshot_download(repo_id: str, **kwargs: Any) -> str:
        calls.append((repo_id, kwargs))
        return str(tmp_path / "remote")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    torch.testing.assert_close(from_pretrained("hf:org/name@v3")(X), model(X), atol=0, rtol=0)
    ((repo_id, kwargs),) = calls
    assert repo_id == "org/name" and kwargs["revision"] == "v3"
    assert kwargs["local_files_only"] is False and kwargs["library_name"] == "drunet"
    assert kwargs["allow_patterns"] == [PRETRAINED, PRETRAINED_CONFIG]


def test_only_hf_names_reach_the_hub(monkeypatch, tmp_path: Path) -> None:
    def no_download(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("a download was attempted")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DrunetError, match="no such run folder or weights file"):
        weights_path("org/name")  # what --model and --init-from resolve: a local path
    model = saved_model(tmp_path / "org" / "name")  # a local folder named like a repository
    torch.testing.assert_close(from_pretrained("org/name")(X), model(X), atol=0, rtol=0)


def test_a_missing_local_path_reads_as_both(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DrunetError, match=r"runs/typo is no local folder or file; as a Hub model: "
    ):
        from_pretrained("runs/typo")


def test_init_from_takes_a_hub_model(cached) -> None:
    model, commit = cached
    fresh = build_model(config_from_dict(tiny_recipe(model={"in_channels": 1, "num_classes": 2})))
    report = init_from(fresh, "hf:org/name")
    assert len(report.loaded) == len(fresh.state_dict()) and not report.reinitialised
    assert report.source.name == PRETRAINED and report.recorded == f"hf:org/name@{commit}"
    torch.testing.assert_close(fresh.eval()(X), model(X), atol=0, rtol=0)
