"""``--device`` and ``--precision``: the options every command shares, and their one line."""

from __future__ import annotations

import os
from typing import Annotated

import torch
import typer

from drunet.cli.common import console
from drunet.device import DEVICE_ENV, PRECISIONS, resolve_device


def any_case(value: str | None) -> str | None:
    """The one case rule of flags that take a word from a fixed set (``--device CPU``,
    ``--precision FP32``, ``--backend ONNXRUNTIME``): any case, read as lower case. The command
    still checks the word and names the choices in one line."""
    return None if value is None else value.strip().lower()


DeviceOption = Annotated[
    str | None,
    typer.Option(
        callback=any_case,
        help=f"auto, cpu, cuda, cuda:N or mps (default: ${DEVICE_ENV}, else auto: CUDA, then "
        "MPS, then the CPU).",
        show_default=False,
    ),
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        callback=any_case,
        help=f"Network precision: {', '.join(PRECISIONS)} (auto: fp16/bf16 on CUDA, fp32 on CPU "
        "unless it runs bf16 natively).",
    ),
]


def chosen_device(requested: str | None) -> torch.device:
    """The device ``--device`` (or ``$DRUNET_DEVICE``, else auto) names, checked before any
    work: one that is not there is a one-line error listing those that are."""
    return resolve_device(requested)


def show_device(device: torch.device | str, precision: str | None = None) -> None:
    """The one line saying where the network runs (and in which precision)."""
    what = f"device: {device}" + (f" ({precision})" if precision else "")
    console.print(what, highlight=False, soft_wrap=True, markup=False)


def training_device(requested: str | None, configured: str) -> str | None:
    """The ``train.device`` a command sets: the flag, else ``$DRUNET_DEVICE`` where the config
    leaves the choice to auto, else ``None`` (keep the config's). Checked like ``--device``."""
    if requested is None:
        if configured != "auto" or not os.environ.get(DEVICE_ENV):
            return None
        resolve_device(None)  # the error names DRUNET_DEVICE
        return os.environ[DEVICE_ENV].strip().lower()
    resolve_device(requested)  # not on this machine: one line naming what is
    return requested.strip().lower()
