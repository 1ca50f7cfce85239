"""Functional core of BNTT: batch normalization with separate statistics and γ per time step.

For an input ``x`` of shape ``[T, B, C, *S]`` (``S`` = spatial dims, possibly none) and per-step
parameters ``γ`` of shape ``[T, C]`` (Kim & Panda 2021, eq. 9 and Algorithm 1)::

    training:  μ_t = mean_{b,s} x[t,b,c,s]        σ²_t = mean_{b,s} (x[t,b,c,s] − μ_t)²
               y[t] = γ_t · (x[t] − μ_t) / √(σ²_t + ε)
               μ̄_t ← (1 − m)·μ̄_t + m·μ_t,   σ̄²_t ← (1 − m)·σ̄²_t + m·σ²_t·n/(n − 1)   (n = B·|S|)
    eval:      y[t] = γ_t · (x[t] − μ̄_t) / √(σ̄²_t + ε)

No β (the paper drops it). All T steps are computed at once on the ``[T, B, C, *S]`` tensor:
one reduction per statistic, one fused elementwise pass for the output, and a hand-written
backward (the paper's eq. 11/12 per step) in :class:`BNTTFunction`. The running-statistic update
is the same as ``torch.nn.BatchNorm*`` (unbiased variance in the running estimate), so the
layer equals T independent ``BatchNorm`` modules, as in SpikingJelly's
``BatchNormThroughTime2d`` and snnTorch's ``BatchNormTT2d``.
"""

from __future__ import annotations

import torch

_BMM_MIN = 16  # inner size from which a batched dot product beats a multiply-then-sum


def _as_tbcs(x: torch.Tensor) -> torch.Tensor:
    """View ``[T, B, C, *S]`` as ``[T, B, C, S]`` (``S = 1`` without spatial dims)."""
    T, B, C = x.shape[:3]
    return x.reshape(T, B, C, -1)


def _sum_bs(v: torch.Tensor) -> torch.Tensor:
    """``[T, B, C, S] -> [T, C]``: sum over batch and space (inner dim first: contiguous)."""
    return v.sum(-1).sum(1)


def _dot_bs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Σ_{b,s} a·b`` per (t, c) without materialising ``a·b`` when S is large."""
    T, B, C, S = a.shape
    if S >= _BMM_MIN:
        d = torch.bmm(a.reshape(-1, 1, S), b.reshape(-1, S, 1))
        return d.view(T, B, C).sum(1)
    return (a * b).sum(-1).sum(1)


def batch_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step, per-channel mean and biased variance of ``[T, B, C, *S]``: two ``[T, C]``."""
    v = _as_tbcs(x)
    n = v.shape[1] * v.shape[3]
    mean = _sum_bs(v) / n
    centred = v - mean[:, None, :, None]
    var = _dot_bs(centred, centred) / n
    return mean, var


class BNTTFunction(torch.autograd.Function):
    """Training-mode BNTT on ``[T, B, C, *S]`` with γ ``[T, C]``; returns ``(y, mean, var)``.

    ``mean``/``var`` (biased, ``[T, C]``) are returned without gradient for the running
    statistics. Backward per step and channel (``x̂ = (x − μ)/√(σ² + ε)``, ``n = B·|S|``)::

        dγ = Σ g·x̂          dx = γ/√(σ² + ε) · (g − mean(g) − x̂ · mean(g·x̂))
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor, eps: float):  # type: ignore[override]
        x = x.contiguous()
        v = _as_tbcs(x)
        n = v.shape[1] * v.shape[3]
        mean = _sum_bs(v) / n
        # the output is a fresh tensor of x's shape, built in place through a [T, B, C, S] view
        # of it; returning the view itself would make the output a view, which in-place ops
        # after the layer (``out += identity`` in residual blocks) may not modify
        out = x - mean.view(mean.shape + (1,) * (x.dim() - 3)).unsqueeze(1)
        y = _as_tbcs(out)
        var = _dot_bs(y, y) / n
        rstd = torch.rsqrt(var + eps)
        y.mul_((gamma * rstd)[:, None, :, None])
        ctx.save_for_backward(x, gamma, mean, rstd)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor, _gm: torch.Tensor, _gv: torch.Tensor):  # type: ignore[override]
        x, gamma, mean, rstd = ctx.saved_tensors
        v = _as_tbcs(x)
        gv = _as_tbcs(g.contiguous())
        n = v.shape[1] * v.shape[3]
        sum_g = _sum_bs(gv)
        sum_gxhat = (_dot_bs(gv, v) - mean * sum_g) * rstd  # Σ g·x̂
        dx = dgamma = None
        if ctx.needs_input_grad[0]:
            a = gamma * rstd  # dx = a·g + b·x + c
            b = -a * rstd * sum_gxhat / n
            c = -a * sum_g / n - b * mean
            dx = torch.addcmul(c[:, None, :, None], v, b[:, None, :, None])
            dx.addcmul_(gv, a[:, None, :, None])
            dx = dx.view_as(x)
        if ctx.needs_input_grad[1]:
            dgamma = sum_gxhat
        return dx, dgamma, None


def bntt_train(x: torch.Tensor, gamma: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-mode BNTT: ``(y, μ_t, σ²_t)`` with batch statistics per step (see module doc)."""
    return BNTTFunction.apply(x, gamma, eps)


def bntt_eval(x: torch.Tensor, gamma: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
              eps: float) -> torch.Tensor:
    """Eval-mode BNTT ``y[t] = γ_t (x[t] − μ̄_t)/√(σ̄²_t + ε)`` (all ``[T, C]``), one fused pass."""
    scale = gamma * torch.rsqrt(var + eps)
    shift = -mean * scale
    shape = (x.shape[0], 1, x.shape[2]) + (1,) * (x.dim() - 3)
    return torch.addcmul(shift.view(shape), x, scale.view(shape))


@torch.no_grad()
def update_running(running_mean: torch.Tensor, running_var: torch.Tensor, mean: torch.Tensor,
                   var: torch.Tensor, n: int, momentum: float | torch.Tensor) -> None:
    """``torch.nn.BatchNorm``'s running update, in place, for ``[t, C]`` slices:
    ``μ̄ ← (1 − m)μ̄ + m·μ``, ``σ̄² ← (1 − m)σ̄² + m·σ²·n/(n − 1)``. ``momentum`` may be ``[t, 1]``.
    An entry whose batch statistic is NaN/Inf keeps its running value (a bad batch never poisons
    the statistics used at inference)."""
    unbiased = var * (n / (n - 1))
    mean, unbiased = mean.to(running_mean.dtype), unbiased.to(running_var.dtype)
    running_mean.lerp_(torch.where(torch.isfinite(mean), mean, running_mean), momentum)
    running_var.lerp_(torch.where(torch.isfinite(unbiased), unbiased, running_var), momentum)
