"""The Trainer: hand-computed schedule values, validation scores, NaN guard and a tiny real fit."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from drunet.config import TrainConfig
from drunet.device import select_precision
from drunet.engine.epochs import EpochRecord
from drunet.engine.optim import lr_factor
from drunet.engine.trainer import Trainer, TrainerOptions
from drunet.errors import DrunetError
from drunet.losses import DiceCELoss
from drunet.models import create_model

CPU = select_precision(torch.device("cpu"), "auto", training=True)


# ---------------------------------------------------------------- helpers


class Scale(nn.Module):
    """Logits = image × w: a one-parameter model with a known output."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


class MeanLoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits.mean()


class NanLoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits.sum() * float("nan")


class LoggingSGD(torch.optim.SGD):
    """Records the learning rate each optimiser step really used."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.used_lrs: list[float] = []

    def step(self, closure=None):  # type: ignore[override]
        self.used_lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


class RecordingReporter:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self.events.append(("start", epoch, epochs, steps))

    def step(self, loss: float) -> None:
        self.events.append(("step", loss))

    def end_epoch(self, record: EpochRecord) -> None:
        self.events.append(("end", record.epoch))


class RecordingCallback:
    def __init__(self) -> None:
        self.seen: list[EpochRecord] = []
        self.history_lengths: list[int] = []

    def on_epoch_end(self, record: EpochRecord, trainer: Trainer) -> None:
        self.seen.append(record)
        self.history_lengths.append(len(trainer.history))


def make_trainer(model, loss_fn, train_loader, val_loader, optimizer=None, total=1, warmup=0):
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(TrainConfig(), total, warmup)
    )
    options = TrainerOptions(2, CPU)
    return Trainer(model, loss_fn, optimizer, scheduler, train_loader, val_loader, options)


def _synthetic_batches(count: int, batch: int, size: int, seed: int) -> list:
    """Images whose bright squares are the foreground, so a model can learn them."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        masks = torch.zeros(batch, size, size, dtype=torch.int64)
        for i in range(batch):
            y, x = torch.randint(0, size // 2, (2,), generator=gen).tolist()
            masks[i, y : y + size // 3, x : x + size // 3] = 1
        images = masks[:, None].float() + 0.3 * torch.randn(batch, 1, size, size, generator=gen)
        batches.append((images, masks))
    return batches


# ---------------------------------------------------------------- validation


def test_validation_scores_are_micro_averaged_by_hand() -> None:
    # Image 1: logits [[1, 1], [-1, 1]] vs target [[1, 1], [0, 0]] → tp 2, fp 1, fn 0.
    # Image 2: logits [[-1, -1]]        vs target [[1, 0]]        → tp 0, fp 0, fn 1.
    # Micro: dice_1 = 2·2 / (2·2 + 1 + 1) = 2/3, iou_1 = 2 / 4 (per-image mean would be 0.4).
    val = [
        (torch.tensor([[[[1.0, 1.0], [-1.0, 1.0]]]]), torch.tensor([[[1, 1], [0, 0]]])),
        (torch.tensor([[[[-1.0, -1.0]]]]), torch.tensor([[[1, 0]]])),
    ]
    trainer = make_trainer(Scale(), MeanLoss(), [], val)
    loss, scores = trainer.validate()
    assert loss == pytest.approx((0.5 + -1.0) / 2)
    assert scores["dice"] == pytest.approx(2 / 3)
    assert scores["iou"] == pytest.approx(0.5)
    assert scores["dice_1"] == pytest.approx(2 / 3)
    # Background: tp 2, fp 1 (the missed foreground pixel), fn 1 → 2/3 too.
    assert scores["dice_0"] == pytest.approx(2 / 3)
    # Per image: Dice 2·2 / (2·2 + 1) = 4/5 and 0 (the pixel missed), IoU 2/3 and 0.
    assert scores["image_dice"] == pytest.approx((0.8 + 0.0) / 2)
    assert scores["image_iou"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert not trainer.model.training


def test_per_image_scores_see_a_model_that_paints_every_empty_image() -> None:
    # Two images with one foreground pixel each, found; eight empty images painted with one
    # false pixel each. Pooled: tp 2, fp 8 → Dice 4/12 = 1/3. Per image: 1, 1 and eight 0s →
    # 0.2. The same model leaving the empty images empty scores 1.0 both ways.
    found = (torch.tensor([[[[1.0, -1.0]]]]), torch.tensor([[[1, 0]]]))
    painted = (torch.tensor([[[[1.0, -1.0]]]]), torch.tensor([[[0, 0]]]))
    left_empty = (torch.tensor([[[[-1.0, -1.0]]]]), torch.tensor([[[0, 0]]]))
    scores = make_trainer(Scale(), MeanLoss(), [], [found] * 2 + [painted] * 8).validate()[1]
    assert scores["dice"] == pytest.approx(1 / 3) and scores["image_dice"] == pytest.approx(0.2)
    scores = make_trainer(Scale(), MeanLoss(), [], [found] * 2 + [left_empty] * 8).validate()[1]
    assert scores["dice"] == 1.0 and scores["image_dice"] == 1.0 and scores["image_iou"] == 1.0


def test_perfect_and_inverted_predictions() -> None:
    masks = torch.tensor([[[0, 1, 1], [1, 0, 0]]])
    perfect = [(masks[:, None].float() * 2 - 1, masks)]
    inverted = [(1 - masks[:, None].float() * 2, masks)]
    assert make_trainer(Scale(), MeanLoss(), [], perfect).validate()[1]["dice"] == 1.0
    assert make_trainer(Scale(), MeanLoss(), [], inverted).validate()[1]["dice"] == 0.0


# ---------------------------------------------------------------- training


def test_nan_loss_is_a_drunet_error_and_no_step_is_taken() -> None:
    model = Scale()
    batch = (torch.ones(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.int64))
    trainer = make_trainer(model, NanLoss(), [batch], [batch])
    with pytest.raises(DrunetError, match="training loss became nan"):
        trainer.fit(1)
    assert model.w.item() == 1.0
    assert trainer.history == []


def test_train_step_uses_the_gradient() -> None:
    # loss = mean(x · w) with x = 2 → d loss / d w = 2; SGD lr 0.1 → w = 1 - 0.2.
    model = Scale()
    trainer = make_trainer(model, MeanLoss(), [], [])
    out = trainer.train_step((torch.full((1, 1, 2, 2), 2.0), torch.zeros(1, 2, 2).long()))
    assert out == {"loss": pytest.approx(2.0)}
    assert model.w.item() == pytest.approx(0.8)


def test_learning_rate_follows_the_schedule_every_step() -> None:
    epochs, steps, base = 3, 2, 0.05
    model = Scale()
    optimizer = LoggingSGD(model.parameters(), lr=base)
    batch = (torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2).long())
    trainer = make_trainer(
        model, MeanLoss(), [batch] * steps, [batch], optimizer, total=epochs * steps, warmup=2
    )
    history = trainer.fit(epochs)
    # By hand: warm-up 1/2, 2/2; then 0.01 + 0.495 · (1 + cos(π · k / 4)) for k = 0 … 3.
    c = math.cos(math.pi / 4)
    factors = [0.5, 1.0, 1.0, 0.01 + 0.495 * (1 + c), 0.505, 0.01 + 0.495 * (1 - c)]
    expected = [base * f for f in factors]
    assert optimizer.used_lrs == pytest.approx(expected, abs=1e-12)
    # Each record holds the rate at the start of its epoch.
    assert [r.lr for r in history] == pytest.approx([expected[0], expected[2], expected[4]])


def test_fit_on_a_tiny_model_records_every_epoch() -> None:
    torch.manual_seed(0)
    model = create_model("drunet", in_channels=1, out_channels=1, init_features=4, depth=2)
    train = _synthetic_batches(3, 2, 32, seed=1)
    val = _synthetic_batches(2, 1, 32, seed=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(TrainConfig(), 6, 0))
    reporter = RecordingReporter()
    callback = RecordingCallback()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        model,
        DiceCELoss(),
        optimizer,
        scheduler,
        train,
        val,
        TrainerOptions(2, CPU),
        reporter=reporter,
        callback=callback,
    )
    history = trainer.fit(2)
    assert [r.epoch for r in history] == [1, 2]
    assert callback.seen == history == trainer.history
    # The callback runs once the trainer holds the epoch: its history and best are up to date.
    assert callback.history_lengths == [1, 2]
    best = max(history, key=lambda r: r.scores["dice"])
    assert (trainer.best.epoch, trainer.best.score) == (best.epoch, best.scores["dice"])
    for record in history:
        assert math.isfinite(record.train_loss) and record.train_loss > 0
        assert math.isfinite(record.val_loss) and record.val_loss > 0
        assert record.seconds > 0
        assert set(record.scores) >= {"dice", "iou", "dice_0", "dice_1", "iou_0", "iou_1"}
        assert all(0.0 <= v <= 1.0 for v in record.scores.values())
        assert record.scores["dice"] == record.scores["dice_1"]
    assert history[0].lr == pytest.approx(1e-2)
    assert history[1].lr == pytest.approx(1e-2 * lr_factor(TrainConfig(), 6, 0)(3))
    assert [e for e in reporter.events if e[0] != "step"] == [
        ("start", 1, 2, 3),
        ("end", 1),
        ("start", 2, 2, 3),
        ("end", 2),
    ]
    step_losses = [e[1] for e in reporter.events if e[0] == "step"]
    assert len(step_losses) == 6
    assert history[0].train_loss == pytest.approx(sum(step_losses[:3]) / 3)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "head.weight" in changed


def test_fit_can_start_at_a_later_epoch() -> None:
    batch = (torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2).long())
    trainer = make_trainer(Scale(), MeanLoss(), [batch], [batch], total=5)
    assert [r.epoch for r in trainer.fit(5, start_epoch=4)] == [4, 5]


# ---------------------------------------------------------------- memory format


class LayoutRecorder(nn.Module):
    """A 1×1 conv that records whether each input it sees is stored NHWC; ``channels_last`` is
    its own property, as ``model.params.channels_last`` is DRUNet's and the smp family's."""

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.conv = nn.Conv2d(3, 2, 1)
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 3, H, W): NHWC and contiguous layouts differ in their strides.
        nhwc = x.is_contiguous(memory_format=torch.channels_last)
        self.seen.append(nhwc and not x.is_contiguous())
        return self.conv(x)


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_trainer_feeds_batches_in_the_models_memory_format(channels_last: bool) -> None:
    data = _synthetic_batches(2, 2, 8, seed=0)
    # A 1-channel image is both layouts at once; 3 channels tell NHWC from NCHW apart.
    data = [(images.expand(-1, 3, -1, -1).contiguous(), masks) for images, masks in data]
    model = LayoutRecorder(channels_last)
    make_trainer(model, DiceCELoss(), data, data).fit(1)
    assert len(model.seen) >= 4  # two training and two validation batches
    assert model.seen == [channels_last] * len(model.seen)
