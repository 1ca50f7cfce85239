"""Functional core of DSR (Meng et al., "Training High-Performance Low-Latency Spiking Neural
Networks by Differentiation on Spike Representation", CVPR 2022).

Forward: a real spiking simulation (soft reset, firing at ``alpha * Vth``).
Backward: the derivative of the representation mapping, never through time.

IF   ``v += x_t; s_t = 1[v >= alpha*Vth]; out_t = Vth*s_t; v -= out_t``
     representation ``r = clamp(mean_t x_t, 0, Vth)`` (paper eq. 15/17)
LIF  ``v = beta*v + (1-beta)*x_t; s_t = 1[v >= alpha*Vth]; v -= Vth*s_t; out_t = Vth*s_t/dt``
     with ``beta = exp(-dt/tau)``; representation ``clamp(x_w/tau, 0, Vth/dt)`` where
     ``x_w = sum_t w_t x_t / sum_t w_t`` and ``w_t = beta**(T-t)`` (paper eq. 14/17)

Gradients (``G`` is the gradient reaching the representation; for a per-step output gradient
``g_t`` it is ``sum_t g_t`` for IF and ``T * sum_t w_t g_t / sum w`` for LIF, as in the authors'
code)::

    IF   dL/dx_t  = G/T * 1[0 <= mean x <= Vth]        dL/dVth = sum G * 1[mean x > Vth]
    LIF  dL/dx_t  = G/(tau*T) * 1[0 < x_w < Vth*tau/dt]  dL/dVth = sum G * 1[x_w > Vth*tau/dt] * dt

The LIF threshold gradient is scaled by ``dt`` as in the authors' code and SpikingJelly: the
exact derivative of the clamp's upper bound ``Vth/dt`` would be ``1/dt`` (400x larger at
``dt=0.05``), which drives thresholds to the bound. Both are multiplied by ``grad_scale``.
"""

from __future__ import annotations

import math

import torch


