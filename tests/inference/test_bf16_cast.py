"""bfloat16 prediction on the CPU runs a bfloat16 copy of a fully folded network (no autocast,
so no weight is cast again on every call); networks that keep a norm layer keep autocast."""

from __future__ import annotations

import copy

import numpy as np
import torch

from drunet.checkpoint import build_model
from drunet.config import config_from_dict
from drunet.inference import PredictOptions, Predictor


def predictor(precision: str, **params: object) -> Predictor:
    torch.manual_seed(0)
    config = config_from_dict(
        {
            "model": {
                "in_channels": 1,
                "num_classes": 2,
                "params": {"init_features": 8, "depth": 2, **params},
            },
            "data": {"normalization": {"mean": [0.5], "std": [0.25]}},
        }
    )
    model = build_model(config).eval()
    return Predictor(model, config, "cpu", PredictOptions(precision=precision))


def test_a_folded_network_runs_as_a_bfloat16_copy_and_the_trained_one_is_untouched() -> None:
    bf16 = predictor("bf16")
    assert bf16.net.cast_dtype == torch.bfloat16
    assert {p.dtype for p in bf16.net.fused[0].parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.model.parameters()} == {torch.float32}
    x = torch.randn(2, 1, 40, 40)
    expected = torch.sigmoid(bf16.net.fused[0](x.to(torch.bfloat16)).float())
    probs = bf16.network(x)
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs, expected, rtol=0, atol=0)


def test_the_copy_agrees_with_autocast_and_float32() -> None:
    bf16 = predictor("bf16")
    autocast = copy.copy(bf16)
    autocast.net = copy.copy(bf16.net)  # its own, so bf16's stays the bfloat16 copy
    autocast.net.cast_dtype = None
    autocast.net.fused = [copy.deepcopy(m).float() for m in bf16.net.fused]
    fp32 = bf16.with_options(precision="fp32")
    image = (np.random.default_rng(0).random((96, 80)) * 255).astype(np.uint8)
    _, p_cast = bf16.predict(image, return_probabilities=True)
    _, p_auto = autocast.predict(image, return_probabilities=True)
    _, p_32 = fp32.predict(image, return_probabilities=True)
    assert np.abs(p_cast - p_32).max() < 0.05 and np.abs(p_auto - p_32).max() < 0.05
    assert np.mean((p_cast > 0.5) == (p_32 > 0.5)) >= 0.99


def test_networks_with_a_norm_left_keep_autocast_and_float32_weights() -> None:
    for params in ({"norm": "group"}, {"preact": True}):  # pre-activation norms are not folded
        bf16 = predictor("bf16", **params)
        assert bf16.net.cast_dtype is None, params
        assert {p.dtype for p in bf16.net.fused[0].parameters()} == {torch.float32}
    assert predictor("fp32").net.cast_dtype is None
