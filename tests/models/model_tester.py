"""The shared model tester: every registered model passes the same checks.

A new model joins by adding one entry to ``MODEL_CASES`` in ``test_registry.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from safetensors.torch import load, save

from drunet.models import create_model


class ModelTester:
    """Subclass and set ``name`` and ``kwargs`` (kept small so the suite stays fast)."""

    name: str
    kwargs: dict[str, Any] = {}
    in_channels = 3
    out_channels = 2

    def build(self, **overrides: Any) -> torch.nn.Module:
        torch.manual_seed(0)
        kwargs = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            **self.kwargs,
            **overrides,
        }
        return create_model(self.name, **kwargs)

    @pytest.mark.parametrize("size", [(97, 131), (64, 64), (33, 47)])
    def test_any_size_eval_batch_one(self, size: tuple[int, int]) -> None:
        model = self.build().eval()
        with torch.no_grad():
            out = model(torch.randn(1, self.in_channels, *size))
        assert out.shape == (1, self.out_channels, *size)
        assert torch.isfinite(out).all()

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

    def test_save_load_gives_identical_outputs(self) -> None:
        model = self.build().eval()
        blob = save({k: v.contiguous() for k, v in model.state_dict().items()})
        torch.manual_seed(123)  # a differently initialised copy, then overwritten by the weights
        clone = create_model(
            self.name, in_channels=self.in_channels, out_channels=self.out_channels, **self.kwargs
        ).eval()
        clone.load_state_dict(load(blob))
        x = torch.randn(1, self.in_channels, 50, 61)
        with torch.no_grad():
            assert torch.equal(model(x), clone(x))

    def test_wrong_channel_count_names_expected_and_received(self) -> None:
        model = self.build().eval()
        wrong = self.in_channels + 2
        with pytest.raises(
            ValueError, match=rf"{self.in_channels}.*{wrong}|expected {self.in_channels}"
        ):
            model(torch.randn(1, wrong, 32, 32))
