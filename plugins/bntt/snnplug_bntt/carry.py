"""``bntt-lif`` built from the neuron it replaces (``snnplug.apply``): the user's settings carry.

BNTT's LIF (Kim & Panda 2021, eq. 4) is ``u_t = λ·v_{t−1} + x_t``, soft reset ``v_t = u_t − θ s_t``.
From the source neuron's :class:`~snnplug.neuron_settings.NeuronSettings`: ``λ = leak``
(IF: 1; SpikingJelly LIF: ``1 − 1/τ``; snnTorch Leaky: β), ``θ = v_threshold``. Reported with
:func:`~snnplug.neuron_settings.changed`: an input scale other than 1 (``decay_input=True``:
eq. 4 adds ``x_t`` unscaled; the BNTT layer's γ_t in front can absorb it), a hard reset (BNTT
resets by subtraction), a surrogate (BNTT's triangle, eq. 8), a trained τ (frozen).
"""

from __future__ import annotations

from typing import Any

from snnplug.neuron_settings import changed, read


def bntt_lif_from(old: Any, T: int | None = None, **kw: Any) -> Any:
    """``BNTTLIFNode`` with ``old``'s threshold and leak (see the module docstring)."""
    from snnplug_bntt.neuron import BNTTLIFNode

    s = read(old)
    name = "bntt-lif"
    if "v_threshold" not in kw:
        kw["v_threshold"] = s.scalar_threshold(name)
    s.carry_leak(name, kw, "leak", "BNTT's LIF adds x_t unscaled (eq. 4)")
    if not s.soft_reset:
        changed(name, f"{s.source} v_reset={s.v_reset:g} (hard reset) -> reset by subtraction (eq. 4)")
    if s.surrogate is not None and "surrogate_alpha" not in kw:
        changed(name, f"{s.source} surrogate_function {type(s.surrogate).__name__} -> BNTT's triangle "
                      f"surrogate 0.3*max(0, 1-|u/θ-1|) (eq. 8)")
    kw.setdefault("step_mode", s.step_mode)
    return BNTTLIFNode(T=T, **kw)
