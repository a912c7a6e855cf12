"""Headless Qt for napari, and tiny models saved the ways the widget takes them.

Qt runs offscreen (``QT_QPA_PLATFORM=offscreen``; .ci/run sets it too), but napari draws with
OpenGL, which Qt's offscreen platform gets from an X display (GLX): on Linux without
``$DISPLAY`` a virtual one is started here from Xvfb (Debian's ``xvfb``, which .ci/run
installs). napari's ``make_napari_viewer`` fixture comes from napari's pytest plugin and
``qtbot`` from pytest-qt, both in the ``dev`` extra: these tests run in CI, never skipped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from drunet.checkpoint import BEST, build_model, save_config_and_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.hub.pretrained import save_pretrained
from tests.conftest import TINY_PARAMS, randomise_batch_norms


def _virtual_display() -> None:
    """Start Xvfb on a free display number and point ``$DISPLAY`` at it until exit."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise RuntimeError(
            "napari needs an OpenGL display: install Xvfb (apt-get install xvfb) or set DISPLAY"
        )
    read, write = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # written once the server accepts clients
    if not number.isdigit():
        server.kill()
        raise RuntimeError(f"Xvfb did not start (exit code {server.wait()})")
    atexit.register(server.terminate)
    os.environ["DISPLAY"] = f":{number}"


if sys.platform.startswith("linux"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        _virtual_display()


def tiny_config(in_channels: int, num_classes: int, context_slices: int = 0) -> ExperimentConfig:
    """A tiny DRUNet's configuration; normalisation per slice channel, as training stores it."""
    channels = in_channels // (2 * context_slices + 1)
    data = {
        "root": "some/data",
        "context_slices": context_slices,
        "normalization": {"mean": [0.4] * channels, "std": [0.3] * channels},
    }
    model = {"in_channels": in_channels, "num_classes": num_classes, "params": TINY_PARAMS}
    return config_from_dict({"name": "tiny", "model": model, "data": data})


def tiny_model(config: ExperimentConfig, seed: int) -> torch.nn.Module:
    """Weights and BatchNorm statistics away from their defaults, the head's bias centring each
    class's logits on images like the tests', so that masks hold every class."""
    torch.manual_seed(seed)
    model = randomise_batch_norms(build_model(config), seed).eval()
    with torch.no_grad():
        x = (torch.rand(2, config.model.in_channels, 32, 32) - 0.4) / 0.3  # normalised uint8
        model.head.bias -= model(x).mean(dim=(0, 2, 3))
    return model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``gray``: a binary run folder (best weights + config.yaml); ``rgb``: a 3-class RGB
    ``save_pretrained`` folder; ``context``: a binary 2.5D model (one neighbour on each side)."""
    root = tmp_path_factory.mktemp("napari-models")
    gray = tiny_config(1, 2)
    save_config_and_weights(root / "gray", BEST, tiny_model(gray, 0), gray)
    rgb = tiny_config(3, 3)
    save_pretrained(tiny_model(rgb, 1), root / "rgb", rgb)
    context = tiny_config(3, 2, context_slices=1)
    save_pretrained(tiny_model(context, 2), root / "context", context)
    return {"gray": root / "gray", "rgb": root / "rgb", "context": root / "context"}
