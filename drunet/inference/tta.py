"""Test-time augmentation: predict flipped / rotated copies, undo the transform, average.

The transforms are elements of the square's symmetry group, each a flip (of no axis, the width
axis, or both axes) followed by ``k`` quarter turns:

* ``flips``: identity, horizontal, vertical and both flips (nnU-Net's 2-D mirroring);
* ``rot90``: identity and the three quarter turns;
* both: all eight symmetries of the square.

The averaged outputs are probabilities (the caller's ``forward`` applies sigmoid / softmax), so
a model that is already symmetric predicts exactly what it predicts without augmentation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from drunet.sliding import Forward

_H, _W = 2, 3  # dims of (N, C, H, W)


class Symmetry(NamedTuple):
    """Flip ``flip_dims`` of an ``(N, C, H, W)`` tensor, then rotate by ``quarter_turns``·90°."""

    flip_dims: tuple[int, ...]
    quarter_turns: int

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip_dims:
            x = torch.flip(x, self.flip_dims)
        return torch.rot90(x, self.quarter_turns, (_H, _W)) if self.quarter_turns else x

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        if self.quarter_turns:
            x = torch.rot90(x, -self.quarter_turns, (_H, _W))
        return torch.flip(x, self.flip_dims) if self.flip_dims else x


def symmetries(flips: bool = False, rot90: bool = False) -> list[Symmetry]:
    """The transforms averaged for these flags; the identity comes first."""
    if flips and rot90:
        return [Symmetry(dims, k) for dims in ((), (_W,)) for k in range(4)]
    if flips:
        return [Symmetry(dims, 0) for dims in ((), (_W,), (_H,), (_H, _W))]
    if rot90:
        return [Symmetry((), k) for k in range(4)]
    return [Symmetry((), 0)]


def with_tta(forward: Forward, flips: bool = False, rot90: bool = False) -> Forward:
    """``forward`` averaged over :func:`symmetries` (returned unchanged when there are none).

    ``forward`` maps ``(N, C, H, W)`` to ``(N, K, H, W)`` and must accept the transposed size
    ``(N, C, W, H)`` too when ``rot90`` is on (fully convolutional networks do).
    """
    transforms = symmetries(flips, rot90)
    if len(transforms) == 1:
        return forward

    def averaged(x: torch.Tensor) -> torch.Tensor:
        total = forward(x).float()  # the identity, first
        for symmetry in transforms[1:]:
            total = total + symmetry.invert(forward(symmetry.apply(x)).float())
        return total / len(transforms)

    return averaged
