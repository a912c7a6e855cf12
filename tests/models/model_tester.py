"""The shared model tester: every registered name passes the same checks.

Models are built through the registry, ``create_model(name, in_channels, out_channels,
**kwargs)``. ``test_registry.py`` holds a ``ModelTester`` subclass per registered name — written
out with small arguments where the defaults are large, generated for any other name, so a new
family is tested as soon as it is registered.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from safetensors.torch import load, save
from torch import nn

from drunet.models import create_model, fuse_conv_bn
from drunet.models.registry import family_of
from tests.conftest import randomise_batch_norms


def replicate_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Bottom/right replicate padding written out by hand: repeat the last row, then column."""
    x = torch.cat([x, x[..., -1:, :].expand(-1, -1, pad_h, -1)], dim=-2)
    return torch.cat([x, x[..., -1:].expand(-1, -1, -1, pad_w)], dim=-1)


def count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def assert_close_to_scale(out: torch.Tensor, expected: torch.Tensor, rel: float = 5e-5) -> None:
    """``out`` equals ``expected`` up to float32 rounding relative to the logits' scale.

    Another memory layout or folded batch norms change the order of float32 sums: through a
    ResNet-18 encoder with randomised norms (logits up to ~10) that moves a logit by ~1e-5 of
    the largest one (1.4e-4 absolute, seen with torch 2.14), while a real layout or folding bug
    moves it by the logits' own scale. A fixed 1e-4 flaked with the torch version.
    """
    scale = float(expected.abs().max().clamp_min(1.0))
    torch.testing.assert_close(out, expected, atol=rel * scale, rtol=0.0)


class ModelTester:
    """Subclass and set ``name`` (the registry name it covers) and ``kwargs`` (its arguments)."""

    name: str
    kwargs: dict[str, Any] = {}
    in_channels = 3
    out_channels = 2
    multiple = 32  # the model pads height and width to a multiple of this

    def build(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return create_model(self.name, self.in_channels, self.out_channels, **self.kwargs)

    @pytest.mark.parametrize("size", [(97, 131), (64, 64), (33, 47)])
    def test_any_size_eval_batch_one(self, size: tuple[int, int]) -> None:
        model = self.build().eval()
        with torch.no_grad():
            out = model(torch.randn(1, self.in_channels, *size))
        assert out.shape == (1, self.out_channels, *size)
        assert torch.isfinite(out).all()

    def test_padding_equals_the_model_on_a_padded_input_cropped(self) -> None:
        model = self.build().eval()
        height, width = self.multiple + 3, 2 * self.multiple - 3  # multiple >= 4
        x = torch.randn(2, self.in_channels, height, width)
        padded = replicate_pad(x, self.multiple - 3, 3)  # to the next multiples by hand
        assert padded.shape[-2:] == (2 * self.multiple, 2 * self.multiple)
        with torch.no_grad():
            expected = model(padded)[..., :height, :width]
            torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)

    def test_train_mode_odd_batch(self) -> None:
        model = self.build().train()
        out = model(torch.randn(3, self.in_channels, 45, 70))
        assert out.shape == (3, self.out_channels, 45, 70)

    def test_every_parameter_receives_a_gradient(self) -> None:
        model = self.build().train()
        x = torch.randn(2, self.in_channels, 64, 64)
        out = model(x)
        # A random projection of the output: a plain mean can cancel through the last norm.
        (out * torch.randn_like(out)).sum().backward()
        no_grad = [n for n, p in model.named_parameters() if p.grad is None]
        assert not no_grad, f"parameters without gradient: {no_grad}"
        zero = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
        assert not zero, f"parameters with an all-zero gradient: {zero}"

    def test_its_family_describes_it_so_that_it_rebuilds(self) -> None:
        model = self.build()
        assert (model.in_channels, model.out_channels) == (self.in_channels, self.out_channels)
        family = family_of(model)
        assert family is not None and family.resolve(self.name) is not None
        name, params = family.describe(model)  # what a stored configuration holds
        rebuilt = create_model(name, model.in_channels, model.out_channels, **params)
        assert type(rebuilt) is type(model)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
            k: v.shape for k, v in model.state_dict().items()
        }

    def test_save_load_gives_identical_outputs(self) -> None:
        model = self.build().eval()
        blob = save({k: v.contiguous() for k, v in model.state_dict().items()})
        clone = self.build(seed=123).eval()  # initialised differently, then given the weights
        clone.load_state_dict(load(blob))
        x = torch.randn(1, self.in_channels, 50, 61)
        with torch.no_grad():
            assert torch.equal(model(x), clone(x))

    def test_channels_last_gives_the_same_logits(self) -> None:
        model = self.build().eval()
        randomise_batch_norms(model)
        nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x = torch.randn(2, self.in_channels, 45, 70)
        with torch.no_grad():
            expected = model(x)
            out = nhwc(x.contiguous(memory_format=torch.channels_last))
        assert out.shape == expected.shape
        assert_close_to_scale(out, expected)

    def test_fused_batch_norm_gives_the_same_logits(self) -> None:
        model = self.build()
        randomise_batch_norms(model)
        fused = fuse_conv_bn(model)
        assert model.training and not fused.training  # the original is untouched
        if count_batch_norms(model):
            assert count_batch_norms(fused) < count_batch_norms(model)
        x = torch.randn(2, self.in_channels, 45, 70)
        with torch.no_grad():
            assert_close_to_scale(fused(x), model.eval()(x))

    def test_wrong_channel_count_names_expected_and_received(self) -> None:
        model = self.build().eval()
        wrong = self.in_channels + 2
        name = type(model).__name__
        message = rf"^{name} expects .*: expected {self.in_channels} channels, received {wrong}$"
        with pytest.raises(ValueError, match=message):
            model(torch.randn(1, wrong, 32, 32))

    # Every model, with -m slow (an export takes 8-17 s here); the default preset and the baseline
    # override this to run it in the default suite.
    @pytest.mark.slow
    def test_onnx_export_matches_pytorch_at_two_sizes(self) -> None:
        self.check_onnx_export()

    def check_onnx_export(self) -> None:
        """The exported graph (dynamic batch, height, width) equals the model: the same parity
        check `drunet export` runs before writing (onnxruntime, 64 × 64 and 97 × 131)."""
        pytest.importorskip("onnxruntime")
        from drunet.export import parity, runner, to_onnx

        model = self.build().eval()  # default BatchNorm statistics: logits of order 1
        result = parity(model, runner(to_onnx(model, self.in_channels), "onnx"), self.in_channels)
        assert set(result.max_abs_diff) == {"64x64", "97x131"}
        assert result.relative <= 1e-3, (result.max_abs_diff, result.scale)
