"""Output ownership (``drunet.outputs``): the one rule every command's outputs follow."""

from __future__ import annotations

import json

import pytest

from drunet.errors import DrunetError, OutputError
from drunet.outputs import MANIFEST, Manifest, check_outputs, claim_outputs


def test_claim_records_the_names_and_creates_the_folder(tmp_path) -> None:
    out = tmp_path / "new"
    manifest = claim_outputs(out, ["summary.json", out / "report.html"])
    assert manifest.names == {"summary.json", "report.html"}
    lines = (out / MANIFEST).read_text().splitlines()
    assert [json.loads(line) for line in lines] == ["summary.json", "report.html"]


def test_a_foreign_file_is_refused_by_name_and_left_untouched(tmp_path) -> None:
    (tmp_path / "report.html").write_text("mine")
    with pytest.raises(OutputError, match=r"report\.html exists and drunet did not write it"):
        claim_outputs(tmp_path, ["summary.json", "report.html"])
    assert (tmp_path / "report.html").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no manifest either
    assert issubclass(OutputError, DrunetError)


def test_a_foreign_folder_at_an_output_name_is_refused(tmp_path) -> None:
    (tmp_path / "model.onnx").mkdir()
    with pytest.raises(OutputError, match=r"model\.onnx"):
        claim_outputs(tmp_path, ["model.onnx"])


def test_drunet_s_own_outputs_are_claimed_again(tmp_path) -> None:
    claim_outputs(tmp_path, ["summary.json"])
    (tmp_path / "summary.json").write_text("{}")
    assert claim_outputs(tmp_path, ["summary.json"]).names == {"summary.json"}
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert lines == ['"summary.json"']  # a name is recorded once


def test_overwrite_claims_a_foreign_file(tmp_path) -> None:
    (tmp_path / "summary.json").write_text("mine")
    claim_outputs(tmp_path, ["summary.json"], overwrite=True)
    assert Manifest(tmp_path).owns(tmp_path / "summary.json")
    assert claim_outputs(tmp_path, ["summary.json"]).names == {"summary.json"}


@pytest.mark.parametrize("name", ["../summary.json", "", ".", "/elsewhere/summary.json"])
def test_a_name_outside_the_folder_is_a_programming_error(tmp_path, name) -> None:
    with pytest.raises(ValueError, match="is not a path below"):
        claim_outputs(tmp_path, [name])


def test_a_tree_is_claimed_by_relative_names_in_one_manifest(tmp_path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "001.png").write_bytes(b"mine")
    names = ["data/images/000.png", tmp_path / "data" / "images" / "001.png"]
    with pytest.raises(OutputError, match=r"data/images/001\.png exists"):
        claim_outputs(tmp_path, names)
    claim_outputs(tmp_path, names[:1])
    assert not (tmp_path / "data" / "images" / MANIFEST).exists()
    assert Manifest(tmp_path).names == {"data/images/000.png"}
    (tmp_path / "data" / "images" / "000.png").write_bytes(b"drunet's")
    assert not Manifest(tmp_path).foreign(tmp_path / "data" / "images" / "000.png")
    assert Manifest(tmp_path).foreign(tmp_path / "data" / "images" / "001.png")


def test_check_refuses_like_claim_but_records_nothing(tmp_path) -> None:
    (tmp_path / "compare.md").write_text("mine")
    with pytest.raises(OutputError, match=r"compare\.md exists"):
        check_outputs(tmp_path, ["compare.md"])
    assert check_outputs(tmp_path, ["compare.md"], overwrite=True).names == set()
    assert check_outputs(tmp_path / "new", ["a.json"]).names == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.md"]
