"""The ``train`` section of the experiment configuration (:mod:`drunet.config`): the optimiser,
the schedule, precision switches and the training loop, with the one rule of how many batches
an epoch runs (the trainer's sampler and the plan's time budget both ask it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    """Optimisation, precision switches and the training loop."""

    # As every section: unknown keys, NaN and infinity are errors.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _older_precision_keys(cls, data: Any) -> Any:
        # Runs saved before train.precision stored amp / cpu_bf16; read them as what they meant.
        if isinstance(data, dict) and ("amp" in data or "cpu_bf16" in data):
            data = dict(data)
            amp, cpu_bf16 = data.pop("amp", True), data.pop("cpu_bf16", False)
            if "precision" not in data:
                data["precision"] = "bf16" if cpu_bf16 is True else "auto" if amp else "fp32"
        return data

    epochs: int = Field(default=20, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    momentum: float = Field(default=0.99, ge=0, lt=1)  # SGD (Nesterov) only
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    warmup_epochs: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)  # cosine floor, as a share of lr
    poly_power: float = Field(default=0.9, gt=0)
    grad_clip: float | None = Field(default=None, gt=0)  # max global gradient norm
    accumulate: int = Field(default=1, ge=1)  # batches per optimiser step
    steps_per_epoch: int | None = Field(default=None, ge=1)  # None: one pass over the images,
    # but at least min_steps_per_epoch batches, so an epoch of a small dataset (ISBI: 25 slices,
    # 6 batches) is enough training to be worth a validation.
    min_steps_per_epoch: int = Field(default=25, ge=1)
    seed: int = 0
    deterministic: bool = False  # deterministic kernels (slower on GPU)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")
    # auto: mixed precision on CUDA (bf16 on GPUs that run it natively, else fp16 + GradScaler),
    # float32 elsewhere; fp32 / fp16 / bf16 force one (see drunet.device.select_precision).
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    compile: bool = False  # torch.compile the model
    sync_bn: bool = False  # SyncBatchNorm across DDP ranks (small per-GPU batches)
    monitor: Literal["dice", "iou", "image_dice", "image_iou"] = "dice"  # image_*: mean per image
    early_stopping: int | None = Field(default=None, ge=1)  # epochs without improvement
    # Wall-clock budget: the LR decays over it, training stops when it is spent (epochs: a bound)
    max_minutes: float | None = Field(default=None, gt=0)
    tensorboard: bool = True  # event files in <run>/tensorboard/ (with the tensorboard package)
    # Fine-tuning: start from these weights (a run folder, save_pretrained folder or
    # .safetensors; read once when the run starts, recorded here). See drunet.weights.init_from.
    init_from: str | None = None
    # smp encoders: a local .safetensors / .pt state dict, or a pretrained name found in the local
    # Hugging Face cache (never downloaded); adapted to the input channels. Read once at start.
    encoder_weights: str | None = None
    freeze_encoder_epochs: int = Field(default=0, ge=0)  # encoder frozen for the first N epochs
    encoder_lr_scale: float = Field(default=1.0, gt=0, le=10)  # encoder LR = lr × this

    def epoch_draws(self, images: int, batch_size: int, world_size: int = 1) -> int | None:
        """Batches per epoch (per rank) when an epoch draws images with replacement:
        ``steps_per_epoch`` when set, else ``min_steps_per_epoch`` when one pass over ``images``
        makes fewer full batches of ``batch_size`` × ``world_size``; ``None``: one shuffled pass
        (see :meth:`epoch_batches`). The trainer's sampler and the plan's budget both use it."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        if images // (batch_size * world_size) < self.min_steps_per_epoch:
            return self.min_steps_per_epoch  # a small dataset: the pass is repeated
        return None

    def epoch_batches(self, images: int, batch_size: int, world_size: int = 1) -> int:
        """Batches in one epoch (per rank): :meth:`epoch_draws`, or the full batches of one
        pass (a last partial batch is dropped)."""
        draws = self.epoch_draws(images, batch_size, world_size)
        return draws if draws is not None else images // (batch_size * world_size)
