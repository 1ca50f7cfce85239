"""Fused Triton inference kernels for the noisy LIF neuron, stages 2 and 3 (CUDA; checked on CPU
by Triton's interpreter). Jiang & Zhang, "A noise based novel strategy for faster SNN training".

The noise samples ``xi ~ N_noise`` are drawn by torch (:func:`.noise.draw`, the neuron's own
generator), so a seeded layer gives the same spikes with and without the kernels; the kernels
fuse everything after the draw.

Stage 2 (eq. 6), elementwise over all steps: ``S(t) = 1[xi(t) + X(t) > V_th]``.

Stage 3 (eqs. 7-10), one program per sample (the standardisation is over each sample's layer)
looping over ``T``; per step, four sweeps over the sample's neurons::

    A = λ V(t-1);   μ, σ = mean, std (biased) of A;   Â = (A − μ)/σ (0 when σ = 0)
    N(A) = Â / (α max|Â|) + β;   H = N(A) + (m − β) + s (xi − m) + X;   S = 1[H > V_th]
    V(t) = H (1 − S) + V_reset S        (step 1 without V(0): H = xi + X)

Why hand-written and not ``FlexSN``: FlexSN's step function is per neuron; stage 3 needs a
reduction over the sample's layer at every step, which a per-neuron scan cannot express (and
FlexSN's Triton lowering refuses to run without CUDA).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from snnplug.kernels import BLOCK, on_device

from . import noise as N


@triton.jit
def _stage2(x_ptr, xi_ptr, s_ptr, total, v_threshold, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < total
    h = tl.load(xi_ptr + n, mask=mask, other=0.0) + tl.load(x_ptr + n, mask=mask, other=0.0)
    tl.store(s_ptr + n, (h > v_threshold).to(tl.float32), mask=mask)


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _stage3(x_ptr, xi_ptr, v_ptr, s_ptr, T, B, L, decay, alpha, beta, res_shift, res_scale, mean,
            v_threshold, v_reset, FIRST_PLAIN: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    base = b * L
    offs = tl.arange(0, BLOCK)
    Lf = L * 1.0
    for t in range(T):
        step = t * B * L + base
        # statistics of A = decay * V(t-1) over the sample's layer (v_ptr holds V(t-1))
        acc = tl.full([BLOCK], 0.0, tl.float32)
        for i in range(0, L, BLOCK):
            m = i + offs < L
            acc += tl.where(m, decay * tl.load(v_ptr + base + i + offs, mask=m, other=0.0), 0.0)
        mu = tl.div_rn(tl.reduce(acc, 0, _add), Lf)
        acc = tl.full([BLOCK], 0.0, tl.float32)
        for i in range(0, L, BLOCK):
            m = i + offs < L
            d = decay * tl.load(v_ptr + base + i + offs, mask=m, other=0.0) - mu
            acc += tl.where(m, d * d, 0.0)
        sigma = tl.sqrt_rn(tl.div_rn(tl.reduce(acc, 0, _add), Lf))
        safe = tl.where(sigma > 0, sigma, 1.0)
        peak_acc = tl.full([BLOCK], 0.0, tl.float32)
        for i in range(0, L, BLOCK):
            m = i + offs < L
            a = decay * tl.load(v_ptr + base + i + offs, mask=m, other=0.0)
            a_hat = tl.where(sigma > 0, tl.div_rn(a - mu, safe), 0.0)
            peak_acc = tl.maximum(peak_acc, tl.where(m, tl.abs(a_hat), 0.0))
        peak = tl.reduce(peak_acc, 0, _max)
        one = tl.full([BLOCK], 1.0, tl.float32)
        scale = tl.where(peak > 0, tl.div_rn(one, alpha * tl.where(peak > 0, peak, 1.0)), 0.0)  # [BLOCK], all equal
        plain = (t == 0) & FIRST_PLAIN  # no V(0): the first step uses the full N_noise
        for i in range(0, L, BLOCK):
            m = i + offs < L
            xi = tl.load(xi_ptr + step + i + offs, mask=m, other=0.0)
            a = decay * tl.load(v_ptr + base + i + offs, mask=m, other=0.0)
            a_hat = tl.where(sigma > 0, tl.div_rn(a - mu, safe), 0.0)
            noise = (a_hat * scale + beta) + (res_shift + res_scale * (xi - mean))
            noise = tl.where(plain, xi, noise)
            h = noise + tl.load(x_ptr + step + i + offs, mask=m, other=0.0)
            s = (h > v_threshold).to(tl.float32)
            tl.store(s_ptr + step + i + offs, s, mask=m)
            tl.store(v_ptr + base + i + offs, h * (1.0 - s) + v_reset * s, mask=m)
        tl.debug_barrier()


def stage2(x_seq: torch.Tensor, xi: torch.Tensor, v_threshold: float) -> torch.Tensor:
    """Stage-2 spikes ``1[xi + X > V_th]`` for all steps (no gradient)."""
    x = x_seq.detach().contiguous()
    xi = xi.contiguous()
    s = torch.empty_like(x)
    with on_device(x):
        _stage2[(triton.cdiv(x.numel(), BLOCK),)](x, xi, s, x.numel(), v_threshold, BLOCK=BLOCK)
    return s


def stage3(x_seq: torch.Tensor, xi: torch.Tensor, v0: torch.Tensor | None, spec: N.NoiseSpec, *,
           decay: float, alpha: float, beta: float, v_threshold: float,
           v_reset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage-3 spikes ``[T, B, ...]`` and the final potential ``V(T)`` (no gradient).

    ``v0`` is ``V(0)`` (None: the first step uses the full ``N_noise``)."""
    x = x_seq.detach().contiguous()
    xi = xi.contiguous()
    T, B = x.shape[0], x.shape[1]
    L = x[0, 0].numel()
    s = torch.empty_like(x)
    # V(t-1) lives in v, updated in place step by step (zeros stand in for a missing V(0))
    v = torch.zeros_like(x[0]) if v0 is None else v0.detach().to(torch.float32).contiguous().clone()
    with on_device(x):
        _stage3[(B,)](x, xi, v, s, T, B, L, decay, alpha, beta, spec.mean - beta,
                      N.residual_scale(spec, alpha), spec.mean, v_threshold, v_reset,
                      FIRST_PLAIN=v0 is None, BLOCK=BLOCK)
    return s, v
