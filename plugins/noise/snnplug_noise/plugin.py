"""Registrations of the noise plugin (Jiang & Zhang): neuron, strategy, converter.

Only the registration records are built here; torch/SpikingJelly load inside the factories.
"""

from __future__ import annotations

from typing import Any

from snnplug.hookspecs import hookimpl
from snnplug.types import ConverterPlugin, NeuronPlugin, StrategyPlugin

PAPER = ("Jiang, C. & Zhang, Y., A noise based novel strategy for faster SNN training "
         "(University of Canterbury)")


def noise_lif(T: int = 1, **kw: Any) -> Any:
    """Noisy LIF neuron of Jiang & Zhang (multi-step, ``[T, B, ...] -> [T, B, ...]``).

    Stages 1/2 (eq. 6): ``H(t) = N_noise(t) + X(t)``, ``S(t) = 1[H(t) > V_th]``, noise drawn
    fresh for every neuron, sample and step. Stage 3 (eqs. 1, 3, 7-10):
    ``H(t) = N(lambda V(t-1)) + N'(t) + X(t)``, ``V(t) = H(t)(1 - S(t)) + V_reset S(t)``,
    ``N(A) = A^/(alpha max|A^|) + beta`` with ``A^`` the per-sample standardised ``lambda V(t-1)``.
    Surrogate (eq. 4): ``dS/dH = a / (2 (1 + (pi/2 a (H - V_th))^2))``.
    Paper defaults: decay lambda = 0.5, v_threshold = 1, v_reset = 0, a = 3, Gaussian noise on
    [0, 1] (mean 0.5, std 1/6, clipped; ``noise="uniform"`` for U[0, 1)), stage = 1, alpha = 4,
    beta = 0.5, seed = None (global RNG). ``T`` is the longest sequence the neuron accepts
    (longer ones raise TimeStepError); the update itself does not depend on T.
    """
    from snnplug_noise.neuron import NoisyLIFNode

    return NoisyLIFNode(T=T, **kw)


def noise_lif_from_module(old: Any, T: int | None = None, **kw: Any) -> Any:
    """``noise-lif`` replacing ``old`` with its threshold, leak (decay) and reset value; see
    :mod:`snnplug_noise.carry` for what is reported. ``T=None``: any sequence length."""
    from snnplug_noise.carry import noise_lif_from

    return noise_lif_from(old, T=T, **kw)


def noise_strategy(**kw: Any) -> Any:
    """Strategy ``noise``: train a T=1 SNN whose LIF neurons add fresh noise to their input.

    Stage 1 (eq. 6): ``H = N_noise + sum_i w_i S_i``, ``S = 1[H > V_th]``, surrogate eq. 4
    (a = 3); ``N_noise`` ~ Gaussian on [0, 1] redrawn every iteration. Loss
    ``MSE(mean_t S_out(t), one_hot(y))``; Adam lr 1e-4, cosine warm restarts every 100 epochs;
    reference net AP2-512FC-10FC. Inference (``predict``): stage 3 (alpha 4, beta 0.5) for
    ``eval_T`` = 10 steps, seeded. Keywords: see :class:`snnplug_noise.strategy.NoiseStrategy`.
    """
    from snnplug_noise.strategy import NoiseStrategy

    return NoiseStrategy(**kw)


def noise_multistep(model: Any, T: int = 10, **kw: Any) -> Any:
    """Convert a stage-1 noisy SNN to a frozen multi-step SNN (stage 2 or 3) for ``T`` steps.

    Stage 2: the same neurons run T steps, ``H(t) = N_noise(t) + X(t)``, noise redrawn each step.
    Stage 3 (default, eqs. 7-10): ``N_noise = N(lambda V(t-1)) + N'``,
    ``N(A) = (A - mu)/sigma / (alpha max|A^|) + beta`` (alpha = 4, beta = 0.5) and ``N'`` the
    residual noise keeping ``N_noise``'s mean and range. Output ``[T, B, classes]`` spikes;
    prediction = their mean over time. ``seed`` (default 0) makes inference reproducible;
    ``calibration`` (passed by the CLI to every converter) is unused: the conversion is data-free.
    """
    from snnplug_noise.convert import convert

    return convert(model, T, **kw)


@hookimpl
def snnplug_neurons() -> list[NeuronPlugin]:
    return [NeuronPlugin(name="noise-lif", factory=noise_lif, paper=PAPER,
                         summary="LIF (lambda=0.5, hard reset) with membrane noise; stages 1-3",
                         replaces=("IFNode", "LIFNode", "ParametricLIFNode"),
                         from_module=noise_lif_from_module)]


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="noise", factory=noise_strategy, paper=PAPER, in_default_run=True,
                           run_settings={"lr": 1e-3}, run_epochs=10, shared_backbone=True,
                           summary="single-step (T=1) training with membrane noise; MSE, Adam")]


@hookimpl
def snnplug_converters() -> list[ConverterPlugin]:
    return [ConverterPlugin(name="noise-multistep", factory=noise_multistep, paper=PAPER,
                            summary="T=1 noisy SNN -> T=N (stage 2: noise; stage 3: potential + noise)")]
