"""Strategy ``bntt``: train an SNN with Batch Normalization Through Time (Kim & Panda 2021).

* Input: signed Poisson spikes of the normalised image, drawn fresh each step
  (``x̃ = (x − mean)/std``; ``s_t = sign(x̃)·1[2·U(0,1) ≤ |x̃|]``).
* Network (:func:`snnplug_bntt.model.bntt_convnet`): conv/linear -> BNTT -> LIF (λ, θ = 1, soft
  detached reset, triangle surrogate α = 0.3), accumulating output layer.
* Readout: ``logits = u_T / T`` (accumulated output potential), cross-entropy (eq. 5).
* Inference: ``predict(model, x)`` runs T steps; ``predict_early_exit(model, x, threshold)``
  stops at the γ-rule exit step and returns an :class:`EarlyExit` (logits, exit step).

Optimiser defaults follow the paper (SGD, momentum 0.9, weight decay 5e-4; lr 0.1 as in the
authors' script, the paper's 0.3 diverged in short CPU runs) with a cosine schedule instead of
the paper's step decay (the core trainer offers cosine or none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnplug.checks import as_float, as_steps
from snnplug.strategies import OptimConfig, Strategy, mark_reference

from snnplug_bntt.encoding import signed_poisson


@dataclass(frozen=True)
class EarlyExit:
    """What :meth:`BNTTStrategy.predict_early_exit` returns."""

    logits: torch.Tensor  # [B, C] after exit_step steps
    exit_step: int


PAPER_LR = 0.1
USER_MODEL_LR = 0.01


class BNTTStrategy(Strategy):
    """BNTT training (see the module docstring). Keyword defaults are the paper's/authors'."""

    name = "bntt"
    default_epochs = 3
    #: without an explicit lr: the paper's 0.1 on the reference network (:meth:`build_model`),
    #: 0.01 on models the strategy did not build: 0.1 drives sew_resnet18's loss from 2.3 to 17
    #: within 100 steps (``python benchmarks/zoo.py --stability``, docs/benchmarks.md zoo-stability*)
    user_model_lr = USER_MODEL_LR

    def __init__(self, *, T: int = 25, frames: bool = False, leak: float = 0.99, v_threshold: float = 1.0,
                 surrogate_alpha: float = 0.3, eps: float = 1e-4, momentum: float = 0.1,
                 poisson_scale: float = 2.0, input_mean: float = 0.5, input_std: float = 0.5,
                 channels: tuple[int, ...] = (32, 64), hidden: int = 128, lr: float | None = None,
                 weight_decay: float = 5e-4) -> None:
        super().__init__(T=T, frames=frames)
        self.leak = as_float("leak", leak, lo=0.0, hi=1.0)
        self.v_threshold = as_float("v_threshold", v_threshold, positive=True)
        self.surrogate_alpha = as_float("surrogate_alpha", surrogate_alpha, lo=0.0)
        self.eps = as_float("eps", eps, lo=0.0)
        self.momentum = as_float("momentum", momentum, lo=0.0, hi=1.0)
        self.poisson_scale = as_float("poisson_scale", poisson_scale, positive=True)
        self.input_mean = as_float("input_mean", input_mean)
        self.input_std = as_float("input_std", input_std, positive=True)
        self.channels = tuple(as_steps("channels", c) for c in channels)
        self.hidden = as_steps("hidden", hidden)
        self.lr = None if lr is None else as_float("lr", lr, positive=True)
        self.weight_decay = as_float("weight_decay", weight_decay, lo=0.0)

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "leak": self.leak, "v_threshold": self.v_threshold,
                "surrogate_alpha": self.surrogate_alpha, "eps": self.eps, "momentum": self.momentum,
                "poisson_scale": self.poisson_scale, "input_mean": self.input_mean,
                "input_std": self.input_std, "channels": list(self.channels), "hidden": self.hidden,
                "lr": self.lr, "weight_decay": self.weight_decay}

    # -- construction --------------------------------------------------------------------
    def build_model(self, input_shape: tuple[int, ...], num_classes: int, norm: str = "bntt") -> nn.Module:
        """The VGG-style BNTT SNN for ``[B, *input_shape]`` images (``norm="bn"``/``"none"``:
        the same net with time-shared BatchNorm / without normalisation, for comparisons)."""
        from snnplug_bntt.model import bntt_convnet

        net = bntt_convnet(input_shape, num_classes, T=self.T, leak=self.leak, v_threshold=self.v_threshold,
                           surrogate_alpha=self.surrogate_alpha, eps=self.eps, momentum=self.momentum,
                           channels=self.channels, hidden=self.hidden, norm=norm)
        mark_reference(net)  # the paper's lr applies (make_optimizer)
        return net

    def prepare(self, model: nn.Module) -> nn.Module:
        """Replace the BatchNorm layers of a SpikingJelly multi-step model by BNTT (``T``,
        authors' eps/momentum). The hidden neurons are left as they are; the readout neurons
        (spiking layers after the last weight layer, :mod:`snnplug.readout`) become BNTT's
        accumulating output layer (:func:`_accumulating_readout`); a BNTT layer feeding a
        neuron that scales its input (``decay_input=True``: ``H = V + (X − V)/τ``) starts at
        γ_t = τ (:func:`_gamma_for_input_scale`), so the neuron adds the normalised input unscaled
        as BNTT's LIF does (eq. 4)."""
        from snnplug.surgery import apply

        new = apply(model, normalizer="bntt", T=self.T, normalizer_kwargs={"eps": self.eps, "momentum": self.momentum})
        _gamma_for_input_scale(new)
        _accumulating_readout(new)
        return new

    def optim_config(self) -> OptimConfig:
        lr = self.lr if self.lr is not None else PAPER_LR
        return OptimConfig(name="sgd", lr=lr, momentum=0.9, weight_decay=self.weight_decay, schedule="cosine")


    # -- running -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Static ``[B, ...]``: signed Poisson spikes of ``(x − mean)/std``; event frames: as is."""
        if self.frames:
            return super().encode(x, T)
        return signed_poisson((x - self.input_mean) / self.input_std, T, self.poisson_scale)

    def readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        """Accumulated output potential ``u_t`` at the last step, divided by the steps run."""
        return out_seq[-1] / out_seq.shape[0]

    def anytime_readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        """``u_t / t`` after every step (``[T, B, C]``)."""
        t = torch.arange(1, out_seq.shape[0] + 1, device=out_seq.device, dtype=out_seq.dtype)
        return out_seq / t.view(-1, *([1] * (out_seq.dim() - 1)))

    def run(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        """The model's output as the accumulated potential ``u_t``: as is when the model ends in
        BNTT's :class:`~snnplug_bntt.neuron.Accumulator` (the paper's output layer), else its
        running sum, so ``u_T/T`` is the mean output over time (a user's model ending in spiking
        neurons or a plain classifier)."""
        from snnplug.time_axis import driven

        out = super().run(model, x_seq)
        return out if _ends_in_accumulator(driven(model, x_seq)) else out.cumsum(0)

    @torch.no_grad()
    def predict_early_exit(self, model: nn.Module, x: torch.Tensor, threshold: float,
                           T: int | None = None) -> EarlyExit:
        """Run only up to the γ-rule exit step for ``threshold`` (:mod:`snnplug_bntt.early_exit`,
        capped at ``T``): the logits there and the step."""
        from snnplug_bntt.early_exit import exit_step

        steps = self.T if T is None else as_steps("T", T)
        t_exit = min(steps, exit_step(model, threshold))
        return EarlyExit(logits=self.forward(model, x, t_exit), exit_step=t_exit)

    def report(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, list[float]]]:
        """``snnplug run``'s BNTT plot: mean γ_t of every BNTT layer over time (paper Fig. 3/6)."""
        from snnplug_bntt.early_exit import bntt_layers, gamma_profile

        names = [n for n, _ in bntt_layers(model)]
        profile = gamma_profile(model)  # [layers, T]
        return {"mean gamma over time": {f"BNTT layer {n}": profile[i].tolist() for i, n in enumerate(names)}}


def _ends_in_accumulator(model: nn.Module) -> bool:
    from snnplug.backends.spikingjelly import is_spiking_neuron
    from snnplug_bntt.neuron import Accumulator

    last = [m for m in model.modules() if isinstance(m, Accumulator) or is_spiking_neuron(m)]
    return bool(last) and isinstance(last[-1], Accumulator)



def _gamma_for_input_scale(model: nn.Module) -> None:
    """Initialise γ_t of every BNTT layer to ``1/input_scale`` of the first spiking neuron after
    it (module order): BNTT's LIF adds the normalised input unscaled (Kim & Panda 2021, eq. 4),
    a SpikingJelly ``LIFNode``/``ParametricLIFNode`` with ``decay_input=True`` scales it by 1/τ.
    Measured on SpikingJelly's ``parametric_lif_net.FashionMNISTNet`` (τ = 2, T = 4, signed
    Poisson input): the first two spiking layers fire 4.4% of the time with γ = 1, 16-18% with
    γ = τ (docs/compatibility.md, KNOWN_OPEN of integration_tests/test_compat_matrix.py)."""
    from snnplug.backends.spikingjelly import is_spiking_neuron
    from snnplug.errors import SnnplugError
    from snnplug.neuron_settings import read
    from snnplug_bntt.neuron import BNTTLIFNode
    from snnplug_bntt.norm import BNTT

    pending: list[BNTT] = []
    for m in model.modules():
        if isinstance(m, BNTT):
            pending.append(m)
        elif is_spiking_neuron(m) and pending:
            try:  # BNTT's own LIF adds x_t unscaled; a neuron snnplug cannot read keeps γ = 1
                scale = 1.0 if isinstance(m, BNTTLIFNode) else read(m).input_scale
            except (SnnplugError, AttributeError):
                scale = 1.0
            if scale > 0 and scale != 1.0:
                with torch.no_grad():
                    for bn in pending:
                        bn.weight.mul_(1.0 / scale)
            pending = []


def _accumulating_readout(model: nn.Module) -> None:
    """Replace the readout neurons by BNTT's output layer, :class:`~snnplug_bntt.neuron.Accumulator`
    (Kim & Panda 2021, Algorithm 2 line 9: no spikes, ``u_t = u_{t−1} + x_t``), so the strategy's
    readout ``u_T/T`` is the accumulated output potential as in the paper rather than a spike
    count. Layers after them (e.g. SpikingJelly's ``VotingLayer``) stay. Measured on
    ``parametric_lif_net.FashionMNISTNet``/``CIFAR10Net``: their spiking output layer stays silent
    at initialisation (hidden FC layer firing < 0.6%), so a spike-count readout gives logits 0, the
    loss stays at ln 10 and SGD moves nothing in 16 steps; with the accumulating output layer the
    loss falls within 4-8 steps (``python integration_tests/compat_matrix.py``)."""
    from snnplug.readout import readout_neurons
    from snnplug_bntt.neuron import Accumulator

    for path in readout_neurons(model).paths:
        parent, _, leaf = path.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        old = owner.get_submodule(leaf)
        if isinstance(old, Accumulator):
            continue
        setattr(owner, leaf, Accumulator(step_mode=getattr(old, "step_mode", "m")))
