"""The LR schedule by hand (warm-up, cosine, a time budget) and the budget's clock."""

from __future__ import annotations

import math

import pytest

from drunet.config import TrainConfig
from drunet.engine import epochs as budget_module
from drunet.engine.optim import lr_factor

# ---------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.1),  # first warm-up step: 1 / 10
        (4, 0.5),
        (9, 1.0),  # end of warm-up
        (10, 1.0),  # cosine starts at the peak
        (35, 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 4))),  # 0.855018
        (60, 0.505),  # cosine midpoint: 0.01 + 0.99 / 2
        (110, 0.01),  # end of the schedule
        (500, 0.01),  # clamped beyond it
    ],
)
def test_cosine_with_warmup_by_hand(step: int, expected: float) -> None:
    assert lr_factor(TrainConfig(), 110, 10)(step) == pytest.approx(expected, abs=1e-12)


def test_cosine_last_training_step_is_close_to_one_percent() -> None:
    factor = lr_factor(TrainConfig(), 110, 10)
    # 0.01 + 0.495 * (1 + cos(0.99 π)) = 0.010244
    assert factor(109) == pytest.approx(0.0102442, abs=1e-6)
    assert factor(109) == pytest.approx(0.01, abs=1e-3)


def test_cosine_without_warmup_starts_at_the_peak_and_decreases() -> None:
    factor = lr_factor(TrainConfig(), 20, 0)
    values = [factor(s) for s in range(20)]
    assert values[0] == 1.0
    assert values[10] == pytest.approx(0.505)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_budget_progress_and_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    now = {"t": 100.0}
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: now["t"])
    budget = budget_module.Budget(60.0)
    assert budget.progress() == 0.0 and not budget.spent()  # not started yet
    budget.start()
    now["t"] = 130.0
    assert budget.progress() == pytest.approx(0.5) and not budget.spent()
    now["t"] = 175.0
    assert budget.progress() == 1.0 and budget.spent()


def test_time_budget_drives_the_lr_decay() -> None:
    progress = {"p": 0.0}
    factor = lr_factor(TrainConfig(), 1000, 0, time_progress=lambda: progress["p"])
    assert factor(5) == 1.0  # step count is ignored: no time used yet
    progress["p"] = 0.5
    assert factor(5) == pytest.approx(0.505)  # cosine midpoint, as a function of time
    progress["p"] = 1.0
    assert factor(5) == pytest.approx(0.01)


# ---------------------------------------------------------------- optimiser


def test_adamw_is_fused_on_the_cpu_and_steps_as_adamw_by_hand() -> None:
    """One step of the fused AdamW the trainer builds equals AdamW's update written out:
    m = (1-β1)·g, v = (1-β2)·g², p ← p·(1 - lr·wd) - lr · m̂ / (√v̂ + ε), with decay on weights
    (ndim > 1) only."""
    import torch
    from torch import nn

    from drunet.engine.optim import build_optimizer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    cfg = TrainConfig(lr=0.01, weight_decay=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    grads = [torch.randn_like(p) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g.clone()
    optimizer = build_optimizer(model, cfg)
    assert all(group["fused"] for group in optimizer.param_groups)
    optimizer.step()
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        decay = cfg.weight_decay if p.ndim > 1 else 0.0
        m_hat = (1 - beta1) * g / (1 - beta1)
        v_hat = (1 - beta2) * g * g / (1 - beta2)
        expected = p0 * (1 - cfg.lr * decay) - cfg.lr * m_hat / (v_hat.sqrt() + eps)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)
