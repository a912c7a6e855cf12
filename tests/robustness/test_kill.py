"""One kill -9 trial of training, of a --resume --epochs extension and of prediction
(``kill_trials.py`` runs many)."""

from __future__ import annotations

import random
import sys

import pytest

from tests.robustness.kill_trials import extension_trial, predict_trial, training_trial

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]


def test_kill_during_training_then_resume(tmp_path) -> None:
    result = training_trial(tmp_path, random.Random(1))
    assert result["checkpoint_epoch"] >= 1


def test_kill_during_an_extension_then_extend_again(tmp_path) -> None:
    result = extension_trial(tmp_path, random.Random(3))
    assert result["checkpoint_epoch_at_kill"] >= result["short"]


def test_kill_during_predict_then_continue(tmp_path, trained_run) -> None:
    result = predict_trial(tmp_path, random.Random(2), run=trained_run)
    assert 0 < result["finished_before_kill"] < result["count"]  # killed mid-folder
    skipped = f"skipped {result['finished_before_kill']} already predicted"
    assert skipped in result["continue_output"]
