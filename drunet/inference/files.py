"""Predict files and folders: a class-index mask PNG per input, plus overlays and more.

For an input ``<stem>.<ext>`` the output folder receives, by :class:`OutputOptions`:

* ``<stem>_mask.png`` — class indices 0, 1, … (always; written last, so a mask on disk means
  the input's other outputs are there too);
* ``<stem>_overlay.png`` — the mask coloured over the image (on by default);
* ``<stem>_color.png`` — the mask in the overlay's palette, as an RGB image;
* ``<stem>_probs.tif`` — float32 class probabilities, one channel (TIFF page) per class.

Every file is written atomically, so a killed run leaves whole files or none, and
``skip_existing`` (``drunet predict --continue``) skips inputs whose outputs all exist. An input
that cannot be read, predicted or written is recorded (:class:`Tally`) and the rest go on. The
loop that predicts them is :func:`drunet.inference.loop.predict_files`.
"""

from __future__ import annotations

import errno
import glob
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drunet.atomic import can_create_files, file_in_the_way
from drunet.datasets import IMAGE_SUFFIXES, write_image, write_mask
from drunet.errors import DrunetError
from drunet.inference.overlay import colorize, overlay
from drunet.inference.postprocess import Prediction
from drunet.outputs import Manifest

log = logging.getLogger(__name__)

MASK_SUFFIX = "_mask.png"
NNUNET_MASK_SUFFIX = ".png"  # --nnunet-names: the mask of case ``c`` is ``c.png``
OVERLAY_SUFFIX = "_overlay.png"
COLOR_SUFFIX = "_color.png"
PROBABILITIES_SUFFIX = "_probs.tif"


@dataclass(frozen=True)
class OutputOptions:
    """Which files to write per input besides the mask (see the module docstring)."""

    overlay: bool = True
    color: bool = False
    probabilities: bool = False
    # The output name of an input, when not its file stem (an nnU-Net case: its case name).
    names: Mapping[Path, str] = field(default_factory=dict)
    # nnU-Net's naming: the mask is ``<name>.png`` rather than ``<name>_mask.png``.
    nnunet_names: bool = False

    def name(self, image: Path) -> str:
        """The stem of ``image``'s output files."""
        return self.names.get(image, image.stem)


@dataclass
class PredictionReport:
    """What a folder prediction wrote, skipped (outputs already there) and could not read."""

    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)
    # Seconds spent: read, normalize (worker threads, summed), compute (the network), write
    # (post-processing, encoding, writing; the writer thread) and wall.
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Tally:
    """The one way every part of a folder prediction reports an input's outcome: written,
    skipped or failed, once, in ``report`` and then to ``on_done`` (the progress bar);
    ``on_tiles(done, total)`` while a large image goes through the sliding window."""

    report: PredictionReport = field(default_factory=PredictionReport)
    on_done: Callable[[Path], None] | None = None
    on_tiles: Callable[[int, int], None] | None = None

    def wrote(self, path: Path, mask: Path) -> None:
        self.report.written.append(mask)
        self._done(path)

    def skipped(self, path: Path) -> None:
        self.report.skipped.append(path)
        self._done(path)

    def failed(self, path: Path, err: Exception) -> None:
        """Record that ``path`` could not be predicted, and why (logged as a warning)."""
        self.report.failed[path] = str(err)
        log.warning("skipped %s: %s", path, err)
        self._done(path)

    def _done(self, path: Path) -> None:
        if self.on_done is not None:
            self.on_done(path)


def collect_inputs(target: str | Path) -> list[Path]:
    """An image file, or every image in a folder (sorted), or a glob pattern."""
    path = Path(target)
    if path.is_dir():
        # Like find_pairs: skip hidden files (e.g. macOS "._scan.png") and folders.
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
        if not files:
            raise DrunetError(f"no images in {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
        return files
    if path.is_file():
        return [path]
    # glob.glob, not Path().glob: the latter rejects absolute patterns such as /data/*.png.
    pattern = str(target)
    is_glob = any(c in pattern for c in "*?[")
    files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file()) if is_glob else []
    if files:
        return files
    raise DrunetError(f"{target}: no such image file, folder or glob match")


def output_files(
    image: Path, out_dir: Path, outputs: OutputOptions | None = None
) -> dict[str, Path]:
    """``{kind: path}`` of the files written for ``image``, in writing order (mask last)."""
    outputs = outputs or OutputOptions()
    suffixes = {
        "probabilities": PROBABILITIES_SUFFIX if outputs.probabilities else None,
        "color": COLOR_SUFFIX if outputs.color else None,
        "overlay": OVERLAY_SUFFIX if outputs.overlay else None,
        "mask": NNUNET_MASK_SUFFIX if outputs.nnunet_names else MASK_SUFFIX,
    }
    name = outputs.name(image)
    return {kind: out_dir / f"{name}{s}" for kind, s in suffixes.items() if s is not None}


