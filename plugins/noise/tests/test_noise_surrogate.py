"""Eq. 4 surrogate: forward is 1[H > V_th]; backward is the analytic derivative of
g(x) = arctan(pi/2 a x)/pi + 1/2 and equals SpikingJelly's ATan(alpha=a) gradient."""

from __future__ import annotations

import math

import pytest
import torch

from snnplug_noise.surrogate import spike


def test_forward_is_strict_heaviside_at_threshold() -> None:
    h = torch.tensor([0.5, 0.9375, 1.0, 1.0625, 2.0])
    assert spike(h, 1.0).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # eq. 2: H > V_th, not >=
    assert spike(h, 2.0).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("a", [3.0, 2.0])
@pytest.mark.parametrize("v_th", [1.0, 0.5])
def test_gradient_is_derivative_of_atan_primitive(a: float, v_th: float) -> None:
    h = torch.linspace(-2.0, 3.0, 41, dtype=torch.float64, requires_grad=True)
    spike(h, v_th, a).sum().backward()
    ref = h.detach().clone().requires_grad_(True)
    (torch.atan(math.pi / 2 * a * (ref - v_th)) / math.pi + 0.5).sum().backward()
    torch.testing.assert_close(h.grad, ref.grad)
    peak = spike(torch.tensor([v_th], requires_grad=True), v_th, a)
    # the peak value of eq. 4 is a/2 (x = V_th)
    h1 = torch.tensor([v_th], requires_grad=True)
    spike(h1, v_th, a).backward()
    assert h1.grad.item() == pytest.approx(a / 2)
    assert peak.item() == 0.0


def test_gradient_matches_spikingjelly_atan() -> None:
    from spikingjelly.activation_based import surrogate

    h = torch.linspace(-1.0, 3.0, 33, requires_grad=True)
    spike(h, 1.0, 3.0).sum().backward()
    x = (h.detach() - 1.0).requires_grad_(True)
    out = surrogate.ATan(alpha=3.0)(x)
    out.sum().backward()
    torch.testing.assert_close(h.grad, x.grad)
    # forward agrees except exactly at the threshold (SpikingJelly fires at x >= 0)
    on = (h.detach() != 1.0)
    assert torch.equal(spike(h.detach(), 1.0)[on], out.detach()[on])
