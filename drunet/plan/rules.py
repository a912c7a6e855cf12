"""The plan: a training recipe chosen from the fingerprint by the rules below, one reason each.

Every choice is a config key and a value. A value the user set (a flag, ``--set``, ``--config``)
is kept as the user's and the rules around it use it (a user's model sets the patch multiple, a
user's patch the batch); the plan only adds ``overrides`` below the user's values. A choice the
rules leave at the default is listed with its reason but overrides nothing.

Rules (thresholds are constants of this module; ``benchmarks/plan_vs_default.sh`` measures the
recipe against the default, its table is in the README):

* **model** — ``drunet_s`` (full resolution) when the thinnest foreground class has a median
  structure width ≤ ``THIN_WIDTH`` px, i.e. ≤ 4 px at the half resolution ``drunet_s2`` works at
  (membranes, vessels, cracks; ISBI 2012's membranes measure 6.0 px, DSB 2018's nuclei 14.1 px
  on their seeded 80 % training splits; the README measured the half-resolution ``drunet_s2``
  worse on ISBI's membrane topology, adapted Rand error 0.137 against 0.107–0.124) — unless a
  time budget buys ``drunet_s`` fewer than ``MIN_EPOCHS`` epochs on this machine
  (:mod:`drunet.plan.speed` times a training step of each on the training device: on one CPU
  core ``drunet_s`` runs an epoch about 3× slower, and at a 10-minute budget it reached 21
  epochs on ISBI and scored below ``drunet_s2``'s 51 epochs, Dice and adapted Rand error
  alike — benchmarks/plan_vs_default.sh); otherwise ``drunet_s2``, the default.
* **patch size** — whole images when they are small: the median long side rounded up to the
  model's multiple (``2**depth`` × stem stride: 16 for ``drunet_s``, 32 for ``drunet_s2``), so a
  101² image trains as a 112² (or 128²) patch, never padded to 256²; else the default 256.
* **batch size** — the default's 4 whatever the patch, at least 2 (batch norm), at most the
  number of training pairs (a batch of repeats of a few images adds no information), and never
  more than ``memory_gb`` holds at the model's measured training memory per pixel
  (``BYTES_PER_PIXEL`` × ``AUTOGRAD_PEAK``). Measured: a step's time grows with its pixels (on a
  CPU), so smaller whole-image patches buy more optimiser steps in a budget. On the mostly-empty
  101² set (3 minutes, two seeds) batch 4 at 128² trained 51 epochs to held-out Dice
  0.954 / 0.965, where the earlier rule — the default's pixels per step (16 at 128²), raised
  until ≤ 5 % of batches are all empty masks — trained 17 to 0.908 / 0.910 and lost to the
  padded default (0.919 / 0.921); the empty batches it avoided did no harm. On a GPU a larger
  batch of small patches may cost no time: set ``data.batch_size``.
* **foreground oversampling** — the share of patches centred on foreground: 0.66 when the
  rarest foreground class is under 1 % of the pixels, 0.5 under 5 %, else the default 0.33;
  without effect (left at the default) when patches are whole images.
* **empty masks** — the loss stays Dice + CE: the batch-pooled Dice has no term for a batch
  without foreground, while CE penalises false positives on every empty image.
* **augmentation** — ``strong`` for fewer than ``FEW_IMAGES`` training pairs of wide
  structures; ``light`` (the default) otherwise: affine and elastic warps move thin structures
  by about their width, and nearest-neighbour masks break them.
* **post-processing** — chosen after training on the validation split
  (``drunet.plan.postprocess``: each clean-up kept only when it raises the per-image score;
  emptying small predictions is tried when validation masks are empty); the plan says so and
  names the training objects' areas and empty share it will meet.
* **time budget** — the user's ``--minutes``; the plan sets none (``train.epochs`` bounds
  training). With a budget and no epochs of the user's, epochs are raised to ``BUDGET_EPOCHS``
  so that the budget decides when to stop (as ``drunet compare --budget-minutes`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from drunet.models.presets import PRESETS, resolve_preset
from drunet.plan.fingerprint import Fingerprint
from drunet.plan.speed import Speed

THIN_WIDTH = 8.0  # px: median ridge width at or below which structures count as thin
MIN_EPOCHS = 50  # epochs a budget must buy the full-resolution model (drunet_s2 plateaus by ~50)
DEFAULT_MODEL = "drunet_s2"
THIN_MODEL = "drunet_s"
DEFAULT_PATCH = 256
DEFAULT_BATCH = 4
RARE_FOREGROUND = ((0.01, 0.66), (0.05, 0.5))  # (rarest class share below, foreground share)
DEFAULT_FOREGROUND_SHARE = 0.33
FEW_IMAGES = 50
MEMORY_GB = 2.0
BUDGET_EPOCHS = 100_000  # epochs when a time budget decides when training stops
DEFAULT_EPOCHS = 20
# Bytes of activations kept for the backward pass per input pixel, batch 1, float32, measured
# with torch.autograd.graph.saved_tensors_hooks at 64² and 128² (weights excluded); tests/plan
# re-measures them. AUTOGRAD_PEAK covers the temporaries of the backward pass.
BYTES_PER_PIXEL = {"drunet_s": 2040, "drunet_s2": 712}
UNKNOWN_BYTES_PER_PIXEL = 4096  # other models: a conservative guess
AUTOGRAD_PEAK = 1.5

PLAN_KEYS = (
    "model.name",
    "data.augmentation.patch_size",
    "data.batch_size",
    "data.augmentation.foreground_share",
    "loss",
    "data.augmentation.preset",
    "train.max_minutes",
    "train.epochs",
    "postprocess.select",
)


class Choice(BaseModel):
    """One planned setting: ``key`` (a dotted config key), ``value`` and why.

    ``source`` is ``"plan"`` (the rules chose a value other than the default: an override),
    ``"default"`` (the rules keep the default: no override) or ``"user"`` (set by the user).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    value: Any
    reason: str
    source: Literal["plan", "default", "user"]


