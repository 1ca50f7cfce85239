"""Functional core of snnTorch's ``Leaky`` and ``Synaptic`` neurons (snnTorch 0.9-1.0).

One step of ``snntorch.Leaky`` (``b = clamp(beta, 0, 1)``, ``H(u) = 1[u > 0]``, ``g`` the graded
spike factor), in snnTorch's exact order of operations::

    r   = H(m[t-1] - thr)                      # reset flag from the *previous* membrane, detached
    m'  = (1 - r) * m[t-1]   if reset == "zero" else m[t-1]
    m1  = b * m' + x[t]      (- r * thr        if reset == "subtract")
    s   = H(m1 - thr) * g                      # fires strictly above threshold
    m[t] = m1                                  if reset_delay (the reset acts at t+1)
    m[t] = m1 - (s/g - r) * thr                if not reset_delay and reset == "subtract"
    m[t] = m1 - (s/g - r) * m1                 if not reset_delay and reset == "zero"

``Synaptic`` adds a synaptic current ``syn[t] = clamp(alpha,0,1) * syn[t-1] + x[t]`` and integrates
``pre = b * m[t-1] + syn[t]``; its zero reset acts after integration (``m1 = pre - pre * r``),
unlike ``Leaky``'s; the rest is as above. Reference: snnTorch (Eshraghian et al., "Training
spiking neural networks using lessons from deep learning", Proc. IEEE 111(9), 2023),
``snntorch/_neurons/leaky.py`` and ``synaptic.py``.

Two implementations with identical forwards:

* ``leaky_step`` / ``synaptic_step``: one step with autograd (any surrogate, single-step mode);
* ``LeakySeq`` / ``SynapticSeq``: a ``torch.autograd.Function`` running all ``T`` steps without
  building a graph and back-propagating through time by hand. The backward recurrences
  (derived from the update above; ``sg = dS/du`` at ``m1 - thr``, ``e = dL/ds * g * sg``)::

    dL/dm1[t]   = dL/dm[t] * A[t] + e[t]
                  A = 1 (reset_delay or "none"),  1 - thr*sg ("subtract"),  1 - (H - r) - m1*sg ("zero")
    dL/dm[t-1]  = dL/dm1[t] * b * K[t] (+ dL/dm[t-1] from outside),   K = 1 - r for "zero", else 1
    dL/dx[t]    = dL/dm1[t]                    (Leaky)

  The per-step loop does two or three elementwise operations; surrogate derivatives and the
  parameter gradients are computed for all steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from snnplug import kernels
from snnplug.adapters.surrogates import AnySurrogate, Surrogate, heaviside

_KERNELS = "snnplug.adapters.kernels"


def _fused(x: torch.Tensor, *params: torch.Tensor | None) -> Any:
    """The fused Triton kernels (:mod:`snnplug.adapters.kernels`) for CUDA float32 input and
    one-value parameters, else None (the torch loops below)."""
    if any(p is not None and p.numel() != 1 for p in params):
        return None
    return kernels.for_tensor(x, _KERNELS)

RESETS = ("subtract", "zero", "none")


@dataclass(frozen=True)
class Dynamics:
    """The static choices of a neuron: reset mechanism and reset timing."""

    reset: str = "subtract"
    reset_delay: bool = True

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise ValueError(f"reset_mechanism must be one of {RESETS}, got {self.reset!r}")

    @property
    def immediate(self) -> bool:
        """True when the membrane is reset in the step it fires (no delay and a reset)."""
        return not self.reset_delay and self.reset != "none"


# -- one step with autograd (reference; mirrors snnTorch line by line) ----------------------

def leaky_step(x: torch.Tensor, m: torch.Tensor, b: torch.Tensor, thr: torch.Tensor, g: torch.Tensor,
               dyn: Dynamics, sur: AnySurrogate) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``Leaky`` step: ``(x[t], m[t-1]) -> (s[t], m[t])``; ``b`` is ``clamp(beta, 0, 1)``."""
    r = heaviside(m - thr).detach()
    if dyn.reset == "zero":
        m = (1 - r) * m
    m1 = b * m + x
    if dyn.reset == "subtract":
        m1 = m1 - r * thr
    s = sur.spike(m1 - thr) * g
    if dyn.immediate:
        do = s / g - r
        m1 = m1 - do * thr if dyn.reset == "subtract" else m1 - do * m1
    return s, m1


