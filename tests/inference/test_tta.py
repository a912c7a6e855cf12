"""Test-time augmentation: the symmetries, their inverses, and averages known by hand."""

from __future__ import annotations

import pytest
import torch

from drunet.inference.tta import symmetries, with_tta


@pytest.mark.parametrize(
    ("flips", "rot90", "count"),
    [(False, False, 1), (True, False, 4), (False, True, 4), (True, True, 8)],
)
def test_symmetries_are_distinct_and_undone_by_invert(flips: bool, rot90: bool, count: int) -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    transforms = symmetries(flips, rot90)
    assert len(transforms) == count
    assert transforms[0].apply(x) is x  # the identity first
    images = {tuple(t.apply(x).flatten().tolist()) for t in transforms}
    assert len(images) == count  # every transform moves the pixels differently
    for t in transforms:
        assert torch.equal(t.invert(t.apply(x)), x)


def test_rot90_handles_non_square_inputs() -> None:
    x = torch.randn(1, 1, 4, 7)
    for t in symmetries(True, True):
        assert torch.equal(t.invert(t.apply(x)), x)


def test_no_augmentation_returns_forward_itself() -> None:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x

    assert with_tta(forward) is forward


@pytest.mark.parametrize(("flips", "rot90"), [(True, False), (False, True), (True, True)])
def test_a_pixelwise_model_is_unchanged(flips: bool, rot90: bool) -> None:
    x = torch.randn(2, 1, 6, 9, generator=torch.Generator().manual_seed(0))
    out = with_tta(torch.sigmoid, flips, rot90)(x)
    # The mean of 4 or 8 equal values: float32 rounding of the running sum only.
    torch.testing.assert_close(out, torch.sigmoid(x), rtol=0, atol=4e-7)


def test_flips_average_a_column_ramp_by_hand() -> None:
    # forward outputs its column index j (0 … W-1) whatever the input. Flipping the width maps
    # j to W-1-j and back, so the average of identity, h-flip, v-flip and both is
    # (j + (W-1-j) + j + (W-1-j)) / 4 = (W-1)/2 everywhere.
    def column(x: torch.Tensor) -> torch.Tensor:
        return torch.arange(x.shape[3], dtype=torch.float32).expand(x.shape[0], 1, *x.shape[2:])

    out = with_tta(column, flips=True)(torch.zeros(1, 1, 3, 8))
    assert torch.equal(out, torch.full((1, 1, 3, 8), 3.5))


def test_rotations_average_a_row_ramp_by_hand() -> None:
    # forward outputs the row index i of the (rotated) input. Under the four quarter turns of a
    # square n × n image, pixel (i, j) sees rows i, j, n-1-i, n-1-j: the mean is (n-1)/2.
    def row(x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(x.shape[2], dtype=torch.float32)[:, None]
        return rows.expand(*x.shape[2:]).expand(x.shape[0], 1, *x.shape[2:])

    out = with_tta(row, rot90=True)(torch.zeros(1, 1, 5, 5))
    assert torch.equal(out, torch.full((1, 1, 5, 5), 2.0))
    identity_only = row(torch.zeros(1, 1, 5, 5))
    assert not torch.equal(identity_only, out)
