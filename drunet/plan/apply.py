"""From an experiment config to its fingerprint and plan, and the plan back into the config.

The user's values always win: :func:`explicit_keys` lists the dotted keys the user set (in the
``--config`` file, by a flag or by ``--set``), :func:`make_plan` keeps those values, and
:func:`apply_plan` writes only the plan's own choices into the config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from drunet.atomic import atomic_write_text
from drunet.config import ExperimentConfig, config_to_dict, set_fields
from drunet.configs import find_config
from drunet.datasets import discover
from drunet.errors import DataError
from drunet.plan.cache import cached_fingerprint
from drunet.plan.fingerprint import (
    FINGERPRINT_FILE,
    MAX_IMAGES,
    MAX_SIDE,
    Fingerprint,
    save_fingerprint,
)
from drunet.plan.rules import MEMORY_GB, PLAN_KEYS, Plan, make_plan
from drunet.plan.speed import measured_speed

PLAN_FILE = "plan.json"

# Keys that fix a plan key besides the key itself and its sections: a custom augmentation list
# is the user's pipeline, which a planned preset would change; weights to start from were
# trained as one model, which the plan must not swap for another.
_ALSO_FIXED_BY = {
    "data.augmentation.preset": ("data.augmentation.ops",),
    "model.name": ("train.init_from",),
    # A clean-up written by hand turns the choice on validation off (config_postprocess.py).
    "postprocess.select": tuple(
        f"postprocess.{step}"
        for step in ("min_size", "fill_holes", "largest_component", "empty_below")
    ),
}


def explicit_keys(
    config_file: str | Path | None, flags: Mapping[str, Any], sets: Sequence[str]
) -> set[str]:
    """Dotted keys the user set: every key of the YAML ``config_file`` (a path or a bundled
    name), each flag whose value is not None and the key of each ``--set key=value``."""
    keys = {key for key, value in flags.items() if value is not None}
    keys |= {item.partition("=")[0].strip() for item in sets}
    if config_file is not None:
        data = yaml.safe_load(find_config(config_file).read_text(encoding="utf-8")) or {}
        keys |= set(_dotted(data))
    return keys


def _dotted(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        keys += _dotted(value, name + ".") if isinstance(value, Mapping) and value else [name]
    return keys


def _is_fixed(key: str, user: set[str]) -> bool:
    related = (key, *_ALSO_FIXED_BY.get(key, ()))
    return any(
        u == k or k.startswith(u + ".") or u.startswith(k + ".") for u in user for k in related
    )


def fixed_values(config: ExperimentConfig, user: set[str]) -> dict[str, Any]:
    """The config's values of the ``PLAN_KEYS`` the user set (see :func:`explicit_keys`)."""
    data = config_to_dict(config)
    fixed = {}
    for key in PLAN_KEYS:
        if _is_fixed(key, user):
            node: Any = data
            for part in key.split("."):
                node = node[part]
            fixed[key] = node
    return fixed


def fingerprint_config(
    config: ExperimentConfig, max_images: int = MAX_IMAGES, max_side: int = MAX_SIDE
) -> Fingerprint:
    """The fingerprint of the training pairs ``config`` selects: the same discovery, split,
    mask options and class count as ``drunet train`` (measured once: ``drunet.plan.cache``)."""
    data = config.data
    if data.root is None and (data.layout.images is None or data.layout.masks is None):
        raise DataError(
            "no training data: pass --data DIR (a folder with images/ and masks/), or "
            "--images DIR --masks DIR"
        )
    layout = discover(data.root, data.layout)
    masks = data.masks
    if masks.ignore_index is None and layout.ignore_index is not None:
        masks = masks.model_copy(update={"ignore_index": layout.ignore_index})
    names = masks.class_names or layout.class_names
    classes = config.model.num_classes or masks.num_classes or (len(names) if names else None)
    return cached_fingerprint(
        layout.train,
        masks,
        source=layout.source,
        split=layout.split,
        num_classes=classes,
        class_names=names,
        max_images=max_images,
        max_side=max_side,
    )


def plan_config(
    config: ExperimentConfig,
    user: set[str],
    memory_gb: float = MEMORY_GB,
    max_images: int = MAX_IMAGES,
) -> tuple[Fingerprint, Plan]:
    """Fingerprint the data of ``config`` and plan around the values the user set; a time
    budget is weighed by training speed measured on ``train.device`` (``drunet.plan.speed``)."""
    fingerprint = fingerprint_config(config, max_images=max_images)
    train = config.train
    speed = measured_speed(  # measures only when a rule asks (a budget on thin structures)
        fingerprint.channels,
        fingerprint.num_classes,
        train.device,
        train.steps_per_epoch,
        train.min_steps_per_epoch,
    )
    return fingerprint, make_plan(fingerprint, fixed_values(config, user), memory_gb, speed)


def apply_plan(config: ExperimentConfig, plan: Plan) -> ExperimentConfig:
    """``config`` with the plan's own choices set (the user's values are not in them)."""
    return set_fields(config, plan.overrides)


def save_plan(run_dir: str | Path, fingerprint: Fingerprint, plan: Plan) -> None:
    """Write ``fingerprint.json`` and ``plan.json`` (the choices and their reasons) into a run
    folder; the planned values themselves are in its ``config.yaml``."""
    run_dir = Path(run_dir)
    save_fingerprint(fingerprint, run_dir / FINGERPRINT_FILE)
    document = {**plan.to_json(), "overrides": plan.overrides}
    atomic_write_text(
        run_dir / PLAN_FILE, json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
