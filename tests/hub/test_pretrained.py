"""``save_pretrained`` / ``save_run``: the folder the Hub expects, loaded back as it was saved,
and never over a file drunet did not write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from drunet import from_pretrained as public_from_pretrained
from drunet import push_to_hub as public_push_to_hub
from drunet import save_pretrained as public_save_pretrained
from drunet.checkpoint import PRETRAINED, PRETRAINED_CONFIG, load_model
from drunet.config import config_from_dict
from drunet.errors import OutputError
from drunet.hub.card import CARD
from drunet.hub.pretrained import FILES, from_pretrained, save_pretrained, save_run
from drunet.hub.push import push_to_hub
from drunet.outputs import MANIFEST

X = torch.randn(1, 1, 48, 40, generator=torch.Generator().manual_seed(1))


def test_the_public_names_are_the_hub_functions() -> None:
    assert public_save_pretrained is save_pretrained
    assert public_from_pretrained is from_pretrained
    assert public_push_to_hub is push_to_hub


def test_a_run_becomes_the_hub_folder_and_loads_back(trained_run: Path, tmp_path: Path) -> None:
    folder = save_run(trained_run, tmp_path / "hub")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, MANIFEST])
    assert FILES == (PRETRAINED, PRETRAINED_CONFIG, CARD)
    best, config = load_model(trained_run)
    stored = config_from_dict(json.loads((folder / PRETRAINED_CONFIG).read_text()))
    assert stored == config  # drunet's own configuration, readable as JSON
    torch.testing.assert_close(from_pretrained(folder)(X), best(X), atol=0, rtol=0)
    torch.testing.assert_close(from_pretrained(str(folder))(X), best(X), atol=0, rtol=0)


def test_a_weights_file_outside_a_run_has_a_card_without_scores(trained_run, tmp_path) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "model.safetensors").write_bytes(
        (trained_run / "best.safetensors").read_bytes()
    )
    save_run(tmp_path / "w" / "model.safetensors", tmp_path / "hub")
    assert "No metrics were recorded" in (tmp_path / "hub" / CARD).read_text()


def test_a_foreign_readme_is_not_replaced(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / CARD).write_text("my notes\n")
    with pytest.raises(OutputError, match="README.md exists and drunet did not write it"):
        save_run(trained_run, tmp_path)
    assert (tmp_path / CARD).read_text() == "my notes\n"
    assert not (tmp_path / PRETRAINED).exists()  # refused before writing anything
    save_run(trained_run, tmp_path, overwrite=True)
    assert (tmp_path / CARD).read_text().startswith("---\nlibrary_name: drunet\n")
    save_run(trained_run, tmp_path, license="mit")  # drunet's own files: saved again
    assert "license: mit" in (tmp_path / CARD).read_text()
