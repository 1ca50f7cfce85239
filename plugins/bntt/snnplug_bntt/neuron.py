"""BNTT's neurons: a leaky integrate-and-fire neuron with soft reset and triangle surrogate, and
the output accumulator (Kim & Panda 2021, eqs. 4, 8, 9; Algorithm 2).

Hidden layers, per step t (``x_t`` = the BNTT-normalised input current)::

    u_t = λ·v_{t−1} + x_t           s_t = 1[u_t > θ]           v_t = u_t − θ·s_t   (reset detached)
    ∂s_t/∂u_t ≈ α·max(0, 1 − |u_t/θ − 1|)      (α = 0.3: the paper's damping factor; eq. 8)

Output layer: no spikes and no leak, ``u_t = u_{t−1} + x_t``; the logits are ``u_T / T``.

The multi-step neuron runs as one autograd Function: the forward loops over T without building a
graph and keeps ``u`` for all steps; the backward is the reverse scan
``du_t = g_t·σ'(u_t) + λ·du_{t+1}`` (the reset carries no gradient), so backpropagation through
time costs one vectorised surrogate evaluation plus T fused multiply-adds.
"""

from __future__ import annotations

from typing import Any

import torch

from snnplug import kernels
from snnplug.backends.spikingjelly import memory_module_base
from snnplug.checks import as_float, as_steps, check_length
from snnplug.errors import ShapeError, TimeStepError


def triangle_surrogate(u: torch.Tensor, threshold: float, alpha: float) -> torch.Tensor:
    """``α·max(0, 1 − |u/θ − 1|)``: peaks at α for ``u = θ``, zero outside ``(0, 2θ)`` (eq. 8)."""
    return (1.0 - (u / threshold - 1.0).abs()).clamp_(min=0.0).mul_(alpha)


class TriangleSpike(torch.autograd.Function):
    """Heaviside ``1[u > θ]`` forward, :func:`triangle_surrogate` backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, threshold: float, alpha: float):  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.threshold, ctx.alpha = threshold, alpha
        return (u > threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return g * triangle_surrogate(u, ctx.threshold, ctx.alpha), None, None


def spike(u: torch.Tensor, threshold: float = 1.0, alpha: float = 0.3) -> torch.Tensor:
    """``s = 1[u > θ]`` with the triangle surrogate gradient."""
    return TriangleSpike.apply(u, threshold, alpha)


class LIFSequence(torch.autograd.Function):
    """Multi-step LIF with soft, detached reset: ``(x_seq [T,...], v0) -> (s_seq, v_T)``.

    See the module docstring for the equations; ``v0`` is the potential left by the previous
    call (zeros after a reset) and receives the gradient ``λ·du_1``.
    """

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v0: torch.Tensor, leak: float, threshold: float,
                alpha: float):  # type: ignore[override]
        u_seq = torch.empty_like(x_seq)
        s_seq = torch.empty_like(x_seq)
        v = v0
        for t in range(x_seq.shape[0]):
            # λ·v then + x, two roundings (not torch.add(x, v, alpha=λ), which is an FMA on some
            # CPUs): the operation order of the fused kernel, so both give the same spikes
            u = torch.mul(v, leak).add_(x_seq[t]) if leak != 0.0 else x_seq[t].clone()
            u_seq[t] = u
            s = (u > threshold).to(x_seq.dtype)
            s_seq[t] = s
            v = u.sub_(s, alpha=threshold) if threshold != 0.0 else u
        ctx.save_for_backward(u_seq)
        ctx.leak, ctx.threshold, ctx.alpha = leak, threshold, alpha
        return s_seq, v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_s: torch.Tensor, g_v: torch.Tensor):  # type: ignore[override]
        (u_seq,) = ctx.saved_tensors
        leak = ctx.leak
        du = triangle_surrogate(u_seq, ctx.threshold, ctx.alpha)
        if g_s is not None:
            du.mul_(g_s)
        else:
            du.zero_()
        if g_v is not None:
            du[-1].add_(g_v)
        for t in range(du.shape[0] - 2, -1, -1):
            du[t].add_(du[t + 1], alpha=leak)
        g_v0 = du[0] * leak if ctx.needs_input_grad[1] else None
        return du, g_v0, None, None, None


def lif_sequence(x_seq: torch.Tensor, v0: torch.Tensor | None = None, *, leak: float = 0.99,
                 threshold: float = 1.0, alpha: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the BNTT LIF over ``x_seq [T, ...]``: returns ``(spikes [T, ...], v_T)``."""
    if v0 is None:
        v0 = torch.zeros_like(x_seq[0])
    return LIFSequence.apply(x_seq, v0, leak, threshold, alpha)


