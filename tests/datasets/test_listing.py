"""Message lists: the first few items and a count of the rest; integer runs."""

from __future__ import annotations

import pytest

from drunet.datasets.listing import format_ranges, join_limited


@pytest.mark.parametrize(
    ("items", "kwargs", "expected"),
    [
        (["a", "b"], {}, "a, b"),
        ([], {}, ""),
        (list("abcd"), {"shown": 3}, "a, b, c … and 1 more"),
        (list("abc"), {"shown": 3}, "a, b, c"),
        (["x: y", "z: w"], {"shown": 1, "sep": "; "}, "x: y … and 1 more"),
        (["red", "blue"], {"total": 40}, "red, blue … and 38 more"),  # only the first formatted
    ],
)
def test_join_limited(items, kwargs, expected):
    assert join_limited(items, **kwargs) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 2, 3, 4, 7], "0, 2-4, 7"), ([5], "5"), ([], ""), (list(range(1, 65535)), "1-65534")],
)
def test_format_ranges(values, expected):
    assert format_ranges(values) == expected
