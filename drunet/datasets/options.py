"""Typed dataset options (pydantic v2): how masks are read, images normalised, patches drawn.

These models are meant to be embedded in the experiment configuration's ``data`` section, so
every model forbids unknown keys and every check names the bad value and the fix. They import
nothing heavy: albumentations is only imported when a custom augmentation list is checked.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drunet.datasets.stack_names import check_stack_pattern

# Default percentile window for images that are not 8-bit (16-bit, float): microscopy cameras
# store a few hot pixels and a mostly empty upper range, which would squeeze the signal.
AUTO_CLIP_PERCENTILES = (0.5, 99.5)

# albumentations transforms a custom ``ops`` list may name. Geometric ones move the mask too
# (always with nearest-neighbour interpolation); the others change image intensities only.
GEOMETRIC_OPS = (
    "HorizontalFlip",
    "VerticalFlip",
    "RandomRotate90",
    "Transpose",
    "Rotate",
    "Affine",
    "ShiftScaleRotate",
    "ElasticTransform",
    "GridDistortion",
)
INTENSITY_OPS = (
    "RandomBrightnessContrast",
    "RandomGamma",
    "GaussNoise",
    "MultiplicativeNoise",
    "GaussianBlur",
    "MotionBlur",
    "Blur",
    "Sharpen",
)
ALLOWED_OPS = GEOMETRIC_OPS + INTENSITY_OPS

# 2.5D context (``data.context_slices``): neighbours fed on each side of a slice. 8 gives 17
# slices per input, already more than a 2D network can use; beyond it a 3D network is the tool.
MAX_CONTEXT_SLICES = 8
ContextSlices = Annotated[int, Field(ge=0, le=MAX_CONTEXT_SLICES)]
"""``data.context_slices: k`` — each slice is fed with the images of its ``k`` neighbours above
and below as extra input channels, ``(2k+1)·C`` in all (see ``drunet.datasets.context``). It is a
field of ``DataConfig`` itself: it says how slices are stacked into one input, which none of
the options here (layout, masks, normalisation, augmentation) describes."""

_HEX = re.compile(r"#?([0-9a-fA-F]{6})")
_TRIPLE = re.compile(r"\(?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)?")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_colour(key: str) -> tuple[int, int, int]:
    """``"255,0,0"``, ``"(255, 0, 0)"``, ``"#ff0000"`` or ``"ff0000"`` → ``(255, 0, 0)`` (RGB)."""
    text = key.strip()
    if match := _HEX.fullmatch(text):
        value = int(match.group(1), 16)
        return (value >> 16) & 255, (value >> 8) & 255, value & 255
    if (match := _TRIPLE.fullmatch(text)) and all(int(g) <= 255 for g in match.groups()):
        red, green, blue = (int(g) for g in match.groups())
        return red, green, blue
    raise ValueError(
        f'colour {key!r} is not an RGB colour; write it as "R,G,B" with values 0-255 '
        '(e.g. "255,0,0") or as hex "#ff0000"'
    )


class MaskOptions(_Options):
    """How mask files become class indices.

    * ``class_names``: one name per class, background first; fixes the number of classes.
    * ``colour_map``: for RGB colour-coded masks, colour → class index. Keys are ``"R,G,B"`` or
      ``"#rrggbb"`` (stored as ``"R,G,B"``). Palette PNGs never need it: their indices are used.
    * ``ignore_index``: a mask value (e.g. 255) marking pixels that losses and metrics skip; it is
      kept as it is and is not a class.
    * ``binary_255``: a mask holding only 0 and 255 is a binary mask saved for viewing, 255 → 1.
      Not applied when ``ignore_index`` is 255.
    * ``max_classes``: the most classes drunet infers from mask values. Mask files are data, not
      configuration: one stray pixel of 60000 would otherwise mean 60001 classes (a 29 GB
      confusion matrix). A value at or above it is an error naming the mask; classes fixed by
      ``class_names`` or ``model.num_classes`` may exceed it.
    """

    class_names: list[str] | None = None
    colour_map: dict[str, int] | None = None
    ignore_index: int | None = Field(default=None, ge=0)
    binary_255: bool = True
    max_classes: int = Field(default=256, ge=2)

    @field_validator("class_names")
    @classmethod
    def _names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        if len(names) < 2:
            raise ValueError(
                f"class_names needs background and at least one class, got {names}; "
                "e.g. [background, membrane]"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"class_names repeats {duplicates}; every class needs its own name")
        return names

    @field_validator("colour_map")
    @classmethod
    def _colours(cls, mapping: dict[str, int] | None) -> dict[str, int] | None:
        if mapping is None:
            return None
        if not mapping:
            raise ValueError(
                "colour_map is empty; map each mask colour to a class, e.g. "
                '{"0,0,0": 0, "255,0,0": 1}'
            )
        canonical: dict[str, int] = {}
        for key, index in mapping.items():
            colour = ",".join(str(c) for c in parse_colour(key))
            if index < 0:
                raise ValueError(f"colour_map[{key!r}] is {index}; class indices start at 0")
            if colour in canonical:
                raise ValueError(f"colour_map names colour {colour} twice (as {key!r}); keep one")
            canonical[colour] = index
        return canonical

    @model_validator(mode="after")
    def _consistent(self) -> MaskOptions:
        names, ignore = self.class_names, self.ignore_index
        if names is not None and ignore is not None and ignore < len(names):
            raise ValueError(
                f"ignore_index {ignore} is also class {names[ignore]!r}; pick a value of at "
                f"least {len(names)} (255 is usual)"
            )
        if names is not None and self.colour_map:
            bad = {c: k for c, k in self.colour_map.items() if k >= len(names) and k != ignore}
            if bad:
                raise ValueError(
                    f"colour_map maps {bad} to classes beyond the {len(names)} class_names; "
                    "add names or fix the indices"
                )
        return self

    @property
    def num_classes(self) -> int | None:
        """The number of classes fixed by ``class_names`` (None: inferred from the masks)."""
        return len(self.class_names) if self.class_names is not None else None

    def colour_table(self) -> dict[tuple[int, int, int], int]:
        """``colour_map`` as ``{(R, G, B): class}``; empty when there is no map."""
        return {parse_colour(key): index for key, index in (self.colour_map or {}).items()}


class NormalizationOptions(_Options):
    """How raw pixels become network input; filled once from the training images, then stored.

    Pixels are first brought to ``[0, 1]`` units: uint8 / 255, uint16 / 65535; signed integer
    and float pixels keep their values. Then, per channel, one of:

    * ``window`` ``[low, high]`` in the file's own pixel values (e.g. ``[-1000, 400]``
      Hounsfield units for CT lungs): clip to the window and stretch it to ``[0, 1]``;
    * clipping to ``[clip_low, clip_high]`` (``[0, 1]`` units, measured from
      ``clip_percentiles``), stretched to ``[0, 1]``.

    Then ``mode``: ``"dataset"`` subtracts ``mean`` and divides by ``std`` (per channel,
    measured after clipping), ``"zscore"`` does so with each image's own mean and std (as
    nnU-Net does for MRI), ``"imagenet"`` uses the ImageNet statistics (for pretrained
    encoders), ``"none"`` stops there.

    ``clip_percentiles``: ``"auto"`` clips 16-bit, signed and float data to
    ``AUTO_CLIP_PERCENTILES`` (0.5 %, 99.5 %) and leaves 8-bit data (and windowed data) alone;
    a pair clips any data; ``None`` never clips. ``compute_normalization`` replaces ``"auto"``
    by what it decided, so a stored copy is exact. Every stored number must be finite (NaN or
    infinity is an error naming the key).
    """

    # A NaN mean or std would turn every input into NaN; pydantic accepts them unless told not to.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Literal["dataset", "zscore", "imagenet", "none"] = "dataset"
    window: tuple[float, float] | None = None
    clip_percentiles: tuple[float, float] | Literal["auto"] | None = "auto"
    mean: list[float] | None = None
    std: list[float] | None = None
    clip_low: list[float] | None = None
    clip_high: list[float] | None = None

    @field_validator("clip_percentiles")
    @classmethod
    def _percentiles(cls, value: Any) -> Any:
        if isinstance(value, tuple) and not 0.0 <= value[0] < value[1] <= 100.0:
            raise ValueError(
                f"clip_percentiles must be (low, high) with 0 <= low < high <= 100, got {value}; "
                "e.g. (0.5, 99.5)"
            )
        return value

    @model_validator(mode="after")
    def _pairs(self) -> NormalizationOptions:
        for first, second in (("mean", "std"), ("clip_low", "clip_high")):
            a, b = getattr(self, first), getattr(self, second)
            if (a is None) != (b is None) or (a is not None and (len(a) != len(b) or not a)):
                raise ValueError(
                    f"{first} and {second} need one value per channel each, got {a} and {b}"
                )
        if self.window is not None:
            low, high = self.window
            if not low < high:
                raise ValueError(
                    f"window must be [low, high] with low < high, got {list(self.window)}; e.g. "
                    "[-1000, 400] for CT lungs"
                )
            if isinstance(self.clip_percentiles, tuple) or self.clip_low is not None:
                raise ValueError(
                    "window and percentile clipping both set; a fixed window replaces "
                    "clipping — remove clip_percentiles / clip_low / clip_high"
                )
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std values must be positive, got {self.std}")
        if self.clip_low is not None and any(
            h <= lo for lo, h in zip(self.clip_low, self.clip_high or [], strict=True)
        ):
            raise ValueError(
                f"clip_high must exceed clip_low per channel, got {self.clip_low} and "
                f"{self.clip_high}"
            )
        return self

    @property
    def channels(self) -> int | None:
        """Channels the stored statistics were computed for (None: not computed yet)."""
        values = self.mean if self.mean is not None else self.clip_low
        return len(values) if values is not None else None


class AugmentationOptions(_Options):
    """Training patches and their augmentation; validation always sees whole images.

    ``preset`` is ``"none"`` (patches only), ``"light"`` (flips, 90° rotations, mild
    brightness/contrast) or ``"strong"`` (light + affine, elastic, gamma, noise, blur). ``ops``
    is an explicit list, e.g. ``[{"name": "HorizontalFlip", "p": 0.5}, {"name": "Affine",
    "rotate": [-15, 15], "p": 0.3}]``; names come from ``ALLOWED_OPS`` and the other keys are
    that albumentations transform's arguments. ``ops`` alone gives full control; with a preset
    too, the ops run after the preset's steps. Neither set means ``"light"``.
    ``foreground_share`` of the patches is centred on a random foreground pixel (the rest are
    placed uniformly at random).
    """

    preset: Literal["none", "light", "strong"] | None = None
    ops: list[dict[str, Any]] | None = None
    patch_size: int = Field(default=256, ge=8)
    foreground_share: float = Field(default=0.33, ge=0.0, le=1.0)

    @field_validator("ops")
    @classmethod
    def _ops(cls, ops: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if ops is None:
            return None
        for i, op in enumerate(ops):
            check_op(op, f"ops[{i}]")
        return ops

    @property
    def effective_preset(self) -> str:
        """The preset whose steps run first: ``preset``, else "none" with ops, else "light"."""
        if self.preset is not None:
            return self.preset
        return "none" if self.ops is not None else "light"


def check_op(op: dict[str, Any], where: str = "op") -> None:
    """Check one ``{"name": …, **arguments}`` step: known name, real arguments, ``p`` in [0, 1]."""
    if not isinstance(op, dict) or "name" not in op:
        raise ValueError(f"{where} must be a mapping with a 'name', got {op!r}")
    name = op["name"]
    if name not in ALLOWED_OPS:
        raise ValueError(
            f"{where}: unknown augmentation {name!r}; allowed: {', '.join(ALLOWED_OPS)}"
        )
    p = op.get("p", 1.0)  # absent: the transform's own default
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where} ({name}): p must be a probability in [0, 1], got {p!r}")
    import albumentations as A  # slow to import: only when a custom list is checked

    accepted = set(inspect.signature(getattr(A, name).__init__).parameters) - {"self"}
    unknown = sorted(set(op) - accepted - {"name"})
    if unknown:
        raise ValueError(
            f"{where} ({name}): unknown argument(s) {unknown}; {name} takes "
            f"{', '.join(sorted(accepted))}"
        )


class LayoutOptions(_Options):
    """Where the pairs are and how they are split into training and validation.

    ``images`` / ``masks`` name the two folders explicitly (otherwise the layout under the data
    root is discovered). ``split_file`` is JSON: ``{"train": [names], "val": [names]}`` or an
    nnU-Net ``splits_final.json`` list of such folds (pick one with ``fold``). Without a split
    file, ``fold`` selects fold ``fold`` of ``folds`` seeded folds (k-fold cross-validation), and
    without ``fold`` a seeded ``val_fraction`` of the pairs is held out. Folders ``train/`` and
    ``val/`` under the root fix the split themselves. Relative paths are relative to the data
    root when there is one.

    ``stack`` is a pattern such as ``"{name}_z{index}"`` for folders holding several stacks as
    numbered 2D files (``cellA_z0.png`` …, ``cellB_z0.png`` …; see
    ``drunet.datasets.stack_names``): each pair is slice ``{index}`` of stack ``{name}``,
    splits keep a stack's slices on one side and 2.5D context takes neighbours from the same
    stack in index order. Every file must match it.
    """

    images: Path | None = None
    masks: Path | None = None
    split_file: Path | None = None
    folds: int = Field(default=5, ge=2)
    fold: int | None = Field(default=None, ge=0)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    stack: str | None = None

    @field_validator("stack")
    @classmethod
    def _stack(cls, pattern: str | None) -> str | None:
        return None if pattern is None else check_stack_pattern(pattern)

    @model_validator(mode="after")
    def _consistent(self) -> LayoutOptions:
        if (self.images is None) != (self.masks is None):
            raise ValueError(
                f"give both images and masks folders or neither (got images={self.images}, "
                f"masks={self.masks})"
            )
        if self.fold is not None and self.split_file is None and self.fold >= self.folds:
            raise ValueError(
                f"fold {self.fold} does not exist with folds={self.folds}; folds are numbered "
                f"0 to {self.folds - 1}"
            )
        return self
