"""The ``opi`` converter: structure, exactness against closed forms, BN folding, residuals, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snnplug
from snnplug.errors import ShapeError, SnnplugError, UnsupportedModuleError
from snnplug.engine import anytime_accuracy, direct_anytime
from snnplug_opi import ClipReLU, OPIIFNode
from snnplug_opi.network import SpikingActivation


def dyadic_mlp(lam: float = 2.0) -> nn.Sequential:
    """Linear(6->8) -> ClipReLU(λ) -> Linear(8->3) with weights/biases in k/16."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), ClipReLU(lam), nn.Linear(8, 3))
    with torch.no_grad():
        for m in (net[0], net[2]):
            m.weight.copy_(torch.randint(-8, 9, m.weight.shape, generator=g) / 16)
            m.bias.copy_(torch.randint(-4, 5, m.bias.shape, generator=g) / 16)
    return net


def dyadic_input(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(-16, 33, (n, 6), generator=g) / 16


def small_convnet() -> nn.Module:
    torch.manual_seed(0)
    from snnplug.models import convnet

    net = convnet((1, 8, 8), 4, activation=lambda: ClipReLU(1.0), channels=(4, 8), hidden=16)
    for m in net.modules():  # non-trivial BN statistics so folding is tested
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.mark.parametrize("T", [1, 3, 8, 16])
@pytest.mark.parametrize("v_init", [0.0, 0.5])
def test_one_hidden_layer_is_exact_closed_form(T: int, v_init: float) -> None:
    lam = 2.0
    ann = dyadic_mlp(lam)
    x = dyadic_input()
    snn = snnplug.convert(ann, "opi", T=T, v_init=v_init)
    out = snn(x.unsqueeze(0).expand(T, *x.shape)).mean(0)
    z = ann[0](x)
    rate = lam / T * torch.clamp(torch.floor(T * z / lam + v_init), 0, T)  # paper eq. (11)
    torch.testing.assert_close(out, ann[2](rate), rtol=0, atol=1e-6)


def test_structure_thresholds_initial_potential_and_copy() -> None:
    ann = small_convnet()
    lambdas = [1.0, 0.5, 2.0]
    for m, lam in zip([m for m in ann.modules() if isinstance(m, ClipReLU)], lambdas):
        m.upper.data.fill_(lam)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    snn = snnplug.convert(ann, "opi", T=8)
    nodes = [m for m in snn.modules() if isinstance(m, OPIIFNode)]
    assert [n.v_threshold for n in nodes] == lambdas
    assert [n.v for n in nodes] == [lam / 2 for lam in lambdas]  # v(0) = θ/2 before any input
    assert sorted(snn.thresholds.values()) == sorted(lambdas)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in snn.modules())
    assert snn.info["folded_bn"] == 3
    # the user's ANN is untouched
    assert sum(isinstance(m, ClipReLU) for m in ann.modules()) == 3
    for k, v in ann.state_dict().items():
        assert torch.equal(v, before[k])


def test_bn_folded_equals_bn_kept_and_converges_to_ann() -> None:
    ann = small_convnet()
    x = torch.rand(16, 1, 8, 8)
    folded = snnplug.convert(ann, "opi", T=64)
    kept = snnplug.convert(ann, "opi", T=64, fold_bn=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in kept.modules())
    a, b = folded.predict_anytime(x, 64), kept.predict_anytime(x, 64)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    with torch.no_grad():
        ref = ann(x)
    err = [(a[t - 1] - ref).abs().mean().item() for t in (4, 16, 64)]
    assert err[2] < err[1] < err[0]
    assert err[2] < 0.05 * ref.abs().mean().item()


def test_anytime_equals_separate_simulations() -> None:
    ann = small_convnet()
    x = torch.rand(20, 1, 8, 8)
    y = torch.randint(0, 4, (20,))
    snn = snnplug.convert(ann, "opi", T=12)
    acc = anytime_accuracy(direct_anytime(snn, 12), [(x[:10], y[:10]), (x[10:], y[10:])])
    assert anytime_accuracy(direct_anytime(snn, 12, steps_per_call=5), [(x[:10], y[:10]), (x[10:], y[10:])]) == acc
    for t in (1, 5, 12):
        logits = snn.predict(x, t)
        assert acc[t - 1] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_single_step_mode_matches_multi_step() -> None:
    from spikingjelly.activation_based import functional

    ann = small_convnet()
    x = torch.rand(6, 3, 1, 8, 8)
    snn = snnplug.convert(ann, "opi", T=6)
    functional.reset_net(snn)
    multi = snn(x)
    functional.set_step_mode(snn, "s")
    functional.reset_net(snn)
    single = torch.stack([snn(x[t]) for t in range(6)])
    torch.testing.assert_close(single, multi, rtol=0, atol=1e-6)


