"""Issue #13, "nothing lost, nothing trusted unchecked": whole drunet commands fed generated files.

For every generated input — random bytes named as an image, a config, a split file, a
``dataset.json`` or weights; a valid image truncated or with bytes flipped; a YAML config with
random keys, values and nesting; safetensors with random metadata; the weights of another model
— each command (``predict``, ``verify``, ``train``, ``evaluate``, ``export``), run in-process
without ``--debug``:

* prints no traceback and lets no exception escape;
* exits with a documented code (0 done, 1 verify found problems, 2 usage or input error,
  3 some inputs failed and the others were written);
* on exit 0 has written every file it promises (masks and overlays, the ONNX file and its
  sidecar, a run folder with weights, config and metrics, per_image.csv and summary.json);
* on exit 2 has written nothing (``train``: no new run folder);
* never changes or removes a file that existed before it (the inputs, the run, the data);
  ``verify`` writes nothing at all.

The inputs come from ``fuzz_inputs.py`` and ``cli_inputs.py``. Counts here are small so the
default suite stays fast (about a minute for the module); ``fuzz_long.py`` runs the same
properties (``PROPERTIES``) with many more examples.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from drunet.checkpoint import CONFIG_KEY
from drunet.config import load_config
from drunet.datasets import write_image
from drunet.datasets.stacks import frame_count
from drunet.errors import DrunetError
from drunet.inference.files import collect_inputs, outputs_exist
from drunet.inference.stack_files import stack_mask_path
from tests.conftest import _merged, tiny_recipe
from tests.robustness.cli_inputs import (
    Outcome,
    assert_kept,
    base_config,
    broken_weights_files,
    copy_data,
    dataset_json_files,
    invoke,
    new_files,
    run_command,
    snapshot,
    split_files,
    state_of,
    to_nnunet,
    train_tiny_run,
    weights_files,
)
from tests.robustness.conftest import assert_user_error
from tests.robustness.fuzz_inputs import (
    MASK_NAME_SUFFIXES,
    any_files,
    config_dicts,
    file_names,
    fresh_folder,
    yaml_files,
)

PROPERTIES: dict[str, tuple[Callable[..., None], dict[str, st.SearchStrategy]]] = {}
OUTCOMES: Counter[str] = Counter()  # "predict exit 3" …; fuzz_long.py reports it


def cli_fuzz(
    max_examples: int,
    long: dict[str, st.SearchStrategy] | None = None,
    **strategies: st.SearchStrategy,
) -> Callable:
    """``check(run, **examples)`` as a bounded, ``integration``-marked hypothesis test taking
    the module's trained run (``cli_run``); registered for fuzz_long.py, which passes the run as
    ``cli_run=st.just(run)`` and uses the ``long`` strategies where given."""

    def decorate(check: Callable[..., None]) -> Callable[..., None]:
        def test(cli_run: Path, **examples: Any) -> None:
            check(cli_run, **examples)

        test.__name__ = test.__qualname__ = check.__name__
        test.__doc__ = check.__doc__
        PROPERTIES[check.__name__] = (test, {**strategies, **(long or {})})
        bounded = settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(given(**strategies)(test))
        return pytest.mark.integration(bounded)

    return decorate


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run (and its data), made once for the module."""
    return train_tiny_run(tmp_path_factory.mktemp("cli-property"))


def _ended(outcome: Outcome) -> Outcome:
    OUTCOMES[f"{outcome.command} exit {outcome.code}"] += 1
    return outcome


def _nothing_new(before: dict[Path, str], outcome: Outcome, *folders: Path) -> None:
    written = new_files(before, *folders)
    assert not written, f"exit {outcome.code} but wrote {written}:\n{outcome.output}"


def _no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.rglob(".*.drunet-*.tmp")] if folder.exists() else []
    assert not left, f"temporaries left behind: {left}"


# ---- predict --------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".tif", ".jpg", ".jpeg", ".bmp", ".txt", "")  # file_names() adds upper
IMAGE_NAMES = file_names(IMAGE_SUFFIXES)


def _predict(run: Path, target: Path, folder: Path, model: Path) -> None:
    out = folder / "out"
    before = snapshot(folder, run)
    outcome = _ended(run_command("predict", target, "--model", model, "--out", out))
    assert_kept(before, outcome)
    outside = [p for p in new_files(before, folder) if out not in p.parents]
    assert not outside, f"wrote outside --out: {outside}"
    _no_temporaries(out)
    if outcome.code == 2:
        _nothing_new(before, outcome, folder)
        return
    inputs = collect_inputs(target)
    done = [image for image in inputs if _has_outputs(image, out)]
    if outcome.code == 0:
        assert done == inputs, f"exit 0 without the outputs of {set(inputs) - set(done)}"
    else:  # 3: some inputs failed and are listed, the others were written
        assert done and len(done) < len(inputs), (done, inputs, outcome.output)


