"""Fused Triton kernels for the DSR neurons (CUDA; checked on CPU by Triton's interpreter).

One program owns ``BLOCK`` neurons and loops over the ``T`` steps with the membrane in registers,
exactly the update of :mod:`.functional` (Meng et al., CVPR 2022, eqs. 4-6)::

    IF   v += x_t;                      s_t = 1[v >= alpha*Vth];  v -= Vth*s_t;  out_t = Vth*s_t
    LIF  v = beta*v + (1-beta)*x_t;     s_t = 1[v >= alpha*Vth];  v -= Vth*s_t;  out_t = Vth*s_t/dt

in the same float32 operation order as the torch path (so spikes are bit-identical; launched with
``enable_fp_fusion=False``). Besides the spikes, the forward kernel can write, in the same pass,
what the representation backward needs and no per-step graph: the spike count ``sum_t out_t``
(the rate's numerator), the input sum ``sum_t x_t`` (IF) or the weighted sum ``sum_t w_t x_t``
(LIF, ``w`` = :func:`.functional.lif_weights`), and the spike train packed as bits over time
(:class:`.spike_bits.SpikeBits` layout: step ``t`` in bit ``t % 8`` of byte ``t // 8``).
:func:`pack_bits` / :func:`unpack_bits` are ``SpikeBits.write`` / ``read`` in one launch each.

:class:`IFFunction` / :class:`LIFFunction` are the per-step backward mode (the torch path's
:class:`.functional.DSRIFFunction` / ``DSRLIFFunction``) fused: the forward kernel writes the
spikes and the representation input ``mean_t x_t`` / ``x_w`` in one pass; the backward kernel
reduces the output gradient over time and applies the representation mask
(:func:`.functional.if_rep_grads` / ``lif_rep_grads``) in one pass. DSR has no BPTT: the
"fused BPTT" of the per-step mode is this pair.

Why hand-written and not ``spikingjelly.activation_based.neuron.FlexSN``: FlexSN derives the
backward by autograd of the step function (DSR's backward is the representation gradient, not
the derivative of the step) and emits only per-step outputs and states of the neuron's shape (no
packed bits); and FlexSN's Triton lowering refuses to run without CUDA, so it could not be
checked here. See docs/gpu.md.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from snnplug.kernels import BLOCK, on_device

from snnplug_dsr import functional as F


@triton.jit
def _forward(x_ptr, v0_ptr, out_ptr, vT_ptr, w_ptr, sum_in_ptr, sum_out_ptr, bits_ptr,
             T, N, vth, thr, beta, omb, dt, bit0,
             LIF: tl.constexpr, HAS_V0: tl.constexpr, WRITE_OUT: tl.constexpr,
             SUMS: tl.constexpr, WEIGHTED: tl.constexpr, BITS: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    if HAS_V0:
        v = tl.load(v0_ptr + n, mask=mask, other=0.0)
    else:
        v = tl.full([BLOCK], 0.0, tl.float32)
    acc_in = tl.full([BLOCK], 0.0, tl.float32)
    acc_out = tl.full([BLOCK], 0.0, tl.float32)
    word = tl.full([BLOCK], 0, tl.int32)
    for t in range(T):
        x = tl.load(x_ptr + t * N + n, mask=mask, other=0.0)
        if LIF:
            v = beta * v + omb * x
        else:
            v = v + x
        s = (v >= thr).to(tl.float32)
        sp = s * vth
        v = v - sp
        if LIF:
            o = tl.div_rn(sp, dt)  # IEEE division, as torch (Triton's '/' is approximate)
        else:
            o = sp
        if WRITE_OUT:
            tl.store(out_ptr + t * N + n, o, mask=mask)
        if SUMS:
            acc_out += o
            if WEIGHTED:
                acc_in += tl.load(w_ptr + t) * x
            else:
                acc_in += x
        if BITS:
            b = bit0 + t
            word = word | (s.to(tl.int32) << (b % 8))
            if (b % 8 == 7) | (t == T - 1):
                byte_ptr = bits_ptr + (b // 8) * N + n
                old = tl.load(byte_ptr, mask=mask, other=0).to(tl.int32)
                tl.store(byte_ptr, (old | word).to(tl.uint8), mask=mask)
                word = tl.full([BLOCK], 0, tl.int32)
    tl.store(vT_ptr + n, v, mask=mask)
    if SUMS:
        tl.store(sum_in_ptr + n, acc_in, mask=mask)
        tl.store(sum_out_ptr + n, acc_out, mask=mask)


@triton.jit
def _backward(g_ptr, w_ptr, rep_ptr, gx_ptr, gth_ptr, T, N, upper, tau, inv_T,
              LIF: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    G = tl.full([BLOCK], 0.0, tl.float32)
    for t in range(T):
        g = tl.load(g_ptr + t * N + n, mask=mask, other=0.0)
        if LIF:
            G += tl.load(w_ptr + t) * g
        else:
            G += g
    rep = tl.load(rep_ptr + n, mask=mask, other=0.0)
    if LIF:
        G = G * T
        inside = ((rep > 0) & (rep < upper)).to(tl.float32)
        gx = tl.div_rn(G * inside, tau)
    else:
        inside = ((rep >= 0) & (rep <= upper)).to(tl.float32)
        gx = G * inside
    tl.store(gx_ptr + n, gx * inv_T, mask=mask)
    tl.store(gth_ptr + n, G * (rep > upper).to(tl.float32), mask=mask)


@triton.jit
def _pack(s_ptr, w_ptr, n_steps, N, bit0, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    word = tl.full([BLOCK], 0, tl.int32)
    for i in range(n_steps):
        b = bit0 + i
        s = tl.load(s_ptr + i * N + n, mask=mask, other=0.0)
        word = word | ((s != 0).to(tl.int32) << (b % 8))
        if (b % 8 == 7) | (i == n_steps - 1):
            byte_ptr = w_ptr + (b // 8) * N + n
            old = tl.load(byte_ptr, mask=mask, other=0).to(tl.int32)
            tl.store(byte_ptr, (old | word).to(tl.uint8), mask=mask)
            word = tl.full([BLOCK], 0, tl.int32)


@triton.jit
def _unpack(w_ptr, out_ptr, amp, n_steps, N, bit0, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    for i in range(n_steps):
        b = bit0 + i
        byte = tl.load(w_ptr + (b // 8) * N + n, mask=mask, other=0).to(tl.int32)
        tl.store(out_ptr + i * N + n, ((byte >> (b % 8)) & 1).to(tl.float32) * amp, mask=mask)


def _f32(value: float) -> float:
    """``value`` rounded to float32 (as torch rounds a Python scalar in a float32 op)."""
    return float(torch.tensor(value, dtype=torch.float32))


def simulate(x_seq: torch.Tensor, vth: torch.Tensor, alpha: float, v: torch.Tensor | None = None, *,
             lif: bool = False, tau: float = 1.0, dt: float = 1.0, out: bool = True,
             sums: bool = False, bits: torch.Tensor | None = None, bit0: int = 0):
    """Run IF (``lif=False``) or LIF over ``x_seq [T, ...]`` from ``v`` (zeros when None).

    Returns ``(out_seq or None, v_T, sum_in or None, sum_out or None)``; ``sums`` adds
    ``sum_t x_t`` (IF) / ``sum_t w_t x_t`` (LIF, normalised weights for ``T`` steps) and
    ``sum_t out_t``. ``bits`` (uint8 ``[ceil(total/8), ...]``, the words of a
    :class:`.spike_bits.SpikeBits`) receives the spikes as steps ``bit0 .. bit0+T-1``.
    No autograd graph is built.
    """
    x = x_seq.detach().contiguous()
    T, N = x.shape[0], x[0].numel()
    vth_d = vth.detach().to(torch.float32)
    thr = float(alpha * vth_d)  # fl(alpha*Vth) as the torch path rounds it
    vt = float(vth_d)
    o = torch.empty_like(x) if out else x  # x: a placeholder pointer, never written
    vT = torch.empty_like(x[0])
    v0 = v.detach().to(torch.float32).contiguous() if v is not None else vT
    beta = F.lif_beta(tau, dt) if lif else 0.0
    w = F.lif_weights(T, tau, dt, device=x.device) if (lif and sums) else vT
    s_in = torch.empty_like(vT) if sums else vT
    s_out = torch.empty_like(vT) if sums else vT
    if bits is not None:
        if bits.dtype != torch.uint8 or not bits.is_contiguous() or bits[0].numel() != N:
            raise ValueError("bits must be a contiguous uint8 tensor [words, ...] with one byte per neuron")
        if bit0 < 0 or bit0 + T > 8 * bits.shape[0]:
            raise IndexError(f"steps {bit0}..{bit0 + T - 1} do not fit in {bits.shape[0]} bytes")
    with on_device(x):
        _forward[(triton.cdiv(N, BLOCK),)](
            x, v0, o, vT, w, s_in, s_out, bits if bits is not None else x,
            T, N, vt, thr, _f32(beta), _f32(1 - beta), _f32(dt), bit0,
            LIF=lif, HAS_V0=v is not None, WRITE_OUT=out, SUMS=sums, WEIGHTED=lif,
            BITS=bits is not None, BLOCK=BLOCK, enable_fp_fusion=False)
    return (o if out else None), vT, (s_in if sums else None), (s_out if sums else None)


def pack_bits(spikes: torch.Tensor, words: torch.Tensor, start: int) -> None:
    """:meth:`.spike_bits.SpikeBits.write` fused: OR ``spikes [n, ...]`` (nonzero = spike) into
    ``words`` as steps ``start .. start+n-1`` (one launch instead of three ops per step)."""
    s = spikes.detach().contiguous()
    n, N = s.shape[0], s[0].numel()
    with on_device(s):
        _pack[(triton.cdiv(N, BLOCK),)](s, words, n, N, start, BLOCK=BLOCK)


def unpack_bits(words: torch.Tensor, start: int, n: int, amplitude: torch.Tensor) -> torch.Tensor:
    """:meth:`.spike_bits.SpikeBits.read` fused: steps ``start .. start+n-1`` as float32
    ``amplitude * bit``."""
    out = torch.empty((n, *words.shape[1:]), dtype=torch.float32, device=words.device)
    N = out[0].numel()
    with on_device(words):
        _unpack[(triton.cdiv(N, BLOCK),)](words, out, float(amplitude), n, N, start, BLOCK=BLOCK,
                                          enable_fp_fusion=False)
    return out


def if_simulate(x_seq: torch.Tensor, vth: torch.Tensor, alpha: float,
                v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`.functional.if_simulate` fused: ``(out_seq, v_T)``."""
    out, vT, _, _ = simulate(x_seq, vth, alpha, v)
    return out, vT


