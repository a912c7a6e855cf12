"""The npe2 manifest: valid, found through the package's entry point, its commands importable;
napari and Qt imported by the plugin only, and a missing extra named in one line."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import npe2
import pytest

import drunet.napari
from drunet.napari.widget import SegmentWidget

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = Path(drunet.napari.__file__).parent / "napari.yaml"


def test_the_manifest_is_valid_and_its_commands_import() -> None:
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "drunet"
    commands = {c.id: c.python_name for c in manifest.contributions.commands or []}
    for python_name in commands.values():
        module, name = python_name.split(":")
        assert callable(getattr(importlib.import_module(module), name))
    assert commands["drunet.segment"] == "drunet.napari.widget:SegmentWidget"
    (widget,) = manifest.contributions.widgets or []
    (reader,) = manifest.contributions.readers or []
    assert (widget.command, reader.command) == ("drunet.segment", "drunet.read")
    assert set(reader.filename_patterns) == {"*_mask.png", "*_mask.tif", "*_probs.tif"}


def test_pyproject_declares_the_manifest_and_ships_it() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["napari.manifest"] == {
        "drunet": "drunet.napari:napari.yaml"
    }
    assert "napari.yaml" in project["tool"]["setuptools"]["package-data"]["drunet.napari"]
    extras = project["project"]["optional-dependencies"]
    assert any(name.startswith("napari") for name in extras["napari"])
    assert any("napari" in name for name in extras["dev"])
    assert any(name.startswith("pytest-qt") for name in extras["dev"])


def test_the_dock_widget_comes_from_the_manifest(make_napari_viewer, npe2pm) -> None:
    npe2pm.register(str(MANIFEST))
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("drunet", "Segment")
    assert isinstance(widget, SegmentWidget)


# One interpreter (torch imports once): drunet, its CLI and the plugin's Qt-free modules load
# no GUI package; then, as without a Qt binding, the widget's import is one DrunetError line.
SCRIPT = """
import sys
import drunet, drunet.cli.main, drunet.inference
import drunet.napari, drunet.napari.reader, drunet.napari.volume
gui = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"}
print(sorted(gui & {name.split(".")[0] for name in sys.modules}))
sys.modules["qtpy"] = None
try:
    import drunet.napari.widget
except Exception as err:
    print(type(err).__name__, err)
"""


def test_drunet_and_the_cli_never_import_napari_and_a_missing_extra_is_named() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    imported, error = out.stdout.strip().splitlines()
    assert imported == "[]"
    assert error.startswith("DrunetError the napari plugin needs napari and a Qt binding")
    assert error.endswith('pip install "drunet[napari]"')
