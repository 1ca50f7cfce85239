"""The strategy contract: what a method plugin implements, on one screen.

A strategy owns what a method needs beyond the user's loop: the reference network, module
surgery, input encoding, the readout, the loss and the optimizer defaults::

    strategy = snnplug.strategy("dsr", T=20)   # frames=True for event data [B, T, ...]
    model = strategy.prepare(model)            # or strategy.build_model(input_shape, classes)
    for x, y in loader:                        # or snnplug.engine.train(strategy, model, loader)
        loss, logits = strategy.loss(model, x, y)
        opt.zero_grad(); loss.backward(); opt.step()

Everything a strategy depends on is given to it: its options (``T``, ``frames`` and the
method's own) at construction, recorded by ``config()``; nothing sets its attributes from
outside. SNN models are SpikingJelly multi-step models ``[T, B, ...] -> [T, B, C]``.

==========================  ==================================================================
declared                    ``name``, ``default_epochs``, ``T`` (training steps),
                            ``inference_T`` (steps it is evaluated at; default ``T``),
                            ``frames`` (input layout: static ``[B, ...]`` or frames ``[B, T, ...]``)
``config()``                keyword arguments that rebuild it (stored in checkpoints)
``build_model/prepare``     reference network / surgery on a user's model
``optim_config()``          :class:`OptimConfig` (optimizer, lr, weight decay, schedule)
``param_groups``            optimizer parameter groups (default: one, with ``weight_decay``)
``encode(x, T)``            ``[B, ...] -> [T, B, ...]`` (default: direct input, or frames moved)
``run(model, x_seq)``       reset + ``model(x_seq)``: ``[T, B, C]``
``readout(out_seq)``        ``[T, B, C] -> [B, C]`` (default: mean over time)
``anytime_readout``         ``[T, B, C] -> [T, B, C]``: the readout after every step
``loss(model, x, y)``       ``(loss, logits [B, C])`` for one training batch
``predict(model, x, T)``    logits ``[B, C]`` of the deployed network after ``T`` steps
``predict_anytime``         logits after every step ``t = 1..T`` of one simulation ``[T, B, C]``
``inference_model(model)``  the module that spikes at inference (spike and energy counts)
==========================  ==================================================================

Each method has one return type. :class:`Reporting` is a separate, optional protocol for
``snnplug run``'s method-specific plots; what a short run uses (settings, epochs, whether the
method trains on the dataset's shared backbone) is declared on the registration
(:class:`snnplug.types.StrategyPlugin`).

``loss`` refuses a batch holding NaN/Inf (:class:`~snnplug.engine.guards.NonFiniteError`) before
the forward pass touches running statistics, in every strategy (subclasses' ``loss`` is wrapped);
non-finite gradients from a finite batch are caught by
``snnplug.engine.guards.check_gradients(model)`` between ``backward`` and ``opt.step()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.checks import as_steps, check_runnable


def _finite_input(loss: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a strategy's ``loss`` so a NaN/Inf batch is refused before the forward pass."""
    if getattr(loss, "_snnplug_finite_input", False):
        return loss

    @functools.wraps(loss)
    def guarded(self: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *a: Any, **kw: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            from snnplug.engine.guards import NonFiniteError

            n = int((~torch.isfinite(x)).sum())
            raise NonFiniteError(f"strategy {self.name!r}: the batch holds {n} NaN/Inf value(s) (shape "
                                 f"{tuple(x.shape)}); clean the data before training on it")
        return loss(self, model, x, y, *a, **kw)

    guarded._snnplug_finite_input = True  # type: ignore[attr-defined]
    return guarded


@dataclass
class OptimConfig:
    """Optimizer defaults a strategy recommends (the paper's when it gives them)."""

    name: str = "adam"  # "adam" | "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    #: "cosine" (to zero over the run) | "cosine-warm-restarts" (restart every ``restart_epochs``) | "none";
    #: schedules step once per batch
    schedule: str = "cosine"
    restart_epochs: int = 100


SCHEDULES = ("cosine", "cosine-warm-restarts", "none")


def make_schedule(opt: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, steps_per_epoch: int) -> Any:
    """The learning-rate schedule of ``cfg`` (stepped once per batch), or None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    if cfg.schedule == "cosine-warm-restarts":
        t0 = max(1, as_steps("restart_epochs", cfg.restart_epochs) * as_steps("steps_per_epoch", steps_per_epoch))
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0)
    if cfg.schedule == "none":
        return None
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose one of {SCHEDULES}")


def mark_reference(net: nn.Module) -> nn.Module:
    """Mark ``net`` as the strategy's own reference network (built by ``build_model``), on which
    the paper's optimizer settings apply; models users bring are unmarked."""
    net.snnplug_reference = True
    return net


def is_reference(model: nn.Module) -> bool:
    """Whether ``model`` was built by a strategy's ``build_model`` (:func:`mark_reference`)."""
    return bool(getattr(model, "snnplug_reference", False))


class Strategy:
    """Base strategy: direct input encoding, mean-over-time readout, cross-entropy loss.

    Subclasses override what their method changes and pass ``T`` and ``frames`` on to this
    constructor; ``config()`` returns the keyword arguments that rebuild them.
    """

    name: str = "base"
    default_epochs: int = 10
    #: learning rate on models the strategy did not build (:func:`is_reference` false), where the
    #: paper's rate is unstable; None: :meth:`optim_config`'s rate everywhere. It applies only when
    #: no rate was given, neither to :meth:`make_optimizer` nor as the strategy's ``lr`` setting.
    user_model_lr: float | None = None

    def __init__(self, *, T: int = 4, frames: bool = False) -> None:
        self.T = as_steps("T", T)
        if not isinstance(frames, bool):
            raise TypeError(f"frames must be True (event frames [B, T, ...]) or False (static [B, ...]), "
                            f"got {frames!r}")
        self.frames = frames

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "loss" in cls.__dict__:
            cls.loss = _finite_input(cls.__dict__["loss"])  # type: ignore[method-assign]

    @property
    def inference_T(self) -> int:
        """The T the method is evaluated at (default: the training ``T``)."""
        return self.T

    # -- construction ----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames}

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
        """The optimizer and schedule of :meth:`optim_config` (``lr`` overrides its rate;
        without one, :attr:`user_model_lr` applies on models the strategy did not build)."""
        cfg = self.optim_config()
        if (lr is None and self.user_model_lr is not None and getattr(self, "lr", None) is None
                and not is_reference(model)):
            lr = self.user_model_lr
        if lr is not None:
            cfg.lr = float(lr)
        groups = self.param_groups(model, cfg)
        if cfg.name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        elif cfg.name == "adam":
            opt = torch.optim.Adam(groups, lr=cfg.lr)
        else:
            raise ValueError(f"unknown optimizer {cfg.name!r}; choose 'sgd' or 'adam'")
        return opt, make_schedule(opt, cfg, epochs, steps_per_epoch)

    # -- running -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Batch -> ``[T, B, ...]``. Static ``[B, ...]``: direct input (the same frame each step).
        With ``frames=True`` batches are ``[B, T, ...]``: moved to time-major; T must match."""
        from snnplug.data.encoders import direct, frames_to_time_major

        if self.frames:
            return frames_to_time_major(x, T)
        return direct(x, T)

    def run(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        """Reset state and run the multi-step model: ``[T, B, ...] -> [T, B, C]``. A model whose
        own forward adds the time axis runs through its multi-step body (:mod:`snnplug.time_axis`)."""
        from snnplug.backends.spikingjelly import reset
        from snnplug.time_axis import driven

        check_runnable(model, f"strategy {self.name!r}")
        model = driven(model, x_seq)
        reset(model)
        return model(x_seq)

    def readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, C] -> [B, C]``: mean over time (firing rate / mean potential)."""
        return out_seq.mean(0)

    def anytime_readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, C] -> [T, B, C]``: the readout after every step ``t`` (row ``t-1``: the
        readout of the first ``t`` outputs). Default: running mean (matches :meth:`readout`)."""
        from snnplug.engine.evaluate import running_mean

        return running_mean(out_seq)

    def forward(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Encode, reset, run, and read out logits ``[B, C]``."""
        steps = self.T if T is None else as_steps("T", T)
        return self.readout(self.run(model, self.encode(x, steps)))

    @_finite_input
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss and logits for one batch."""
        logits = self.forward(model, x)
        return F.cross_entropy(logits, y), logits

    @torch.no_grad()
    def predict(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits ``[B, C]`` at ``T`` steps (default: ``inference_T``)."""
        return self.forward(model, x, self.inference_T if T is None else T)

    def predict_anytime(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits after every step ``t = 1..T`` (default ``inference_T``) from one simulation: ``[T, B, C]``."""
        steps = self.inference_T if T is None else as_steps("T", T)
        with torch.no_grad():
            return self.anytime_readout(self.run(model, self.encode(x, steps)))

    def inference_model(self, model: nn.Module) -> nn.Module:
        """The module that actually spikes at inference (for spike and energy counts).

        Default: ``model`` itself. Strategies that train an ANN and convert it return the SNN.
        """
        return model


@runtime_checkable
class Reporting(Protocol):
    """Optional, for ``snnplug run``: method-specific plots. (The settings of a short run are
    registration data: ``StrategyPlugin.run_settings`` / ``run_epochs``.)"""

    def report(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, list[float]]]:
        """Series computed on a test batch ``(x, y)``: ``{plot title: {line label: values over t}}``.
        Titles name what is plotted, not the method (the report adds the method's name)."""
        ...
