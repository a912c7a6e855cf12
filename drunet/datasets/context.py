"""2.5D context (``data.context_slices: k``): a slice is fed with its k neighbours on each side.

The network input of slice ``z`` is the images of slices ``z-k … z … z+k`` stacked along the
channel axis, block by block: ``(H, W, (2k+1)·C)`` with channels ``[slice z-k: C channels, …,
slice z: C channels, …, slice z+k: C channels]``. Only images come from the neighbours: the
mask (training target) is always the centre slice's.

Which slices are neighbours:

* a slice of a multi-page TIFF stack (``Pair.page`` set): pages ``page ± 1 … k`` of the same
  file(s);
* a numbered slice of a stack named by ``data.layout.stack`` (``Pair.numbered``, e.g.
  ``cellA_z3.png`` under ``"{name}_z{index}"``): the image files of the same folder that are
  slices of the same stack, in numeric index order (``z2`` before ``z10``);
* a 2D file in a folder of numbered slices (ISBI's ``00.png … 29.png``: every image file in the
  folder has an integer stem): the files before and after it in numeric order (gaps in the
  numbering are ignored: adjacent means adjacent in that order).

At the ends the edge slice is replicated (slice 0 of a stack with k = 1 sees ``[0, 0, 1]``); a
stack of one page sees itself 2k+1 times. Neighbours come from the whole file or folder, not
from the training or validation split: a slice next to a held-out slice sees its *image*, never
its mask. A 2D file that is neither (e.g. ``cat.png`` next to ``dog.png``) has no neighbours,
and asking for context there is a ``DataError``.

The stored normalisation stays per channel of one slice (``C`` values); every block is
normalised with it (:func:`expand_normalization`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from drunet.datasets.folder import Pair, read_pair_image
from drunet.datasets.io import IMAGE_SUFFIXES
from drunet.datasets.normalization import IMAGENET_MEAN, IMAGENET_STD
from drunet.datasets.options import MAX_CONTEXT_SLICES, NormalizationOptions
from drunet.datasets.stack_names import NumberedSlice, match_slice
from drunet.datasets.stacks import frame_count
from drunet.errors import DataError

__all__ = [
    "MAX_CONTEXT_SLICES",
    "context_indices",
    "context_pairs",
    "context_slices_of",
    "expand_normalization",
    "iter_with_context",
    "numbered_slices",
    "read_context",
    "series_files",
    "stack_context",
]


def context_slices_of(data: object) -> int:
    """``data.context_slices`` of a ``DataConfig`` (0 when the configuration has no such key)."""
    return int(getattr(data, "context_slices", 0) or 0)


def context_indices(index: int, count: int, k: int) -> list[int]:
    """Slice indices ``index-k … index+k`` of a series of ``count`` slices, clamped to
    ``[0, count-1]`` (the edge slice is replicated)."""
    if not 0 <= index < count:
        raise IndexError(f"slice {index} of a series of {count}")
    return [min(max(index + offset, 0), count - 1) for offset in range(-k, k + 1)]


def numbered_slices(folder: Path) -> list[Path] | None:
    """The image files of ``folder`` in numeric order when every one has an integer stem
    (``00.png``, ``01.png`` …), else ``None`` (not a series of numbered slices)."""
    files = _image_files(folder)
    if not files or not all(_is_number(path.stem) for path in files):
        return None
    return sorted(files, key=lambda path: (int(path.stem), path.name))


def _image_files(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.iterdir()
        if not path.name.startswith(".")
        and path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
    ]


def series_files(slices: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files of a series: a folder's numbered slices (:func:`numbered_slices`), or the
    given files in their order. A folder that is not numbered slices is a ``DataError``."""
    if not isinstance(slices, str | Path):
        if not slices:
            raise DataError("no slice files given; pass a folder of numbered slices or files")
        return [Path(f) for f in slices]
    folder = Path(slices)
    files = numbered_slices(folder) if folder.is_dir() else None
    if files is None:
        raise DataError(
            f"{folder} is not a folder of numbered slices (image files named 00.png, 01.png, "
            "…); pass the slice files in order instead"
        )
    return files


