"""nnU-Net channel files group into one multi-channel input per case, as training reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from drunet.datasets.nnunet import group_channel_files
from drunet.errors import DataError


def names(*stems: str) -> list[Path]:
    return [Path("imagesTs") / f"{stem}.png" for stem in stems]


def test_channel_files_group_per_case_in_channel_order() -> None:
    grouped = group_channel_files(names("b_0001", "a_0000", "b_0000", "a_0001"))
    assert grouped == [
        ("a", names("a_0000", "a_0001")),
        ("b", names("b_0000", "b_0001")),
    ]


def test_one_channel_cases_keep_their_case_name() -> None:
    assert group_channel_files(names("liver_7_0000")) == [("liver_7", names("liver_7_0000"))]


def test_plain_images_are_not_grouped() -> None:
    assert group_channel_files(names("a_0000", "slide")) is None
    assert group_channel_files(names("img_000")) is None  # three digits: not nnU-Net's


def test_a_missing_channel_names_the_case_and_file() -> None:
    with pytest.raises(DataError, match=r"case 'b' has no channel file b_0001\.png"):
        group_channel_files(names("a_0000", "a_0001", "b_0000"))
