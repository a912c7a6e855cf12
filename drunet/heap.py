"""Keep freed CPU memory in the process for the next step (glibc only).

PyTorch's CPU tensors come from ``malloc``. glibc serves blocks above its mmap threshold
(dynamic, at most 32 MiB on 64-bit) with a fresh ``mmap``, unmaps them on ``free`` and gives
the heap's free top back to the system, so a training step or a sliding window whose buffers are
that large faults in and zeroes their pages again every time: the default DRUNet's float32
training step at 8 × 3 × 256² took ~310,000 minor page faults
(``benchmarks/bench_train_bf16.py --variants fp32 --batch 8`` prints them).

:func:`keep_freed_memory` turns glibc's ``mmap`` path off (``M_MMAP_MAX = 0``) and stops it
trimming the heap (``M_TRIM_THRESHOLD`` at its maximum): a freed block stays mapped and the next
step reuses it: the default's float32 training step at batch 8 and the prediction of a 2048²
image both ran 1.31–1.32× as fast (``benchmarks/bench_heap.py``, fresh processes alternately).
The memory is no longer given back between steps, so the resident size stays at the process's
peak, and a training peak grows — freed blocks not at the heap's top do not always fit the next
request (+14–18 % at batch 8; prediction's peak did not move, 0.94–1.03×). Training and the
Predictor call it on the CPU; ``DRUNET_KEEP_HEAP=0`` leaves glibc as it is. On another C library
(macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

from drunet.errors import DrunetError

HEAP_ENV = "DRUNET_KEEP_HEAP"
_M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse; ``True`` if it does (set once per process).

    ``DRUNET_KEEP_HEAP=0`` turns it off; any value other than 0 or 1 is a :class:`DrunetError`.
    """
    setting = os.environ.get(HEAP_ENV, "").strip()
    if setting not in ("", "0", "1"):
        raise DrunetError(
            f"{HEAP_ENV} {setting!r} must be 1 (keep freed memory for reuse, the default) or 0 "
            "(let the C library give it back)"
        )
    return setting != "0" and _set_once()


@functools.cache
def _set_once() -> bool:
    if platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = ctypes.CDLL(name).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; both calls run even if the first fails.
    return bool(mallopt(_M_MMAP_MAX, 0)) & bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