def _is_number(stem: str) -> bool:
    return stem.isascii() and stem.isdigit()


class _Series:
    """Cached frame counts and folder listings while neighbours of many pairs are found."""

    def __init__(self) -> None:
        self.frames: dict[Path, int] = {}
        self.folders: dict[Path, list[Path] | None] = {}
        self.stacks: dict[tuple[Path, str, str], dict[str, list[Pair]]] = {}

    def frame_count(self, path: Path) -> int:
        if path not in self.frames:
            self.frames[path] = frame_count(path)
        return self.frames[path]

    def numbered(self, folder: Path) -> list[Path] | None:
        if folder not in self.folders:
            self.folders[folder] = numbered_slices(folder)
        return self.folders[folder]

    def stack(self, folder: Path, tail: str, numbered: NumberedSlice) -> list[Pair]:
        """The image files of ``folder`` that are slices of ``numbered``'s stack (their stem,
        less ``tail``, matching its pattern), in index order, as ``Pair(image, image,
        numbered=…)`` (only ``image`` and ``numbered`` are used)."""
        key = (folder, tail, numbered.pattern)
        if key not in self.stacks:
            stacks: dict[str, list[tuple[int, str, Pair]]] = {}
            for path in _image_files(folder):
                stem = path.stem[: len(path.stem) - len(tail)]
                found = match_slice(stem, numbered.pattern) if path.stem.endswith(tail) else None
                if found is not None:
                    entry = (found.index, path.name, Pair(path, path, numbered=found))
                    stacks.setdefault(found.stack, []).append(entry)
            self.stacks[key] = {name: [e[2] for e in sorted(f)] for name, f in stacks.items()}
        return self.stacks[key].get(numbered.stack, [])


def context_pairs(pairs: Sequence[Pair], k: int) -> list[tuple[Pair, ...]]:
    """For each pair, the ``2k+1`` pairs whose images make its input, in order ``-k … +k``
    (the pair itself in the middle). Neighbours are the pair with another ``page``, or with the
    ``image`` of the adjacent numbered file; their ``mask`` is the centre's and is never read.

    A pair that is neither a stack slice nor a numbered slice is a ``DataError`` naming it.
    """
    series = _Series()
    return [_neighbours(pair, k, series) for pair in pairs]


def _neighbours(pair: Pair, k: int, series: _Series) -> tuple[Pair, ...]:
    if k == 0:
        return (pair,)
    if pair.page is not None:
        count = series.frame_count(pair.image)
        pages = context_indices(min(pair.page, count - 1), count, k)
        return tuple(dataclasses.replace(pair, page=page) for page in pages)
    if pair.numbered is not None:
        return _stack_neighbours(pair, pair.numbered, k, series)
    files = series.numbered(pair.image.parent) if _is_number(pair.image.stem) else None
    if files is None or pair.extra_channels or pair.image not in files:
        raise DataError(
            f"{pair.image}: data.context_slices={k} feeds each slice with its neighbours, but "
            "this image is neither a page of a multi-page TIFF stack nor one of a folder of "
            "numbered slices (00.png, 01.png, …); set data.context_slices to 0 for 2D images"
        )
    indices = context_indices(files.index(pair.image), len(files), k)
    return tuple(dataclasses.replace(pair, image=files[i]) for i in indices)


def _stack_neighbours(
    pair: Pair, numbered: NumberedSlice, k: int, series: _Series
) -> tuple[Pair, ...]:
    """Neighbours of slice ``numbered`` among its stack's image files in its folder; the stem
    of an image may carry a tail after the case name (nnU-Net's ``_0000``)."""
    stem, case = pair.image.stem, pair.mask.stem
    stack = series.stack(pair.image.parent, stem[len(case) :], numbered)
    files = [slice_.image for slice_ in stack] if stem.startswith(case) else []
    if pair.extra_channels or pair.image not in files:
        raise DataError(
            f"{pair.image}: data.context_slices={k} feeds each slice with its neighbours, but "
            f"this image is not found as slice {numbered.index} of stack {numbered.stack!r} "
            f"(data.layout.stack {numbered.pattern!r}) in its folder; 2.5D context needs one "
            "image file per slice, named by the pattern"
        )
    indices = context_indices(files.index(pair.image), len(files), k)
    return tuple(
        dataclasses.replace(pair, image=stack[i].image, numbered=stack[i].numbered) for i in indices
    )


