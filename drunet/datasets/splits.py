"""Training/validation splits: seeded hold-out, seeded k folds, or a JSON split file.

Split files name cases by ``Pair.case`` (the mask's file stem, or the stack's name under
``data.layout.stack``; shared by all slices of a stack)
and are either ``{"train": [names], "val": [names], "test": [names]?}`` or, as nnU-Net's
``splits_final.json``, a list of such ``{"train", "val"}`` folds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from drunet.atomic import atomic_write_text
from drunet.datasets.folder import Pair
from drunet.datasets.listing import join_limited
from drunet.datasets.options import LayoutOptions
from drunet.errors import DataError

log = logging.getLogger(__name__)


def holdout_split(
    pairs: Sequence[Pair], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """Shuffle with ``seed`` and split into ``(train, val)``; same pairs + seed → same split.

    The unit is the case (``Pair.case``): the slices of one stack stay on one side, unless the
    dataset is a single stack, whose slices are split one by one. The split depends only on the
    set of pairs, not their order. With two or more cases both parts get at least one; a single
    pair is used for both (with a warning), so a one-image experiment still runs but its
    validation score is a training score.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if not pairs:
        raise ValueError("holdout_split got no pairs")
    ordered = _cases(pairs, lambda p: (p.image.stem, str(p.image), str(p.mask), p.page or 0))
    if len(ordered) == 1:
        log.warning(
            "only one image (%s): it is used for both training and validation, so validation "
            "scores measure fit, not generalisation",
            ordered[0][0].image,
        )
        return list(ordered[0]), list(ordered[0])
    n_val = min(max(round(len(ordered) * val_fraction), 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    return _flat(ordered, train_idx), _flat(ordered, val_idx)


def kfold_split(
    pairs: Sequence[Pair], folds: int = 5, fold: int = 0, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """``(train, val)`` of fold ``fold``: the cases are shuffled by ``seed`` and cut in ``folds``.

    The validation parts of folds ``0 … folds - 1`` are disjoint and cover every pair; sizes
    (in cases) differ by at most one. As in ``holdout_split`` the slices of a stack stay
    together unless the dataset is a single stack, and the result depends on the set of
    pairs, not their order.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must lie in 0 … {folds - 1} for {folds} folds, got {fold}")
    ordered = _cases(pairs, lambda p: (p.name, str(p.image), str(p.mask), p.page or 0))
    if len(ordered) < folds:
        raise DataError(
            f"{folds}-fold cross-validation needs at least {folds} cases, got {len(ordered)}; "
            "lower folds or add images"
        )
    order = np.random.default_rng(seed).permutation(len(ordered))
    parts = np.array_split(order, folds)
    val = set(parts[fold].tolist())
    train_idx = sorted(set(range(len(ordered))) - val)
    return _flat(ordered, train_idx), _flat(ordered, sorted(val))


def _cases(pairs: Sequence[Pair], key: Callable[[Pair], tuple]) -> list[list[Pair]]:
    """The pairs grouped by case (the slices of a stack together), groups sorted by ``key`` of
    their first pair; a dataset of one stack gives one group per slice."""
    groups: dict[str, list[Pair]] = {}
    for pair in sorted(pairs, key=key):
        groups.setdefault(pair.case, []).append(pair)
    if len(groups) == 1 and len(pairs) > 1:
        return [[pair] for pair in sorted(pairs, key=key)]
    ordered = sorted(groups.values(), key=lambda group: key(group[0]))
    return [sorted(group, key=_slice_number) for group in ordered]  # stable: z2 before z10


def _slice_number(pair: Pair) -> int:
    return pair.numbered.index if pair.numbered is not None else 0


def _flat(groups: list[list[Pair]], indices: Sequence[int]) -> list[Pair]:
    return [pair for i in indices for pair in groups[i]]


def write_split_file(
    path: str | Path,
    train: Sequence[Pair],
    val: Sequence[Pair],
    test: Sequence[Pair] = (),
) -> None:
    """Write ``{"train": [cases], "val": [cases], "test": [cases]}`` as JSON, atomically."""
    data = {"train": _names(train), "val": _names(val)}
    if test:
        data["test"] = _names(test)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _names(pairs: Sequence[Pair]) -> list[str]:
    """Case names, once each, in order (a stack's slices share one)."""
    return list(dict.fromkeys(p.case for p in pairs))


MAX_SPLIT_FILE_BYTES = 32 * 2**20  # a million case names of 30 characters fit


def read_split_file(path: str | Path, fold: int | None = None) -> dict[str, list[str]]:
    """The ``{"train", "val", "test"?}`` name lists of a split file (``fold`` picks from a list)."""
    path = Path(path)
    try:
        data = json.loads(_read_bounded(path))
    except OSError as err:
        raise DataError(f"cannot read split file {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise DataError(
            f"cannot read split file {path}: it is not UTF-8 text (another encoding, e.g. "
            "UTF-16 or Latin-1); save it as UTF-8"
        ) from None
    except RecursionError:
        raise DataError(
            f"split file {path} is nested too deeply to parse; it maps train/val to lists of "
            "case names"
        ) from None
    except ValueError as err:  # JSONDecodeError, or an integer of thousands of digits
        raise DataError(f"split file {path} is not valid JSON: {err}") from None
    if isinstance(data, list):
        if fold is None:
            raise DataError(
                f"split file {path} holds {len(data)} folds; choose one with fold (0 … "
                f"{len(data) - 1})"
            )
        if not 0 <= fold < len(data):
            raise DataError(
                f"split file {path} holds {len(data)} folds, so fold {fold} does not exist; use "
                f"0 … {len(data) - 1}"
            )
        data = data[fold]
    elif fold is not None:
        raise DataError(
            f"split file {path} holds a single split, so fold {fold} cannot be chosen; remove "
            "fold or use a list of folds"
        )
    keys = {"train", "val", "test"}
    if not isinstance(data, dict) or not {"train", "val"} <= data.keys() or data.keys() - keys:
        raise DataError(
            f'split file {path} must map "train" and "val" (and optionally "test") to lists of '
            f"case names, got {sorted(data) if isinstance(data, dict) else type(data).__name__}"
        )
    for key, names in data.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f'split file {path}: "{key}" must be a list of case names')
    return data


def _read_bounded(path: Path) -> str:
    """The text of a split file: a regular file (not a folder, pipe or device) of at most
    ``MAX_SPLIT_FILE_BYTES``, decoded as UTF-8."""
    if path.exists() and not path.is_file():  # a missing file: open() names it below
        what = "a folder" if path.is_dir() else "not a regular file"
        raise DataError(f"split file {path} is {what}; give a JSON file of case names")
    size = path.stat().st_size
    if size > MAX_SPLIT_FILE_BYTES:
        raise DataError(
            f"split file {path} has {size:,} bytes, more than the {MAX_SPLIT_FILE_BYTES:,} a "
            "list of case names needs; check that --split-file names the right file"
        )
    with path.open("rb") as file:  # read at most the bound: the file may grow meanwhile
        return file.read(MAX_SPLIT_FILE_BYTES + 1).decode("utf-8")


def apply_split_file(
    pairs: Sequence[Pair], path: str | Path, fold: int | None = None
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """``(train, val, test)`` from a split file; every name must match a pair."""
    path = Path(path)
    names = read_split_file(path, fold)
    by_name: dict[str, list[Pair]] = {}
    for pair in pairs:  # the slices of a stack share its case name
        by_name.setdefault(pair.case, []).append(pair)
    unknown = [n for part in names.values() for n in part if n not in by_name]
    if unknown:
        raise DataError(
            f"split file {path} names {len(unknown)} case(s) not in the dataset: "
            f"{join_limited(unknown)}; the names are mask file stems (e.g. {next(iter(by_name))!r})"
        )
    seen: dict[str, str] = {}
    for part, part_names in names.items():
        for name in part_names:
            if name in seen and seen[name] != part:
                raise DataError(
                    f"split file {path} puts {name!r} in both {seen[name]} and {part}; a case "
                    "belongs to one part"
                )
            seen[name] = part
    left_out = sorted(by_name.keys() - seen.keys())
    if left_out:
        log.warning(
            "split file %s leaves out %d case(s), which are not used: %s",
            path,
            len(left_out),
            join_limited(left_out),
        )
    parts = {
        part: [p for n in sorted(set(names.get(part, []))) for p in by_name[n]] for part in names
    }
    return parts["train"], parts["val"], parts.get("test", [])


def split(pairs: Sequence[Pair], options: LayoutOptions) -> tuple[list[Pair], list[Pair], str]:
    """``(train, val, description)`` by the options: k-fold if ``fold`` is set, else hold-out."""
    if options.fold is not None:
        train, val = kfold_split(pairs, options.folds, options.fold, options.seed)
        return train, val, f"fold {options.fold} of {options.folds} (seed {options.seed})"
    train, val = holdout_split(pairs, options.val_fraction, options.seed)
    return train, val, f"seeded hold-out of {options.val_fraction:.0%} (seed {options.seed})"
