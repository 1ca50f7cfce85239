"""snnplug registrations of the DSR plugin: neurons ``dsr-if``, ``dsr-lif``; strategy ``dsr``."""

from __future__ import annotations

from typing import Any

from snnplug.hookspecs import hookimpl
from snnplug.types import NeuronPlugin, StrategyPlugin

PAPER = ("Meng, Xiao, Yan, Wang, Lin, Luo. Training High-Performance Low-Latency Spiking Neural "
         "Networks by Differentiation on Spike Representation. CVPR 2022")


def dsr_if(T: int = 20, **kw: Any) -> Any:
    """DSR-IF neuron (Meng et al., CVPR 2022), multi-step ``[T, B, ...] -> [T, B, ...]``.

    Forward: ``v += x_t; s_t = 1[v >= alpha*Vth]; out_t = Vth*s_t; v -= out_t`` (v(0)=0).
    Backward through ``clamp(mean_t x_t, 0, Vth)``: ``dL/dx_t = G/T*1[0 <= mean x <= Vth]``,
    ``dL/dVth = sum G*1[mean x > Vth]``, ``G = sum_t dL/dout_t``. Paper defaults: T=20,
    v_threshold=6.0 (trainable, projected to >= v_threshold_bound=0.01), alpha=0.5.
    """
    from snnplug_dsr.neuron import DSRIFNode

    return DSRIFNode(T=T, **kw)


def dsr_lif(T: int = 20, **kw: Any) -> Any:
    """DSR-LIF neuron (Meng et al., CVPR 2022), multi-step ``[T, B, ...] -> [T, B, ...]``.

    Forward: ``v = beta*v + (1-beta)*x_t`` (``beta = exp(-dt/tau)``), ``s_t = 1[v >= alpha*Vth]``,
    ``v -= Vth*s_t``, ``out_t = Vth*s_t/dt``. Backward through ``clamp(x_w/tau, 0, Vth/dt)`` with
    ``x_w = sum_t beta**(T-t) x_t / sum_t beta**(T-t)``. Paper defaults: T=20, v_threshold=0.3,
    tau=1.0, dt=0.05, alpha=0.3, v_threshold_bound=5e-4.
    """
    from snnplug_dsr.neuron import DSRLIFNode

    return DSRLIFNode(T=T, **kw)


def dsr_if_spikingjelly(ours: Any, T: int) -> Any:
    """SpikingJelly's ``neuron.DSRIFNode`` with the threshold and alpha of our DSR-IF ``ours``
    (``snnplug compare`` checks the two against each other)."""
    from snnplug.backends.spikingjelly import sj

    return sj().neuron.DSRIFNode(T=T, v_threshold=float(ours.v_threshold.detach()), alpha=ours.alpha, step_mode="m")


def dsr_family(kind: str = "if", T: int = 20, **kw: Any) -> Any:
    """DSR neuron family (Meng et al., CVPR 2022): ``kind='if'`` builds :func:`dsr_if`,
    ``kind='lif'`` :func:`dsr_lif`. In ``snnplug.apply(net, neuron="dsr")`` the member is chosen
    per source neuron: IFNode -> dsr-if, LIFNode/ParametricLIFNode/snnTorch Leaky -> dsr-lif.
    IF: ``v += x_t; s_t = 1[v >= alpha*Vth]; out_t = Vth*s_t; v -= out_t``, backward through
    ``clamp(mean_t x_t, 0, Vth)``."""
    if kind not in ("if", "lif"):
        raise ValueError(f"kind must be 'if' or 'lif', got {kind!r}")
    return (dsr_if if kind == "if" else dsr_lif)(T=T, **kw)


def _if_from(old: Any, **kw: Any) -> Any:
    from snnplug_dsr.carry import dsr_if_from

    return dsr_if_from(old, **kw)


def _lif_from(old: Any, **kw: Any) -> Any:
    from snnplug_dsr.carry import dsr_lif_from

    return dsr_lif_from(old, **kw)


def _family_from(old: Any, **kw: Any) -> Any:
    from snnplug_dsr.carry import dsr_from

    return dsr_from(old, **kw)


_REPLACES = ("IFNode", "LIFNode", "ParametricLIFNode")


def dsr_strategy(**kw: Any) -> Any:
    """DSR training strategy (Meng et al., CVPR 2022): spiking forward, backward on the spike
    representation ``a_l = clamp(W_l a_{l-1}, 0, Vth_l)`` in one T-independent pass; rate
    readout, cross-entropy + ``threshold_l2/2 * sum Vth**2``; SGD lr 0.1, momentum 0.9, wd 5e-4,
    cosine (paper) on its reference net, Adam 1e-3 on other models (stable on the zoo). Keywords: T=20, neuron='if'|'lif', backward='auto'|'representation'|'per-step',
    chunk=None|int, optimizer='sgd'|'adam', lr, neuron_kwargs, channels, hidden, norm, spike_output.
    """
    from snnplug_dsr.strategy import DSRStrategy

    return DSRStrategy(**kw)


@hookimpl
def snnplug_neurons() -> list[NeuronPlugin]:
    return [
        NeuronPlugin(name="dsr-if", factory=dsr_if, paper=PAPER, replaces=_REPLACES, from_module=_if_from,
                     summary="IF with alpha firing rule and trainable threshold; gradient via the rate",
                     reference=dsr_if_spikingjelly, reference_kwargs={"v_threshold": 6.0, "alpha": 0.5}),
        NeuronPlugin(name="dsr-lif", factory=dsr_lif, paper=PAPER, replaces=_REPLACES, from_module=_lif_from,
                     summary="LIF (tau, dt) with alpha firing rule; gradient via the weighted rate"),
        NeuronPlugin(name="dsr", factory=dsr_family, paper=PAPER, replaces=_REPLACES,
                     from_module=_family_from,
                     summary="DSR family: dsr-if for IF neurons, dsr-lif for leaky ones (apply)"),
    ]


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="dsr", factory=dsr_strategy, paper=PAPER, in_default_run=True,
                           run_settings={}, run_epochs=3, shared_backbone=True,
                           summary="DSR: spiking forward, T-independent representation backward")]
