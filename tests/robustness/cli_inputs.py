"""What the CLI property test feeds whole ``drunet`` commands, and how it judges the outcome.

Strategies for the files a user hands drunet besides images, masks and configs (those come from
``fuzz_inputs.py``): weights files (random bytes, damaged safetensors, safetensors with random
metadata, the weights of another model), nnU-Net ``dataset.json`` files and split files. Plus the
harness: one tiny trained run made once, a copy of its data per example, a snapshot of every
file's hash, and the checks every command's outcome must pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from hypothesis import strategies as st
from safetensors.torch import save
from typer.testing import CliRunner

from drunet.checkpoint import CONFIG_KEY
from drunet.cli.main import app
from drunet.config import config_from_dict, config_to_dict
from drunet.datasets import make_synthetic
from drunet.models import create_model
from tests.conftest import tiny_recipe
from tests.robustness.fuzz_inputs import JSON, _edited, config_dicts

# ---- the trained run every example uses ------------------------------------------------------


def train_tiny_run(root: Path) -> Path:
    """A finished one-epoch run of a tiny DRUNet on 5 grayscale 40 × 40 pairs (``root/data``)."""
    data = make_synthetic(root / "data", num_images=5, sizes=((40, 40),), seed=4)
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"epochs": 1, "steps_per_epoch": 1})))
    result = invoke(
        "train", "--data", data, "--config", recipe, "--runs-dir", root / "runs", "--name", "run"
    )
    assert result.exit_code == 0, result.output
    return root / "runs" / "run"


def invoke(*args: object):
    """The CLI in-process (its output is not a terminal), a wide console, no --debug."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})


# ---- snapshots ------------------------------------------------------------------------------


def snapshot(*folders: Path) -> dict[Path, str]:
    """``{file: sha256}`` of every file under ``folders`` (symlinks not followed)."""
    hashes = {}
    for folder in folders:
        paths = [folder] if folder.is_file() else folder.rglob("*") if folder.exists() else []
        for path in paths:
            if path.is_file() and not path.is_symlink():
                hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def copy_data(run: Path, to: Path) -> Path:
    """A fresh copy of the run's dataset (images/ + masks/, 5 pairs)."""
    return Path(shutil.copytree(run.parent.parent / "data", to))


# ---- outcome checks -------------------------------------------------------------------------

# The documented exit codes (README "Exit codes"); 130 (Ctrl-C) cannot happen here.
EXIT_CODES = {
    "predict": {0, 2, 3},
    "evaluate": {0, 2, 3},
    "export": {0, 2},
    "train": {0, 2},
    "verify": {0, 1, 2},
}


@dataclass
class Outcome:
    command: str
    code: int
    output: str


def run_command(command: str, *args: object) -> Outcome:
    """Run ``drunet command args…``; fail on a traceback, an escaped exception or an undocumented
    exit code. Returns the exit code and output for the command-specific checks."""
    result = invoke(command, *args)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    where = f"drunet {command} {' '.join(map(str, args))}\n{output}"
    assert "Traceback" not in output, where
    exception = result.exception
    assert exception is None or isinstance(exception, SystemExit), (
        f"{type(exception).__name__}: {exception} escaped {where}"
    )
    assert result.exit_code in EXIT_CODES[command], f"exit {result.exit_code}: {where}"
    return Outcome(command, result.exit_code, output)


def assert_kept(before: dict[Path, str], outcome: Outcome) -> None:
    """Every file that existed before the command is still there, unchanged."""
    after = snapshot(*before)
    changed = [str(p) for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"exit {outcome.code} changed or removed {changed}:\n{outcome.output}"


def new_files(before: dict[Path, str], *folders: Path) -> list[Path]:
    return sorted(p for p in snapshot(*folders) if p not in before)


# ---- weights files --------------------------------------------------------------------------

# Tiny models only: generated weights that fit their configuration are built and run, and a
# fuzzer on a shared machine must not build big ones (a configuration declaring more than its
# file holds is refused before building: test_weights_declaring_a_huge_drunet_…).
_SMALL_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "init_features": st.integers(1, 8) | st.sampled_from([0, -1, 2.5, "4", None]),
        "depth": st.integers(1, 3) | st.sampled_from([0, 9, None]),
        "blocks_per_stage": st.integers(1, 2),
        "norm": st.sampled_from(["batch", "group", "instance", "none", "layer"]),
        "act": st.sampled_from(["relu", "silu", "tanh"]),
        "shortcut": st.sampled_from(["projection", "zero_pad", "x"]),
        "preact": st.booleans(),
        "se_reduction": st.integers(0, 4),
    },
)
_MODEL_NAMES = st.sampled_from(["drunet", "drunet_s", "drunet_m", "nope", ""])