def stack_context(slices: Sequence[np.ndarray], sources: Sequence[object]) -> np.ndarray:
    """``2k+1`` images ``(H, W, C)`` of one dtype → ``(H, W, (2k+1)·C)``; a slice of another
    size, channel count or pixel type than the centre is a ``DataError`` naming both."""
    centre = len(slices) // 2
    first = slices[centre]
    for image, source in zip(slices, sources, strict=True):
        if image.shape != first.shape or image.dtype != first.dtype:
            raise DataError(
                f"slice {source} is {image.shape[1]}×{image.shape[0]}×{image.shape[2]} "
                f"{image.dtype} but its neighbour {sources[centre]} is {first.shape[1]}×"
                f"{first.shape[0]}×{first.shape[2]} {first.dtype}; the slices of one volume "
                "need the same size, channels and pixel type"
            )
    return first if len(slices) == 1 else np.concatenate(slices, axis=2)


def read_context(neighbours: Sequence[Pair], centre: np.ndarray | None = None) -> np.ndarray:
    """The images of ``neighbours`` (from :func:`context_pairs`) stacked ``(H, W, (2k+1)·C)``;
    ``centre`` is the middle pair's image when it has been read already."""
    middle = len(neighbours) // 2
    read: dict[tuple[Path, int | None], np.ndarray] = {}
    if centre is not None:
        read[(neighbours[middle].image, neighbours[middle].page)] = centre
    slices = []
    for pair in neighbours:
        key = (pair.image, pair.page)
        if key not in read:  # replicated edges are read once
            read[key] = read_pair_image(pair)
        slices.append(read[key])
    return stack_context(slices, [_slice_name(pair) for pair in neighbours])


def _slice_name(pair: Pair) -> str:
    return str(pair.image) if pair.page is None else f"{pair.image} page {pair.page}"


def iter_with_context(
    count: int, read: Callable[[int], np.ndarray], k: int, name: Callable[[int], str] = str
) -> Iterator[np.ndarray]:
    """Yield slice ``0 … count-1`` of a series with its context ``(H, W, (2k+1)·C)``; ``read(i)``
    decodes slice ``i``. Each slice is decoded once and at most ``2k+1`` are held at a time."""
    held: dict[int, np.ndarray] = {}
    for index in range(count):
        wanted = context_indices(index, count, k)
        for i in [i for i in held if i < wanted[0]]:
            del held[i]
        for i in wanted:
            if i not in held:
                held[i] = read(i)
        yield stack_context([held[i] for i in wanted], [name(i) for i in wanted])


def expand_normalization(
    options: NormalizationOptions, blocks: int, channels: int
) -> NormalizationOptions:
    """``options`` (stored for ``channels`` channels of one slice) repeated for ``blocks``
    stacked slices: every per-channel list is tiled ``blocks`` times, so each block is normalised
    exactly as a lone slice would be. ImageNet statistics become explicit tiled mean/std."""
    if blocks == 1:
        return options
    update: dict[str, object] = {}
    for key in ("mean", "std", "clip_low", "clip_high"):
        values = getattr(options, key)
        if values is not None:
            update[key] = list(values) * blocks
    if options.mode == "imagenet":
        if channels not in (1, 3):
            raise DataError(
                f"ImageNet normalisation is defined for 1 or 3 channels, but the slices have "
                f"{channels}; use normalization mode 'dataset'"
            )
        mean = IMAGENET_MEAN if channels == 3 else [float(np.mean(IMAGENET_MEAN))]
        std = IMAGENET_STD if channels == 3 else [float(np.mean(IMAGENET_STD))]
        update.update(mode="dataset", mean=list(mean) * blocks, std=list(std) * blocks)
    return options.model_copy(update=update)