def test_relu_thresholds_are_calibrated_percentiles() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 3)).eval()
    batches = [torch.randn(50, 5) for _ in range(3)]
    snn = snnplug.convert(ann, "opi", T=8, calibration=[(b, None) for b in batches], percentile=99.0)
    with torch.no_grad():
        per_batch = [np.percentile(F.relu(ann[0](b)).numpy(), 99.0, method="inverted_cdf") for b in batches]
    (theta,) = snn.thresholds.values()
    assert theta == pytest.approx(float(np.mean(per_batch)), rel=1e-6)
    # a tensor works too, split into batches; max_batches caps what is read
    snn1 = snnplug.convert(ann, "opi", T=8, calibration=batches[0], percentile=99.0, max_batches=1)
    assert list(snn1.thresholds.values())[0] == pytest.approx(float(per_batch[0]), rel=1e-6)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(h + self.conv2(h))  # shared ReLU module at two sites, residual add
        h = F.relu(h * 0.5)
        return self.head(h.mean((2, 3)))


def test_residual_functional_relu_and_shared_module() -> None:
    torch.manual_seed(0)
    ann = Residual().eval()
    x = torch.rand(32, 2, 6, 6)
    snn = snnplug.convert(ann, "opi", T=128, calibration=x, percentile=100.0)
    assert len(snn.neurons()) == 3  # one neuron per call site, not per module
    with torch.no_grad():
        ref = ann(x)
    out = snn.predict(x, 128)
    assert (out - ref).abs().max().item() < 0.05 * ref.abs().max().item() + 1e-3


def test_unsupported_layers_are_named() -> None:
    ann = nn.Sequential(nn.Conv2d(1, 2, 3), ClipReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(UnsupportedModuleError, match=r"'2'.*MaxPool2d.*(AvgPool|average)"):
        snnplug.convert(ann, "opi", T=4)
    ann = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModuleError, match=r"'1'.*GELU"):
        snnplug.convert(ann, "opi", T=4)

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.fc(x)) if x.sum() > 0 else x

    with pytest.raises(UnsupportedModuleError, match="control flow"):
        snnplug.convert(Branchy(), "opi", T=4, calibration=torch.rand(4, 3))

    class MixesBatch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.fc(x)) - x.mean(0)

    with pytest.raises(UnsupportedModuleError, match="mean"):
        snnplug.convert(MixesBatch(), "opi", T=4, calibration=torch.rand(4, 3))


def test_plain_relu_needs_calibration() -> None:
    ann = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(SnnplugError, match="calibration"):
        snnplug.convert(ann, "opi", T=4)


def test_input_checks() -> None:
    snn = snnplug.convert(small_convnet(), "opi", T=4)
    with pytest.raises(ShapeError, match=r"rank 5"):
        snn(torch.rand(4, 1, 8, 8))  # a static batch, not [T, B, C, H, W]
    with pytest.raises(TypeError):
        snnplug.convert("not a model", "opi", T=4)
    with pytest.raises(ValueError, match="v_init"):
        snnplug.convert(small_convnet(), "opi", T=4, v_init=2.0)
    with pytest.raises(TypeError, match="T"):
        snnplug.convert(small_convnet(), "opi", T=0)


def test_reset_between_batches_of_different_sizes() -> None:
    from spikingjelly.activation_based import functional

    snn = snnplug.convert(small_convnet(), "opi", T=4)
    snn(torch.rand(4, 3, 1, 8, 8))
    with pytest.raises(ShapeError, match="reset_net"):
        snn(torch.rand(4, 5, 1, 8, 8))
    functional.reset_net(snn)
    assert snn(torch.rand(4, 5, 1, 8, 8)).shape == (4, 5, 4)
    assert all(isinstance(m, SpikingActivation) for m in snn.modules() if type(m).__name__ == "SpikingActivation")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_conversion_matches_cpu() -> None:
    ann = small_convnet()
    x = torch.rand(8, 1, 8, 8)
    cpu = snnplug.convert(ann, "opi", T=16).predict_anytime(x, 16)
    gpu_net = snnplug.convert(ann.cuda(), "opi", T=16)
    assert next(gpu_net.parameters()).is_cuda
    torch.testing.assert_close(gpu_net.predict_anytime(x.cuda(), 16).cpu(), cpu, rtol=0, atol=1e-4)