@st.composite
def model_sections(draw: st.DrawFn) -> dict[str, Any]:
    """A ``model:`` section that, if valid, builds a network of at most a few MB."""
    params: dict[str, Any] = dict(draw(_SMALL_PARAMS))
    if draw(st.integers(0, 5)) == 0:
        params[draw(st.text(max_size=6))] = draw(JSON)
    section: dict[str, Any] = {
        "name": draw(_MODEL_NAMES),
        "in_channels": draw(st.sampled_from([1, 1, 1, 3, 2, 0, None])),
        "num_classes": draw(st.sampled_from([2, 2, 3, 1, 0, None])),
        "params": params,
    }
    return {k: v for k, v in section.items() if v is not None or draw(st.booleans())}


def base_config(model: dict[str, Any] | None = None) -> dict[str, Any]:
    """A complete stored configuration of a tiny binary grayscale DRUNet (what training writes)."""
    recipe = tiny_recipe(model={"in_channels": 1, "num_classes": 2})
    recipe["data"]["normalization"] = {"mode": "dataset", "mean": [0.5], "std": [0.25]}
    if model is not None:
        recipe["model"] = model
    return config_to_dict(config_from_dict(recipe))


def state_of(model: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """The state dict of the network ``model`` describes (``model`` must be valid)."""
    spec = config_from_dict({"model": model}).model.spec()
    torch.manual_seed(seed)
    network = create_model(spec.name, spec.in_channels, spec.out_channels, **spec.kwargs)
    return {k: v.detach().contiguous() for k, v in network.state_dict().items()}


def _valid(model: dict[str, Any]) -> bool:
    try:
        config_from_dict({"model": model}).model.spec()
    except Exception:
        return False
    return True


_TENSOR_NAMES = st.text(min_size=1, max_size=12)
_random_tensors = st.dictionaries(
    _TENSOR_NAMES,
    st.builds(
        lambda shape, dtype: torch.zeros(shape, dtype=dtype),
        st.lists(st.integers(0, 4), max_size=3),
        st.sampled_from([torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool]),
    ),
    max_size=3,
)


@st.composite
def _metadata(draw: st.DrawFn) -> dict[str, str] | None:
    """Safetensors metadata: none, random strings, or a drunet config that is damaged, random,
    another model's, or the tiny base config with a few keys changed."""
    kind = draw(st.sampled_from(["none", "random", "text", "json", "dicts", "edited", "model"]))
    if kind == "none":
        return None
    extra = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=2))
    if kind == "random":
        return extra
    if kind == "text":
        value = draw(st.text(max_size=40))
    elif kind == "json":
        value = json.dumps(draw(JSON))
    elif kind == "dicts":  # a random config, its model kept small
        data = draw(config_dicts)
        data["model"] = draw(model_sections())
        value = json.dumps(data, default=str)
    elif kind == "edited":  # the real thing, hand-edited
        value = draw(_edited(st.just(json.dumps(base_config()))))
    else:  # a valid config of another model
        value = json.dumps(base_config(draw(model_sections().filter(_valid))))
    return {**extra, CONFIG_KEY: value}


@st.composite
def _safetensors(draw: st.DrawFn, random_tensors: bool = False) -> bytes:
    """A real safetensors file: random tensors or a real network's, with generated metadata."""
    metadata = draw(_metadata())
    sources = ["random"] if random_tensors else ["random", "model", "config's model"]
    source = draw(st.sampled_from(sources))
    if source == "random":
        tensors = draw(_random_tensors)
    else:
        model = base_config()["model"]
        if source == "model" or metadata is None or CONFIG_KEY not in metadata:
            model = draw(model_sections().filter(_valid))  # another model's weights
        else:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                model = json.loads(metadata[CONFIG_KEY])["model"]
            if not isinstance(model, dict) or not _valid(model):
                model = base_config()["model"]
        tensors = state_of(model, draw(st.integers(0, 3)))
    return save(tensors, metadata=metadata)