def outputs_exist(image: Path, out_dir: Path, outputs: OutputOptions | None = None) -> bool:
    """Whether every output of ``image`` is on disk (each is whole: writes are atomic)."""
    return all(path.is_file() for path in output_files(image, out_dir, outputs).values())


def check_no_clobber(
    inputs: list[Path],
    out_dir: Path,
    outputs: OutputOptions | None = None,
    protected: Iterable[Path] = (),
    manifest: Manifest | None = None,
) -> None:
    """Refuse to run if an output would replace an input, a ``protected`` file (the weights),
    another input's output, or a file in ``out_dir`` that drunet did not write (``manifest``).

    Paths are compared as files (``os.stat``), so symbolic and hard links, ``./x`` and
    ``../out/x`` spellings of one file are caught. Raises :class:`DrunetError` naming both files.
    """
    manifest = manifest if manifest is not None else Manifest(out_dir)
    read = {_identity(p): ("input", p) for p in inputs}
    read.update({_identity(p): ("model weights", p) for p in protected})
    read.pop(None, None)
    seen: dict[Path, Path] = {}
    for image in inputs:
        for out in output_files(image, out_dir, outputs).values():
            target = out.resolve()
            if target in seen:
                raise DrunetError(
                    f"inputs {seen[target]} and {image} have the same name stem, so their "
                    f"outputs would collide in {out_dir}; rename one or predict them separately"
                )
            seen[target] = image
            what, source = read.get(_identity(out), (None, None))
            if source is not None:
                raise DrunetError(
                    f"output {out} would overwrite the {what} {source} (the same file); "
                    "choose another --out folder"
                )
            if manifest.foreign(out):
                raise DrunetError(
                    f"output {out} exists and drunet did not write it (it is not in "
                    f"{manifest.path}); choose another --out folder, or move {out} away"
                )


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` that is a file, or lies under one: outputs need a folder."""
    blocker = file_in_the_way(out_dir)
    if blocker is not None:
        where = "is a file" if blocker == out_dir else f"is inside {blocker}, which is a file"
        raise DrunetError(
            f"--out {out_dir} {where}, but predict writes its outputs into a folder; "
            "choose a folder (it is created if missing)"
        )


def _identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the file ``path`` leads to, or ``None`` if there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def write_outputs(
    files: dict[str, Path], image: np.ndarray, prediction: Prediction, num_classes: int
) -> None:
    """Write the files of :func:`output_files` for one predicted image, each atomically."""
    mask = prediction.mask
    for kind, path in files.items():
        if kind == "probabilities":
            assert prediction.probabilities is not None
            write_image(path, prediction.probabilities.transpose(1, 2, 0))  # (H, W, K) float32
        elif kind == "color":
            write_image(path, colorize(mask, num_classes))
        elif kind == "overlay":
            write_image(path, overlay(image, mask, num_classes))
        else:
            write_mask(path, mask)


def save_prediction(
    path: Path,
    image: np.ndarray,
    prediction: Prediction,
    manifest: Manifest,
    outputs: OutputOptions,
    num_classes: int,
    tally: Tally,
) -> None:
    """Write one input's outputs into the manifest's folder and record it in ``tally``: a
    file that cannot be written fails this input; a folder that refuses writes raises."""
    files = output_files(path, manifest.folder, outputs)
    try:
        manifest.record(files.values())  # claimed before written: a kill in between is harmless
        write_outputs(files, image, prediction, num_classes)
    except OSError as err:
        if folder_refuses_writes(err, manifest.folder):
            raise  # a full disk or a read-only folder: every other input would fail too
        name = err.filename or next(iter(files.values()))
        tally.failed(path, DrunetError(f"cannot write {name}: {err.strerror or err}"))
    else:
        tally.wrote(path, files["mask"])


# The file system, not the file: no other output could be written either.
_FOLDER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENOTDIR}


def folder_refuses_writes(err: OSError, folder: Path) -> bool:
    """Whether ``err``, raised writing one file into ``folder``, is the folder's (full disk,
    read-only or vanished folder) rather than that file's (its name too long, a folder in its
    place, an undeletable file at its name), so that the other inputs need not be tried."""
    if err.errno in _FOLDER_ERRNOS:
        return True
    if isinstance(err, PermissionError):  # the folder, or only the file at this name?
        return not can_create_files(folder)
    return False
