"""Find the image/mask pairs under a data folder, whatever its layout, and split them.

Layouts, tried in this order:
  * explicit folders: ``LayoutOptions.images`` + ``LayoutOptions.masks``;
  * ``root/train/`` (with optional ``root/val/`` and ``root/test/``), each holding one of the
    layouts below; without ``val/`` the training pairs are split as configured;
  * nnU-Net: ``root/imagesTr/<case>_0000.png`` (one file per channel ``_000k``) +
    ``root/labelsTr/<case>.png`` and optional ``dataset.json`` (``channel_names``/``modality``,
    ``labels`` — a label named ``"ignore"`` becomes the ignore index —, ``file_ending``);
    ``imagesTs/`` + ``labelsTs/`` become the test pairs when both exist;
  * ``root/images/`` + ``root/masks/`` (or ``root/labels/``), matched by file stem.

In every layout a multi-page TIFF image with a mask of as many pages is a stack of slices: one
pair per slice (``drunet.datasets.stacks``), split by stack. With ``LayoutOptions.stack`` (e.g.
``"{name}_z{index}"``) every file is a numbered 2D slice of the stack its stem names, split by
stack likewise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from drunet.datasets.folder import Pair, masks_folder, scan_pairs
from drunet.datasets.listing import join_limited
from drunet.datasets.nnunet import read_nnunet
from drunet.datasets.options import LayoutOptions
from drunet.datasets.problems import Problem
from drunet.datasets.splits import apply_split_file, split
from drunet.datasets.stacks import expand_stacks, number_slices
from drunet.errors import DataError

log = logging.getLogger(__name__)

_LAYOUTS = (
    "images/ + masks/ (or labels/), nnU-Net imagesTr/ + labelsTr/, or train/ (val/, test/) "
    "sub-folders holding one of these"
)


@dataclass
class DatasetLayout:
    """The pairs of a dataset and where they came from.

    ``source`` and ``split`` describe, for people, how the files were found and divided;
    ``class_names``, ``channel_names`` and ``ignore_index`` come from an nnU-Net
    ``dataset.json`` when there is one. ``problems`` lists unmatched or misnamed files found by
    a lenient ``discover(strict=False)`` (a strict one raises instead).
    """

    root: Path | None
    source: str
    split: str
    train: list[Pair]
    val: list[Pair]
    test: list[Pair] = field(default_factory=list)
    class_names: list[str] | None = None
    channel_names: list[str] | None = None
    ignore_index: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def pairs(self) -> list[Pair]:
        """Every pair once: training, then validation, then test."""
        seen: dict[Pair, None] = {}
        for pair in [*self.train, *self.val, *self.test]:
            seen.setdefault(pair)
        return list(seen)


@dataclass
class _Unit:
    """The pairs of one folder (before splitting) and what its metadata says."""

    pairs: list[Pair]
    source: str
    test: list[Pair] = field(default_factory=list)
    class_names: list[str] | None = None
    channel_names: list[str] | None = None
    ignore_index: int | None = None

    def layout(
        self, root: Path | None, how: str, train: list[Pair], val: list[Pair], test: list[Pair]
    ) -> DatasetLayout:
        return DatasetLayout(
            root,
            self.source,
            how,
            train,
            val,
            test,
            class_names=self.class_names,
            channel_names=self.channel_names,
            ignore_index=self.ignore_index,
        )


def discover(
    root: str | Path | None = None, options: LayoutOptions | None = None, strict: bool = True
) -> DatasetLayout:
    """Find and split the pairs under ``root`` (see the module docstring for the layouts).

    Relative ``options.images`` / ``options.masks`` are taken relative to ``root`` when one is
    given. With ``strict`` any unmatched, duplicated or misnamed file raises ``DataError``
    listing them; otherwise they are returned in ``layout.problems`` and the rest is used.
    Raises ``DataError`` naming the folder when no layout is recognised.
    """
    options = options or LayoutOptions()
    root = Path(root) if root is not None else None
    problems: list[Problem] = []
    where = root if root is not None else options.images
    if options.images is not None and options.masks is not None:
        images, masks = _under(root, options.images), _under(root, options.masks)
        unit = _plain(images, masks, problems, options.stack)
        unit.source = f"explicit folders {images} and {masks}"
        _check(problems, strict, where)
        layout = _split_unit(root, unit, options)
    elif root is None:
        raise DataError("no data folder given; pass a folder, or both images and masks folders")
    elif not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist or is not a folder; expected {_LAYOUTS}"
        )
    elif (root / "train").is_dir():
        layout = _subfolders(root, options, problems, strict)
    else:
        unit = _unit(root, problems, options.stack)
        _check(problems, strict, where)
        layout = _split_unit(root, unit, options)
    _check(problems, strict, where)
    layout.problems = problems
    return layout


def _check(problems: list[Problem], strict: bool, where: Path | None) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if strict and errors:
        lines = join_limited([f"{p.path}: {p.message}" for p in errors], sep="; ")
        raise DataError(
            f"{len(errors)} problem(s) in {where}: {lines}; fix: {errors[0].fix}"
            " (`drunet verify` lists every problem)"
        )


def _under(root: Path | None, path: Path) -> Path:
    return root / path if root is not None and not path.is_absolute() else path


def _split_unit(root: Path | None, unit: _Unit, options: LayoutOptions) -> DatasetLayout:
    if not unit.pairs:
        raise DataError(f"no image/mask pairs in {unit.source}; expected {_LAYOUTS}")
    test = unit.test
    if options.split_file is not None:
        split_file = _under(root, options.split_file)
        train, val, listed_test = apply_split_file(unit.pairs, split_file, options.fold)
        test, how = listed_test or test, f"split file {split_file}"
        if options.fold is not None:
            how += f", fold {options.fold}"
    else:
        train, val, how = split(unit.pairs, options)
    return unit.layout(root, how, train, val, test)


def _subfolders(
    root: Path, options: LayoutOptions, problems: list[Problem], strict: bool
) -> DatasetLayout:
    train_unit = _unit(root / "train", problems, options.stack)
    parts = {name: root / name for name in ("val", "test") if (root / name).is_dir()}
    if "val" not in parts:
        _check(problems, strict, root)
        layout = _split_unit(root, train_unit, options)
        layout.source = f"train/ sub-folder of {root} ({train_unit.source})"
    else:
        if options.fold is not None or options.split_file is not None:
            raise DataError(
                f"{parts['val']} exists, so the validation set is fixed; remove the fold / split "
                "file setting, or merge val/ into train/ to cross-validate"
            )
        val_unit = _unit(parts["val"], problems, options.stack)
        _check(problems, strict, root)
        if not train_unit.pairs or not val_unit.pairs:
            empty = parts["val"] if train_unit.pairs else root / "train"
            raise DataError(f"no image/mask pairs in {empty}; expected {_LAYOUTS}")
        how = f"val/ folder ({len(val_unit.pairs)} pairs)"
        layout = train_unit.layout(root, how, train_unit.pairs, val_unit.pairs, train_unit.test)
        layout.source = f"train/ and val/ sub-folders of {root} ({train_unit.source})"
    if "test" in parts:
        try:
            layout.test = _unit(parts["test"], problems, options.stack).pairs
        except DataError as err:  # e.g. test images without masks: not needed for training
            log.info("test folder %s is not used: %s", parts["test"], err)
    return layout


def _unit(folder: Path, problems: list[Problem], stack: str | None) -> _Unit:
    if (folder / "imagesTr").is_dir():
        return _nnunet(folder, problems, stack)
    if (folder / "images").is_dir():
        masks = masks_folder(folder)
        if masks.name == "masks" and (folder / "labels").is_dir():
            log.warning("%s has both masks/ and labels/; using masks/", folder)
        return _plain(folder / "images", masks, problems, stack)
    found = sorted(p.name + "/" for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
    raise DataError(
        f"no dataset layout in {folder}: expected {_LAYOUTS}; found "
        + (join_limited(found) if found else "no sub-folders")
    )


def _plain(images: Path, masks: Path, problems: list[Problem], stack: str | None) -> _Unit:
    scan = scan_pairs(images, masks)
    for first, second in scan.duplicates:
        problems.append(
            Problem(
                second,
                "duplicate-stem",
                f"has the same stem as {first.name}, so a mask cannot be matched to one of them",
                "rename or remove one of the two files",
            )
        )
    for image in scan.lonely_images:
        problems.append(
            Problem(
                image,
                "image-without-mask",
                f"image has no mask in {masks.name}/",
                f"add {masks.name}/{image.stem}.png (or .tif), or move the image out of "
                f"{images.name}/",
            )
        )
    for mask in scan.lonely_masks:
        problems.append(
            Problem(
                mask,
                "mask-without-image",
                f"mask has no image in {images.name}/",
                f"add the image {images.name}/{mask.stem}.*, or remove the mask",
            )
        )
    pairs = expand_stacks(scan.pairs, problems)  # multi-page TIFFs: one pair per slice
    pairs = number_slices(pairs, stack, problems)  # data.layout.stack: stack and slice number
    return _Unit(pairs, f"{images.name}/ + {masks.name}/ in {images.parent}")


def _nnunet(folder: Path, problems: list[Problem], stack: str | None) -> _Unit:
    found = read_nnunet(folder, problems)
    return _Unit(
        number_slices(expand_stacks(found.pairs, problems), stack, problems),
        f"nnU-Net imagesTr/ + labelsTr/ in {folder}",
        number_slices(expand_stacks(found.test, problems), stack, problems),
        found.class_names,
        found.channel_names,
        found.ignore_index,
    )