def lif_simulate(x_seq: torch.Tensor, vth: torch.Tensor, alpha: float, tau: float, dt: float,
                 v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`.functional.lif_simulate` fused: ``(out_seq, v_T)``."""
    out, vT, _, _ = simulate(x_seq, vth, alpha, v, lif=True, tau=tau, dt=dt)
    return out, vT


def _rep_backward(g: torch.Tensor, rep: torch.Tensor, w: torch.Tensor | None, upper: float,
                  tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dx_t [same for every t], per-neuron threshold terms)`` from ``g [T, ...]``."""
    g = g.contiguous().to(torch.float32)
    T, N = g.shape[0], g[0].numel()
    gx = torch.empty_like(rep)
    gth = torch.empty_like(rep)
    with on_device(g):
        _backward[(triton.cdiv(N, BLOCK),)](
            g, w if w is not None else rep, rep, gx, gth, T, N, upper, tau, 1.0 / T,
            LIF=w is not None, BLOCK=BLOCK, enable_fp_fusion=False)
    return gx, gth


class IFFunction(torch.autograd.Function):
    """Fused :class:`.functional.DSRIFFunction`: same values and gradients, two kernel launches."""

    @staticmethod
    def forward(ctx, x_seq, vth, alpha: float, grad_scale: float):  # type: ignore[override]
        out, v, s_in, _ = simulate(x_seq, vth, alpha, sums=True)
        T = x_seq.shape[0]
        ctx.mean_x = s_in / T
        ctx.vth = vth.detach().clone()
        ctx.grad_scale = grad_scale
        ctx.v_last = v
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        T = g.shape[0]
        gx, gth = _rep_backward(g, ctx.mean_x, None, float(ctx.vth), 1.0)
        gv = None
        if ctx.needs_input_grad[1]:
            gv = (gth.sum() * ctx.grad_scale).reshape(ctx.vth.shape).to(ctx.vth.dtype)
        return gx.to(g.dtype).unsqueeze(0).expand(T, *gx.shape), gv, None, None


class LIFFunction(torch.autograd.Function):
    """Fused :class:`.functional.DSRLIFFunction`."""

    @staticmethod
    def forward(ctx, x_seq, vth, alpha: float, tau: float, dt: float, grad_scale: float):  # type: ignore[override]
        out, v, s_in, _ = simulate(x_seq, vth, alpha, lif=True, tau=tau, dt=dt, sums=True)
        ctx.x_w = s_in
        ctx.w = F.lif_weights(x_seq.shape[0], tau, dt, device=x_seq.device)
        ctx.vth = vth.detach().clone()
        ctx.tau, ctx.dt, ctx.grad_scale = tau, dt, grad_scale
        ctx.v_last = v
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        T = g.shape[0]
        upper = float(ctx.vth.float() / ctx.dt * ctx.tau)
        gx, gth = _rep_backward(g, ctx.x_w, ctx.w, upper, ctx.tau)
        gv = None
        if ctx.needs_input_grad[1]:
            gv = (gth.sum() * ctx.dt * ctx.grad_scale).reshape(ctx.vth.shape).to(ctx.vth.dtype)
        return gx.to(g.dtype).unsqueeze(0).expand(T, *gx.shape), gv, None, None, None, None
