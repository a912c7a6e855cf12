"""The model card: front matter the Hub reads (library, tags, licence, datasets, model-index)
and a body with the run's best validation scores and training data, equal to the run's files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from drunet.checkpoint import load_model
from drunet.config import config_from_dict
from drunet.errors import DrunetError
from drunet.hub.card import CARD, FINGERPRINT, model_card, read_run
from drunet.hub.pretrained import save_run
from drunet.plan import FINGERPRINT_FILE
from tests.conftest import tiny_recipe


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def best_row(run: Path) -> dict[str, str]:
    with (run / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return max(rows, key=lambda row: float(row["dice"]))


def test_the_card_holds_the_runs_best_scores(trained_run: Path, tmp_path: Path) -> None:
    save_run(trained_run, tmp_path / "hub", repo_id="lab/cells", license="mit")
    card = ModelCard.load(tmp_path / "hub" / CARD)  # huggingface_hub's own parser
    assert card.data.library_name == "drunet" and card.data.license == "mit"
    assert card.data.pipeline_tag == "image-segmentation"
    assert {"drunet", "image-segmentation", "safetensors"} <= set(card.data.tags)
    best = best_row(trained_run)
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"dice", "iou", "precision", "recall"}
    for name, result in results.items():
        assert result.metric_value == float(best[name])
        assert result.task_type == "image-segmentation" and result.dataset_split == "validation"
        assert result.dataset_name == "cells"  # the data folder's name, not its path
    assert card.data.model_name == "cells"
    assert f"| dice | {float(best['dice']):g} |" in card.text
    assert f"| val_loss | {float(best['val_loss']):g} |" in card.text
    assert f"epoch {best['epoch']} of 2" in card.text
    assert "drunet predict images/ --model hf:lab/cells" in card.text


def test_the_card_tells_the_training_data(trained_run: Path, hub_data: Path, tmp_path: Path):
    save_run(trained_run, tmp_path)
    text = (tmp_path / CARD).read_text()
    fingerprint = json.loads((trained_run / "fingerprint.json").read_text())
    assert f"- {fingerprint['pairs']} training pairs ({fingerprint['sampled']} measured)" in text
    assert "median size 48 × 48" in text
    assert f"- validation: {fingerprint['split']}" in text
    share = fingerprint["classes"][1]["frequency"]
    assert f"- class 1 `class 1`: {100 * share:.1f}% of pixels" in text
    assert "- data: `cells`" in text and str(hub_data.parent) not in text
    _, config = load_model(trained_run)
    mean = config.data.normalization.mean
    assert mean is not None and f"mean [{mean[0]:.4g}]" in text


def test_the_best_epoch_is_the_first_to_reach_the_best_score(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(
        "epoch,val_loss,dice,iou\n1,0.9,0.5,0.3\n2,0.7,0.75,0.6\n3,0.6,0.75,0.61\n4,0.5,0.6,0.4\n"
    )
    run = read_run(tmp_path, "dice")
    assert run.best == {"epoch": 2.0, "val_loss": 0.7, "dice": 0.75, "iou": 0.6}
    assert run.epochs == 4 and run.fingerprint is None and run.name == tmp_path.name
    config = config_from_dict(tiny_recipe(model={"in_channels": 1, "num_classes": 2}))
    text = model_card(config, run, datasets=["lab/cells-em"])
    meta = front_matter(text)
    assert meta["datasets"] == ["lab/cells-em"] and "license" not in meta
    (result,) = meta["model-index"][0]["results"]
    assert result["dataset"]["type"] == "lab/cells-em"
    assert [(m["type"], m["value"]) for m in result["metrics"]] == [("dice", 0.75), ("iou", 0.6)]
    assert "(epoch 2 of 4, the best by dice)" in text
    assert read_run(tmp_path, "iou").best == {
        "epoch": 3.0,
        "val_loss": 0.6,
        "dice": 0.75,
        "iou": 0.61,
    }


def test_a_model_without_a_run_has_no_scores() -> None:
    config = config_from_dict(tiny_recipe(model={"in_channels": 3, "num_classes": 4}))
    text = model_card(config)
    assert "model-index" not in front_matter(text)
    assert "No metrics were recorded with these weights." in text
    assert "3-channel images → 4 classes (0, 1, 2, 3)" in text


def test_a_damaged_metrics_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("epoch,dice\n1,abc\n")
    with pytest.raises(DrunetError, match="metrics.csv is not a drunet metrics file"):
        read_run(tmp_path, "dice")
    (tmp_path / "metrics.csv").write_text("epoch,iou\n1,0.5\n")
    with pytest.raises(DrunetError, match="has no 'dice' column"):
        read_run(tmp_path, "dice")


def test_the_fingerprint_name_is_the_plans() -> None:
    assert FINGERPRINT == FINGERPRINT_FILE
