"""``noise-lif`` built from the neuron it replaces (``snnplug.apply``): the user's settings carry.

The noisy LIF (Jiang & Zhang, eqs. 1, 3, 6) is ``H = N_noise + λ·V + X`` (λ·V at stage 3),
``S = 1[H > V_th]``, hard reset to ``V_reset``. From the source neuron's
:class:`~snnplug.neuron_settings.NeuronSettings`: ``λ = leak`` (IF: 1; SpikingJelly LIF:
``1 − 1/τ``; snnTorch Leaky: β), ``V_th = v_threshold``, ``V_reset = v_reset``. Reported with
:func:`~snnplug.neuron_settings.changed`: a soft reset (the paper resets to V_reset = 0), an input
scale other than 1 (``decay_input=True``), the surrogate (eq. 4, a = 3), a trained τ (frozen).
"""

from __future__ import annotations

from typing import Any

from snnplug.neuron_settings import changed, read


def noise_lif_from(old: Any, T: int | None = None, **kw: Any) -> Any:
    """``NoisyLIFNode`` with ``old``'s threshold, leak and reset (see the module docstring)."""
    from snnplug_noise.neuron import NoisyLIFNode

    s = read(old)
    name = "noise-lif"
    if "v_threshold" not in kw:
        kw["v_threshold"] = s.scalar_threshold(name)
    s.carry_leak(name, kw, "decay", "the noisy LIF adds X unscaled (eq. 1)")
    if "v_reset" not in kw:
        if s.soft_reset:
            changed(name, f"{s.source} resets by subtraction -> hard reset to v_reset=0 (eq. 3)")
            kw["v_reset"] = 0.0
        else:
            kw["v_reset"] = s.v_reset
    if s.surrogate is not None and "surrogate_a" not in kw:
        changed(name, f"{s.source} surrogate_function {type(s.surrogate).__name__} -> the paper's "
                      f"arctan-derivative surrogate a=3 (eq. 4)")
    kw.setdefault("step_mode", s.step_mode)
    return NoisyLIFNode(T=T, **kw)
