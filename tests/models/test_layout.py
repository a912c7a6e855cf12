"""One channels_last switch: the memory format is the model's own ``params.channels_last``; the smp
family converts itself and its input as DRUNet does, and :mod:`drunet.models.layout` reads it."""

from __future__ import annotations

import copy

import torch
from torch import nn

from drunet.models import DRUNet, SmpModel, create_model
from drunet.models.layout import is_channels_last, memory_format
from tests.models.model_tester import assert_close_to_scale, randomise_batch_norms


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [m.weight for m in convs if m.kernel_size != (1, 1)]  # (O, I, 1, 1) is both layouts


def test_an_nhwc_smp_model_gives_the_same_logits_in_the_usual_layout() -> None:
    torch.manual_seed(0)
    model = SmpModel(3, 4, encoder_name="resnet18", encoder_depth=3).eval()
    randomise_batch_norms(model)
    nhwc = SmpModel(3, 4, encoder_name="resnet18", encoder_depth=3, channels_last=True).eval()
    nhwc.load_state_dict(model.state_dict())
    weights = conv_weights(nhwc)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)  # NHWC, not merely both
    assert nhwc.hparams["channels_last"] is True and model.hparams["channels_last"] is False
    x = torch.randn(2, 3, 45, 70)
    with torch.no_grad():
        expected, out = model(x), nhwc(x)
    assert out.shape == expected.shape == (2, 4, 45, 70)
    assert out.is_contiguous()  # logits leave in the usual layout, as DRUNet's do
    assert_close_to_scale(out, expected)


def test_the_registry_passes_channels_last_to_the_smp_family() -> None:
    model = create_model("smp:FPN:resnet18", 1, 2, channels_last=True)
    assert isinstance(model, SmpModel) and model.channels_last
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(model))


def test_is_channels_last_reads_the_model_through_its_wrappers() -> None:
    nhwc = DRUNet(1, 2, 4, depth=2, channels_last=True)
    plain = DRUNet(1, 2, 4, depth=2)
    compiled_like = nn.Module()
    compiled_like._orig_mod = nhwc  # how torch.compile holds the model
    ddp_like = nn.Module()
    ddp_like.module = compiled_like  # how DDP holds it
    assert is_channels_last(nhwc) and is_channels_last(ddp_like)
    assert not is_channels_last(plain) and not is_channels_last(nn.Conv2d(1, 1, 3))
    assert memory_format(ddp_like) is torch.channels_last
    assert memory_format(copy.deepcopy(plain)) is torch.contiguous_format
