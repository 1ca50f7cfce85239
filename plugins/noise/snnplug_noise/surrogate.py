"""The spike function of Jiang & Zhang's noise-trained LIF neuron, with its surrogate gradient.

Forward (eq. 2): ``S = 1[H > V_th]`` (strictly greater, as in the paper).
Backward (eq. 4): ``dS/dH = a / (2 * (1 + (pi/2 * a * (H - V_th))**2))`` with ``a = 3``.

Eq. 4 is the derivative of ``g(x) = arctan(pi/2 * a * x) / pi + 1/2``, i.e. SpikingJelly's
``surrogate.ATan`` with ``alpha = a`` (the tests check both the analytic derivative and
SpikingJelly's gradient).

Jiang, C. & Zhang, Y., "A noise based novel strategy for faster SNN training", eq. (2), (4).
"""

from __future__ import annotations

import math

import torch

#: the paper's surrogate width (eq. 4, "a=3")
PAPER_A = 3.0


def atan_surrogate_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    """``a / (2 (1 + (pi/2 * a * x)^2))`` with ``x = H - V_th`` (eq. 4)."""
    return a / (2.0 * (1.0 + (math.pi / 2.0 * a * x) ** 2))


class NoiseATanSpike(torch.autograd.Function):
    """Heaviside ``1[H > V_th]`` forward; eq. 4 surrogate backward (no gradient to V_th, a)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, v_threshold: float, a: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(h)
        ctx.v_threshold = v_threshold
        ctx.a = a
        return (h > v_threshold).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (h,) = ctx.saved_tensors
        return grad_out * atan_surrogate_grad(h - ctx.v_threshold, ctx.a), None, None


def spike(h: torch.Tensor, v_threshold: float = 1.0, a: float = PAPER_A) -> torch.Tensor:
    """``S = 1[H > V_th]`` with the eq. 4 surrogate gradient (``a`` = 3 in the paper)."""
    return NoiseATanSpike.apply(h, float(v_threshold), float(a))
