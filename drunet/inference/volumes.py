"""The file side of the :class:`~drunet.inference.Predictor`: image files, TIFF stacks, folders
of numbered slices and dataset pairs, read with the 2.5D context a run was trained with.

:class:`FileInputs` is the predictor's base: it reads, and hands arrays to the array-only
``predict_batch`` of the predictor (preprocess → scores → finish).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from drunet.datasets import Pair, read_image, read_pair_image
from drunet.datasets.context import context_pairs, iter_with_context, read_context, series_files
from drunet.datasets.stacks import frame_count, page_count
from drunet.errors import DrunetError
from drunet.inference.postprocess import Prediction

ImageInput = np.ndarray | str | Path
Progress = Callable[[int, int], None]


class FileInputs:
    """Prediction of files and volumes through the array-only :meth:`predict_batch`."""

    context_slices: int  # neighbour slices on each side (data.context_slices)
    slice_channels: int  # the channels of one slice

    def predict_batch(
        self,
        images: Sequence[ImageInput],
        *,
        sources: Sequence[str] | None = None,
        return_probabilities: bool = False,
        on_progress: Progress | None = None,
    ) -> list[Prediction]:
        raise NotImplementedError  # the Predictor's

    def predict_stack(self, path: str | Path, on_progress: Progress | None = None) -> np.ndarray:
        """Masks ``(Z, H, W)`` of a multi-page TIFF stack, one 2D slice at a time (each page is
        read on its own, so memory holds one slice). ``on_progress(done, total)`` per slice.

        With 2.5D context (``data.context_slices = k``) each page is fed with pages
        ``page ± 1 … k`` (edges replicated, as in training); memory holds ``2k+1`` pages."""
        path = Path(path)
        frames, read = _stack_reader(path)
        series = self._iter_series(frames, read, lambda page: f"{path} page {page}", on_progress)
        return np.stack([mask for _, mask in series])

    def predict_slices(
        self, slices: str | Path | Sequence[str | Path], on_progress: Progress | None = None
    ) -> np.ndarray:
        """Masks ``(Z, H, W)`` of a volume stored as 2D files: a folder of numbered slices
        (every image file's stem an integer, ``00.png … 29.png``, taken in numeric order) or a
        list of files in slice order. With 2.5D context each slice is fed with its neighbours
        in that order (edges replicated), as in training; without it each file on its own."""
        return np.stack([mask for _, _, mask in self.iter_slices(slices, on_progress)])

    def iter_slices(
        self, slices: str | Path | Sequence[str | Path], on_progress: Progress | None = None
    ) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
        """``(file, image, mask)`` of each slice of :meth:`predict_slices`, in slice order, as
        soon as it is predicted: ``image`` is the file as read ``(H, W, C)`` (for an overlay),
        ``mask`` its ``(H, W)`` mask. Memory holds ``2k+1`` slices, not the volume."""
        files = series_files(slices)
        series = self._iter_series(
            len(files), lambda i: read_image(files[i]), lambda i: str(files[i]), on_progress
        )
        k, channels = self.context_slices, self.slice_channels
        for path, (image, mask) in zip(files, series, strict=True):
            yield path, image[:, :, k * channels : (k + 1) * channels], mask

    def read_input(self, path: str | Path) -> np.ndarray:
        """An image file, refused when a context model would read a stack as one image."""
        if self.context_slices and (pages := page_count(Path(path))) > 1:
            raise DrunetError(
                f"{path} is a stack of {pages} pages; predict it with predict_stack (one mask "
                "per page, each with its neighbours), not as one image"
            )
        return read_image(path)

    def _iter_series(
        self,
        count: int,
        read: Callable[[int], np.ndarray],
        name: Callable[[int], str],
        on_progress: Progress | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(input with context, mask)`` of slice ``0 … count-1`` in order."""
        images = iter_with_context(count, read, self.context_slices, name)
        for index, image in enumerate(images):  # (H, W, (2k+1)·C) file dtype
            (result,) = self.predict_batch([image], sources=[name(index)])
            if on_progress is not None:
                on_progress(index + 1, count)
            yield image, result.mask

    def with_context(self, pair: Pair, image: np.ndarray | None = None) -> np.ndarray:
        """The network's input image for a dataset pair: its image (``image`` when read
        already), with its neighbours' images stacked along channels under 2.5D context
        (neighbours as in training, :mod:`drunet.datasets.context`)."""
        if image is None:
            image = read_pair_image(pair)
        if not self.context_slices:
            return image
        (neighbours,) = context_pairs([pair], self.context_slices)
        return read_context(neighbours, centre=image)


def _stack_reader(path: Path) -> tuple[int, Callable[[int], np.ndarray]]:
    """``(pages, read)`` of a TIFF stack: each frame read on its own, or, for a file of one
    frame whose pages are declared channels, the file read once and split per page."""
    frames = frame_count(path)
    if frames > 1:
        return frames, lambda page: read_image(path, page=page)
    pages = page_count(path)
    image = read_image(path)  # (H, W, pages × samples): one channel block per page
    if image.shape[2] % pages:
        raise DrunetError(
            f"{path} has {pages} pages but {image.shape[2]} channels; save it as a stack of "
            "same-sized pages (tifffile.imwrite(path, volume, photometric='minisblack'))"
        )
    step = image.shape[2] // pages
    return pages, lambda page: image[:, :, page * step : (page + 1) * step]
