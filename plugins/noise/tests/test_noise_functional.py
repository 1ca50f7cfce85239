"""Noise terms (eqs. 6-10) as pure functions: statistics, hand-computed values, limits."""

from __future__ import annotations

import math

import pytest
import torch

from snnplug_noise import noise as N


def _clipped_normal_std(mu: float, sigma: float, lo: float, hi: float) -> float:
    """Std of clamp(N(mu, sigma), lo, hi), computed independently (numerical integration)."""
    xs = torch.linspace(lo, hi, 200001, dtype=torch.float64)
    pdf = torch.exp(-0.5 * ((xs - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    p_lo = 0.5 * (1 + math.erf((lo - mu) / (sigma * math.sqrt(2))))
    p_hi = 1 - 0.5 * (1 + math.erf((hi - mu) / (sigma * math.sqrt(2))))
    dx = float(xs[1] - xs[0])
    m1 = float((xs * pdf).sum() * dx) + lo * p_lo + hi * p_hi
    m2 = float((xs**2 * pdf).sum() * dx) + lo**2 * p_lo + hi**2 * p_hi
    return math.sqrt(m2 - m1**2)


def test_gaussian_noise_statistics() -> None:
    spec = N.NoiseSpec()  # paper: Gaussian on [0, 1]
    g = torch.Generator().manual_seed(0)
    xi = N.draw(spec, torch.empty(400_000, dtype=torch.float64), g)
    assert float(xi.min()) >= 0.0 and float(xi.max()) <= 1.0
    assert float(xi.mean()) == pytest.approx(0.5, abs=4 * (1 / 6) / math.sqrt(4e5))
    assert float(xi.std()) == pytest.approx(_clipped_normal_std(0.5, 1 / 6, 0.0, 1.0), rel=0.01)
    wide = N.draw(N.NoiseSpec(std=0.5), torch.empty(400_000, dtype=torch.float64), g)
    assert float(wide.std()) == pytest.approx(_clipped_normal_std(0.5, 0.5, 0.0, 1.0), rel=0.01)
    assert float((wide == 0).double().mean()) == pytest.approx(0.1587, abs=0.004)  # clipped mass P(z<-1)


def test_uniform_noise_statistics() -> None:
    spec = N.NoiseSpec("uniform", -0.5, 1.5)
    xi = N.draw(spec, torch.empty(400_000, dtype=torch.float64), torch.Generator().manual_seed(1))
    assert float(xi.min()) >= -0.5 and float(xi.max()) < 1.5
    assert float(xi.mean()) == pytest.approx(0.5, abs=0.005)
    assert float(xi.var()) == pytest.approx(4 / 12, rel=0.01)


def test_standardise_hand_computed() -> None:
    # A = 0.5 * V = [0, 1]: mu 0.5, sigma 0.5, A^ = [-1, 1], /(4 * 1) + 0.5 = [0.25, 0.75]
    v = torch.tensor([[0.0, 2.0], [3.0, 1.0]])
    out = N.standardise_potential(0.5 * v, alpha=4.0, beta=0.5)
    assert out.tolist() == [[0.25, 0.75], [0.75, 0.25]]


def test_standardise_mean_beta_and_range() -> None:
    a = torch.randn(16, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3 + 1
    for alpha, beta in [(4.0, 0.5), (8.0, 0.25), (2.0, 0.5)]:
        out = N.standardise_potential(a, alpha, beta)
        flat = out.flatten(1)
        torch.testing.assert_close(flat.mean(1), torch.full((16,), beta, dtype=torch.float64))
        dev = (flat - beta).abs().amax(1)  # the range is (beta - 1/alpha, beta + 1/alpha), reached
        torch.testing.assert_close(dev, torch.full((16,), 1 / alpha, dtype=torch.float64))


def test_standardise_constant_and_infinite_alpha_give_beta() -> None:
    const = torch.zeros(3, 7)
    assert torch.equal(N.standardise_potential(const, 4.0, 0.5), torch.full((3, 7), 0.5))
    a = torch.randn(3, 7)
    assert torch.equal(N.standardise_potential(a, float("inf"), 0.5), torch.full((3, 7), 0.5))


def test_residual_hand_computed_and_limits() -> None:
    spec = N.NoiseSpec()
    xi = torch.tensor([0.0, 0.25, 0.5, 1.0])
    # alpha 4: s = 1 - 1/(4 * 0.5) = 0.5; N' = 0 + 0.5 (xi - 0.5)
    assert N.residual_noise(xi, spec, 4.0, 0.5).tolist() == [-0.25, -0.125, 0.0, 0.25]
    # alpha 2: no residual noise left (paper, section 3.3)
    assert N.residual_noise(xi, spec, 2.0, 0.5).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert N.residual_noise(xi, spec, 2.0, 0.25).tolist() == [0.25] * 4  # only the mean shift m - beta
    # alpha -> inf: N' = xi - beta, so N(A) + N' = beta + xi - beta = xi (stage 2)
    assert N.residual_noise(xi, spec, float("inf"), 0.5).tolist() == (xi - 0.5).tolist()


def test_stage3_noise_keeps_mean_and_range() -> None:
    g = torch.Generator().manual_seed(3)
    spec = N.NoiseSpec()
    v = torch.randn(64, 512, generator=g) * 2
    xi = N.draw(spec, v, g)
    for alpha in (2.0, 4.0, 16.0):
        total = N.stage3_noise(v, xi, spec, 0.5, alpha, 0.5)
        assert float(total.min()) >= 0.0 and float(total.max()) <= 1.0
        assert float(total.mean()) == pytest.approx(0.5, abs=0.01)
    # hand-computed: A = [0, 1] -> [0.25, 0.75]; xi = [0.5, 1] -> N' = [0, 0.25]
    out = N.stage3_noise(torch.tensor([[0.0, 2.0]]), torch.tensor([[0.5, 1.0]]), spec, 0.5, 4.0, 0.5)
    assert out.tolist() == [[0.25, 1.0]]


def test_invalid_settings_are_named() -> None:
    with pytest.raises(ValueError, match="alpha >= 2"):
        N.residual_scale(N.NoiseSpec(), 1.5)
    with pytest.raises(ValueError, match="kind"):
        N.NoiseSpec("laplace")
    with pytest.raises(ValueError, match="noise_low < noise_high"):
        N.NoiseSpec(low=1.0, high=0.0)
    with pytest.raises(ValueError, match="Gaussian noise only"):
        N.NoiseSpec("uniform", std=0.1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        N.check_alpha(0.0)
    with pytest.raises(TypeError):
        N.check_alpha(torch.tensor(4.0))
