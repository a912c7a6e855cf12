"""Option models parse what users write, forbid unknown keys and explain bad values."""

from __future__ import annotations

import pytest

from drunet.datasets import AugmentationOptions, LayoutOptions, MaskOptions, NormalizationOptions
from drunet.datasets.options import parse_colour


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("255,0,0", (255, 0, 0)),
        (" 0, 128 ,255 ", (0, 128, 255)),
        ("(1, 2, 3)", (1, 2, 3)),
        ("#FF8000", (255, 128, 0)),
        ("00ff00", (0, 255, 0)),
    ],
)
def test_colours_are_parsed(text, rgb):
    assert parse_colour(text) == rgb


@pytest.mark.parametrize("text", ["256,0,0", "red", "#ff00", "1,2", "-1,0,0"])
def test_bad_colours_explain_the_format(text):
    with pytest.raises(ValueError, match=r'"R,G,B" with values 0-255'):
        parse_colour(text)


def test_colour_map_keys_are_stored_canonically():
    options = MaskOptions(colour_map={"#FF0000": 1, "(0, 0, 0)": 0})
    assert options.colour_map == {"255,0,0": 1, "0,0,0": 0}
    assert options.colour_table() == {(255, 0, 0): 1, (0, 0, 0): 0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"colour_map": {"#ff0000": 1, "255,0,0": 2}}, "twice"),
        ({"colour_map": {}}, "empty"),
        ({"colour_map": {"0,0,0": -1}}, "start at 0"),
        ({"class_names": ["only"]}, "at least one class"),
        ({"class_names": ["bg", "cell", "cell"]}, "repeats"),
        ({"class_names": ["bg", "cell"], "ignore_index": 1}, "also class 'cell'"),
        ({"class_names": ["bg", "cell"], "colour_map": {"1,1,1": 2}}, "beyond the 2 class_names"),
        ({"ignore_index": -1}, "greater than or equal to 0"),
        ({"ignore": 255}, "Extra inputs"),
    ],
)
def test_bad_mask_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskOptions(**kwargs)


def test_class_names_fix_the_number_of_classes():
    assert MaskOptions(class_names=["background", "membrane"]).num_classes == 2
    assert MaskOptions().num_classes is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": "imgs"}, "both images and masks"),
        ({"fold": 5, "folds": 5}, "fold 5 does not exist"),
        ({"folds": 1}, "greater than or equal to 2"),
        ({"val_fraction": 1.0}, "less than 1"),
    ],
)
def test_bad_layout_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayoutOptions(**kwargs)


@pytest.mark.parametrize(("mean", "std"), [([0.5], [0.1, 0.2]), ([], []), ([0.5], [0.0])])
def test_bad_mean_and_std_are_rejected(mean, std):
    with pytest.raises(ValueError):
        NormalizationOptions(mean=mean, std=std)


def test_options_round_trip_through_json():
    for options in (
        MaskOptions(class_names=["a", "b"], colour_map={"#000000": 0}, ignore_index=255),
        NormalizationOptions(clip_percentiles=(1, 99), mean=[0.1], std=[0.2]),
        AugmentationOptions(ops=[{"name": "Affine", "rotate": [-10, 10], "p": 0.3}]),
        LayoutOptions(images="a", masks="b", fold=2),
    ):
        again = type(options).model_validate_json(options.model_dump_json())
        assert again == options
