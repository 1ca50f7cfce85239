"""The training-strategy contract every strategy plugin follows.

A strategy owns what a method needs beyond the user's loop: the reference network for a dataset,
module surgery, input encoding, the forward/readout, the loss and the optimizer defaults. The
user keeps their loop::

    strategy = snnplug.strategy("dsr", T=20)
    model = strategy.prepare(model)            # or strategy.build_model(input_shape, classes)
    for x, y in loader:                        # x: [B, ...] static batch (or [T, B, ...] frames)
        loss, logits = strategy.loss(model, x, y)
        opt.zero_grad(); loss.backward(); opt.step()

SNN models in snnplug are SpikingJelly multi-step models: ``model(x_seq[T, B, ...]) ->
[T, B, classes]``. ``forward`` encodes, resets state, runs and reads out ``[B, classes]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.checks import as_steps


@dataclass
class OptimConfig:
    """Optimizer defaults a strategy recommends (the paper's when it gives them)."""

    name: str = "adam"  # "adam" | "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" | "none"


class Strategy:
    """Base strategy: direct input encoding, mean-over-time readout, cross-entropy loss.

    Subclasses override what their method changes. ``config()`` must return the keyword
    arguments that rebuild the strategy (they are stored in checkpoints).
    """

    name: str = "base"
    is_snn: bool = True  # False for strategies that train an ANN (e.g. OPI's clip-ANN)
    default_epochs: int = 10
    #: options ``snnplug run`` applies for its few-epoch runs on small data (recorded in its JSON)
    quick_overrides: dict[str, Any] = {}

    def __init__(self, *, T: int = 4) -> None:
        self.T = as_steps("T", T)

    @property
    def inference_T(self) -> int:
        """The T the method is evaluated at: ``eval_T`` when it trains at another T (noise trains
        at T=1 and infers at T=N), else ``T``."""
        return int(max(self.T, getattr(self, "eval_T", 0) or 0))

    # -- construction ----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"T": self.T}

    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The method's reference network for inputs ``[B, *input_shape]``."""
        raise NotImplementedError(f"strategy {self.name!r} does not build a model")

    def prepare(self, model: nn.Module) -> nn.Module:
        """Adapt an existing model to the method (module surgery). Default: unchanged."""
        return model

    def optim_config(self) -> OptimConfig:
        return OptimConfig()

    def param_groups(self, model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
        """Parameter groups for the optimizer. Default: one group with ``cfg.weight_decay``."""
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "weight_decay": cfg.weight_decay}]

    def make_optimizer(self, model: nn.Module, epochs: int, steps_per_epoch: int,
                       lr: float | None = None) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.optim_config()
        if lr is not None:
            cfg.lr = float(lr)
        groups = self.param_groups(model, cfg)
        if cfg.name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        elif cfg.name == "adam":
            opt = torch.optim.Adam(groups, lr=cfg.lr)
        else:
            raise ValueError(f"unknown optimizer {cfg.name!r}")
        sched = None
        if cfg.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
        return opt, sched

    # -- running -------------------------------------------------------------------------
    #: set by the trainer for event datasets whose batches are already frames ``[B, T, ...]``
    frames_input: bool = False

    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Batch -> ``[T, B, ...]``. Static ``[B, ...]``: direct input (the same frame each step).
        Frames ``[B, T, ...]`` (``frames_input``): moved to time-major; T must match."""
        from snnplug.data.encoders import direct, frames_to_time_major

        if self.frames_input:
            return frames_to_time_major(x, T)
        return direct(x, T)

    def run(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        """Reset state and run the multi-step model: ``[T, B, ...] -> [T, B, C]``. A model whose
        own forward adds the time axis runs through its multi-step body (:mod:`snnplug.time_axis`)."""
        from snnplug.backends.spikingjelly import reset
        from snnplug.time_axis import driven

        model = driven(model, x_seq)
        reset(model)
        return model(x_seq)

    def readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, C] -> [B, C]``: mean over time (firing rate / mean potential)."""
        return out_seq.mean(0)

    def forward(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Encode, reset, run, and read out logits ``[B, C]``."""
        steps = self.T if T is None else as_steps("T", T)
        return self.readout(self.run(model, self.encode(x, steps)))

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss and logits for one batch."""
        logits = self.forward(model, x)
        return F.cross_entropy(logits, y), logits

    @torch.no_grad()
    def predict(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits ``[B, C]`` at ``T`` steps (default: the strategy's T)."""
        return self.forward(model, x, T)

    def inference_model(self, model: nn.Module) -> nn.Module:
        """The module that actually spikes at inference (for spike and energy metrics).

        Default: ``model`` itself. Strategies that train an ANN and convert it return the SNN.
        """
        return model

    def report(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, list[float]]]:
        """Method-specific series for ``snnplug run``'s plots, computed on a test batch ``(x, y)``:
        ``{plot title: {line label: values over t}}``. Default: none."""
        return {}

    def predict_anytime(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits after every step ``t = 1..T`` from one simulation: ``[T, B, C]``.

        Default: cumulative mean of the output sequence (valid for mean-over-time readouts).
        """
        steps = self.T if T is None else as_steps("T", T)
        with torch.no_grad():
            out = self.run(model, self.encode(x, steps))
            t = torch.arange(1, out.shape[0] + 1, device=out.device, dtype=out.dtype)
            return out.cumsum(0) / t.view(-1, *([1] * (out.dim() - 1)))
