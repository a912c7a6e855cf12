"""A rich progress bar for training epochs, plugged into the trainer as its reporter."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from drunet.engine.distributed import launch_context
from drunet.engine.epochs import EpochRecord
from drunet.engine.trainer import SilentReporter


class LineReporter(SilentReporter):
    """Quiet mode: no bars, one line per epoch — readable in CI logs."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def end_epoch(self, record: EpochRecord) -> None:
        self.console.print(epoch_line(record), highlight=False, soft_wrap=True)


def epoch_line(record: EpochRecord) -> str:
    """The epoch's losses, pooled validation Dice and IoU with the per-image Dice beside them
    (a model that paints every empty image scores well pooled, badly per image), LR, time."""
    scores = record.scores
    per_image = f" (per image {scores['image_dice']:.4f})" if "image_dice" in scores else ""
    return (
        f"epoch {record.epoch:3d}  loss {record.train_loss:.4f}  val loss "
        f"{record.val_loss:.4f}  val Dice {scores['dice']:.4f}{per_image}  IoU "
        f"{scores['iou']:.4f}  lr {record.lr:.2e}  {record.seconds:.1f}s"
    )


def is_main_process() -> bool:
    """Whether this is rank 0 (a malformed launcher variable is a ``DrunetError`` naming it)."""
    return launch_context().is_main


def make_reporter(
    console: Console, quiet: bool = False
) -> RichReporter | LineReporter | SilentReporter:
    """Progress bars on a terminal; plain lines when quiet or when output is not a terminal;
    nothing on DDP ranks other than 0 (rank 0 reports for the job)."""
    if not is_main_process():
        return SilentReporter()
    if quiet or not console.is_terminal:
        return LineReporter(console)
    return RichReporter(console)


class RichReporter:
    """One bar per epoch (steps, running loss, ETA) and one summary line after it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.total_loss = 0.0
        self.steps = 0

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.total_loss, self.steps = 0.0, 0
        self.task = self.progress.add_task(
            "train", total=steps, epoch=f"{epoch}/{epochs}", loss=0.0
        )

    def step(self, loss: float) -> None:
        self.total_loss += loss
        self.steps += 1
        assert self.task is not None
        self.progress.update(self.task, advance=1, loss=self.total_loss / self.steps)

    def end_epoch(self, record: EpochRecord) -> None:
        self.console.print(epoch_line(record), highlight=False, soft_wrap=True)
