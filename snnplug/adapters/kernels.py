"""Fused Triton kernels for the snnTorch ``Leaky`` / ``Synaptic`` nodes (CUDA; checked on CPU by
Triton's interpreter). Update equations: :mod:`snnplug.adapters.lif_functional`.

Two kernels replace the two loops over time of :class:`~.lif_functional.LeakySeq` and
:class:`~.lif_functional.SynapticSeq`; everything vectorised over all steps (surrogate
derivatives, parameter gradients) stays in torch:

* :func:`forward`: one program per ``BLOCK`` neurons runs the ``T`` steps (every reset
  mechanism, ``reset_delay`` or immediate reset, graded spikes) with the state in registers and
  writes the buffers the backward reads (``m1``, the firing flags, the reset flags, ``syn``),
  in snnTorch's float32 operation order: spikes and membranes are bit-identical to the torch
  path;
* :func:`scan`: the backward recurrence ``y[T-1] = E[T-1]``, ``y[t] = E[t] + C[t]·y[t+1]``
  (BPTT through the membrane, and through the synaptic current for ``Synaptic``).

Used when ``beta``, ``alpha``, ``threshold`` and the graded spike factor are single values (the
snnTorch defaults); per-neuron parameters run the torch path.

Why hand-written and not ``FlexSN``: FlexSN could express ``Leaky`` (the reset flag as a second
state), but its Triton lowering refuses to run without CUDA, so it cannot be checked by the
interpreter in CI, and it would re-derive the backward that this adapter already writes by hand
(tested against snnTorch); ``benchmarks/gpu.py`` times the kernels on a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from snnplug.kernels import BLOCK, on_device

_RESET = {"subtract": 0, "zero": 1, "none": 2}


@triton.jit
def _forward(x_ptr, syn0_ptr, m0_ptr, syn_ptr, m1_ptr, sig_ptr, s_ptr, m_ptr, r_ptr,
             T, N, a, b, thr, g,
             SYN: tl.constexpr, RESET: tl.constexpr, IMMEDIATE: tl.constexpr, G_ONE: tl.constexpr,
             BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    m = tl.load(m0_ptr + n, mask=mask, other=0.0)
    r = (m > thr).to(tl.float32)  # H(m[-1] - thr), detached
    if SYN:
        syn = tl.load(syn0_ptr + n, mask=mask, other=0.0)
    for t in range(T):
        i = t * N + n
        x = tl.load(x_ptr + i, mask=mask, other=0.0)
        if SYN:
            syn = a * syn + x
            tl.store(syn_ptr + i, syn, mask=mask)
            m1 = b * m + syn
            if RESET == 0:
                m1 = m1 - r * thr
            elif RESET == 1:
                m1 = m1 - m1 * r
        else:
            if RESET == 1:
                m1 = b * ((1.0 - r) * m) + x
            else:
                m1 = b * m + x
            if RESET == 0:
                m1 = m1 - r * thr
        tl.store(m1_ptr + i, m1, mask=mask)
        sig = (m1 > thr).to(tl.float32)
        tl.store(sig_ptr + i, sig, mask=mask)
        if not G_ONE:
            tl.store(s_ptr + i, sig * g, mask=mask)
        if IMMEDIATE:
            tl.store(r_ptr + i, r, mask=mask)
            do = sig - r
            if RESET == 0:
                m = m1 - do * thr
            else:
                m = m1 - do * m1
            tl.store(m_ptr + i, m, mask=mask)
            r = (m > thr).to(tl.float32)
        else:
            m = m1
            r = sig


@triton.jit
def _scan(E_ptr, C_ptr, y_ptr, T, N, c, PER_STEP: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    y = tl.load(E_ptr + (T - 1) * N + n, mask=mask, other=0.0)
    tl.store(y_ptr + (T - 1) * N + n, y, mask=mask)
    for step in range(1, T):
        t = T - 1 - step
        e = tl.load(E_ptr + t * N + n, mask=mask, other=0.0)
        if PER_STEP:
            y = e + tl.load(C_ptr + t * N + n, mask=mask, other=0.0) * y
        else:
            y = e + c * y
        tl.store(y_ptr + t * N + n, y, mask=mask)


def forward(buf, x_seq: torch.Tensor, syn0: torch.Tensor | None, m0: torch.Tensor,
            a: torch.Tensor | None, b: torch.Tensor, thr: torch.Tensor, g: torch.Tensor, dyn,
            g_is_one: bool) -> None:
    """Fill the forward buffers ``buf`` (a ``lif_functional._Buffers`` built on the contiguous
    ``x_seq``) for ``Leaky`` (``syn0 is None``) or ``Synaptic``."""
    T, N = x_seq.shape[0], x_seq[0].numel()
    m0c = m0.detach().to(torch.float32).contiguous()
    syn0c = syn0.detach().to(torch.float32).contiguous() if syn0 is not None else m0c
    place = buf.m1
    with on_device(x_seq):
        _forward[(triton.cdiv(N, BLOCK),)](
            x_seq, syn0c, m0c, buf.syn if buf.syn is not None else place, buf.m1, buf.sig,
            buf.s, buf.m, buf.r if buf.r is not None else place, T, N,
            float(a) if a is not None else 0.0, float(b), float(thr), float(g),
            SYN=syn0 is not None, RESET=_RESET[dyn.reset], IMMEDIATE=dyn.immediate, G_ONE=g_is_one,
            BLOCK=BLOCK, enable_fp_fusion=False)


def scan(E: torch.Tensor, C: torch.Tensor, per_step: bool, inplace: bool = False) -> torch.Tensor:
    """:func:`~.lif_functional._scan` fused (``C`` full-size when ``per_step``, else one value)."""
    Ec = E.contiguous()
    y = Ec if (inplace and Ec is E) else torch.empty_like(Ec)
    T, N = Ec.shape[0], Ec[0].numel()
    Cc = C.contiguous() if per_step else Ec
    with on_device(Ec):
        _scan[(triton.cdiv(N, BLOCK),)](Ec, Cc, y, T, N, 0.0 if per_step else float(C),
                                        PER_STEP=per_step, BLOCK=BLOCK, enable_fp_fusion=False)
    return y
