"""NoisyLIFNode: stage 1/2 and stage 3 dynamics against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnplug.errors import ShapeError
from snnplug_noise import noise as N
from snnplug_noise.neuron import NoisyLIFNode


def _binomial_tol(p: float, n: int) -> float:
    return 5 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-9


@pytest.mark.parametrize("theta", [1.0, 2.0])
def test_uniform_noise_rate_is_clamped_input(theta: float) -> None:
    """METHODS.md: with xi ~ U[0, theta), E[theta * 1[z + xi >= theta]] = clamp(z, 0, theta)."""
    z = torch.tensor([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5]) * theta
    node = NoisyLIFNode(v_threshold=theta, noise="uniform", noise_low=0.0, noise_high=theta,
                        alpha=2.0 / theta, stage=2, seed=0)
    T = 20000
    rate = node(z.view(1, 1, -1).expand(T, 1, -1)).mean(0).squeeze(0) * theta
    expected = z.clamp(0, theta)
    for r, e in zip(rate.tolist(), expected.tolist()):
        assert r == pytest.approx(e, abs=theta * _binomial_tol(e / theta, T))


def test_gaussian_noise_rate_is_normal_cdf() -> None:
    """Stage 2, Gaussian N(0.5, 1/6) on [0, 1]: P(spike | x) = P(xi > 1 - x) = Phi((x - 0.5) * 6)."""
    x = torch.tensor([0.25, 0.375, 0.5, 0.625, 0.75])
    node = NoisyLIFNode(stage=2, seed=3)
    T = 20000
    rate = node(x.view(1, 1, -1).expand(T, 1, -1)).mean(0).squeeze(0)
    for xv, r in zip(x.tolist(), rate.tolist()):
        p = 0.5 * (1 + math.erf((xv - 0.5) * 6 / math.sqrt(2)))
        assert r == pytest.approx(p, abs=_binomial_tol(p, T))


def test_stage2_steps_are_independent_of_the_past() -> None:
    node = NoisyLIFNode(stage=2, seed=5, record_noise=True)
    x = torch.full((6, 2, 4), 0.75)
    x[:3] = 4.0  # a strong past input must not change later steps (no potential term)
    s = node(x)
    xi = node.last_noise
    assert torch.equal(s, (x + xi > 1.0).float())


def test_stage3_matches_reference_loop() -> None:
    """Eqs. 1, 3, 7-10 re-implemented independently in NumPy from the same noise samples."""
    T, B, F = 6, 3, 5
    g = torch.Generator().manual_seed(11)
    x = (torch.rand(T, B, F, generator=g, dtype=torch.float64) * 1.5 - 0.25)
    node = NoisyLIFNode(stage=3, seed=7)
    s = node(x)
    xi = N.draw(N.NoiseSpec(), x, torch.Generator().manual_seed(7)).numpy()  # same stream
    xn = x.numpy()
    v = np.zeros((B, F))
    out = np.zeros((T, B, F))
    for t in range(T):
        if t == 0:
            noise = xi[0]
        else:
            a = 0.5 * v
            mu = a.mean(axis=1, keepdims=True)
            sd = a.std(axis=1, keepdims=True)
            a_hat = np.where(sd > 0, (a - mu) / np.where(sd > 0, sd, 1), 0.0)
            pk = np.abs(a_hat).max(axis=1, keepdims=True)
            na = np.where(pk > 0, a_hat / (4.0 * np.where(pk > 0, pk, 1)), 0.0) + 0.5
            noise = na + 0.5 * (xi[t] - 0.5)
        h = noise + xn[t]
        out[t] = (h > 1.0)
        v = np.where(out[t] > 0, 0.0, h)
    np.testing.assert_array_equal(s.numpy(), out)


def test_stage3_with_infinite_alpha_is_stage2() -> None:
    x = torch.rand(8, 4, 3, 6, generator=torch.Generator().manual_seed(0)) * 1.5
    s2 = NoisyLIFNode(stage=2, seed=9)(x)
    s3 = NoisyLIFNode(stage=3, alpha=float("inf"), seed=9)(x)
    assert torch.equal(s2, s3)
    assert not torch.equal(s3, NoisyLIFNode(stage=3, alpha=4.0, seed=9)(x))


def test_stage3_alpha2_step_has_no_random_part() -> None:
    """alpha = 2: after the first step the neuron is deterministic given V(t-1)."""
    v_prev = torch.tensor([[0.0, 0.5, 1.0, 0.25]])
    x = torch.tensor([[0.5, 0.5, 0.5, 0.0]])
    outs = []
    for seed in (0, 1, 2):
        node = NoisyLIFNode(stage=3, alpha=2.0, seed=seed, record_noise=True, step_mode="s")
        node.v = v_prev
        outs.append((node(x), node.last_noise))
    # eq. 10 with alpha = 2: N(A) = A^/(2 max|A^|) + 0.5 spans [0, 1] by itself
    a = 0.5 * v_prev
    a_hat = (a - a.mean()) / a.std(unbiased=False)
    expected_noise = a_hat / (2 * a_hat.abs().max()) + 0.5
    for s, noise in outs:
        torch.testing.assert_close(noise, expected_noise)
        assert torch.equal(s, (noise + x > 1.0).float())
    assert float((expected_noise - 0.5).abs().max()) == pytest.approx(0.5)


def test_first_stage3_step_equals_stage1() -> None:
    x = torch.rand(1, 16, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(NoisyLIFNode(stage=1, seed=4)(x), NoisyLIFNode(stage=3, seed=4)(x))


def test_hard_reset_and_standardised_potential_hand_computed() -> None:
    """Noise spread ~0 (std 1e-9) isolates eqs. 1, 3, 8-10 in single-step mode."""
    node = NoisyLIFNode(stage=3, noise_std=1e-9, seed=0, step_mode="s")
    # t=1: full noise ~0.5; H = [0.75, 1.125] -> S = [0, 1], V = [0.75, 0] (hard reset to 0)
    assert node(torch.tensor([[0.25, 0.625]])).tolist() == [[0.0, 1.0]]
    torch.testing.assert_close(node.v, torch.tensor([[0.75, 0.0]]))
    # t=2: A = 0.5 V = [0.375, 0] -> A^ = [1, -1] -> N(A) = [0.75, 0.25]; N' ~ 0
    assert node(torch.tensor([[0.375, 0.625]])).tolist() == [[1.0, 0.0]]  # H = [1.125, 0.875]
    torch.testing.assert_close(node.v, torch.tensor([[0.0, 0.875]]))
    # t=3: A = [0, 0.4375] -> N(A) = [0.25, 0.75]; H = [0.75, 1.25]
    assert node(torch.tensor([[0.5, 0.5]])).tolist() == [[0.0, 1.0]]
    torch.testing.assert_close(node.v, torch.tensor([[0.75, 0.0]]))


def test_surrogate_gradient_flows_to_input() -> None:
    node = NoisyLIFNode(stage=1, seed=2, record_noise=True)
    x = torch.rand(1, 4, 8, dtype=torch.float64, requires_grad=True)
    node(x).sum().backward()
    h = x.detach() + node.last_noise
    expected = 3.0 / (2 * (1 + (math.pi / 2 * 3.0 * (h - 1.0)) ** 2))
    torch.testing.assert_close(x.grad, expected)


def test_seeded_noise_is_reproducible_after_reset_and_fresh_without_seed() -> None:
    from spikingjelly.activation_based import functional

    x = torch.full((3, 8, 64), 0.5)
    node = NoisyLIFNode(stage=3, seed=1)
    a = node(x)
    functional.reset_net(node)
    assert torch.equal(a, node(x))
    free = NoisyLIFNode(stage=2)
    assert not torch.equal(free(x), free(x))


def test_input_errors() -> None:
    node = NoisyLIFNode()
    with pytest.raises(ShapeError, match=r"\[T, B, \.\.\.\]"):
        node(torch.zeros(4, 8))
    with pytest.raises(TypeError, match="floating-point"):
        node(torch.zeros(2, 4, 8, dtype=torch.long))
    node3 = NoisyLIFNode(stage=3)
    node3(torch.zeros(2, 4, 8))
    with pytest.raises(ShapeError, match="reset_net"):
        node3(torch.zeros(2, 5, 8))
    with pytest.raises(ValueError, match="stage"):
        NoisyLIFNode(stage=4)
    with pytest.raises(ValueError, match="alpha >= 2"):
        NoisyLIFNode(alpha=1.0)
    with pytest.raises(TypeError, match="seed"):
        NoisyLIFNode(seed=-1)
    with pytest.raises(TypeError, match="Python float"):
        NoisyLIFNode(v_threshold=torch.tensor(1.0))
