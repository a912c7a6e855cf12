"""What the fuzz tests feed drunet: damaged image/mask files, random masks, configs, overrides.

Strategies only; the properties are in test_fuzz.py. Every example writes into its own
temporary folder (hypothesis reuses a test's ``tmp_path`` for all of its examples).
"""

from __future__ import annotations

import faulthandler
import operator
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from hypothesis import strategies as st
from pydantic import BaseModel

from drunet.config import ExperimentConfig, config_to_dict
from drunet.datasets import ALLOWED_OPS, MaskOptions
from drunet.models.registry import FAMILIES
from tests.datasets.test_formats import _palette_png, _tiff_with_samples

HANG_SECONDS = 60  # one example takes milliseconds; far beyond this it is stuck, not slow


@contextmanager
def fresh_folder() -> Iterator[Path]:
    """An empty folder per example (``tmp_path`` is shared by all of a test's examples)."""
    with tempfile.TemporaryDirectory(prefix="drunet-fuzz-") as folder:
        # A hang becomes a crash printing every thread's stack instead of a stuck suite.
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=sys.__stderr__)
        try:
            yield Path(folder)
        finally:
            faulthandler.cancel_dump_traceback_later()


@contextmanager
def written(data: bytes, name: str) -> Iterator[Path]:
    with fresh_folder() as folder:
        path = folder / name
        path.write_bytes(data)
        yield path


# ---- file names and file contents -----------------------------------------------------------

_NAME_CHARS = st.characters(exclude_characters="/\x00", exclude_categories=("Cs",))
_STEMS = st.text(_NAME_CHARS, min_size=1, max_size=16).filter(lambda s: s not in (".", ".."))
IMAGE_NAME_SUFFIXES = ("", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".txt")
MASK_NAME_SUFFIXES = (".png", ".tif", ".tiff")


def file_names(suffixes: tuple[str, ...] = IMAGE_NAME_SUFFIXES) -> st.SearchStrategy[str]:
    """Any stem (spaces, accents, emoji, control characters) with a suffix, sometimes upper."""
    suffix = st.sampled_from(suffixes).flatmap(lambda s: st.sampled_from([s, s.upper()]))
    return st.builds(operator.add, _STEMS, suffix)


MAGIC = (b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"\xff\xd8\xff", b"BM")


def random_files() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, bare or behind a real PNG / TIFF / JPEG / BMP magic number."""
    tail = st.binary(max_size=600)
    return tail | st.builds(operator.add, st.sampled_from(MAGIC), tail)


# Pixel types and channel counts OpenCV encodes natively per format. TIFF takes signed integers
# too (read_image must refuse them with a DataError, read_mask may accept them) and float64
# (narrowed to float32).
_ENCODINGS = {
    ".png": ((np.uint8, np.uint16), (1, 3, 4)),
    ".tif": ((np.uint8, np.uint16, np.int8, np.int16, np.int32, np.float32, np.float64), (1, 3, 4)),
    ".jpg": ((np.uint8,), (1, 3)),
    ".bmp": ((np.uint8,), (1, 3)),
}
PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (1, 2, 3)]


def _pixels(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: type, classes: bool = False
) -> np.ndarray:
    if classes:  # a mask's class indices (0/255 too), so that masks get past decoding
        return rng.choice(np.array([0, 1, 2, 255]), shape).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), info.max, shape, endpoint=True).astype(dtype)


def file_bytes(write: Callable[[Path], None], name: str) -> bytes:
    with fresh_folder() as folder:
        write(folder / name)
        return (folder / name).read_bytes()


@st.composite
def encoded_files(draw: st.DrawFn, masks: bool = False) -> bytes:
    """A small valid file: PNG/TIFF/JPEG/BMP, multi-page TIFF, 5-sample TIFF or palette PNG.

    ``masks``: single-channel files of a few class indices, as masks are.
    """
    kind = draw(st.sampled_from([*_ENCODINGS, "pages", "samples", "palette"]))
    shape = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "palette":
        indices = rng.integers(0, len(PALETTE), shape)
        return file_bytes(lambda path: _palette_png(path, indices, PALETTE), "seed.png")
    if kind == "samples":  # SamplesPerPixel 5: OpenCV cannot decode it, drunet must say so
        pixels = _pixels(rng, (*shape, 5), np.uint8)
        return file_bytes(lambda path: _tiff_with_samples(path, pixels), "seed.tif")
    if kind == "pages":
        dtype = draw(st.sampled_from(_ENCODINGS[".tif"][0]))
        pages = [_pixels(rng, shape, dtype, masks) for _ in range(draw(st.integers(2, 5)))]
        ok, buffer = cv2.imencodemulti(".tif", pages)
    else:
        dtypes, channels = _ENCODINGS[kind]
        depth = 1 if masks else draw(st.sampled_from(channels))
        pixels = _pixels(rng, (*shape, depth), draw(st.sampled_from(dtypes)), masks)
        ok, buffer = cv2.imencode(kind, pixels[:, :, 0] if depth == 1 else pixels)
    assert ok, kind
    return buffer.tobytes()


def fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute every whole chunk's CRC so flipped bytes reach the decoder, not the checksum."""
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        if end > len(data):
            break
        crc = zlib.crc32(data[position + 4 : end - 4])
        data[end - 4 : end] = crc.to_bytes(4, "big")
        position = end
    return data


