"""nnU-Net channel files in ``drunet predict``: ``case_0000.png``, ``case_0001.png`` … → one input.

nnU-Net stores channel ``k`` of case ``c`` as ``c_000k.<ext>``. Training reads such a case as
one image whose channels are the files' channels in file order (``read_pair_image``), and
prediction reads it the same way. Its outputs are named by the case: ``case_mask.png``,
``case_overlay.png`` …, or ``case.png`` for the mask with ``--nnunet-names`` (nnU-Net's own
convention).

When inputs are grouped (:func:`channel_cases`). Plain numbered images (``scan_0001.png``,
``scan_0002.png``) look the same, so the files are grouped only when that is consistent with the
model:

1. every input is named ``<case>_<4 digits>``;
2. every case has the files ``0000 … n-1`` (numbered from ``0000``, no gaps), the same ``n`` for
   all cases;
3. ``n`` × the channels of one file (its first case's ``_0000`` file) equals the model's input
   channels;
4. ``n`` ≥ 2, or ``--nnunet-names`` asks for nnU-Net's naming (one channel file per case is
   otherwise predicted file by file, as a plain image, named by its file).

Otherwise every file is its own input, as for any folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drunet.datasets import Pair, read_image
from drunet.datasets.folder import read_pair_image
from drunet.datasets.nnunet import group_channel_files
from drunet.errors import DataError, DrunetError


@dataclass(frozen=True)
class ChannelCases:
    """Grouped inputs: each case is keyed by its ``_0000`` file (the path the predict loops,
    reports and ``--shard`` see), with its further channel files and its name."""

    inputs: list[Path]
    extra_channels: dict[Path, tuple[Path, ...]] = field(default_factory=dict)
    names: dict[Path, str] = field(default_factory=dict)


def channel_cases(
    files: list[Path], in_channels: int, nnunet_names: bool = False
) -> ChannelCases | None:
    """``files`` grouped into nnU-Net cases when the rule of the module docstring holds, else
    ``None``. A case file that cannot be read to count its channels is left to the predict
    loop to report (``None``)."""
    try:
        grouped = group_channel_files(files)
    except DataError:  # a case lacks a channel file, e.g. scan_0001, scan_0002 (no _0000)
        return None
    if grouped is None or sum(len(paths) for _, paths in grouped) != len(files):
        return None  # a name that is not <case>_<4 digits>, or one case in two folders
    count = len(grouped[0][1])  # every case has files 0000 … count-1 (or it raised)
    if count < 2 and not nnunet_names:
        return None
    try:
        first = read_image(grouped[0][1][0])
    except DrunetError:
        return None
    if count * first.shape[2] != in_channels:
        return None
    return ChannelCases(
        inputs=[paths[0] for _, paths in grouped],
        extra_channels={paths[0]: tuple(paths[1:]) for _, paths in grouped},
        names={paths[0]: case for case, paths in grouped},
    )


def read_case(path: Path, extra_channels: tuple[Path, ...]) -> np.ndarray:
    """The image of an nnU-Net case: ``path`` (its ``_0000`` file) with the channels of
    ``extra_channels`` appended, as training reads a case (same checks: equal sizes and pixel
    types)."""
    return read_pair_image(Pair(path, path, extra_channels))