class Plan(BaseModel):
    """The choices, in the order of ``PLAN_KEYS``."""

    model_config = ConfigDict(frozen=True)

    choices: list[Choice]

    @property
    def overrides(self) -> dict[str, Any]:
        """Dotted config keys → values for the choices the rules made (not the user's)."""
        return {c.key: c.value for c in self.choices if c.source == "plan"}

    def choice(self, key: str) -> Choice:
        return next(c for c in self.choices if c.key == key)

    def to_json(self) -> dict[str, Any]:
        return {"choices": [c.model_dump(mode="json") for c in self.choices]}


def make_plan(
    fingerprint: Fingerprint,
    fixed: dict[str, Any] | None = None,
    memory_gb: float = MEMORY_GB,
    speed: Speed | None = None,
) -> Plan:
    """Apply the rules (module docstring) to ``fingerprint``; ``fixed`` holds the values the
    user set for any of ``PLAN_KEYS`` (kept, and used by the later rules). ``speed`` measures
    what a time budget buys (:mod:`drunet.plan.speed`); without it a budget does not change
    the model."""
    fixed = fixed or {}
    choices: list[Choice] = []

    def decide(key: str, rule: tuple[Any, str, bool]) -> Any:
        if key in fixed:
            choices.append(Choice(key=key, value=fixed[key], reason="set by you", source="user"))
            return fixed[key]
        value, reason, changed = rule
        choices.append(Choice(key=key, value=value, reason=reason, source=_source(changed)))
        return value

    minutes = fixed.get("train.max_minutes")

    def thin_epochs(minutes: float) -> tuple[float, float] | None:  # (drunet_s, drunet_s2)
        if speed is None:
            return None
        result = []
        for name in (THIN_MODEL, DEFAULT_MODEL):
            patch = fixed.get("data.augmentation.patch_size", _patch(fingerprint, name)[0])
            batch = fixed.get("data.batch_size", _batch(fingerprint, name, patch, memory_gb)[0])
            result.append(speed.epochs(name, minutes, patch, batch, fingerprint.pairs))
        return result[0], result[1]

    model = decide("model.name", _model(fingerprint, minutes, thin_epochs))
    patch = decide("data.augmentation.patch_size", _patch(fingerprint, model))
    decide("data.batch_size", _batch(fingerprint, model, patch, memory_gb))
    decide("data.augmentation.foreground_share", _foreground(fingerprint, patch))
    decide("loss", _empty_masks(fingerprint))
    decide("data.augmentation.preset", _augmentation(fingerprint))
    decide("train.max_minutes", (None, "not set: train.epochs bounds training; --minutes N", False))
    decide("train.epochs", _epochs(minutes))
    decide("postprocess.select", _postprocessing(fingerprint))
    return Plan(choices=choices)


def _source(changed: bool) -> Literal["plan", "default"]:
    return "plan" if changed else "default"


def model_multiple(name: str) -> int:
    """The side every input must be a multiple of for model ``name`` (32 when unknown)."""
    preset = PRESETS.get(resolve_preset(name))
    if preset is None:
        return 32
    return int(2 ** preset.get("depth", 4) * preset.get("stem_stride", 1))