def set_size(data: bytearray, width: int, height: int) -> bytearray:
    """Overwrite the image size a PNG, BMP, JPEG (16 bits) or TIFF header declares."""
    if data.startswith(MAGIC[0]):  # IHDR: width, height (big-endian), then the CRC is fixed
        data[16:24] = struct.pack(">II", width, height)
    elif data.startswith(b"BM"):  # BITMAPINFOHEADER: signed; a negative height means top-down
        data[18:26] = struct.pack("<II", width, height)
    elif data.startswith(b"\xff\xd8") and (sof := data.find(b"\xff\xc0")) > 0:
        if max(width, height) > 0xFFFF:  # 16-bit fields: 65535 x 65535 is over the limit
            width = height = 0xFFFF
        data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    elif data[:4] in MAGIC[1:3]:  # the first IFD's ImageWidth (256) and ImageLength (257)
        order = "<" if data.startswith(b"II") else ">"
        try:
            (offset,) = struct.unpack_from(order + "I", data, 4)
            (count,) = struct.unpack_from(order + "H", data, offset)
            for start in range(offset + 2, min(offset + 2 + 12 * count, len(data) - 11), 12):
                tag, kind = struct.unpack_from(order + "HH", data, start)
                if tag in (256, 257):  # SHORT (3) fills the first half of the value field
                    value = width if tag == 256 else height
                    field = ("HH", value & 0xFFFF, 0) if kind == 3 else ("I", value)
                    data[start + 8 : start + 12] = struct.pack(order + field[0], *field[1:])
        except struct.error:
            pass
    return data


@st.composite
def corrupted_files(draw: st.DrawFn, masks: bool = False) -> bytes:
    """A valid file truncated, with random bytes flipped or declaring a random size."""
    data = bytearray(draw(encoded_files(masks)))
    how = draw(st.sampled_from(["truncate", "flip", "flip+crc", "flip+truncate", "size+crc"]))
    if "size" in how:
        # Small, or beyond every pixel limit, never just under one: libjpeg fills a truncated
        # JPEG with gray, so a 300-byte file declaring 30000 x 30000 decodes to gigabytes
        # (allowed up to DRUNET_MAX_IMAGE_PIXELS), which a fuzzer on a shared machine must not.
        side = st.integers(0, 1024) | st.integers(2**30, 2**32 - 1)
        data = set_size(data, draw(side), draw(side))
    if "flip" in how:
        # Headers decide most of decoding; the magic number itself is left alone here
        # (random_files covers that), so the decoders see a damaged file, not a foreign one.
        magic = next(len(m) for m in MAGIC if data.startswith(m))
        for _ in range(draw(st.integers(1, 8))):
            header = st.integers(magic, max(magic, min(len(data), 64) - 1))
            payload = st.integers(len(data) // 2, len(data) - 1)  # pixels: often still decodes
            where = draw(header | payload | st.integers(0, len(data) - 1))
            data[where] ^= draw(st.integers(1, 255))
    if "crc" in how and data.startswith(MAGIC[0]):
        data = fix_png_crcs(data)
    if "truncate" in how:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


def any_files(masks: bool = False) -> st.SearchStrategy[bytes]:
    return random_files() | corrupted_files(masks)


# ---- masks ----------------------------------------------------------------------------------

_COLOUR_MAPS = st.none() | st.just({"0,0,0": 0, "255,0,0": 1, "#00ff00": 2})
mask_options = st.builds(
    MaskOptions,
    ignore_index=st.none() | st.just(255) | st.integers(0, 65535),
    binary_255=st.booleans(),
    colour_map=_COLOUR_MAPS,
)


_SHAPES = (
    st.just((1, 1))
    | st.tuples(st.integers(1, 3), st.integers(100, 700))  # a line scan
    | st.tuples(st.integers(100, 700), st.integers(1, 3))
    | st.tuples(st.integers(1, 40), st.integers(1, 40))
)
_VALUE_SETS = (
    st.sampled_from([[0, 255], [255], [0, 1, 255], [0, 254, 255]])  # the 0/255 rule's edges
    | st.lists(
        st.sampled_from([0, 1, 2, 7, 254, 255, 256, 65535]), min_size=1, max_size=4, unique=True
    )
    | st.lists(st.integers(0, 65535), min_size=1, max_size=6, unique=True)
)


@st.composite
def index_masks(draw: st.DrawFn) -> np.ndarray:
    """``(H, W)`` uint8/uint16 class indices from a random value set, any aspect ratio."""
    values = draw(_VALUE_SETS)
    dtype = np.uint16 if max(values) > 255 or draw(st.booleans()) else np.uint8
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return np.asarray(values, dtype)[rng.integers(0, len(values), draw(_SHAPES))]


# ---- configuration --------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
)
_KEYS = st.text(max_size=12) | st.integers(-3, 300) | st.booleans() | st.none()  # YAML keys
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
# Values a real file would hold somewhere, so many examples get past the type checks.
_PLAUSIBLE = st.sampled_from(
    [0, 1, 2, 3, 5, -1, 0.0, 0.5, 1.0, 1e-3, 255, 256, "auto", "none", "light", "strong"]
    + ["adamw", "sgd", "cosine", "poly", "cpu", "cuda", "dice", "iou", "dataset", "imagenet"]
    + ["drunet", "unet_resnet34", "runs", "data/em", [0.5, 99.5], [0.5], [0.1, 0.2], [], {}]
)
_OPS = st.lists(
    st.builds(
        lambda name, p, extra: {**extra, "name": name, **p},
        st.sampled_from(ALLOWED_OPS) | st.text(max_size=8),
        st.just({}) | st.builds(lambda p: {"p": p}, _PLAUSIBLE | _SCALARS),
        st.dictionaries(_KEYS, JSON, max_size=3),
    ),
    max_size=3,
)
_SPECIAL = {  # keys whose values have structure of their own
    "ops": _OPS,
    "colour_map": st.dictionaries(
        st.sampled_from(["0,0,0", "255,0,0", "(1, 2, 3)", "#ff0000", "ff00"]) | st.text(max_size=8),
        st.integers(-2, 300) | JSON,
        max_size=3,
    ),
    "class_names": st.lists(st.sampled_from(["background", "cell", "membrane"]), max_size=4),
    "loss": st.none()
    | st.lists(
        st.dictionaries(
            st.sampled_from(["name", "weight", "gamma"]) | _KEYS, _PLAUSIBLE | JSON, max_size=3
        ),
        max_size=3,
    ),
}


