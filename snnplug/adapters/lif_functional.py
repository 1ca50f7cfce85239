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

from snnplug.adapters.surrogates import AnySurrogate, Surrogate, heaviside

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

def _reduce(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum a ``[T, B, ...]`` gradient down to the shape of a broadcast parameter."""
    return grad.sum(0).sum_to_size(like.shape) if like.dim() else grad.sum()


def _shift_prev(first: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """``[first, seq[0], ..., seq[T-2]]``: the state each step starts from."""
    return torch.cat((first.unsqueeze(0), seq[:-1]), 0)


def _forward_common(dyn: Dynamics, m1: torch.Tensor, r: torch.Tensor, thr: torch.Tensor, g: torch.Tensor,
                    g_is_one: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Fire and (for immediate resets) reset: returns ``(s, m_out)``; same ops as snnTorch."""
    sig = heaviside(m1 - thr)
    s = sig if g_is_one else sig * g
    if dyn.immediate:
        do = (s if g_is_one else s / g) - r
        m1 = m1 - do * thr if dyn.reset == "subtract" else m1 - do * m1
    return s, m1


def _backward_terms(dyn: Dynamics, sur: Surrogate, m1: torch.Tensor, r: torch.Tensor, thr: torch.Tensor,
                    g: torch.Tensor, gs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``e = dL/ds * g * sg``, the factor ``A`` (None means 1) and ``H(m1 - thr)`` for all steps."""
    u = m1 - thr
    sg = sur.grad(u)
    sig = heaviside(u).to(m1.dtype)
    e = gs * g * sg
    A = None
    if dyn.immediate:
        A = 1 - thr * sg if dyn.reset == "subtract" else 1 - (sig - r) - m1 * sg
    return e, A, sig


def _thr_grad(dyn: Dynamics, e: torch.Tensor, g_m1: torch.Tensor, gmo: torch.Tensor | None, r: torch.Tensor,
              sig: torch.Tensor, m1: torch.Tensor, thr: torch.Tensor, sur: Surrogate) -> torch.Tensor:
    """``dL/dthr`` per element and step (before reduction)."""
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


class LeakySeq(torch.autograd.Function):
    """All ``T`` steps of ``Leaky``: ``(x_seq, m0, b, thr, g) -> (s_seq, m_seq)``."""

    @staticmethod
    def forward(ctx: Any, x_seq: torch.Tensor, m0: torch.Tensor, b: torch.Tensor, thr: torch.Tensor,  # type: ignore[override]
                g: torch.Tensor, dyn: Dynamics, sur: Surrogate, g_is_one: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = x_seq.shape[0]
        s_out, m1_out, m_out = [], [], []
        m = m0
        r = heaviside(m - thr)
        for t in range(steps):
            if dyn.reset == "zero":
                m = (1 - r) * m
            m1 = b * m + x_seq[t]
            if dyn.reset == "subtract":
                m1 = m1 - r * thr
            s, m = _forward_common(dyn, m1, r, thr, g, g_is_one)
            s_out.append(s)
            m1_out.append(m1)
            m_out.append(m)
            if dyn.immediate:
                r = heaviside(m - thr)
            else:  # the state is m1: H(m1 - thr) was just computed as the spike
                r = s if g_is_one else heaviside(m1 - thr)
        s_seq = torch.stack(s_out)
        m1_seq = torch.stack(m1_out)
        m_seq = torch.stack(m_out) if dyn.immediate else m1_seq
        ctx.save_for_backward(m0, m1_seq, m_seq, b, thr, g)
        ctx.dyn, ctx.sur = dyn, sur
        return s_seq, m_seq

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor, gm_seq: torch.Tensor | None):  # type: ignore[override]
        m0, m1, m_seq, b, thr, g = ctx.saved_tensors
        dyn: Dynamics = ctx.dyn
        sur: Surrogate = ctx.sur
        if gs is None:
            gs = torch.zeros_like(m1)
        m_prev = _shift_prev(m0, m_seq)
        r = heaviside(m_prev - thr).to(m1.dtype)
        e, A, sig = _backward_terms(dyn, sur, m1, r, thr, g, gs)
        bk = b * (1 - r) if dyn.reset == "zero" else b.expand_as(m1)
        steps = m1.shape[0]
        dx = [None] * steps
        gm = gm_seq[-1] if gm_seq is not None else torch.zeros_like(m1[0])
        for t in range(steps - 1, -1, -1):
            g_m1 = (gm if A is None else gm * A[t]) + e[t]
            dx[t] = g_m1
            gm = g_m1 * bk[t]
            if gm_seq is not None and t > 0:
                gm = gm + gm_seq[t - 1]
        g_m1_seq = torch.stack(dx)
        grads: list[torch.Tensor | None] = [None] * 8
        grads[0] = g_m1_seq if ctx.needs_input_grad[0] else None
        grads[1] = gm if ctx.needs_input_grad[1] else None
        if ctx.needs_input_grad[2]:
            mz = (1 - r) * m_prev if dyn.reset == "zero" else m_prev
            grads[2] = _reduce(g_m1_seq * mz, b)
        if ctx.needs_input_grad[3]:
            gmo = None
            if dyn.immediate:
                gmo = torch.zeros_like(m1)
                gmo[:-1] = g_m1_seq[1:] * bk[1:]
                if gm_seq is not None:
                    gmo = gmo + gm_seq
            grads[3] = _reduce(_thr_grad(dyn, e, g_m1_seq, gmo, r, sig, m1, thr, sur), thr)
        if ctx.needs_input_grad[4]:
            grads[4] = _reduce(gs * sig, g)
        return tuple(grads)


class SynapticSeq(torch.autograd.Function):
    """All ``T`` steps of ``Synaptic``: ``(x_seq, syn0, m0, a, b, thr, g) -> (s, syn, m)`` sequences."""

    @staticmethod
    def forward(ctx: Any, x_seq: torch.Tensor, syn0: torch.Tensor, m0: torch.Tensor, a: torch.Tensor,  # type: ignore[override]
                b: torch.Tensor, thr: torch.Tensor, g: torch.Tensor, dyn: Dynamics, sur: Surrogate,
                g_is_one: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps = x_seq.shape[0]
        s_out, syn_out, m1_out, m_out = [], [], [], []
        syn, m = syn0, m0
        r = heaviside(m - thr)
        for t in range(steps):
            syn = a * syn + x_seq[t]
            pre = b * m + syn
            if dyn.reset == "subtract":
                m1 = pre - r * thr
            elif dyn.reset == "zero":
                m1 = pre - pre * r
            else:
                m1 = pre
            s, m = _forward_common(dyn, m1, r, thr, g, g_is_one)
            s_out.append(s)
            syn_out.append(syn)
            m1_out.append(m1)
            m_out.append(m)
            if dyn.immediate:
                r = heaviside(m - thr)
            else:
                r = s if g_is_one else heaviside(m1 - thr)
        s_seq, syn_seq, m1_seq = torch.stack(s_out), torch.stack(syn_out), torch.stack(m1_out)
        m_seq = torch.stack(m_out) if dyn.immediate else m1_seq
        ctx.save_for_backward(syn0, m0, syn_seq, m1_seq, m_seq, a, b, thr, g)
        ctx.dyn, ctx.sur = dyn, sur
        return s_seq, syn_seq, m_seq

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, gsyn_seq: torch.Tensor | None,  # type: ignore[override]
                 gm_seq: torch.Tensor | None):
        syn0, m0, syn_seq, m1, m_seq, a, b, thr, g = ctx.saved_tensors
        dyn: Dynamics = ctx.dyn
        sur: Surrogate = ctx.sur
        if gs is None:
            gs = torch.zeros_like(m1)
        m_prev = _shift_prev(m0, m_seq)
        syn_prev = _shift_prev(syn0, syn_seq)
        r = heaviside(m_prev - thr).to(m1.dtype)
        e, A, sig = _backward_terms(dyn, sur, m1, r, thr, g, gs)
        K = (1 - r) if dyn.reset == "zero" else None
        steps = m1.shape[0]
        g_m1_l, g_pre_l, g_syn_l = [None] * steps, [None] * steps, [None] * steps
        gm = gm_seq[-1] if gm_seq is not None else torch.zeros_like(m1[0])
        gsyn = torch.zeros_like(m1[0])
        for t in range(steps - 1, -1, -1):
            g_m1 = (gm if A is None else gm * A[t]) + e[t]
            g_pre = g_m1 if K is None else g_m1 * K[t]
            gsyn = g_pre + a * gsyn
            if gsyn_seq is not None:
                gsyn = gsyn + gsyn_seq[t]
            g_m1_l[t], g_pre_l[t], g_syn_l[t] = g_m1, g_pre, gsyn
            gm = g_pre * b
            if gm_seq is not None and t > 0:
                gm = gm + gm_seq[t - 1]
        g_m1_seq, g_pre_seq, g_syn_seq = torch.stack(g_m1_l), torch.stack(g_pre_l), torch.stack(g_syn_l)
        grads: list[torch.Tensor | None] = [None] * 10
        need = ctx.needs_input_grad
        grads[0] = g_syn_seq if need[0] else None
        grads[1] = a * gsyn if need[1] else None
        grads[2] = gm if need[2] else None
        if need[3]:
            grads[3] = _reduce(g_syn_seq * syn_prev, a)
        if need[4]:
            grads[4] = _reduce(g_pre_seq * m_prev, b)
        if need[5]:
            gmo = None
            if dyn.immediate:
                gmo = torch.zeros_like(m1)
                gmo[:-1] = g_pre_seq[1:] * b
                if gm_seq is not None:
                    gmo = gmo + gm_seq
            grads[5] = _reduce(_thr_grad(dyn, e, g_m1_seq, gmo, r, sig, m1, thr, sur), thr)
        if need[6]:
            grads[6] = _reduce(gs * sig, g)
        return tuple(grads)