def _model(
    fp: Fingerprint,
    minutes: float | None,
    thin_epochs: Callable[[float], tuple[float, float] | None],
) -> tuple[str, str, bool]:
    width = fp.thinnest_width
    if width is None:
        return DEFAULT_MODEL, "no foreground in the sampled masks: the default", False
    measured = f"thinnest foreground structures {width:.1f} px wide (median)"
    if width > THIN_WIDTH:
        return DEFAULT_MODEL, f"{measured} > {THIN_WIDTH:g} px: half resolution suffices", False
    reason = f"{measured} ≤ {THIN_WIDTH:g} px: full resolution keeps them"
    epochs = thin_epochs(minutes) if minutes is not None else None
    if epochs is None:
        return THIN_MODEL, reason, True
    full, half = epochs
    bought = f"the {minutes:g}-minute budget buys ≈{full:.0f} epochs of {THIN_MODEL}"
    if full < MIN_EPOCHS:
        return (
            DEFAULT_MODEL,
            f"{measured}, but {bought} (< {MIN_EPOCHS}, measured here): {DEFAULT_MODEL} "
            f"trains ≈{half:.0f}",
            False,
        )
    return THIN_MODEL, f"{reason}; {bought} (≥ {MIN_EPOCHS}, measured here)", True


def _patch(fp: Fingerprint, model: str) -> tuple[int, str, bool]:
    long_side, multiple = fp.sizes.long_side_median, model_multiple(model)
    if long_side > DEFAULT_PATCH:
        return DEFAULT_PATCH, f"images are larger (median long side {long_side} px)", False
    patch = -(-long_side // multiple) * multiple
    reason = (
        f"whole images: median long side {long_side} px, rounded up to a multiple of "
        f"{multiple} ({model})"
    )
    return patch, reason, patch != DEFAULT_PATCH


def _batch(fp: Fingerprint, model: str, patch: int, memory_gb: float) -> tuple[int, str, bool]:
    batch = DEFAULT_BATCH
    parts = [f"{DEFAULT_BATCH} whatever the patch (smaller patches buy more steps in a budget)"]
    if fp.pairs < batch:
        batch = max(fp.pairs, 2)
        parts.append(f"{batch}: at most the training pairs, at least 2")
    per_sample = BYTES_PER_PIXEL.get(resolve_preset(model), UNKNOWN_BYTES_PER_PIXEL)
    fits = int(memory_gb * 2**30 // (per_sample * AUTOGRAD_PEAK * patch**2))
    if fits < batch:
        batch = max(fits, 1)
        parts.append(f"{batch} fit in {memory_gb:g} GB at {patch}²")
    return batch, "; ".join(parts), batch != DEFAULT_BATCH


def _foreground(fp: Fingerprint, patch: int) -> tuple[float, str, bool]:
    rarest = fp.rarest_frequency
    if fp.sizes.max[0] <= patch and fp.sizes.max[1] <= patch:
        return DEFAULT_FOREGROUND_SHARE, "patches are whole images: nothing to centre", False
    if rarest is None:
        return DEFAULT_FOREGROUND_SHARE, "no foreground in the sampled masks: the default", False
    for below, share in RARE_FOREGROUND:
        if rarest < below:
            return share, f"rarest foreground class {rarest:.2%} of pixels (< {below:.0%})", True
    reason = f"rarest foreground class {rarest:.1%} of pixels: the default suffices"
    return DEFAULT_FOREGROUND_SHARE, reason, False


def _empty_masks(fp: Fingerprint) -> tuple[None, str, bool]:
    empty = fp.empty_mask_fraction
    if empty == 0:
        return None, "no mask is empty", False
    return (
        None,
        f"{empty:.0%} of masks are empty: CE penalises false positives on "
        "each of them (batch-pooled Dice only when the batch holds foreground)",
        False,
    )


def _augmentation(fp: Fingerprint) -> tuple[str, str, bool]:
    width = fp.thinnest_width
    if width is not None and width <= THIN_WIDTH:
        return "light", f"structures ≤ {THIN_WIDTH:g} px: warps would break them", False
    if fp.pairs < FEW_IMAGES:
        return "strong", f"{fp.pairs} training pairs (< {FEW_IMAGES}) of wide structures", True
    return "light", f"{fp.pairs} training pairs: the default", False


def _postprocessing(fp: Fingerprint) -> tuple[bool, str, bool]:
    areas = [c for c in fp.foreground if c.object_area_p05 is not None]
    sizes = "".join(
        f"; {c.name}'s objects {c.object_area_p05:.4g} … {c.object_area_p95:.4g} px (5–95 %)"
        for c in areas
    )
    empty = fp.empty_mask_fraction
    emptying = (
        f"; {empty:.0%} of masks are empty: emptying a prediction of few pixels is tried too"
        if empty > 0
        else ""
    )
    reason = (
        "after training, each clean-up (objects below the validation objects' small-area "
        "quantiles removed, holes filled, the largest object kept) is kept only if it raises the "
        f"per-image validation Dice{emptying}{sizes}"
    )
    return True, reason, False


def _epochs(minutes: float | None) -> tuple[int, str, bool]:
    if minutes is None:
        return DEFAULT_EPOCHS, "no time budget: the default", False
    return BUDGET_EPOCHS, f"the {minutes:g}-minute budget decides when to stop", True
