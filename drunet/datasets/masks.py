"""Mask files → class indices: gray index masks, 0/255 masks, palette PNGs, colour-coded masks.

Rules, in order:
  1. A palette PNG gives its palette *indices* (the colours are only for viewing). OpenCV
     expands palettes to RGB, so these files are decoded with Pillow (imported lazily; it is
     installed with matplotlib, a drunet dependency).
  2. A colour mask (3 or 4 channels) is mapped through ``MaskOptions.colour_map``; without a map
     it must be gray stored as RGB (all channels equal), else it is an error that lists the
     colours found and suggests a map.
  3. Values must be non-negative integers (float TIFFs holding whole numbers are accepted).
  4. 0/255 rule: a mask whose values are a subset of {0, 255} including 255 is a binary mask
     saved for viewing and 255 becomes 1 (``binary_255``; never when ``ignore_index`` is 255).
     A mask with any other value next to 255 keeps 255 as it is.
  5. ``ignore_index`` is kept as it is: losses and metrics skip it; it is not a class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.datasets.io import FIX_HINT, check_size, decode_bytes, decode_frames, read_bytes
from drunet.datasets.listing import join_limited
from drunet.datasets.options import MaskOptions
from drunet.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE = 3  # PNG colour type of indexed-colour images
_MAX_COLOURS_LISTED = 8
_INDEX_FIX = "save the mask as class indices 0, 1, 2, … in an 8- or 16-bit PNG"


@dataclass(frozen=True)
class DecodedMask:
    """A mask as read: final ``(H, W)`` int64 indices and how they were obtained.

    ``values`` are the distinct values *before* the 0/255 rule (sorted), ``binary_255`` tells
    whether that rule turned 255 into 1, ``source`` is ``"index"``, ``"palette"`` or ``"colour"``.
    """

    mask: np.ndarray
    values: np.ndarray
    binary_255: bool
    source: str


def read_mask(
    path: str | Path, options: MaskOptions | None = None, page: int | None = None
) -> np.ndarray:
    """Read a mask of class indices as ``(H, W)`` int64 (see the module rules).

    ``page`` reads one frame of a multi-page TIFF stack of masks.
    """
    return decode_mask(path, options, page).mask


def decode_mask(
    path: str | Path, options: MaskOptions | None = None, page: int | None = None
) -> DecodedMask:
    """Read a mask and report how its values came about (``verify`` uses the details)."""
    path = Path(path)
    options = options or MaskOptions()
    data = read_bytes(path, "mask")
    source = "index"
    if _is_palette_png(data) and page in (None, 0):
        check_size(data, "PNG", path, "mask")  # Pillow would decode any size
        mask, source = _palette_indices(data, path), "palette"
    elif page is not None:  # one slice of a stack
        mask = decode_frames(data, path, "mask", page).array[0]
        mask, source = _colour_to_index(mask, path, options)
    else:
        mask, pages = decode_bytes(data, path, "mask")
        if pages:
            raise DataError(
                f"cannot use mask {path}: it is a TIFF of {mask.shape[2]} pages; a mask is one "
                "page, or, in a dataset, a stack with one page per page of its image stack — "
                f"{_INDEX_FIX}"
            )
        if mask.ndim == 3:
            mask, source = _colour_to_index(mask, path, options)
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.isfinite(mask)) or not np.array_equal(mask, np.round(mask)):
            raise DataError(
                f"cannot use mask {path}: it holds fractional or non-finite values "
                f"({mask.dtype}); {_INDEX_FIX}"
            )
        if mask.size and mask.min() >= 0:
            mask = mask.astype(np.int64)
    if mask.size and mask.min() < 0:
        raise DataError(
            f"cannot use mask {path}: it holds negative values (min {mask.min()}); {_INDEX_FIX}"
        )
    values = mask_values(mask)
    binary = (
        options.binary_255
        and options.ignore_index != 255
        and values.size > 0
        and values[-1] == 255
        and bool(np.all((values == 0) | (values == 255)))
    )
    final = (mask == 255).astype(np.int64) if binary else mask.astype(np.int64)
    return DecodedMask(final, values, binary, source)


def mask_values(mask: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer mask (a bincount for 8/16-bit masks: fast)."""
    if mask.size == 0:
        return np.zeros(0, np.int64)
    if mask.dtype.kind in "ui" and mask.min() >= 0 and mask.max() < 2**16:
        return np.flatnonzero(np.bincount(mask.ravel().astype(np.intp, copy=False)))
    return np.unique(mask).astype(np.int64)


