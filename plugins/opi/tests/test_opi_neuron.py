"""METHODS.md §3 invariants of the OPI IF neuron, checked exactly (dyadic values, power-of-two θ)."""

from __future__ import annotations

import math

import pytest
import torch

from snnplug.errors import ShapeError
from snnplug_opi import functional as OF
from snnplug_opi.neuron import OPIIFNode


def run_constant(z: torch.Tensor, theta: float, T: int, c: float) -> tuple[torch.Tensor, OPIIFNode]:
    node = OPIIFNode(theta, c)
    s = node(z.unsqueeze(0).expand(T, *z.shape))
    return s, node


@pytest.mark.parametrize("theta", [0.5, 2.0])
@pytest.mark.parametrize("T", [1, 4, 8, 16])
@pytest.mark.parametrize("c", [0.0, 0.25, 0.5, 0.75])
def test_spike_count_formula_constant_input(theta: float, T: int, c: float) -> None:
    # dyadic inputs from below 0 to above θ (saturation), on a grid that hits the rounding ties
    z = torch.arange(-32, 3 * 64 + 1, dtype=torch.float32).div(64).mul(theta).view(1, -1)
    s, _ = run_constant(z, theta, T, c)
    count = s.sum(0).view(-1)
    expected = torch.tensor([min(max(math.floor(T * v / theta + c), 0), T) for v in z.view(-1).tolist()])
    assert torch.equal(count, expected.to(count.dtype))
    assert torch.equal(OF.spike_count(z.view(-1), theta, T, c), expected.to(z.dtype))
    assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_charge_conservation_arbitrary_input() -> None:
    g = torch.Generator().manual_seed(0)
    theta, c, T = 0.7, 0.5, 37
    x = torch.randn(T, 5, 11, generator=g, dtype=torch.float64) * 0.9 + 0.2
    node = OPIIFNode(theta, c)
    s = node(x)
    v_T = node.v
    lhs = theta * s.sum(0)
    rhs = x.sum(0) + c * theta - v_T
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


def _sq_errors(theta: float, T: int, c: float, m: int) -> tuple[float, float]:
    """Mean squared and mean error of the simulated SNN output vs z over a midpoint grid of z in
    [0, θ) with m points per quantization step θ/T."""
    n = m * T
    z = (torch.arange(n, dtype=torch.float64) + 0.5) * theta / n
    s, _ = run_constant(z.view(1, -1), theta, T, c)
    out = theta / T * s.sum(0).view(-1)
    err = z - out
    return float((err ** 2).mean()), float(err.mean())


@pytest.mark.parametrize("T", [4, 8])
def test_zero_init_has_four_times_the_squared_error(T: int) -> None:
    theta, m = 2.0, 64
    h2 = (theta / T) ** 2
    sq_half, mean_half = _sq_errors(theta, T, 0.5, m)
    sq_zero, _ = _sq_errors(theta, T, 0.0, m)
    # midpoint-grid versions of θ²/(12T²) and θ²/(3T²) (uniform z): exact with the grid correction
    assert sq_half == pytest.approx(h2 * (1 / 12 - 1 / (12 * m * m)), rel=1e-9)
    assert sq_zero == pytest.approx(h2 * (1 / 3 - 1 / (12 * m * m)), rel=1e-9)
    assert sq_zero / sq_half == pytest.approx((4 * m * m - 1) / (m * m - 1), rel=1e-9)
    assert abs(mean_half) < 1e-12  # Theorem 1: expected error zero at v(0) = θ/2


def test_half_threshold_minimizes_squared_error() -> None:
    errs = {c: _sq_errors(1.0, 8, c, 32)[0] for c in [i / 16 for i in range(16)]}
    assert min(errs, key=errs.get) == 0.5


def test_mean_output_within_half_step_for_inputs_in_range() -> None:
    g = torch.Generator().manual_seed(1)
    theta = 1.5
    for T in (1, 3, 8, 32):
        x = torch.rand(T, 2000, generator=g, dtype=torch.float64) * theta
        x[:, :10] = theta  # include the end points
        x[:, 10:20] = 0.0
        s, _ = OPIIFNode(theta, 0.5)(x), None
        gap = (theta * s.mean(0) - x.mean(0)).abs()
        assert float(gap.max()) <= theta / (2 * T) + 1e-12


def qcfs(z: torch.Tensor, lam: float, L: int, phi: float = 0.5) -> torch.Tensor:
    """QCFS activation (Bu et al., ICLR 2022): λ/L · clamp(⌊z·L/λ + φ⌋, 0, L)."""
    return lam / L * torch.clamp(torch.floor(z * L / lam + phi), 0, L)


@pytest.mark.parametrize("L", [2, 4, 8, 16])
def test_one_spiking_layer_equals_qcfs(L: int) -> None:
    lam = 4.0
    z = torch.arange(-64, 6 * 64 + 1, dtype=torch.float32).div(64).view(1, -1)  # dyadic, with ties
    s, _ = run_constant(z, lam, L, 0.5)
    assert torch.equal(lam * s.mean(0), qcfs(z, lam, L))


@pytest.mark.parametrize("theta", [1.0, 0.5, 3.0])
def test_matches_spikingjelly_half_threshold_and_if_nodes(theta: float) -> None:
    from spikingjelly.activation_based import functional, neuron

    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 3, 7, generator=g) * theta
    ours = OPIIFNode(theta, 0.5)(x)
    sj = neuron.HalfThresholdIFNode(v_threshold=theta, step_mode="m")
    assert torch.equal(ours, sj(x))
    functional.reset_net(sj)
    assert torch.equal(ours, sj(x))  # after SpikingJelly's reset: v back to θ/2
    sj0 = neuron.IFNode(v_threshold=theta, v_reset=None, step_mode="m")
    assert torch.equal(OPIIFNode(theta, 0.0)(x), sj0(x))


def test_reset_and_single_step_mode() -> None:
    from spikingjelly.activation_based import functional

    theta = 2.0
    x = torch.arange(24, dtype=torch.float32).view(6, 4).div(8)
    node = OPIIFNode(theta, 0.5)
    multi = node(x)
    assert torch.is_tensor(node.v)
    functional.reset_net(node)
    assert node.v == 1.0  # v(0) = θ/2 restored
    node.step_mode = "s"
    single = torch.stack([node(x[t]) for t in range(6)])
    assert torch.equal(multi, single)
    with pytest.raises(ShapeError, match="reset_net"):
        node(torch.zeros(5))  # different shape without a reset


def test_validation() -> None:
    with pytest.raises(ValueError, match="v_threshold"):
        OPIIFNode(0.0)
    with pytest.raises(ValueError, match="v_init"):
        OPIIFNode(1.0, 1.5)
    with pytest.raises(ShapeError):
        OPIIFNode(1.0)(torch.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        OPIIFNode(1.0)(torch.zeros(2, 3, dtype=torch.long))


def test_surrogate_gives_gradient() -> None:
    from spikingjelly.activation_based import surrogate

    x = torch.full((4, 3), 0.6, requires_grad=True)
    OPIIFNode(1.0, 0.5, surrogate_function=surrogate.ATan())(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