# -- forward simulation ------------------------------------------------------------------------
def if_simulate(x_seq: torch.Tensor, vth: torch.Tensor, alpha: float,
                v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """IF with soft reset and the alpha firing rule. Returns ``(out_seq, v_T)``; ``out = Vth*s``.

    ``v`` is the membrane potential before the first step (zeros when None). No autograd graph.
    """
    with torch.no_grad():
        v = torch.zeros_like(x_seq[0]) if v is None else v.clone()
        out = torch.empty_like(x_seq)
        thr = alpha * vth  # rounded like the authors' code: fl(alpha * Vth)
        vt = float(vth)
        for t in range(x_seq.shape[0]):
            v.add_(x_seq[t])
            s = out[t]
            torch.ge(v, thr, out=s)  # s_t in {0, 1}
            v.sub_(s, alpha=vt)      # exact: Vth * 1 = Vth
        out.mul_(vt)
    return out, v


def lif_beta(tau: float, dt: float) -> float:
    """Decay per step, ``beta = exp(-dt/tau)``."""
    return math.exp(-dt / tau)


def lif_simulate(x_seq: torch.Tensor, vth: torch.Tensor, alpha: float, tau: float, dt: float,
                 v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LIF (paper eq. 5/6) with soft reset; returns ``(out_seq, v_T)`` with ``out = Vth*s/dt``."""
    beta = lif_beta(tau, dt)
    with torch.no_grad():
        v = torch.zeros_like(x_seq[0]) if v is None else v
        out = torch.empty_like(x_seq)
        thr = alpha * vth
        for t in range(x_seq.shape[0]):
            v = beta * v + (1 - beta) * x_seq[t]  # same operation order as the authors' code
            spike = (v >= thr).to(x_seq.dtype) * vth
            v = v - spike
            torch.div(spike, dt, out=out[t])
    return out, v


def lif_weights(T: int, tau: float, dt: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised representation weights ``w_t = beta**(T-t) / sum_s beta**(T-s)``, t = 1..T."""
    w = torch.tensor([math.exp(-1 / tau * (dt * T - i * dt)) for i in range(1, T + 1)],
                     device=device, dtype=dtype)
    return w / w.sum()


def weighted_mean(x_seq: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_t w_t x_t`` over the leading (time) axis, ``w`` normalised."""
    return torch.tensordot(w.to(x_seq.dtype), x_seq, dims=([0], [0]))


# -- representation gradients (shared by the per-step and the representation backward) --------
def if_rep_grads(G: torch.Tensor, mean_x: torch.Tensor, vth: torch.Tensor,
                 grad_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``clamp(mean_x, 0, Vth)``: ``(dL/d mean_x, dL/dVth)`` for upstream ``G``."""
    gx = G * ((mean_x >= 0) & (mean_x <= vth)).to(G.dtype)
    gv = (G * (mean_x > vth).to(G.dtype)).sum() * grad_scale
    return gx, gv.reshape(vth.shape).to(vth.dtype)


def lif_rep_grads(G: torch.Tensor, x_w: torch.Tensor, vth: torch.Tensor, tau: float, dt: float,
                  grad_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``clamp(x_w/tau, 0, Vth/dt)`` (threshold part scaled by ``dt``, see module doc)."""
    upper = vth / dt * tau
    gx = G * ((x_w > 0) & (x_w < upper)).to(G.dtype) / tau
    gv = (G * (x_w > upper).to(G.dtype)).sum() * dt * grad_scale
    return gx, gv.reshape(vth.shape).to(vth.dtype)


# -- per-step autograd functions -----------------------------------------------------------------
class DSRIFFunction(torch.autograd.Function):
    """Multi-step DSR-IF: spiking forward, representation backward (input grad equal over t).

    Saves only ``mean_t x_t`` ([B, ...]), not the input sequence.
    """

    @staticmethod
    def forward(ctx, x_seq, vth, alpha: float, grad_scale: float):  # type: ignore[override]
        out, v = if_simulate(x_seq, vth, alpha)
        ctx.mean_x = x_seq.mean(0)
        ctx.vth = vth.detach().clone()
        ctx.T = x_seq.shape[0]
        ctx.grad_scale = grad_scale
        ctx.v_last = v
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        G = g.sum(0)
        gx, gv = if_rep_grads(G, ctx.mean_x, ctx.vth, ctx.grad_scale)
        gx = (gx / ctx.T).unsqueeze(0).expand(ctx.T, *gx.shape)
        return gx, (gv if ctx.needs_input_grad[1] else None), None, None


class DSRLIFFunction(torch.autograd.Function):
    """Multi-step DSR-LIF: spiking forward, weighted-representation backward (as the authors')."""

    @staticmethod
    def forward(ctx, x_seq, vth, alpha: float, tau: float, dt: float, grad_scale: float):  # type: ignore[override]
        out, v = lif_simulate(x_seq, vth, alpha, tau, dt)
        T = x_seq.shape[0]
        w = lif_weights(T, tau, dt, device=x_seq.device, dtype=x_seq.dtype)
        ctx.x_w = weighted_mean(x_seq, w)
        ctx.w = w
        ctx.vth = vth.detach().clone()
        ctx.T, ctx.tau, ctx.dt, ctx.grad_scale = T, tau, dt, grad_scale
        ctx.v_last = v
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        G = weighted_mean(g, ctx.w) * ctx.T
        gx, gv = lif_rep_grads(G, ctx.x_w, ctx.vth, ctx.tau, ctx.dt, ctx.grad_scale)
        gx = (gx / ctx.T).unsqueeze(0).expand(ctx.T, *gx.shape)
        return gx, (gv if ctx.needs_input_grad[1] else None), None, None, None, None


class ReplayFunction(torch.autograd.Function):
    """Representation backward for one neuron layer in the T-independent ("ANN") pass.

    Forward returns the firing rate measured by the spiking simulation (``rate``); the value of
    ``x_rep`` (the layer's mean input computed on representations) is ignored. Backward maps the
    representation gradient through ``grads_fn`` (:func:`if_rep_grads` or :func:`lif_rep_grads`).
    """

    @staticmethod
    def forward(ctx, x_rep, vth, rate, grads_fn):  # type: ignore[override]
        ctx.grads_fn = grads_fn
        return rate.clone()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        gx, gv = ctx.grads_fn(g)
        return gx.reshape(g.shape), (gv if ctx.needs_input_grad[1] else None), None, None