def _sections(model: type[BaseModel]) -> st.SearchStrategy[dict[Any, Any]]:
    """A dict for one config section: some real keys with plausible values, maybe a typo."""

    @st.composite
    def section(draw: st.DrawFn) -> dict[Any, Any]:
        fields, defaults = model.model_fields, model().model_dump(mode="json")
        out: dict[Any, Any] = {}
        names = sorted(fields)
        for name in (
            draw(st.lists(st.sampled_from(names), unique=True, max_size=5)) if names else []
        ):
            kind = fields[name].annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel) and draw(st.booleans()):
                out[name] = draw(_sections(kind))
            else:
                value = _PLAUSIBLE | st.just(defaults.get(name)) | JSON
                out[name] = draw(_SPECIAL.get(name, value))
        if draw(st.integers(0, 7)) == 0:  # a typo or a key from another version
            out[draw(_KEYS)] = draw(JSON)
        return out

    return section()


# model.params is typed by the family model.name picks (the registry's params classes): draw
# any family's keys, so a drunet name may meet smp keys (an error naming them) and the reverse.
_SPECIAL["params"] = st.deferred(
    lambda: st.one_of(*(_sections(family.params) for family in FAMILIES))
)
config_dicts = _sections(ExperimentConfig)


def _dumped(data: dict[Any, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def _edited(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A text with a few spans deleted or replaced by random text (a hand edit gone wrong)."""
    text = draw(texts)
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        text = (
            text[:start]
            + draw(st.text(max_size=4) | st.sampled_from(":-[]{}&*!|>#'\"\t\n"))
            + text[end:]
        )
    return text


# "[[[[…]]]]" or "{a: {a: …}}" up to 1000 deep, closed or not: PyYAML recurses per level
# (about 330 levels is its limit) and scans such text in quadratic time, so no deeper.
_NESTED = st.builds(
    lambda depth, pair, closed: pair[0] * depth + (pair[1] * depth if closed else ""),
    st.integers(1, 1000),
    st.sampled_from([("[", "]"), ("{a: ", "}")]),
    st.booleans(),
)
_ENCODINGS_OF_TEXT = st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"])
yaml_files = st.builds(
    lambda text, encoding: text.encode(encoding, errors="replace"),
    _edited(st.builds(_dumped, config_dicts))
    | st.text()
    | st.builds("model:\n  params:\n    x: {}\n".format, _NESTED)
    | st.builds("{}: {}\n".format, st.sampled_from(["loss", "typo"]), _NESTED),
    _ENCODINGS_OF_TEXT,
) | st.binary(max_size=300)


def _dotted(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``("train.lr", 0.001)`` for every key, sections included, with its value."""
    found = []
    for key, value in data.items():
        found.append((prefix + key, value))
        if isinstance(value, dict):
            found += _dotted(value, prefix + key + ".")
    return found


_DEFAULTS = _dotted(config_to_dict(ExperimentConfig()))


def _flow(value: Any) -> str:
    """A value as one would type it after ``--set key=``."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).split("\n...")[0]


@st.composite
def _override(draw: st.DrawFn) -> str:
    key, default = draw(st.sampled_from(_DEFAULTS))
    key = draw(st.just(key) | st.builds(f"{key}.{{}}".format, st.text(max_size=6)))
    value = draw(
        st.just(_flow(default)) | _PLAUSIBLE.map(_flow) | JSON.map(_flow) | st.text() | _NESTED
    )
    return f"{key}={value}"


overrides = st.lists(st.one_of(_override(), _override(), st.text(max_size=20)), max_size=4)
