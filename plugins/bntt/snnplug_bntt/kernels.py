"""Fused Triton kernels for BNTT's LIF neuron (CUDA; checked on CPU by Triton's interpreter).

Forward, one program per ``BLOCK`` neurons looping over ``T`` (Kim & Panda 2021, eqs. 4, 8)::

    u_t = λ·v_{t−1} + x_t        s_t = 1[u_t > θ]        v_t = u_t − θ·s_t

(the float32 operation order of :class:`.neuron.LIFSequence`: spikes are bit-identical). It
keeps ``u_t`` for the backward, the reverse scan of backpropagation through time with the
paper's surrogate and a detached reset::

    du_t = g_t·α·max(0, 1 − |u_t/θ − 1|) + λ·du_{t+1}      (du_T also receives dL/dv_T)
    dL/dx_t = du_t,   dL/dv_0 = λ·du_1

Why hand-written and not ``FlexSN``: FlexSN could express this neuron (two states, a custom
surrogate), but its Triton lowering refuses to run without CUDA, so it cannot be checked by the
interpreter in CI; ``benchmarks/gpu.py`` times both on a GPU (docs/gpu.md).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from snnplug.kernels import BLOCK, on_device


@triton.jit
def _forward(x_ptr, v0_ptr, s_ptr, u_ptr, vT_ptr, T, N, leak, threshold,
             SAVE_U: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    v = tl.load(v0_ptr + n, mask=mask, other=0.0)
    for t in range(T):
        x = tl.load(x_ptr + t * N + n, mask=mask, other=0.0)
        u = leak * v + x
        if SAVE_U:
            tl.store(u_ptr + t * N + n, u, mask=mask)
        s = (u > threshold).to(tl.float32)
        tl.store(s_ptr + t * N + n, s, mask=mask)
        v = u - s * threshold
    tl.store(vT_ptr + n, v, mask=mask)


@triton.jit
def _backward(gs_ptr, gv_ptr, u_ptr, gx_ptr, gv0_ptr, T, N, leak, threshold, alpha,
              HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    if HAS_GV:
        carry = tl.load(gv_ptr + n, mask=mask, other=0.0)
    else:
        carry = tl.full([BLOCK], 0.0, tl.float32)
    for step in range(T):
        t = T - 1 - step
        du = carry
        if HAS_GS:
            u = tl.load(u_ptr + t * N + n, mask=mask, other=0.0)
            sg = tl.maximum(1.0 - tl.abs(tl.div_rn(u, threshold) - 1.0), 0.0) * alpha
            du = tl.load(gs_ptr + t * N + n, mask=mask, other=0.0) * sg + carry
        tl.store(gx_ptr + t * N + n, du, mask=mask)
        carry = leak * du
    tl.store(gv0_ptr + n, carry, mask=mask)


def lif_forward(x_seq: torch.Tensor, v0: torch.Tensor, leak: float, threshold: float,
                save_u: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(s_seq, v_T, u_seq or None)`` for ``x_seq [T, ...]`` from ``v0`` (no autograd graph)."""
    x = x_seq.detach().contiguous()
    T, N = x.shape[0], x[0].numel()
    s = torch.empty_like(x)
    u = torch.empty_like(x) if save_u else None
    vT = torch.empty_like(x[0])
    with on_device(x):
        _forward[(triton.cdiv(N, BLOCK),)](
            x, v0.detach().to(torch.float32).contiguous(), s, u if u is not None else s, vT, T, N,
            leak, threshold, SAVE_U=save_u, BLOCK=BLOCK, enable_fp_fusion=False)
    return s, vT, u


class LIFSequence(torch.autograd.Function):
    """Fused :class:`.neuron.LIFSequence`: ``(x_seq, v0, leak, θ, α) -> (s_seq, v_T)``."""

    @staticmethod
    def forward(ctx, x_seq, v0, leak: float, threshold: float, alpha: float):  # type: ignore[override]
        s, vT, u = lif_forward(x_seq, v0, leak, threshold)
        ctx.save_for_backward(u)
        ctx.leak, ctx.threshold, ctx.alpha = leak, threshold, alpha
        return s, vT

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_s, g_v):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        T, N = u.shape[0], u[0].numel()
        gx = torch.empty_like(u)
        gv0 = torch.empty_like(u[0])
        gs = g_s.contiguous().float() if g_s is not None else u
        gv = g_v.contiguous().float() if g_v is not None else gv0
        with on_device(u):
            _backward[(triton.cdiv(N, BLOCK),)](
                gs, gv, u, gx, gv0, T, N, ctx.leak, ctx.threshold, ctx.alpha,
                HAS_GS=g_s is not None, HAS_GV=g_v is not None, BLOCK=BLOCK, enable_fp_fusion=False)
        return gx, (gv0 if ctx.needs_input_grad[1] else None), None, None, None
