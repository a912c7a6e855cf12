""":func:`run_predict`: a :class:`~drunet.inference.job.PredictJob` from inputs to files.

The steps ``drunet predict`` takes, in order: the device (a missing GPU fails before any work),
the model or ensemble, the inputs (a file, folder or glob; nnU-Net channel files grouped into
cases), the shard, then :func:`~drunet.inference.loop.predict_files`, which refuses outputs that
would replace an input, the weights or a file drunet did not write — checked over every shard's
inputs, so two inputs of one stem in different shards cannot write the same files. What it has to
say on the way goes to :class:`PredictHooks` (the CLI prints it; the default logs it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from drunet.device import resolve_device
from drunet.errors import DrunetError
from drunet.inference.channel_files import ChannelCases, channel_cases
from drunet.inference.files import OutputOptions, PredictionReport
from drunet.inference.job import PredictJob, PredictReport
from drunet.inference.loop import predict_files
from drunet.inference.predictor import Predictor
from drunet.inference.shard import prediction_units, select_shard

log = logging.getLogger(__name__)


class PredictHooks:
    """What :func:`run_predict` reports while it works. Here notes are logged and the rest
    ignored; the CLI prints them and drives its progress bars."""

    def note(self, text: str) -> None:
        """A line for a person (the model, the channel files, the shard)."""
        log.info("%s", text)

    def device(self, device: torch.device, precision: str) -> None:
        """Where the network runs, in which precision."""
        log.info("device: %s (%s)", device, precision)

    def inputs(self, count: int) -> None:
        """How many inputs the loop is about to predict."""

    def done(self, path: Path) -> None:
        """One input is written, skipped or failed (in input order)."""

    def tiles(self, done: int, total: int) -> None:
        """Sliding-window progress through one large image."""


def run_predict(job: PredictJob, hooks: PredictHooks | None = None) -> PredictReport:
    """Run ``job``; an unreadable input is in the report's ``failed``, the others are written.
    User mistakes (no such model, inputs, a clobbered file, …) raise :class:`DrunetError`."""
    hooks = hooks or PredictHooks()
    device = resolve_device(job.device)  # before any work: a missing GPU is a one-line error
    predictor = load_predictor(job, device)
    if not job.json_output:
        ensemble = f" (ensemble of {len(predictor.weights)}, probabilities averaged)"
        models = " + ".join(map(str, predictor.weights))
        hooks.note(f"model: {models}" + (ensemble if len(predictor.weights) > 1 else ""))
        hooks.device(predictor.device, predictor.precision.name)
    from drunet.giant.files import split_inputs  # here: drunet.giant imports this package

    files, giant = split_inputs(job.inputs, job.stream)
    if not files:
        hooks.inputs(len(giant))
        return _with_giant(job, predictor, PredictionReport(), giant, hooks)
    cases = _channel_cases(job, files, predictor.in_channels, hooks)
    if cases is not None:
        files = cases.inputs
    outputs = OutputOptions(
        overlay=job.overlay,
        color=job.color,
        probabilities=job.probabilities,
        names=cases.names if cases else {},
        nnunet_names=job.nnunet_names,
    )
    every_input, files = files, _shard(job, predictor, files, hooks)
    hooks.inputs(len(files) + len(giant))
    report = predict_files(
        predictor,
        files,
        job.out,
        on_done=hooks.done,
        outputs=outputs,
        skip_existing=job.resume,
        on_progress=hooks.tiles,
        prefetch=job.prefetch,
        workers=job.workers,
        extra_channels=cases.extra_channels if cases else None,
        every_input=every_input,
    )
    return _with_giant(job, predictor, report, giant, hooks)


def _with_giant(
    job: PredictJob,
    predictor: Predictor,
    report: PredictionReport,
    giant: list[Path],
    hooks: PredictHooks,
) -> PredictReport:
    """``report`` of the in-memory inputs, with the giant ones streamed after them."""
    if giant:
        from drunet.giant.files import predict_giant_files, result_note

        if job.shard is not None:
            assert not isinstance(job.shard, str)  # parsed by PredictJob
            giant = select_shard(giant, *job.shard)
        streamed = predict_giant_files(
            predictor,
            giant,
            job.out,
            job.giant_options(),
            on_done=hooks.done,
            on_progress=hooks.tiles,
            on_result=None if job.json_output else lambda p, r: hooks.note(result_note(p, r)),
        )
        report.written += streamed.written
        report.skipped += streamed.skipped
        report.failed.update(streamed.failed)
    return PredictReport(
        written=report.written,
        failed=report.failed,
        skipped=report.skipped,
        timings=report.timings,
        models=list(predictor.weights),
        out=job.out,
    )


def load_predictor(job: PredictJob, device: torch.device) -> Predictor:
    """The job's model: one run (none named: the latest), or an ensemble of several."""
    options = job.predict_options()
    if len(job.models) > 1:
        if job.backend != "torch":
            raise DrunetError("--backend onnxruntime runs one model; drop it for an ensemble")
        return Predictor.from_runs(job.models, device=device, options=options)
    run = job.models[0] if job.models else None
    return Predictor.from_run(
        run, runs_dir=job.runs_dir, device=device, options=options, backend=job.backend
    )


def _channel_cases(
    job: PredictJob, files: list[Path], in_channels: int, hooks: PredictHooks
) -> ChannelCases | None:
    """nnU-Net channel files grouped into cases, when they are (see ``channel_files``)."""
    cases = channel_cases(files, in_channels, job.nnunet_names)
    if job.nnunet_names and cases is None:
        raise DrunetError(
            f"--nnunet-names: {job.inputs} is not nnU-Net channel files whose channels make the "
            f"model's {in_channels} input channel(s) (<case>_0000.png, <case>_0001.png, … for "
            "every case); drop --nnunet-names"
        )
    if cases is not None and not job.json_output:
        count = len(cases.inputs)
        per_case = 1 + sum(len(paths) for paths in cases.extra_channels.values()) // count
        hooks.note(f"nnU-Net channel files: {count} case(s) of {per_case} file(s)")
    return cases


def _shard(
    job: PredictJob, predictor: Predictor, files: list[Path], hooks: PredictHooks
) -> list[Path]:
    """The inputs of ``job.shard`` (all without one). A series of slices of a context model
    stays together, sharded by its first file; an nnU-Net case is one input (its ``_0000``)."""
    if job.shard is None:
        return files
    assert not isinstance(job.shard, str)  # parsed by PredictJob
    index, count = job.shard
    stack = predictor.config.data.layout.stack
    units = prediction_units(files, bool(predictor.context_slices), stack)
    chosen = set(select_shard([unit[0] for unit in units], index, count))
    selected = sorted(path for unit in units if unit[0] in chosen for path in unit)
    if not job.json_output:
        hooks.note(f"shard {index}/{count}: {len(selected)} of {len(files)} input(s)")
    return selected
