"""The package's import layers: a module imports only from its own layer or the ones below.

cli → compare / inference / export / engine / plan / demo → checkpoint / config → datasets /
models / losses / metrics → errors / atomic. Read from the source with ``ast`` (imports inside
functions count too), so a new upward import fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "drunet"

# Lower number = lower layer. Keys are the first component below drunet ("engine", "config", …).
LAYERS: dict[str, int] = {
    "errors": 0,
    "atomic": 0,
    "heap": 0,
    "outputs": 0,
    "datasets": 1,
    "models": 1,
    "losses": 1,
    "metrics": 1,
    "sliding": 1,
    "cleanup": 1,
    "config": 2,
    "bounds": 2,
    "config_model": 2,
    "config_loss": 2,
    "config_postprocess": 2,
    "config_train": 2,
    "configs": 2,
    "checkpoint": 2,
    "weights": 2,
    "device": 2,
    "conversion": 2,
    "hub": 2,  # Hugging Face Hub: checkpoint resolves hf: names through hub.fetch
    "inference": 3,
    "export": 3,
    "export_checks": 3,
    "engine": 3,
    "plan": 3,
    "giant": 3,
    "compare": 4,
    "evaluation": 4,
    "report": 4,
    "demo": 4,
    "bioimageio": 4,  # drunet export --format bioimageio: export, inference and checkpoint below it
    "cli": 5,
    "napari": 5,  # the napari plugin (drunet.napari): nothing imports it
    "__main__": 6,
    "__init__": 6,  # the package's lazy public names may point anywhere
}
# Leaves that know nothing of files, configs or the terminal: only torch and each other.
LEAVES_MAY_IMPORT = {"models": {"models"}, "losses": {"losses", "metrics"}, "metrics": {"metrics"}}
# Peers in one layer that must not import each other.
FORBIDDEN = {
    ("inference", "engine"),
    ("engine", "inference"),
    ("inference", "export"),
    ("export", "engine"),
    ("datasets", "models"),
    ("cli", "napari"),
    ("napari", "cli"),
}


def _unit(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _drunet_imports(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "drunet" and len(parts) > 1 and parts[1] in LAYERS:
                units.add(parts[1])
            elif name == "drunet":
                units.add("__init__")
    return units


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert {_unit(p) for p in SOURCES} <= set(LAYERS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_never_go_upward(path: Path) -> None:
    unit = _unit(path)
    # drunet/__init__.py's __version__ is the one upward name everything may read.
    imported = _drunet_imports(path) - {unit, "__init__"}
    upward = {u for u in imported if LAYERS[u] > LAYERS[unit]}
    assert not upward, f"{path.name} ({unit}) imports from a higher layer: {sorted(upward)}"
    assert not {u for u in imported if (unit, u) in FORBIDDEN}
    if unit in LEAVES_MAY_IMPORT:
        assert imported <= LEAVES_MAY_IMPORT[unit] | {"errors"}, sorted(imported)


# GUI packages: only the napari plugin imports them (tests/napari checks it at run time too).
GUI = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_napari_plugin_imports_napari_or_qt(path: Path) -> None:
    if _unit(path) == "napari":
        return
    imported = {name.split(".")[0] for name in _runtime_imports(ast.parse(path.read_text()))}
    assert not imported & GUI, f"{path.name} imports {sorted(imported & GUI)}"


def test_prediction_and_export_do_not_import_the_trainer() -> None:
    for path in [*(PACKAGE / "inference").rglob("*.py"), PACKAGE / "export.py"]:
        assert "engine" not in _drunet_imports(path), path


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(node: ast.AST) -> list[str]:
    """Every module an import statement in ``node`` names, inside functions too; not those
    under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    if isinstance(node, ast.If) and ast.unparse(node.test) in TYPE_CHECKING:
        return [name for child in node.orelse for name in _runtime_imports(child)]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [name for child in ast.iter_child_nodes(node) for name in _runtime_imports(child)]


TYPE_CHECKING = {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _import_graph() -> dict[str, set[str]]:
    """Module → the drunet modules it imports. A package's ``__init__`` only re-exports its
    modules, so it is not a node."""
    modules = {_module_name(p): p for p in SOURCES if p.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {t for t in _runtime_imports(tree) if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [{"a", "b", "c"}]


def test_no_import_cycle_between_modules() -> None:
    graph = _import_graph()
    assert _cycles(graph) == []
    assert "drunet.inference.loop" in graph["drunet.inference.run"]  # the graph sees imports
    assert "drunet.inference.onnx_backend" in graph["drunet.inference.network"]  # inner ones too
    assert "drunet.engine.trainer" not in graph["drunet.engine.run_folder"]  # TYPE_CHECKING: not


def test_type_checking_imports_are_left_out_and_inner_ones_kept() -> None:
    source = """
import drunet.a
if TYPE_CHECKING:
    from drunet.b import B
else:
    import drunet.c
def f():
    from drunet.d import D
"""
    assert _runtime_imports(ast.parse(source)) == ["drunet.a", "drunet.c", "drunet.d", "drunet.d.D"]


# Calls that read or find files; drunet.weights and drunet.checkpoint do that for models
# (moved here from tests/models/test_family_names.py: the layer rules live in this file).
FILE_CALLS = {
    "open",
    "read_bytes",
    "read_text",
    "write_bytes",
    "write_text",
    "load_file",
    "safe_open",
    "try_to_load_from_cache",
    "hf_hub_download",
    "iterdir",
    "glob",
    "rglob",
    "listdir",
    "scandir",
}
FILE_MODULES = {
    "pathlib",
    "huggingface_hub",
    "os",
    "io",
    "glob",
    "shutil",
    "tempfile",
    "safetensors",
}


def file_calls(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            loader = ast.unparse(func).split(".")[0] in {"torch", "np", "numpy"}
            if name in FILE_CALLS or (name == "load" and loader):
                found.add(name)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            modules += [alias.name for alias in node.names]
            found.update(m for m in modules if m.split(".")[0] in FILE_MODULES)
    return found


def test_models_open_no_files() -> None:
    assert file_calls("from pathlib import Path\nx = torch.load(p)\nPath(p).read_bytes()\n") == {
        "pathlib",
        "load",
        "read_bytes",
    }
    assert file_calls("import os\nos.listdir(d)\nnp.load(f)\n") == {"os", "listdir", "load"}
    for path in sorted((PACKAGE / "models").rglob("*.py")):
        assert file_calls(path.read_text()) == set(), path.name