def _check_seq(who: str, x: Any, T: int | None, t0: int, steps_axis: bool) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point tensor, got {x.dtype}; call x.float()")
    if steps_axis and x.dim() < 2:
        raise ShapeError(f"{who} in multi-step mode expects [T, B, ...] (rank >= 2), got shape "
                         f"{tuple(x.shape)}; add the time axis with x.unsqueeze(0) or use step_mode='s'")
    steps = x.shape[0] if steps_axis else 1
    if T is not None and t0 + steps > T:
        raise TimeStepError(f"{who} was built for T={T} but has seen {t0} steps and got {steps} more; "
                            f"build it with a larger T or call functional.reset_net(net) between batches")


class BNTTLIFNode(memory_module_base()):
    """LIF neuron of BNTT (Kim & Panda 2021, eq. 4/8): ``u_t = λ·v_{t−1} + x_t``,
    ``s_t = 1[u_t > θ]``, ``v_t = u_t − θ·s_t`` (reset detached), surrogate
    ``α·max(0, 1 − |u/θ − 1|)``. Defaults: ``leak=0.99`` (the authors' training script), ``θ=1``,
    ``α=0.3``. ``T`` (optional) is the longest sequence accepted between resets.
    """

    snnplug_spiking = True

    def __init__(self, T: int | None = None, leak: float = 0.99, v_threshold: float = 1.0,
                 surrogate_alpha: float = 0.3, step_mode: str = "m") -> None:
        super().__init__()
        self.T = None if T is None else as_steps("T", T)
        self.leak = as_float("leak", leak, lo=0.0, hi=1.0)
        self.v_threshold = as_float("v_threshold", v_threshold, positive=True)
        self.surrogate_alpha = as_float("surrogate_alpha", surrogate_alpha, lo=0.0)
        self.register_memory("v", 0.0)
        self.register_memory("t", 0)
        self.step_mode = step_mode
        self.strict_T = True  # a first sequence must have T steps (snnplug.checks.any_length relaxes it)

    def extra_repr(self) -> str:
        return (f"leak={self.leak}, v_threshold={self.v_threshold}, surrogate_alpha={self.surrogate_alpha}, "
                f"T={self.T}, step_mode={self.step_mode}")

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(type(self).__name__, x_seq, self.T, int(self.t), True)
        check_length(type(self).__name__, x_seq, self.T, strict=self.strict_T, t0=int(self.t))
        v0 = self.v if isinstance(self.v, torch.Tensor) else torch.full_like(x_seq[0], float(self.v))
        k = kernels.for_tensor(x_seq, "snnplug_bntt.kernels")  # fused Triton kernel on CUDA
        fn = LIFSequence if k is None else k.LIFSequence
        s_seq, v = fn.apply(x_seq, v0, self.leak, self.v_threshold, self.surrogate_alpha)
        self.v, self.t = v, int(self.t) + x_seq.shape[0]
        return s_seq

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_seq(type(self).__name__, x, self.T, int(self.t), False)
        return self.multi_step_forward(x.unsqueeze(0)).squeeze(0)


class Accumulator(memory_module_base()):
    """BNTT's output layer (Algorithm 2, line 9): no spikes, no leak; emits the accumulated
    potential ``u_t = u_{t−1} + x_t`` at every step (``u_0 = 0`` after a reset). The logits after
    t steps are ``u_t / t``."""

    snnplug_spiking = False

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.register_memory("v", 0.0)
        self.step_mode = step_mode

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_seq(type(self).__name__, x_seq, None, 0, True)
        u = x_seq.cumsum(0) + self.v if isinstance(self.v, torch.Tensor) or self.v != 0.0 else x_seq.cumsum(0)
        self.v = u[-1]
        return u

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step_forward(x.unsqueeze(0)).squeeze(0)