def _is_palette_png(data: np.ndarray) -> bool:
    # IHDR is always the first chunk: signature (8) + length (4) + "IHDR" (4) + 13 bytes of data,
    # of which byte 9 (file offset 25) is the colour type.
    head = bytes(data[:26])
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[25] == _PALETTE


def _palette_indices(data: np.ndarray, path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError(
            f"cannot read mask {path}: it is a palette PNG, which needs Pillow to read its "
            "indices; pip install pillow, or re-save it as a gray PNG of class indices"
        ) from None
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            image.load()
            if image.mode != "P":  # e.g. "PA": palette + alpha, rare
                raise DataError(
                    f"cannot use mask {path}: palette PNG in mode {image.mode}; {_INDEX_FIX}"
                )
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError):
        raise DataError(
            f"cannot read mask {path}: the palette PNG could not be decoded (truncated or "
            f"corrupt); {FIX_HINT}"
        ) from None
    except Image.DecompressionBombError as err:  # a huge (or corrupt) size in the header
        raise DataError(
            f"cannot read mask {path}: {str(err).rstrip('.')} (the header of a corrupt file, "
            "or a mask too large for Pillow); if the mask is genuine, re-save it as a gray PNG "
            "of class indices, or split it into tiles"
        ) from None


def _colour_to_index(
    pixels: np.ndarray, path: Path, options: MaskOptions
) -> tuple[np.ndarray, str]:
    """``(H, W, C)`` RGB(A) → ``(H, W)``: through the colour map, or gray if channels agree."""
    channels = pixels.shape[2]
    if channels == 1:
        return pixels[:, :, 0], "index"
    if channels not in (3, 4):
        raise DataError(
            f"cannot use mask {path}: it has {channels} channels; a mask is one channel of "
            f"class indices (or an RGB colour mask with masks.colour_map) — {_INDEX_FIX}"
        )
    rgb = pixels[:, :, :3]
    table = options.colour_table()
    if table:
        return _apply_colour_map(rgb, table, path), "colour"
    if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2]):
        return rgb[:, :, 0], "index"
    raise DataError(
        f"cannot use mask {path}: it is a colour-coded mask ({_colour_listing(rgb)}) and no "
        f"colour map is set; set masks.colour_map, e.g. {_suggested_map(rgb)}, or convert it to "
        "a single-channel PNG of class indices 0, 1, 2, …"
    )


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[:, :, 0] << 32) | (rgb[:, :, 1] << 16) | rgb[:, :, 2]  # 16-bit safe


def _key_colour(key: int) -> tuple[int, int, int]:
    return (key >> 32) & 0xFFFF, (key >> 16) & 0xFFFF, key & 0xFFFF


def _apply_colour_map(
    rgb: np.ndarray, table: dict[tuple[int, int, int], int], path: Path
) -> np.ndarray:
    keys = _colour_keys(rgb)  # (H, W)
    known = np.array(sorted((r << 32) | (g << 16) | b for r, g, b in table), dtype=np.int64)
    classes = np.array([table[_key_colour(int(k))] for k in known], dtype=np.int64)
    where = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
    matched = known[where] == keys
    if not matched.all():
        unknown, counts = np.unique(keys[~matched], return_counts=True)
        order = np.argsort(-counts)[:_MAX_COLOURS_LISTED]
        listed = [
            f"{','.join(map(str, _key_colour(int(unknown[i]))))} ({counts[i]} px)" for i in order
        ]
        raise DataError(
            f"cannot use mask {path}: {len(unknown)} colour(s) are not in masks.colour_map: "
            f"{join_limited(listed, total=len(unknown))}; add them to the map "
            '("R,G,B": class), or re-export the mask without anti-aliasing or JPEG compression '
            "so it holds only the mapped colours"
        )
    return classes[where]


def _colour_listing(rgb: np.ndarray) -> str:
    keys, counts = np.unique(_colour_keys(rgb), return_counts=True)
    order = np.argsort(-counts)[:_MAX_COLOURS_LISTED]
    shown = [str(_key_colour(int(keys[i]))) for i in order]
    return f"{len(keys)} colours: {join_limited(shown, total=len(keys))}"


def _suggested_map(rgb: np.ndarray) -> str:
    keys, counts = np.unique(_colour_keys(rgb), return_counts=True)
    order = np.argsort(-counts)[:_MAX_COLOURS_LISTED]  # the most frequent colour → background
    items = [f'"{",".join(map(str, _key_colour(int(keys[i]))))}": {n}' for n, i in enumerate(order)]
    return "{" + ", ".join(items) + "}"
