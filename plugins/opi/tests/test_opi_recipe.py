"""OPI as a SpikingJelly ``ann2snn`` recipe, and its agreement with SpikingJelly's own pipeline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snnplug
from snnplug.errors import SnnplugError
from snnplug_opi import ClipReLU, OPIRecipe, OPISpikingNet


def clip_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), ClipReLU(1.5), nn.Linear(6, 3)).eval()


def test_recipe_with_spikingjelly_converter_equals_snnplug_convert() -> None:
    from spikingjelly.activation_based import ann2snn, functional

    ann = clip_net()
    snn = ann2snn.Converter(OPIRecipe(T=8)).convert(ann)
    assert isinstance(snn, OPISpikingNet)
    ref = snnplug.convert(ann, "opi", T=8)
    x = torch.rand(8, 5, 4)
    functional.reset_net(snn)
    functional.reset_net(ref)
    torch.testing.assert_close(snn(x), ref(x), rtol=0, atol=0)
    assert isinstance(ann[2], ClipReLU)  # the converter did not modify the ANN


def _pinned_max_net_and_data() -> tuple[nn.Module, list[tuple[torch.Tensor, None]]]:
    """Linear(4->5) -> ReLU -> Linear(5->3), dyadic weights, with the calibration maximum of the
    hidden layer pinned to exactly 2 (so θ = 2 in both pipelines and every scaling is exact)."""
    g = torch.Generator().manual_seed(0)
    ann = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    with torch.no_grad():
        ann[0].weight.copy_(torch.randint(-4, 5, (5, 4), generator=g) / 16)  # |w| <= 1/4
        ann[0].weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        ann[0].bias.zero_()
        ann[2].weight.copy_(torch.randint(-8, 9, (3, 5), generator=g) / 8)
        ann[2].bias.copy_(torch.randint(-4, 5, (3,), generator=g) / 8)
    x = torch.randint(0, 17, (31, 4), generator=g) / 16  # in [0, 1]: hidden activations <= 1
    x = torch.cat([x, torch.tensor([[2.0, 0.0, 0.0, 0.0]])])  # neuron 0 reaches 2, the maximum
    return ann, [(x, None)]


def test_zero_init_matches_spikingjelly_rate_coding_recipe() -> None:
    from spikingjelly.activation_based import ann2snn, functional

    ann, calib = _pinned_max_net_and_data()
    sj = ann2snn.Converter(ann2snn.RateCodingRecipe(dataloader=calib, mode="Max")).convert(ann)
    functional.set_step_mode(sj, "m")
    ours = snnplug.convert(ann, "opi", T=16, calibration=calib, percentile=100.0, v_init=0.0)
    assert list(ours.thresholds.values()) == [2.0]
    x = calib[0][0].unsqueeze(0).repeat(16, 1, 1)
    functional.reset_net(sj)
    torch.testing.assert_close(ours(x), sj(x), rtol=0, atol=0)


def test_recipe_validation() -> None:
    from spikingjelly.activation_based import ann2snn

    with pytest.raises(ValueError, match="v_init"):
        OPIRecipe(v_init=-0.1)
    with pytest.raises(ValueError, match="percentile"):
        OPIRecipe(percentile=0.0)
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with pytest.raises(SnnplugError, match="calibration"):
        ann2snn.Converter(OPIRecipe()).convert(relu)
    with pytest.raises(SnnplugError, match="no ReLU"):
        snnplug.convert(nn.Sequential(nn.Linear(2, 2)), "opi", T=4)