@st.composite
def _crafted_header(draw: st.DrawFn) -> bytes:
    """The safetensors layout (8-byte length, JSON header, data) with a lying header."""
    header: Any = draw(
        JSON
        | st.fixed_dictionaries(
            {
                "w": st.fixed_dictionaries(
                    {
                        "dtype": st.sampled_from(["F32", "F16", "I64", "XX"]) | JSON,
                        "shape": st.lists(st.integers(-2, 2**40), max_size=3) | JSON,
                        "data_offsets": st.lists(st.integers(-2, 2**40), max_size=3) | JSON,
                    }
                )
            },
            optional={"__metadata__": st.just({CONFIG_KEY: json.dumps(base_config())}) | JSON},
        )
    )
    text = json.dumps(header).encode()
    length = draw(st.just(len(text)) | st.integers(0, 2**64 - 1))
    return struct.pack("<Q", length) + text + draw(st.binary(max_size=64))


@st.composite
def _damaged(draw: st.DrawFn, header_only: bool = False) -> bytes:
    """A valid drunet weights file, truncated or with bytes flipped (``header_only``: flipped in
    its first 400 bytes, where they break it, not in the tensors, where it still loads)."""
    whole = save(
        state_of(base_config()["model"], 0), metadata={CONFIG_KEY: json.dumps(base_config())}
    )
    data = bytearray(whole)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data) - 1))]
    truncated = len(data) < len(whole)
    for _ in range(draw(st.integers(0 if truncated else 1, 6))):
        if not data:
            break
        anywhere = st.integers(0, len(data) - 1)
        header = st.integers(0, min(len(data) - 1, 400))
        where = draw(header if header_only else header | anywhere)
        data[where] ^= draw(st.integers(1, 255))
    return bytes(data)


def _pickled(data: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


@st.composite
def _another_model(draw: st.DrawFn) -> bytes:
    """Valid drunet weights of a tiny model (channels, classes, layout generated), sometimes
    stored under the configuration of another one."""
    model = draw(model_sections().filter(_valid))
    stored = model if draw(st.booleans()) else draw(model_sections().filter(_valid))
    metadata = {CONFIG_KEY: json.dumps(base_config(stored))}
    return save(state_of(model, draw(st.integers(0, 3))), metadata=metadata)


# Files that cannot be valid weights (the bounded export property: a valid one costs seconds).
broken_weights_files = st.one_of(
    st.binary(max_size=300),
    _safetensors(random_tensors=True),
    _crafted_header(),
    _damaged(header_only=True),
    st.builds(lambda: _pickled({"state_dict": {"w": torch.zeros(2)}})),
)
weights_files = st.one_of(
    st.binary(max_size=300),
    _safetensors(),
    _crafted_header(),
    _damaged(),
    st.builds(lambda: _pickled({"state_dict": {"w": torch.zeros(2)}})),
    _another_model(),
    _another_model(),
)


# ---- nnU-Net dataset.json and split files ---------------------------------------------------

_LABELS = st.dictionaries(
    st.sampled_from(["background", "cell", "ignore", "membrane"]) | st.text(max_size=6),
    st.integers(-1, 300) | st.lists(st.integers(0, 3), max_size=2) | JSON,
    max_size=4,
)
_DATASET_KEYS = {
    "channel_names": st.just({"0": "EM"}) | st.dictionaries(st.text(max_size=3), JSON, max_size=3),
    "modality": st.just({"0": "EM"}) | JSON,
    "labels": st.just({"background": 0, "cell": 1}) | _LABELS,
    "file_ending": st.sampled_from([".png", ".tif", "png", "", ".nii.gz"]) | JSON,
    "numTraining": st.integers(-1, 10) | JSON,
}


def _json_document(fields: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """JSON text of ``fields`` (sometimes hand-edited), random JSON, or random bytes."""
    text = st.builds(lambda value: json.dumps(value, default=str), fields | JSON)
    return st.builds(str.encode, _edited(text)) | text.map(str.encode) | st.binary(max_size=200)


dataset_json_files = _json_document(st.fixed_dictionaries({}, optional=_DATASET_KEYS))

CASES = [f"{i:03d}" for i in range(5)]  # make_synthetic's names
_NAMES = st.lists(st.sampled_from(CASES) | st.text(max_size=8), max_size=6)
_SPLIT = st.fixed_dictionaries(
    {}, optional={"train": _NAMES | JSON, "val": _NAMES | JSON, "test": _NAMES | JSON}
)
split_files = _json_document(_SPLIT | st.lists(_SPLIT, max_size=3))


def to_nnunet(data: Path) -> Path:
    """Rename an images/ + masks/ folder into nnU-Net's imagesTr/<case>_0000 + labelsTr/."""
    (data / "images").rename(data / "imagesTr")
    (data / "masks").rename(data / "labelsTr")
    for image in list((data / "imagesTr").iterdir()):
        image.rename(image.with_name(f"{image.stem}_0000{image.suffix}"))
    return data