def _has_outputs(image: Path, out: Path) -> bool:
    """A TIFF of several frames is a stack: one ``<stem>_mask.tif``, no overlay."""
    if frame_count(image) > 1:
        return stack_mask_path(image, out).is_file()
    return outputs_exist(image, out)


@cli_fuzz(14, data=any_files(), name=IMAGE_NAMES, alone=st.booleans())
def test_predict_any_image_file(run: Path, data: bytes, name: str, alone: bool) -> None:
    """``drunet predict FILE`` (``alone``) or a folder holding FILE and two good images."""
    with fresh_folder() as folder:
        inputs = folder / "in"
        inputs.mkdir()
        if not alone:
            for good in sorted((run.parent.parent / "data" / "images").iterdir())[:2]:
                (inputs / f"good {good.name}").write_bytes(good.read_bytes())
        (inputs / name).write_bytes(data)
        _predict(run, inputs / name if alone else inputs, folder, run)


@cli_fuzz(14, data=weights_files, name=st.sampled_from(["w.safetensors", "w.pt", "weights"]))
def test_predict_with_any_weights_file(run: Path, data: bytes, name: str) -> None:
    """``drunet predict --model FILE x.png`` with generated weights."""
    with fresh_folder() as folder:
        (folder / name).write_bytes(data)
        image = folder / "x.png"
        image.write_bytes((run.parent.parent / "data" / "images" / "000.png").read_bytes())
        _predict(run, image, folder, folder / name)


# ---- export ---------------------------------------------------------------------------------


@cli_fuzz(
    8,
    long={"data": weights_files},
    data=broken_weights_files,
    format=st.sampled_from(["onnx", "pt2"]),
)
def test_export_any_weights_file(run: Path, data: bytes, format: str) -> None:
    """``drunet export FILE --out OUT`` with generated weights (in the suite only broken ones:
    exporting a valid file takes seconds; fuzz_long.py feeds every kind)."""
    with fresh_folder() as folder:
        weights = folder / "w.safetensors"
        weights.write_bytes(data)
        out = folder / f"model.{format}"
        before = snapshot(folder, run)
        outcome = _ended(run_command("export", weights, "--format", format, "--out", out))
        assert_kept(before, outcome)
        _no_temporaries(folder)
        if outcome.code == 0:
            assert sorted(new_files(before, folder)) == [out, Path(f"{out}.json")]
        else:
            _nothing_new(before, outcome, folder)


# ---- verify and evaluate: the generated file inside a dataset -------------------------------

PLACES = ("new image", "image", "new mask", "mask", "dataset.json", "split file")


@st.composite
def placed_files(draw: st.DrawFn, places: tuple[str, ...] = PLACES) -> tuple[str, str, bytes]:
    """``(place, name, bytes)``: where in a dataset the generated file goes, and the file."""
    place = draw(st.sampled_from(places))
    if place == "dataset.json":
        return place, "dataset.json", draw(dataset_json_files)
    if place == "split file":
        return place, "split.json", draw(split_files)
    masks = "mask" in place
    name = draw(file_names(MASK_NAME_SUFFIXES if masks else IMAGE_SUFFIXES))
    return place, name, draw(any_files(masks=masks))


def _dataset(run: Path, folder: Path, placed: tuple[str, str, bytes]) -> tuple[Path, list[str]]:
    """A copy of the run's data with the generated file placed; extra ``verify`` arguments."""
    place, name, content = placed
    data = copy_data(run, folder / "data")
    args: list[str] = []
    if place == "dataset.json":
        to_nnunet(data)
        target = data / name
    elif place == "split file":
        target = data / name
        args = ["--set", f"data.layout.split_file={name}"]
    elif place in ("image", "mask"):  # an existing pair's file replaced
        target = data / f"{place}s" / "000.png"
    else:
        target = data / ("masks" if "mask" in place else "images") / name
    target.write_bytes(content)
    return data, args


@cli_fuzz(20, placed=placed_files())
def test_verify_any_dataset_file(run: Path, placed: tuple[str, str, bytes]) -> None:
    """``drunet verify DIR``: a report, exit 0 or 1 (2 for a folder it cannot read); writes
    nothing."""
    with fresh_folder() as folder:
        data, args = _dataset(run, folder, placed)
        before = snapshot(folder)
        outcome = _ended(run_command("verify", data, *args))
        assert snapshot(folder) == before, f"verify changed files:\n{outcome.output}"


@cli_fuzz(10, placed=placed_files(PLACES[:5]))
def test_evaluate_any_dataset_file(run: Path, placed: tuple[str, str, bytes]) -> None:
    """``drunet evaluate --model RUN --data DIR --out OUT``."""
    with fresh_folder() as folder:
        data, _ = _dataset(run, folder, placed)
        out = folder / "eval"
        before = snapshot(folder, run)
        outcome = _ended(run_command("evaluate", "--model", run, "--data", data, "--out", out))
        assert_kept(before, outcome)
        _no_temporaries(out)
        if outcome.code == 2:
            _nothing_new(before, outcome, folder)
        else:
            written = new_files(before, folder)
            assert {out / "per_image.csv", out / "summary.json"} <= set(written), written


