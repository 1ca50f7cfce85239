"""Training strategy ``dsr`` (Meng et al., CVPR 2022): spiking forward, representation backward.

    strategy = snnplug.strategy("dsr", T=20)              # neuron="if" | "lif"
    model = strategy.prepare(sj_model)                    # IFNode/LIFNode -> DSR neurons
    loss, logits = strategy.loss(model, x, y)             # x: [B, ...]; loss.backward()

``backward``: ``"representation"`` (one simulation without graph + one pass on representations,
see :mod:`.representation`), ``"per-step"`` (the DSR autograd functions on the full
``[T, B, ...]`` graph), ``"auto"``: representation when the traced model supports it and its
gradient is exact or close (measured, docs/dsr.md "Gradient fidelity": equal to the per-step
gradient up to rounding without training-mode batch norm; 0.3-0.8% relative with it on
spiking_resnet18 / sew_resnet18 ADD / the tutorial CSNN), else per-step with a warning naming
the reason: unsupported or untraceable operations, or products of spike trains (SEW
``IAND``/``AND``; 10-34% relative there, because chained products make the gradient vary in
time).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.checks import as_float, as_steps
from snnplug.errors import SnnplugError, TimeStepError
from snnplug.strategies import OptimConfig, Strategy, is_reference, mark_reference
from snnplug.time_axis import driven

from snnplug_dsr import presets
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode, DSRNode
from snnplug_dsr.graph import TraceFailure, trace
from snnplug_dsr.representation import dsr_neurons, representation_forward
from snnplug_dsr.thresholds import param_groups, threshold_l2

NEURONS = {"if": DSRIFNode, "lif": DSRLIFNode}
BACKWARDS = ("auto", "representation", "per-step")


@contextmanager
def any_length(model: nn.Module) -> Iterator[None]:
    """Let DSR neurons run inference on sequences of any length (the dynamics do not use T)."""
    with ExitStack() as stack:
        for n in dsr_neurons(model):
            stack.enter_context(n.any_length())
        yield


class DSRStrategy(Strategy):
    """DSR training (paper defaults: SGD lr 0.1, momentum 0.9, wd 5e-4, cosine; threshold L2 5e-4).

    ``backward``: ``"representation"`` (one simulation without graph + one ANN-sized backward,
    :mod:`.representation`), ``"per-step"`` or ``"auto"`` (representation when the model allows).
    ``chunk``: steps the representation backward simulates at a time; ``None`` takes 4
    (layer-wise over the traced graph, memory flat in T, :mod:`.layerwise`).
    ``threshold_lr_scale``: the thresholds' learning rate over the weights' (default 1, the
    paper's, whose 200-epoch schedule lets the L2 regulariser and the clamp gradient move the
    thresholds). With batch norm almost no input exceeds Vth = 6, so the clamp gradient is
    rare and mainly L2 moves a threshold, by a factor ``exp(-sum_t lr_t * threshold_l2 / (1 -
    momentum))``: e^-19 over the paper's 78k steps at lr 0.1, but 0.91 over 750 steps at lr
    0.05. Short runs therefore keep the coarse initial threshold; a scale of 30 (e^-2.8 over
    those 750 steps) lets the hidden thresholds settle near 1.5-2 within the run (chosen on a
    validation split, docs/dsr.md).
    """

    name = "dsr"
    default_epochs = 200

    def __init__(self, *, T: int = 20, frames: bool = False, neuron: str = "if", backward: str = "auto",
                 chunk: int | None = None, threshold_l2: float = presets.THRESHOLD_L2,
                 threshold_lr_scale: float = 1.0,
                 optimizer: str | None = None, lr: float | None = None,
                 weight_decay: float = presets.SGD["weight_decay"],
                 neuron_kwargs: dict[str, Any] | None = None, channels: Sequence[int] = (32, 64),
                 hidden: int = 128, norm: bool = True, spike_output: bool = True) -> None:
        super().__init__(T=T, frames=frames)
        if neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {sorted(NEURONS)}, got {neuron!r}")
        if backward not in BACKWARDS:
            raise ValueError(f"backward must be one of {BACKWARDS}, got {backward!r}")
        if chunk is not None:
            as_steps("chunk", chunk)
        if optimizer not in (None, "sgd", "adam"):
            raise ValueError(f"optimizer must be None, 'sgd' or 'adam', got {optimizer!r}")
        self.neuron = neuron
        self.backward = backward
        self.chunk = chunk
        self.threshold_l2 = as_float("threshold_l2", threshold_l2, lo=0.0)
        self.threshold_lr_scale = as_float("threshold_lr_scale", threshold_lr_scale, positive=True)
        self.optimizer = optimizer
        self.lr = None if lr is None else as_float("lr", lr, positive=True)
        self.weight_decay = as_float("weight_decay", weight_decay, lo=0.0)
        self.neuron_kwargs = dict(neuron_kwargs or {})
        if "T" in self.neuron_kwargs:
            raise ValueError("give T to the strategy, not in neuron_kwargs")
        NEURONS[neuron](T=self.T, **self.neuron_kwargs)  # validate the kwargs now
        self.channels = tuple(int(c) for c in channels)
        self.hidden = int(hidden)
        self.norm = bool(norm)
        self.spike_output = bool(spike_output)
        self._warned = False

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "neuron": self.neuron, "backward": self.backward,
                "chunk": self.chunk,
                "threshold_l2": self.threshold_l2, "threshold_lr_scale": self.threshold_lr_scale,
                "optimizer": self.optimizer, "lr": self.lr,
                "weight_decay": self.weight_decay, "neuron_kwargs": dict(self.neuron_kwargs),
                "channels": list(self.channels), "hidden": self.hidden, "norm": self.norm,
                "spike_output": self.spike_output}

    # -- construction ------------------------------------------------------------------------------
    def make_node(self) -> DSRNode:
        return NEURONS[self.neuron](T=self.T, **self.neuron_kwargs)

    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """``snnplug.models.convnet`` (or ``mlp`` for flat inputs) with DSR neurons; with
        ``spike_output`` a DSR neuron layer follows the classifier (the paper's rate output)."""
        from snnplug.models import convnet, mlp

        if len(input_shape) == 3:
            net = convnet(input_shape, num_classes, node=self.make_node, channels=self.channels,
                          hidden=self.hidden, norm=self.norm)
        else:
            size = 1
            for s in input_shape:
                size *= int(s)
            net = mlp(size, num_classes, hidden=(self.hidden,), node=self.make_node)
        if self.spike_output:
            net.append(self.make_node())
        mark_reference(net)  # the paper's lr applies (make_optimizer)
        return net

    def prepare(self, model: nn.Module) -> nn.Module:
        """Swap SpikingJelly IFNode/LIFNode for DSR neurons (``snnplug.apply``), the readout
        neurons included (``readout="replace"``: the paper's networks spike at the output and
        the strategy's loss is cross-entropy on that rate); a model that already has DSR neurons
        is checked for T and returned unchanged."""
        ns = dsr_neurons(model)
        if ns:
            wrong = sorted({n.T for n in ns if n.T != self.T})
            if wrong:
                raise TimeStepError(f"the model's DSR neurons were built for T={wrong} but the "
                                    f"strategy uses T={self.T}")
            return model
        import snnplug

        return snnplug.apply(model, neuron=f"dsr-{self.neuron}", T=self.T, readout="replace", **self.neuron_kwargs)

    def optim_config(self, reference: bool = True) -> OptimConfig:
        """``optimizer=None`` (default): the paper's SGD (lr 0.1, momentum 0.9, wd 5e-4, cosine)
        on the reference network, Adam lr 1e-3 (SpikingJelly's tutorial optimizer) on models the
        strategy did not build (see :meth:`make_optimizer`)."""
        name = self.optimizer or ("sgd" if reference else "adam")
        lr = self.lr if self.lr is not None else (presets.SGD["lr"] if name == "sgd" else 1e-3)
        return OptimConfig(name=name, lr=lr, momentum=presets.SGD["momentum"],
                           weight_decay=self.weight_decay, schedule="cosine")

    def make_optimizer(self, model: nn.Module, epochs: int, steps_per_epoch: int,
                       lr: float | None = None) -> tuple[torch.optim.Optimizer, Any]:
        """The optimizer of :meth:`optim_config` for ``model``. The paper's SGD at lr 0.1 is kept
        for the reference network (:meth:`build_model`); on SpikingJelly's zoo models it diverges
        within 100 steps, and so does SGD at 0.01 on spiking_resnet18, while Adam 1e-3 is stable
        (``python benchmarks/zoo.py --stability``, docs/benchmarks.md section zoo-stability), so
        a model the strategy did not build gets Adam 1e-3 unless ``optimizer``/``lr`` are given."""
        cfg = self.optim_config(reference=is_reference(model))
        if lr is not None:
            cfg.lr = float(lr)
        groups = self.param_groups(model, cfg)
        if cfg.name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        else:
            opt = torch.optim.Adam(groups, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
        return opt, sched

    def param_groups(self, model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
        return param_groups(model, cfg.weight_decay, cfg.lr, self.threshold_lr_scale)

    # -- running -----------------------------------------------------------------------------------
    def backward_mode(self, model: nn.Module) -> str:
        """The backward path ``loss`` uses for ``model``."""
        if self.backward != "auto":
            return self.backward
        try:
            g = trace(model)
        except TraceFailure as e:
            return self._per_step_because(f"the model cannot be traced: untraceable: {e}")
        if g.unsupported:
            return self._per_step_because("these operations have no representation-space "
                                          "mapping: " + ", ".join(g.unsupported))
        products = [n.name for n in g.nodes if g.kind[n] == "product"]
        if products:
            return self._per_step_because(
                "the model multiplies spike trains (" + ", ".join(products[:4])
                + (", ..." if len(products) > 4 else "") + "; e.g. SEW IAND/AND): chained products "
                "make the representation gradient differ from the per-step one by 10-34% (docs/dsr.md); "
                "pass backward='representation' to use it anyway")
        return "representation"

    def _per_step_because(self, why: str) -> str:
        if not self._warned:
            warnings.warn("DSR: using the per-step backward because " + why, stacklevel=4)
            self._warned = True
        return "per-step"

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Rate readout ``[B, C]`` with DSR's backward attached."""
        if not dsr_neurons(model):
            raise SnnplugError("the model has no DSR neurons: call strategy.prepare(model) or "
                               "snnplug.apply(model, neuron='dsr-if', T=...) first")
        x_seq = self.encode(x, self.T)
        model = driven(model, x_seq)  # the multi-step body of a model that adds T itself
        if self.backward_mode(model) == "representation":
            return representation_forward(model, x_seq, chunk=self.chunk)
        return self.readout(self.run(model, x_seq))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy on the rate readout plus the threshold L2 regulariser."""
        logits = self.logits(model, x)
        loss = F.cross_entropy(logits, y) + threshold_l2(model, self.threshold_l2)
        return loss, logits.detach()

    def run(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return super().run(model, x_seq)
        with any_length(model):
            return super().run(model, x_seq)
