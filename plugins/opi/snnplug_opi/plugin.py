"""Registration of the OPI plugin (Bu et al., AAAI 2022): neuron ``opi-if``, strategy ``opi-ann``,
converter ``opi``. Factories import torch/SpikingJelly lazily."""

from __future__ import annotations

from typing import Any

from snnplug.hookspecs import hookimpl
from snnplug.types import ConverterPlugin, NeuronPlugin, StrategyPlugin

PAPER = ("T. Bu, J. Ding, Z. Yu, T. Huang. Optimized Potential Initialization for Low-latency "
         "Spiking Neural Networks. AAAI 2022.")


def neuron_factory(T: int = 4, **kw: Any) -> Any:
    from snnplug_opi.neuron import make_neuron

    return make_neuron(T=T, **kw)


def neuron_from_module(old: Any, **kw: Any) -> Any:
    from snnplug_opi.neuron import neuron_from_module as _from

    return _from(old, **kw)


def strategy_factory(**kw: Any) -> Any:
    from snnplug_opi.strategy import make_strategy

    return make_strategy(**kw)


def converter_factory(model: Any, T: int = 16, **kw: Any) -> Any:
    from snnplug_opi.converter import convert

    return convert(model, T=T, **kw)


neuron_factory.__doc__ = r"""OPI integrate-and-fire neuron (Bu et al., AAAI 2022): ``h_t = v_{t-1} + x_t;
s_t = 1[h_t ≥ θ]; v_t = h_t − θ·s_t; v_0 = v_init·θ`` (soft reset, spikes in {0, 1}).
Keywords: ``v_threshold=1.0``, ``v_init=0.5`` (paper's optimum), ``surrogate_function``, ``step_mode``."""
neuron_from_module.__doc__ = """Replace a soft-reset SpikingJelly IFNode by the OPI neuron with the same threshold
and ``v(0) = v_init·θ`` (default ½; Bu et al., AAAI 2022)."""
strategy_factory.__doc__ = r"""Strategy ``opi-ann`` (Bu et al., AAAI 2022, Alg. 1): train an ANN with
``a = clip(z, 0, λ_l)`` (trainable λ_l, init 4, projected ≥ 1e-3) and average pooling; SGD lr 0.1,
momentum 0.9, wd 5e-4 (λ: 1e-3). ``predict(model, x, T=t)`` evaluates the OPI-converted SNN, ``ann_logits`` the ANN."""
converter_factory.__doc__ = r"""OPI conversion (Bu et al., AAAI 2022): copy weights (fold BN), θ_l = λ_l (or a
calibrated 99.9th percentile for plain ReLUs), IF with soft reset ``v_t = v_{t-1} + W x_t + b − θ s_t``,
``s_t = 1[v ≥ θ]``, ``v_0 = v_init·θ`` (½), direct input, mean output. ``[T,B,...] -> [T,B,classes]``.
Keywords: ``calibration``, ``v_init``, ``fold_bn``, ``percentile``, ``max_batches``, ``device``."""


@hookimpl
def snnplug_neurons() -> list[NeuronPlugin]:
    return [NeuronPlugin(name="opi-if", factory=neuron_factory, from_module=neuron_from_module,
                         replaces=("IFNode",), paper=PAPER,
                         summary="IF neuron, soft reset, initial potential v(0) = θ/2")]


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="opi-ann", factory=strategy_factory, paper=PAPER, in_default_run=True,
                           run_settings={}, run_epochs=3, shared_backbone=True,
                           summary="train a clip(x, 0, λ) ANN (trainable λ, avg pooling) for OPI conversion")]


@hookimpl
def snnplug_converters() -> list[ConverterPlugin]:
    return [ConverterPlugin(name="opi", factory=converter_factory, paper=PAPER, calibrates=True,
                            summary="ANN -> IF SNN with θ = λ and v(0) = θ/2 (optimal initial potential)")]
