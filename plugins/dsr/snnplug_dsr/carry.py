"""DSR neurons built from the neuron they replace (``snnplug.apply``): the user's settings carry.

* ``IFNode`` -> :class:`~snnplug_dsr.neuron.DSRIFNode` with the same threshold.
* ``LIFNode``/``ParametricLIFNode``/snnTorch ``Leaky`` -> :class:`~snnplug_dsr.neuron.DSRLIFNode`
  with ``dt = 1`` and the same decay: DSR-LIF's ``v = beta*v + (1-beta)*x`` (Meng et al. 2022,
  eq. 5, ``beta = exp(-dt/tau)``) equals SpikingJelly's ``H = V + (X - V)/tau_sj`` when
  ``beta = 1 - 1/tau_sj``, i.e. ``tau = -1/ln(1 - 1/tau_sj)``; spikes carry ``Vth/dt = Vth``.

DSR's firing rule is the method's and is not carried: the replacement fires at ``alpha*Vth``
with the paper's ``alpha`` (0.5 for IF, 0.3 for LIF) and subtracts ``Vth``. Firing where the
source fires (``alpha = 1``) was measured and trains worse on SpikingJelly's tutorial CSNN
(``python benchmarks/zoo.py``, docs/benchmarks.md section zoo, row ``dsr alpha=1``).

What DSR cannot keep is reported with :func:`snnplug.neuron_settings.changed` (hard reset ->
reset by subtraction, which the spike representation of eqs. 4-5 assumes; the surrogate, since
DSR's gradient goes through the representation; a trained PLIF tau, frozen at its value) or
refused (per-channel thresholds; an IF neuron turned into ``dsr-lif``). DSR's own ``alpha``
firing rule (fire at ``alpha*Vth``, subtract ``Vth``) and trainable threshold are the method.
"""

from __future__ import annotations

import math
from typing import Any

from snnplug.errors import UnsupportedModuleError
from snnplug.neuron_settings import NeuronSettings, changed, read

from snnplug_dsr.presets import IF_DEFAULTS, LIF_DEFAULTS


def _common(s: NeuronSettings, name: str, kw: dict[str, Any], bound: float) -> dict[str, Any]:
    if "v_threshold" not in kw:
        kw["v_threshold"] = s.scalar_threshold(name)
    kw.setdefault("v_threshold_bound", min(bound, kw["v_threshold"]))
    kw.setdefault("step_mode", s.step_mode)
    if not s.soft_reset:
        changed(name, f"{s.source} v_reset={s.v_reset:g} (hard reset) -> reset by subtraction "
                      f"(DSR's spike representation, eqs. 4-5, assumes it)")
    if s.surrogate is not None:
        changed(name, f"{s.source} surrogate_function {type(s.surrogate).__name__} is not used "
                      f"(DSR's gradient goes through the spike representation)")
    return kw


def dsr_if_from(old: Any, T: int = 20, **kw: Any) -> Any:
    """``DSRIFNode`` with ``old``'s threshold (see the module docstring)."""
    from snnplug_dsr.neuron import DSRIFNode

    s = read(old)
    if s.kind == "lif":
        changed("dsr-if", f"{s.source} leak ({s.describe()}) dropped: dsr-if integrates without "
                          f"leak; use neuron='dsr' (dsr-lif for leaky neurons) to keep it")
    kw.setdefault("alpha", IF_DEFAULTS["alpha"])
    kw = _common(s, "dsr-if", kw, IF_DEFAULTS["v_threshold_bound"])
    return DSRIFNode(T=T, **kw)


def dsr_lif_from(old: Any, T: int = 20, **kw: Any) -> Any:
    """``DSRLIFNode`` with ``old``'s threshold and decay, ``dt = 1`` (see the module docstring)."""
    from snnplug_dsr.neuron import DSRLIFNode

    s = read(old)
    if "tau" not in kw:
        if s.kind == "if":
            raise UnsupportedModuleError(
                f"{s.source} has no leak, so dsr-lif has no tau to carry; use neuron='dsr-if' (or "
                f"neuron='dsr', which picks dsr-if for IF neurons), or pass neuron_kwargs={{'tau': ...}}")
        if not 0.0 < s.leak < 1.0:
            raise UnsupportedModuleError(
                f"{s.source} decays its potential by {s.leak:g} per step (tau <= 1); DSR-LIF needs a "
                f"decay in (0, 1). Pass neuron_kwargs={{'tau': ..., 'dt': ...}} explicitly")
        kw.setdefault("dt", 1.0)
        kw["tau"] = -kw["dt"] / math.log(s.leak)
        if abs(s.input_scale - (1.0 - s.leak)) > 1e-6:
            changed("dsr-lif", f"{s.source} scales its input by {s.input_scale:g}; DSR-LIF scales it by "
                               f"1-beta={1.0 - s.leak:g} (eq. 5)")
        if s.tau_trainable:
            changed("dsr-lif", f"{s.source} trains tau; DSR-LIF keeps it fixed at its present value "
                               f"{s.tau:.4g} (decay {s.leak:.4g} per step)")
    else:
        kw.setdefault("dt", LIF_DEFAULTS["dt"])
    kw.setdefault("alpha", LIF_DEFAULTS["alpha"])
    kw = _common(s, "dsr-lif", kw, LIF_DEFAULTS["v_threshold_bound"])
    return DSRLIFNode(T=T, **kw)


def dsr_from(old: Any, T: int = 20, **kw: Any) -> Any:
    """The DSR family member for ``old``: ``dsr-if`` for IF neurons, ``dsr-lif`` for leaky ones."""
    return (dsr_if_from if read(old).kind == "if" else dsr_lif_from)(old, T=T, **kw)
