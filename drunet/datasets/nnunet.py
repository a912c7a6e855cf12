"""nnU-Net datasets: ``imagesTr/<case>_0000.png`` + ``labelsTr/<case>.png`` and ``dataset.json``.

``dataset.json`` is read defensively: it comes with the data, so a wrong-typed field (labels
that are not a mapping, channel names that are not strings, …) is a one-line ``DataError``
naming the file and the key, and so is JSON nested too deeply to parse or not saved as UTF-8.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drunet.datasets.folder import Pair
from drunet.datasets.io import IMAGE_SUFFIXES, MASK_SUFFIXES
from drunet.datasets.matching import files_in, match_files
from drunet.datasets.problems import Problem
from drunet.errors import DataError

_NNUNET_NAME = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
_SHOWN = 60  # characters of a bad value quoted in an error


@dataclass
class NnunetFolder:
    """The pairs of an nnU-Net folder and what its ``dataset.json`` says."""

    pairs: list[Pair]
    test: list[Pair]
    class_names: list[str] | None
    channel_names: list[str] | None
    ignore_index: int | None


def read_nnunet(folder: Path, problems: list[Problem]) -> NnunetFolder:
    """Match ``imagesTr``/``labelsTr`` (and ``imagesTs``/``labelsTs``) under ``folder``.

    Unmatched or misnamed files go to ``problems``; an unusable ``dataset.json`` raises
    ``DataError`` naming it and the key.
    """
    path = folder / "dataset.json"
    meta = read_dataset_json(path)
    ending = meta.get("file_ending")
    if ending is not None and not isinstance(ending, str):
        raise DataError(_wrong(path, "file_ending", 'a file suffix such as ".png"', ending))
    if ending is not None and ending.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{path} has file_ending {ending!r}; drunet reads 2D images "
            f"({', '.join(IMAGE_SUFFIXES)}) — convert the cases to PNG or TIFF slices"
        )
    channel_names = _channel_names(meta, path)
    class_names, ignore = _labels(meta, path)
    pairs = _nnunet_pairs(folder / "imagesTr", folder / "labelsTr", ending, channel_names, problems)
    test: list[Pair] = []
    if (folder / "imagesTs").is_dir() and (folder / "labelsTs").is_dir():
        test = _nnunet_pairs(
            folder / "imagesTs", folder / "labelsTs", ending, channel_names, problems
        )
    return NnunetFolder(pairs, test, class_names, channel_names, ignore)


def read_dataset_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (``{}`` when there is no such file)."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(
            f"cannot read {path}: it is not UTF-8 text (another encoding, e.g. UTF-16 or "
            "Latin-1); save it as UTF-8"
        ) from None
    except RecursionError:
        raise DataError(
            f"cannot read {path}: its JSON is nested too deeply to parse; dataset.json is a flat "
            "object of a few keys — fix or remove the file"
        ) from None
    except OSError as err:
        raise DataError(
            f"cannot read {path}: {err.strerror or err}; check that it is a readable file"
        ) from None
    except ValueError as err:  # JSONDecodeError, or an integer of thousands of digits
        raise DataError(f"cannot read {path}: {err}; fix the JSON or remove the file") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    return meta


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _wrong(path: Path, key: str, expected: str, value: object) -> str:
    return (
        f"{path}: {key!r} must be {expected}, got {type(value).__name__} {_shown(value)}; fix "
        f"{key} in dataset.json or remove it"
    )


def _channel_names(meta: dict[str, Any], path: Path) -> list[str] | None:
    key = "channel_names" if meta.get("channel_names") is not None else "modality"
    names = meta.get(key)
    if names is None:
        return None
    expected = 'a mapping of channel numbers to names, e.g. {"0": "CT"}'
    if not isinstance(names, dict) or not names:
        raise DataError(_wrong(path, key, expected, names))
    for number, name in names.items():
        if not (number.isascii() and number.isdigit()) or not isinstance(name, str):
            raise DataError(_wrong(path, f"{key}.{number}", expected, name))
    numbers = sorted(int(k) for k in names)
    if numbers != list(range(len(numbers))):
        raise DataError(
            f"{path}: {key!r} numbers the channels {_shown(numbers)}; number them 0, 1, 2, … "
            "without gaps"
        )
    return [names[k] for k in sorted(names, key=int)]


def _labels(meta: dict[str, Any], path: Path) -> tuple[list[str] | None, int | None]:
    labels = meta.get("labels")
    if labels is None or labels == {}:
        return None, None
    if not isinstance(labels, dict):
        raise DataError(
            _wrong(
                path,
                "labels",
                'a mapping of label names to indices, e.g. {"background": 0}',
                labels,
            )
        )
    if all(k.isascii() and k.isdigit() for k in labels):  # nnU-Net v1: {"0": "background", …}
        for k, v in labels.items():
            if not isinstance(v, str):
                raise DataError(_wrong(path, f"labels.{k}", "a label name (a string)", v))
        by_index = {int(k): v for k, v in labels.items()}
    else:  # v2: {"background": 0, …}
        by_index = {}
        for name, index in labels.items():
            if isinstance(index, list):
                raise DataError(
                    f"{path} defines region labels (lists of classes, e.g. labels.{name}); drunet "
                    "needs one index per label — list each class with its own index"
                )
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise DataError(_wrong(path, f"labels.{name}", "a class index 0, 1, 2, …", index))
            by_index[index] = name
    ignore = next((i for i, name in by_index.items() if name == "ignore"), None)
    classes = sorted(i for i in by_index if i != ignore)
    if classes != list(range(len(classes))):
        raise DataError(
            f"{path} labels use indices {_shown(classes)}; class indices must be 0, 1, 2, … "
            "without gaps"
        )
    return [by_index[i] for i in classes], ignore


def _nnunet_pairs(
    images: Path,
    labels: Path,
    ending: str | None,
    channel_names: list[str] | None,
    problems: list[Problem],
) -> list[Pair]:
    if not labels.is_dir():
        raise DataError(f"missing folder {labels}; nnU-Net datasets keep masks in labelsTr/")
    image_suffixes = (ending.lower(),) if ending else IMAGE_SUFFIXES
    mask_suffixes = (ending.lower(),) if ending else MASK_SUFFIXES
    cases: dict[str, dict[int, Path]] = defaultdict(dict)
    for path in files_in(images, image_suffixes):
        match = _NNUNET_NAME.fullmatch(path.stem)
        if match is None:
            problems.append(
                Problem(
                    path,
                    "nnunet-name",
                    "image is not named <case>_<4-digit channel>",
                    f"rename it to {path.stem}_0000{path.suffix}",
                )
            )
            continue
        cases[match["case"]][int(match["channel"])] = path
    expected = (
        len(channel_names)
        if channel_names
        else max((max(c) + 1 for c in cases.values()), default=1)
    )
    # A case answers to its name through its first file; a mask to its stem.
    first_files = {min(channels.values()): case for case, channels in cases.items()}
    found = match_files(
        first_files, files_in(labels, mask_suffixes), lambda p: (first_files[p],), first_wins=True
    )
    for kept, also in found.duplicates:  # two mask files of one case (a.png and a.tif)
        problems.append(_duplicate(kept, also))
    masks = {first_files[first]: mask for first, mask in found.pairs}
    pairs = []
    for case in sorted(cases):
        channels = cases[case]
        missing = [k for k in range(expected) if k not in channels]
        for k in sorted(k for k in channels if k >= expected):
            problems.append(
                Problem(
                    channels[k],
                    "extra-channel",
                    f"channel file {k} of case {case!r}, but dataset.json names {expected} "
                    "channel(s)",
                    "add the channel to channel_names in dataset.json, or remove the file",
                    "warning",
                )
            )
        if missing:
            first = next(iter(channels.values()))
            problems.append(
                Problem(
                    first,
                    "missing-channel",
                    f"case {case!r} lacks channel file(s) "
                    + ", ".join(f"{case}_{k:04d}{first.suffix}" for k in missing),
                    f"add them to {images} (every case needs channels 0000 … {expected - 1:04d})",
                )
            )
        elif case not in masks:
            problems.append(
                Problem(
                    channels[0],
                    "image-without-mask",
                    f"case {case!r} has no mask in {labels.name}/",
                    f"add {labels.name}/{case}{channels[0].suffix}, or move the case out of "
                    f"{images.name}/",
                )
            )
        else:
            files = tuple(channels[k] for k in range(expected))
            pairs.append(Pair(files[0], masks[case], files[1:]))
    for mask in found.extra:
        problems.append(
            Problem(
                mask,
                "mask-without-image",
                f"mask has no image {mask.stem}_0000.* in {images.name}/",
                "add the case's image files, or remove the mask",
            )
        )
    return pairs


def _duplicate(kept: Path, also: Path) -> Problem:
    return Problem(
        also,
        "duplicate-stem",
        f"has the same stem as {kept.name}, so a mask cannot be matched to one of them",
        "rename or remove one of the two files",
    )


def group_channel_files(paths: list[Path]) -> list[tuple[str, list[Path]]] | None:
    """nnU-Net channel files (``case_0000.png``, ``case_0001.png``, …) grouped per case, in case
    order, as training reads them: ``[("case", [channel 0, channel 1, …])]``.

    ``None`` when not every file is named ``<case>_<4 digits>`` (the inputs are plain images).
    A case whose channels are not numbered ``0 … k-1``, or with another count than the other
    cases, is a ``DataError`` naming the case and the missing file.
    """
    cases: dict[str, dict[int, Path]] = {}
    for path in paths:
        match = _NNUNET_NAME.fullmatch(path.stem)
        if match is None:
            return None
        cases.setdefault(match["case"], {})[int(match["channel"])] = path
    counts = {len(channels) for channels in cases.values()}
    grouped = []
    for case in sorted(cases):
        channels = cases[case]
        expected = max(counts)
        missing = [k for k in range(expected) if k not in channels]
        if missing:
            any_file = next(iter(channels.values()))
            raise DataError(
                f"case {case!r} has no channel file {case}_{missing[0]:04d}{any_file.suffix} in "
                f"{any_file.parent} (other cases have {expected} channels); add it or leave the "
                "case out"
            )
        grouped.append((case, [channels[k] for k in range(expected)]))
    return grouped
