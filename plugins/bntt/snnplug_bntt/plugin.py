"""Registration of the BNTT plugin (Kim & Panda 2021): normalizer ``bntt``, neuron ``bntt-lif``,
strategy ``bntt``. Torch/SpikingJelly are imported only when a factory is called."""

from __future__ import annotations

from typing import Any

from snnplug.hookspecs import hookimpl
from snnplug.types import NeuronPlugin, NormalizerPlugin, StrategyPlugin

PAPER = ("Y. Kim, P. Panda. Revisiting Batch Normalization for Training Low-Latency Deep Spiking "
         "Neural Networks From Scratch. Frontiers in Neuroscience 15:773954, 2021 (arXiv:2010.01729)")


def bntt(num_features: int, T: int = 25, eps: float = 1e-4, momentum: float | None = 0.1, **kw: Any) -> Any:
    """Batch Normalization Through Time (Kim & Panda 2021, eq. 9): per step t its own γ_t and
    running statistics, no β: ``y_t = γ_t (x_t − μ_t)/√(σ²_t + ε)`` (batch statistics in
    training, running averages in eval). Multi-step ``[t, B, C, *S] -> [t, B, C, *S]``, t ≤ T
    (shorter runs are the early exit). Defaults: the authors' ``eps=1e-4``, ``momentum=0.1``, γ=1.
    Keywords: ``affine``, ``track_running_stats``, ``dim`` (1/2/3 or None), ``step_mode``."""
    from snnplug_bntt.norm import BNTT

    return BNTT(num_features, T=T, eps=eps, momentum=momentum, **kw)


def bntt_from_module(old: Any, T: int = 25, **kw: Any) -> Any:
    """BNTT layer replacing the BatchNorm ``old`` (same features, affine, device, dtype, step
    mode; γ_t = 1 and fresh statistics, or ``copy_weights=True``). Kim & Panda 2021, eq. 9:
    ``y_t = γ_t (x_t − μ_t)/√(σ²_t + ε)``; ``eps=1e-4``, ``momentum=0.1``."""
    from snnplug_bntt.norm import from_module

    return from_module(old, T=T, **kw)


def bntt_spikingjelly(ours: Any, T: int) -> Any:
    """SpikingJelly's ``layer.BatchNormThroughTime1d/2d`` with the features and eps of our BNTT
    layer ``ours`` (``snnplug compare`` checks the two against each other)."""
    from snnplug.backends.spikingjelly import sj

    layer = sj().layer
    cls = {1: layer.BatchNormThroughTime1d, 2: layer.BatchNormThroughTime2d}[ours.dim]
    return cls(T, ours.num_features, eps=float(ours.eps), step_mode="m")


def bntt_lif(T: int = 4, **kw: Any) -> Any:
    """BNTT's LIF neuron (Kim & Panda 2021, eqs. 4, 8): ``u_t = λ·v_{t−1} + x_t``,
    ``s_t = 1[u_t > θ]``, soft reset ``v_t = u_t − θ·s_t`` without gradient through the reset,
    surrogate ``∂s/∂u = α·max(0, 1 − |u/θ − 1|)``. Defaults ``leak=0.99`` (authors' script),
    ``v_threshold=1.0``, ``surrogate_alpha=0.3``; ``T`` is the longest run between resets."""
    from snnplug_bntt.neuron import BNTTLIFNode

    return BNTTLIFNode(T=T, **kw)


def bntt_lif_from_module(old: Any, T: int | None = None, **kw: Any) -> Any:
    """``bntt-lif`` replacing ``old`` with its threshold and leak (``u_t = λ·v_{t−1} + x_t``,
    λ = 1 for IF, 1 − 1/τ for LIF); see :mod:`snnplug_bntt.carry` for what is reported."""
    from snnplug_bntt.carry import bntt_lif_from

    return bntt_lif_from(old, T=T, **kw)


def bntt_strategy(**kw: Any) -> Any:
    """Strategy ``bntt`` (Kim & Panda 2021): signed Poisson input ``s_t = sign(x̃)·1[2U ≤ |x̃|]``,
    conv/linear -> BNTT -> LIF (λ=0.99, θ=1, soft reset, triangle surrogate 0.3), output
    ``u_t = u_{t−1} + W s_t``, logits ``u_T/T``, cross-entropy; SGD(0.9, wd 5e-4), T=25.
    ``predict_early_exit(model, x, threshold)`` stops at the γ-rule exit step."""
    from snnplug_bntt.strategy import BNTTStrategy

    return BNTTStrategy(**kw)


@hookimpl
def snnplug_normalizers() -> list[NormalizerPlugin]:
    return [NormalizerPlugin(name="bntt", factory=bntt, from_module=bntt_from_module, paper=PAPER,
                             summary="batch norm with per-time-step γ and statistics (no β), vectorised over T",
                             reference=bntt_spikingjelly)]


@hookimpl
def snnplug_neurons() -> list[NeuronPlugin]:
    return [NeuronPlugin(name="bntt-lif", factory=bntt_lif, replaces=("LIFNode", "IFNode", "ParametricLIFNode"),
                         from_module=bntt_lif_from_module, paper=PAPER,
                         summary="LIF λ=0.99, θ=1, soft detached reset, triangle surrogate 0.3")]


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="bntt", factory=bntt_strategy, paper=PAPER, in_default_run=True,
                           run_settings={"T": 12}, run_epochs=3, shared_backbone=True,
                           summary="BNTT SNN: Poisson input, BNTT+LIF, accumulating output, γ early exit")]