# ---- train ----------------------------------------------------------------------------------

# Random documents, and random sections over the tiny recipe (so that more of them load).
train_configs = yaml_files | st.builds(
    lambda data: yaml.safe_dump(_merged(tiny_recipe(), data), allow_unicode=True).encode(),
    config_dicts,
)


def _cheap(config_file: Path) -> list[str]:
    """Flags that keep a valid generated config's run to one tiny step (none if it is invalid:
    it must fail as it is)."""
    try:
        config = load_config(config_file)
    except DrunetError:
        return []
    flags = ["--batch-size", "2", "--patch-size", "32", "--set", "train.steps_per_epoch=1"]
    flags += ["--set", "data.num_workers=0", "--set", "train.compile=false"]
    flags += ["--set", "model.name=drunet_s", "--set"]
    flags += ["model.params={init_features: 4, depth: 2, blocks_per_stage: 1}"]
    if (config.model.num_classes or 0) > 8:  # a confusion matrix of 65536² counts
        flags += ["--set", "model.num_classes=null"]
    if (config.model.in_channels or 0) > 4:
        flags += ["--set", "model.in_channels=null"]
    return flags


def _train(folder: Path, *args: object) -> None:
    """Run ``drunet train ARGS --epochs 1 --runs-dir folder/runs`` and check what it left."""
    runs = folder / "runs"
    before = snapshot(folder)
    outcome = _ended(run_command("train", *args, "--epochs", "1", "--runs-dir", runs))
    assert_kept(before, outcome)
    written = new_files(before, folder)
    outside = [p for p in written if runs not in p.parents]
    assert not outside, f"wrote outside the runs folder: {outside}"
    _no_temporaries(runs)
    if outcome.code == 2:
        assert not written, f"exit 2 left a run: {written}\n{outcome.output}"
        return
    [run_dir] = list(runs.iterdir())
    for kept in ("best.safetensors", "last.safetensors", "config.yaml", "metrics.csv"):
        assert (run_dir / kept).is_file(), f"exit 0 without {kept}:\n{outcome.output}"


@cli_fuzz(10, config=train_configs, name=file_names((".yaml", ".yml", ".json", "")))
def test_train_any_config_file(run: Path, config: bytes, name: str) -> None:
    """``drunet train --config FILE --data DIR --epochs 1 --runs-dir R``."""
    with fresh_folder() as folder:
        data = copy_data(run, folder / "data")
        config_file = folder / name
        config_file.write_bytes(config)
        _train(folder, "--config", config_file, "--data", data, *_cheap(config_file))


@cli_fuzz(6, placed=placed_files())
def test_train_any_dataset_file(run: Path, placed: tuple[str, str, bytes]) -> None:
    """``drunet train --config TINY --data DIR --epochs 1 --runs-dir R`` with the generated file
    in the dataset (``--split-file`` for a split file)."""
    with fresh_folder() as folder:
        data, args = _dataset(run, folder, placed)
        if args:
            args = ["--split-file", str(data / "split.json")]
        recipe = folder / "tiny.yaml"
        recipe.write_text(yaml.safe_dump(tiny_recipe(train={"steps_per_epoch": 1})))
        _train(folder, "--config", recipe, "--data", data, *args)


# ---- what the property found, pinned --------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "export"])
def test_weights_declaring_a_huge_drunet_are_refused_before_it_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # A 90 kB file whose configuration declared init_features 256, depth 6 made predict and
    # export build that network — 5.9 G parameters, 22 GiB — before the weights were compared.
    from drunet import checkpoint

    real = checkpoint.build_model

    def build_on_meta_only(config: Any) -> Any:
        assert str(torch.get_default_device()) == "meta", "the declared network was built"
        return real(config)

    monkeypatch.setattr(checkpoint, "build_model", build_on_meta_only)
    huge = base_config(
        {"name": "drunet_s", "in_channels": 1, "num_classes": 2,
         "params": {"init_features": 256, "depth": 6}}
    )  # fmt: skip
    weights = tmp_path / "huge.safetensors"
    state = state_of(base_config()["model"], 0)
    weights.write_bytes(save(state, metadata={CONFIG_KEY: json.dumps(huge)}))
    image = tmp_path / "x.png"
    write_image(image, np.zeros((8, 8), np.uint8))
    if command == "predict":
        result = invoke("predict", image, "--model", weights, "--out", tmp_path / "out")
    else:
        result = invoke("export", weights, "--out", tmp_path / "m.onnx")
    assert_user_error(result, "huge.safetensors", "do not fit", "declares 5,96")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.safetensors", "x.png"]