def synaptic_step(x: torch.Tensor, syn: torch.Tensor, m: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                  thr: torch.Tensor, g: torch.Tensor, dyn: Dynamics, sur: AnySurrogate
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One ``Synaptic`` step: ``(x[t], syn[t-1], m[t-1]) -> (s[t], syn[t], m[t])``."""
    r = heaviside(m - thr).detach()
    syn = a * syn + x
    pre = b * m + syn
    if dyn.reset == "subtract":
        m1 = pre - r * thr
    elif dyn.reset == "zero":
        m1 = pre - pre * r
    else:
        m1 = pre
    s = sur.spike(m1 - thr) * g
    if dyn.immediate:
        do = s / g - r
        m1 = m1 - do * thr if dyn.reset == "subtract" else m1 - do * m1
    return s, syn, m1


# -- whole sequence, hand-written BPTT ------------------------------------------------------
#
# The forward loop writes into preallocated [T, ...] buffers with ``out=`` operations. It is
# bit-identical to the step above: ``m1 > thr`` is the same predicate as ``m1 - thr > 0`` for
# IEEE floats, and every product with the reset flag r (or with s/g - r) is exact because the
# flag is -1, 0 or 1, so ``addcmul`` (fused or not) rounds exactly as snnTorch's two operations.
# ``s/g - r`` equals ``H - r`` for any finite non-zero g (g/g == 1 in IEEE arithmetic).

def _reduce(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum a ``[T, B, ...]`` gradient down to the shape of a broadcast parameter."""
    return grad.sum(0).sum_to_size(like.shape) if like.dim() else grad.sum()


def _fire(m1: torch.Tensor, thr: torch.Tensor, g: torch.Tensor, g_is_one: bool, sig_t: torch.Tensor,
          s_t: torch.Tensor) -> None:
    torch.gt(m1, thr, out=sig_t)
    if not g_is_one:
        torch.mul(sig_t, g, out=s_t)


def _immediate_reset(dyn: Dynamics, m1: torch.Tensor, sig_t: torch.Tensor, r: torch.Tensor, thr: torch.Tensor,
                     m_out: torch.Tensor) -> None:
    do = sig_t - r
    if dyn.reset == "subtract":
        torch.addcmul(m1, do, thr, value=-1, out=m_out)
    else:
        torch.addcmul(m1, do, m1, value=-1, out=m_out)


class _Buffers:
    """Preallocated sequences for one forward pass, and their per-step views.

    The views (``*_t``, from one ``unbind`` per buffer) are taken once: indexing ``buf[t]`` in the
    loop costs a ``select`` call per access, which dominates for small layers.
    """

    def __init__(self, x_seq: torch.Tensor, dyn: Dynamics, g_is_one: bool, synaptic: bool) -> None:
        self.m1 = torch.empty_like(x_seq)
        self.sig = torch.empty_like(x_seq)
        self.s = self.sig if g_is_one else torch.empty_like(x_seq)
        self.m = torch.empty_like(x_seq) if dyn.immediate else self.m1
        self.r = torch.empty_like(x_seq) if dyn.immediate else None
        self.syn = torch.empty_like(x_seq) if synaptic else None
        self.x_t = x_seq.unbind(0)
        self.m1_t = self.m1.unbind(0)
        self.sig_t = self.sig.unbind(0)
        self.s_t = self.sig_t if g_is_one else self.s.unbind(0)
        self.m_t = self.m.unbind(0) if dyn.immediate else self.m1_t
        self.r_t = self.r.unbind(0) if self.r is not None else ()
        self.syn_t = self.syn.unbind(0) if self.syn is not None else ()


def _next_reset(buf: _Buffers, t: int, m: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """Immediate resets: the flag ``H(m[t] - thr)`` for step t+1, written into ``buf.r[t+1]``."""
    if t + 1 < len(buf.r_t):
        torch.gt(m, thr, out=buf.r_t[t + 1])
        return buf.r_t[t + 1]
    return buf.r_t[t]  # unused


def _resets(dyn: Dynamics, r0: torch.Tensor, sig: torch.Tensor, r_seq: torch.Tensor | None) -> torch.Tensor:
    """The reset flag used at every step: ``H(m[t-1] - thr)``."""
    if r_seq is not None:
        return r_seq
    return torch.cat((r0.unsqueeze(0), sig[:-1]), 0)


def _grad_terms(dyn: Dynamics, sur: Surrogate, m1: torch.Tensor, sig: torch.Tensor, r: torch.Tensor | None,
                thr: torch.Tensor, g: torch.Tensor, g_is_one: bool, gs: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``e = dL/ds * g * sg`` (a new tensor) and the factor ``A`` (None means 1) for all steps.

    ``sg`` is computed in place in a fresh ``m1 - thr`` and ``e`` in place in ``sg`` once ``A`` has
    used it: the only full-size allocation of the common case (it becomes ``dL/dm1``).
    """
    sg = sur.grad_(m1 - thr)
    A = None
    if dyn.immediate:
        assert r is not None
        A = 1 - thr * sg if dyn.reset == "subtract" else 1 - (sig - r) - m1 * sg
    if gs is None:
        return torch.zeros_like(m1), A
    e = sg if sg.shape == m1.shape else sg.expand_as(m1).clone()
    return e.mul_(gs if g_is_one else gs * g), A


def _thr_grad(dyn: Dynamics, sur: Surrogate, e: torch.Tensor, g_m1: torch.Tensor, gmo: torch.Tensor | None,
              r: torch.Tensor, sig: torch.Tensor, m1: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """``dL/dthr`` per element and step (before reduction); ``gmo`` is ``dL/dm[t]``."""
    out = -e
    if dyn.reset == "subtract":
        out = out - g_m1 * r
    if dyn.immediate and gmo is not None:
        sg = sur.grad(m1 - thr)
        if dyn.reset == "subtract":
            out = out - gmo * (sig - r) + gmo * thr * sg
        else:
            out = out + gmo * m1 * sg
    return out


def _scan(E: torch.Tensor, C: torch.Tensor, per_step: bool, inplace: bool = False) -> torch.Tensor:
    """``y[T-1] = E[T-1]``, ``y[t] = E[t] + C[t] * y[t+1]`` (``per_step``) or ``E[t] + C * y[t+1]``.

    ``inplace``: overwrite ``E`` with ``y`` (same arithmetic, no allocation).
    """
    k = _fused(E) if (C.shape == E.shape if per_step else C.numel() == 1) else None
    if k is not None:
        return k.scan(E, C, per_step, inplace)
    y = E if inplace else torch.empty_like(E)
    y_t = y.unbind(0)
    C_t = C.unbind(0) if per_step else None
    if inplace:
        for t in range(E.shape[0] - 2, -1, -1):
            y_t[t].addcmul_(C_t[t] if C_t is not None else C, y_t[t + 1])
        return y
    E_t = E.unbind(0)
    y_t[-1].copy_(E_t[-1])
    for t in range(E.shape[0] - 2, -1, -1):
        torch.addcmul(E_t[t], C_t[t] if C_t is not None else C, y_t[t + 1], out=y_t[t])
    return y


class LeakySeq(torch.autograd.Function):
    """All ``T`` steps of ``Leaky``: ``(x_seq, m0, b, thr, g) -> (s_seq, m_seq)``."""

    @staticmethod
    def forward(ctx: Any, x_seq: torch.Tensor, m0: torch.Tensor, b: torch.Tensor, thr: torch.Tensor,  # type: ignore[override]
                g: torch.Tensor, dyn: Dynamics, sur: Surrogate, g_is_one: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        k = _fused(x_seq, b, thr, g)
        buf = _Buffers(x_seq.contiguous() if k is not None else x_seq, dyn, g_is_one, synaptic=False)
        r0 = heaviside(m0 - thr).to(x_seq.dtype)
        if buf.r is not None:
            buf.r_t[0].copy_(r0)
        if k is not None:
            k.forward(buf, x_seq.contiguous(), None, m0, None, b, thr, g, dyn, g_is_one)
        r, m = r0, m0
        zero, subtract = dyn.reset == "zero", dyn.reset == "subtract"
        for t, x in enumerate(buf.x_t if k is None else ()):  # the kernel filled buf
            m1, sig_t = buf.m1_t[t], buf.sig_t[t]
            torch.mul(b, (1 - r) * m if zero else m, out=m1)
            m1.add_(x)
            if subtract:
                m1.addcmul_(r, thr, value=-1)
            _fire(m1, thr, g, g_is_one, sig_t, buf.s_t[t])
            if dyn.immediate:
                m = buf.m_t[t]
                _immediate_reset(dyn, m1, sig_t, r, thr, m)
                r = _next_reset(buf, t, m, thr)
            else:
                r, m = sig_t, m1
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(m0, r0, buf.m1, buf.m, buf.sig, buf.r if buf.r is not None else r0, b, thr, g)
        ctx.dyn, ctx.sur, ctx.g_is_one = dyn, sur, g_is_one
        return buf.s, buf.m

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, gm_seq: torch.Tensor | None):  # type: ignore[override]
        m0, r0, m1, m_seq, sig, r_saved, b, thr, g = ctx.saved_tensors
        dyn: Dynamics = ctx.dyn
        need = ctx.needs_input_grad
        # the reset flags are needed only for these (a full-size cat otherwise saved)
        r = (_resets(dyn, r0, sig, r_saved if dyn.immediate else None)
             if dyn.immediate or dyn.reset == "zero" or need[3] else None)
        e, A = _grad_terms(dyn, ctx.sur, m1, sig, r, thr, g, ctx.g_is_one, gs)
        bk = b * (1 - r) if r is not None and dyn.reset == "zero" else b  # dm1[t]/dm[t-1]
        E = e if gm_seq is None else e + (gm_seq if A is None else A * gm_seq)
        per_step = dyn.reset == "zero"
        if per_step:  # C[t] = A[t] * bk[t+1]
            C = torch.zeros_like(m1)
            C[:-1] = bk[1:] if A is None else A[:-1] * bk[1:]
        else:
            C = b if A is None else A * b
            per_step = A is not None
        # E is a fresh tensor: scan in place unless it is e and the threshold gradient reads e
        g_m1 = _scan(E, C, per_step, inplace=E is not e or not need[3])
        grads: list[torch.Tensor | None] = [None] * 8
        grads[0] = g_m1 if need[0] else None
        if need[1]:
            grads[1] = (bk[0] if dyn.reset == "zero" else bk) * g_m1[0]
        if need[2] or need[3]:
            m_prev = torch.cat((m0.unsqueeze(0), m_seq[:-1]), 0)
        if need[2]:
            mz = (1 - r) * m_prev if dyn.reset == "zero" else m_prev
            grads[2] = _reduce(g_m1 * mz, b)
        if need[3]:
            gmo = None
            if dyn.immediate:
                gmo = torch.zeros_like(m1)
                gmo[:-1] = g_m1[1:] * (bk[1:] if dyn.reset == "zero" else bk)
                if gm_seq is not None:
                    gmo = gmo + gm_seq
            grads[3] = _reduce(_thr_grad(dyn, ctx.sur, e, g_m1, gmo, r, sig, m1, thr), thr)
        if need[4] and gs is not None:
            grads[4] = _reduce(gs * sig, g)
        return tuple(grads)


class SynapticSeq(torch.autograd.Function):
    """All ``T`` steps of ``Synaptic``: ``(x_seq, syn0, m0, a, b, thr, g) -> (s, syn, m)`` sequences."""

    @staticmethod
    def forward(ctx: Any, x_seq: torch.Tensor, syn0: torch.Tensor, m0: torch.Tensor, a: torch.Tensor,  # type: ignore[override]
                b: torch.Tensor, thr: torch.Tensor, g: torch.Tensor, dyn: Dynamics, sur: Surrogate,
                g_is_one: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = _fused(x_seq, a, b, thr, g)
        buf = _Buffers(x_seq.contiguous() if k is not None else x_seq, dyn, g_is_one, synaptic=True)
        assert buf.syn is not None
        r0 = heaviside(m0 - thr).to(x_seq.dtype)
        if buf.r is not None:
            buf.r_t[0].copy_(r0)
        if k is not None:
            k.forward(buf, x_seq.contiguous(), syn0, m0, a, b, thr, g, dyn, g_is_one)
        r, syn, m = r0, syn0, m0
        for t, x in enumerate(buf.x_t if k is None else ()):  # the kernel filled buf
            syn_t, pre = buf.syn_t[t], buf.m1_t[t]
            torch.mul(a, syn, out=syn_t)
            syn_t.add_(x)
            torch.mul(b, m, out=pre)
            pre.add_(syn_t)
            if dyn.reset == "subtract":
                pre.addcmul_(r, thr, value=-1)
            elif dyn.reset == "zero":
                pre.sub_(pre * r)
            _fire(pre, thr, g, g_is_one, buf.sig_t[t], buf.s_t[t])
            if dyn.immediate:
                m = buf.m_t[t]
                _immediate_reset(dyn, pre, buf.sig_t[t], r, thr, m)
                r = _next_reset(buf, t, m, thr)
            else:
                r, m = buf.sig_t[t], pre
            syn = syn_t
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(syn0, m0, r0, buf.syn, buf.m1, buf.m, buf.sig,
                              buf.r if buf.r is not None else r0, a, b, thr, g)
        ctx.dyn, ctx.sur, ctx.g_is_one = dyn, sur, g_is_one
        return buf.s, buf.syn, buf.m

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, gsyn_seq: torch.Tensor | None,  # type: ignore[override]
                 gm_seq: torch.Tensor | None):
        syn0, m0, r0, syn_seq, m1, m_seq, sig, r_saved, a, b, thr, g = ctx.saved_tensors
        dyn: Dynamics = ctx.dyn
        r = _resets(dyn, r0, sig, r_saved if dyn.immediate else None)
        e, A = _grad_terms(dyn, ctx.sur, m1, sig, r, thr, g, ctx.g_is_one, gs)
        K = (1 - r) if dyn.reset == "zero" else None
        # P[t] = dL/dpre[t] = K[t] * (A[t] * (b * P[t+1] + gm_seq[t]) + e[t])
        E = e if gm_seq is None else e + (gm_seq if A is None else A * gm_seq)
        if K is not None:
            E = K * E
        coef = b if A is None else A * b
        if K is not None:
            coef = K * coef
        P = _scan(E, coef, K is not None or A is not None, inplace=E is not e)  # e is read below
        Q = P if gsyn_seq is None else P + gsyn_seq
        g_syn = _scan(Q, a, False, inplace=Q is not P)  # P is read below
        gm = torch.zeros_like(m1)
        gm[:-1] = b * P[1:]
        if gm_seq is not None:
            gm = gm + gm_seq
        g_m1 = e + (gm if A is None else A * gm)
        need = ctx.needs_input_grad
        grads: list[torch.Tensor | None] = [None] * 10
        grads[0] = g_syn if need[0] else None
        grads[1] = a * g_syn[0] if need[1] else None
        grads[2] = b * P[0] if need[2] else None
        if need[3]:
            grads[3] = _reduce(g_syn * torch.cat((syn0.unsqueeze(0), syn_seq[:-1]), 0), a)
        if need[4]:
            grads[4] = _reduce(P * torch.cat((m0.unsqueeze(0), m_seq[:-1]), 0), b)
        if need[5]:
            grads[5] = _reduce(_thr_grad(dyn, ctx.sur, e, g_m1, gm if dyn.immediate else None, r, sig, m1, thr), thr)
        if need[6] and gs is not None:
            grads[6] = _reduce(gs * sig, g)
        return tuple(grads)
