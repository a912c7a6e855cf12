"""match_files: one-to-one pairs by name; missing, extra, ambiguous and duplicates listed."""

from __future__ import annotations

from pathlib import Path

from drunet.datasets.matching import Ambiguity, match_files

L, R = Path("left"), Path("right")


def _without_mask(path: Path) -> tuple[str, ...]:
    return (path.stem, path.stem.removesuffix("_mask"))


def test_pairs_by_stem_and_lists_the_rest() -> None:
    found = match_files(
        [L / "b.png", L / "a.png", L / "c.png"], [R / "a.tif", R / "b.png", R / "z.png"]
    )
    assert found.pairs == [(L / "a.png", R / "a.tif"), (L / "b.png", R / "b.png")]
    assert found.missing == [L / "c.png"] and found.extra == [R / "z.png"]
    assert found.ambiguous == [] and found.duplicates == []


def test_a_right_file_two_left_files_name_is_ambiguous_and_unpaired() -> None:
    # truth a.png and a_mask.png, one prediction a_mask.png: it answers to both
    found = match_files(
        [L / "a.png", L / "a_mask.png"], [R / "a_mask.png"], right_names=_without_mask
    )
    assert found.pairs == [] and found.missing == [] and found.extra == []
    assert found.ambiguous == [Ambiguity(R / "a_mask.png", (L / "a.png", L / "a_mask.png"))]


def test_a_left_file_with_two_candidates_is_ambiguous() -> None:
    found = match_files([L / "a.png"], [R / "a.png", R / "a_mask.png"], right_names=_without_mask)
    assert found.pairs == []
    assert found.ambiguous == [Ambiguity(L / "a.png", (R / "a.png", R / "a_mask.png"))]


def test_first_wins_keeps_the_first_of_one_name_and_lists_the_others() -> None:
    found = match_files(
        [L / "a.tif", L / "a.png"], [R / "a.png", R / "b.png", R / "b.tif"], first_wins=True
    )
    assert found.pairs == [(L / "a.png", R / "a.png")]  # a.png sorts before a.tif
    assert found.duplicates == [(L / "a.png", L / "a.tif"), (R / "b.png", R / "b.tif")]
    assert found.extra == [R / "b.png"] and found.ambiguous == []
    strict = match_files([L / "a.tif", L / "a.png"], [R / "a.png"])
    assert strict.pairs == [] and strict.ambiguous == [
        Ambiguity(R / "a.png", (L / "a.png", L / "a.tif"))
    ]


def test_order_follows_the_names_not_the_paths() -> None:
    # "a-1.png" sorts before "a.png" as a path but "a" < "a-1" as a stem
    found = match_files([L / "a-1.png", L / "a.png"], [R / "a.png", R / "a-1.png"])
    assert found.pairs == [(L / "a.png", R / "a.png"), (L / "a-1.png", R / "a-1.png")]
