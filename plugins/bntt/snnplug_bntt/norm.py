"""The BNTT layer: a SpikingJelly ``MemoryModule`` around :mod:`snnplug_bntt.functional`.

``BNTT(num_features, T)`` holds ``weight`` (γ, ``[T, C]``, initialised to 1, no bias) and the
buffers ``running_mean``/``running_var`` (``[T, C]``) and ``num_batches_tracked`` (``[T]``).
Multi-step mode (default) maps ``[t, B, C, *S] -> [t, B, C, *S]`` for ``t <= T``; the module
counts the steps it has seen since the last ``reset()`` (``functional.reset_net``), so a run
can be fed in pieces, step by step (single-step mode) or cut short (early exit). Feeding more
than T steps before a reset raises :class:`~snnplug.errors.TimeStepError`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnplug.backends.spikingjelly import memory_module_base
from snnplug.checks import as_float, as_steps
from snnplug.errors import ShapeError, SnnplugError, TimeStepError

from snnplug_bntt import functional as BF

PAPER = ("Y. Kim, P. Panda. Revisiting Batch Normalization for Training Low-Latency Deep Spiking "
         "Neural Networks From Scratch. Frontiers in Neuroscience 15:773954, 2021 (arXiv:2010.01729)")

#: input ranks accepted per flavour: None = any [T, B, C, *S]
_RANKS = {None: None, 1: (3, 4), 2: (5,), 3: (6,)}


class BNTT(memory_module_base()):
    """Batch Normalization Through Time (Kim & Panda 2021, eq. 9).

    ``y_t = γ_t · (x_t − μ_t) / √(σ²_t + ε)`` with per-step γ_t and per-step statistics
    (batch statistics in training, running averages in eval). Defaults are the authors':
    ``eps=1e-4``, ``momentum=0.1``, γ initialised to 1, no β.

    ``dim`` restricts the input rank like ``BatchNorm1d`` (``[T,B,C]``/``[T,B,C,L]``),
    ``BatchNorm2d`` (``[T,B,C,H,W]``) or ``BatchNorm3d``; ``None`` accepts any ``[T,B,C,*S]``.
    ``momentum=None`` uses a cumulative average per step, as ``torch.nn.BatchNorm`` does.
    """

    def __init__(self, num_features: int, T: int = 25, eps: float = 1e-4, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dim: int | None = None,
                 step_mode: str = "m", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise TypeError(f"num_features must be a positive int, got {num_features!r}")
        if dim not in _RANKS:
            raise ValueError(f"dim must be None, 1, 2 or 3, got {dim!r}")
        self.num_features = num_features
        self.T = as_steps("T", T)
        self.eps = as_float("eps", eps, lo=0.0)
        self.momentum = None if momentum is None else as_float("momentum", momentum, lo=0.0, hi=1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dim = dim
        fk = {"device": device, "dtype": dtype}
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.T, num_features, **fk))
        else:
            self.register_buffer("weight", torch.ones(self.T, num_features, **fk), persistent=False)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.T, num_features, **fk))
            self.register_buffer("running_var", torch.ones(self.T, num_features, **fk))
            self.register_buffer("num_batches_tracked", torch.zeros(self.T, dtype=torch.long, device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.register_memory("t", 0)  # steps consumed since the last reset
        self.step_mode = step_mode

    # -- SpikingJelly interop --------------------------------------------------------------
    def extra_repr(self) -> str:
        return (f"{self.num_features}, T={self.T}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}, "
                f"step_mode={self.step_mode}")

    def reset_parameters(self) -> None:
        """γ = 1, μ̄ = 0, σ̄² = 1, counters 0 (the paper's initialisation)."""
        with torch.no_grad():
            self.weight.fill_(1.0)
            if self.track_running_stats:
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    # -- forward -----------------------------------------------------------------------------
    def _check(self, x: Any, steps_axis: bool) -> None:
        who = f"BNTT({self.num_features}, T={self.T})"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{who} expects a floating-point tensor, got {x.dtype}; call x.float()")
        rank = x.dim() + (0 if steps_axis else 1)
        ranks = _RANKS[self.dim]
        if rank < 3 or (ranks is not None and rank not in ranks):
            want = " or ".join(f"rank {r}" for r in ranks) if ranks else "rank >= 3"
            layout = "[T, B, C, ...]" if steps_axis else "[B, C, ...]"
            hint = ("; in multi-step mode the time axis comes first. A BatchNorm inside "
                    "SeqToANNContainer sees [T*B, ...] and cannot become BNTT: move it out of the "
                    "container (layer.BatchNorm2d(c, step_mode='m'))") if steps_axis else ""
            raise ShapeError(f"{who} ({self.step_mode}-step mode) expects {layout} with "
                             f"{want} counting the time axis, got shape "
                             f"{tuple(x.shape)}{hint}")
        c = x.shape[2] if steps_axis else x.shape[1]
        if c != self.num_features:
            raise ShapeError(f"{who} expects {self.num_features} channels, got {c} (shape {tuple(x.shape)})")

    def _steps(self, steps: int) -> slice:
        t0 = int(self.t)
        if t0 + steps > self.T:
            if t0 == 0:
                raise TimeStepError(
                    f"BNTT layer was built for T={self.T} but got a sequence of {steps} steps; build "
                    f"it with T>={steps} (e.g. snnplug.apply(net, normalizer='bntt', T={steps})) or feed "
                    f"at most {self.T} steps (shorter sequences are fine: early exit)")
            raise TimeStepError(
                f"BNTT layer has already processed {t0} of its T={self.T} steps and got {steps} more; "
                f"call spikingjelly.activation_based.functional.reset_net(net) before each new batch")
        return slice(t0, t0 + steps)

    def _normalize(self, x: torch.Tensor, sl: slice) -> torch.Tensor:
        gamma = self.weight[sl]
        use_batch = self.training or not self.track_running_stats
        if not use_batch:
            return BF.bntt_eval(x, gamma, self.running_mean[sl], self.running_var[sl], self.eps)
        n = x.numel() // (x.shape[0] * x.shape[2])
        if n <= 1 and self.training:
            raise ShapeError(f"BNTT needs more than 1 value per channel and step in training, got "
                             f"shape {tuple(x.shape)}; use a batch of at least 2 samples")
        y, mean, var = BF.bntt_train(x, gamma, self.eps)
        if self.training and self.track_running_stats:
            self.num_batches_tracked[sl] += 1
            if self.momentum is None:
                m: float | torch.Tensor = (1.0 / self.num_batches_tracked[sl].to(mean.dtype)).unsqueeze(1)
            else:
                m = self.momentum
            BF.update_running(self.running_mean[sl], self.running_var[sl], mean, var, n, m)
        return y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[t, B, C, *S] -> [t, B, C, *S]`` using steps ``self.t .. self.t + t − 1``."""
        self._check(x_seq, steps_axis=True)
        sl = self._steps(x_seq.shape[0])
        y = self._normalize(x_seq, sl)
        self.t = sl.stop
        return y

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, *S] -> [B, C, *S]`` using step ``self.t`` (then ``self.t += 1``)."""
        self._check(x, steps_axis=False)
        return self.multi_step_forward(x.unsqueeze(0)).squeeze(0)

    # -- conversion ----------------------------------------------------------------------------
    @torch.no_grad()
    def load_bn_list(self, bns: Any) -> "BNTT":
        """Copy γ and running statistics from T per-step BatchNorm modules (SpikingJelly's
        ``BatchNormThroughTime2d.bn_list`` or snnTorch's ``BatchNormTT2d``); returns self."""
        bns = list(bns)
        if len(bns) != self.T:
            raise ValueError(f"expected {self.T} BatchNorm modules (one per step), got {len(bns)}")
        for t, bn in enumerate(bns):
            if bn.num_features != self.num_features:
                raise ShapeError(f"step {t}: BatchNorm has {bn.num_features} features, not {self.num_features}")
            if getattr(bn, "bias", None) is not None and bool((bn.bias != 0).any()):
                raise SnnplugError(f"step {t}: BatchNorm has a non-zero bias (β); BNTT has no β")
            if bn.weight is not None:
                self.weight[t].copy_(bn.weight)
            if self.track_running_stats and bn.running_mean is not None:
                self.running_mean[t].copy_(bn.running_mean)
                self.running_var[t].copy_(bn.running_var)
                self.num_batches_tracked[t] = bn.num_batches_tracked
        return self


def from_module(old: nn.Module, T: int = 25, eps: float = 1e-4, momentum: float | None = 0.1,
                copy_weights: bool = False, **kw: Any) -> BNTT:
    """Build the BNTT layer that replaces the BatchNorm ``old`` (used by ``snnplug.apply``).

    Keeps ``old``'s number of features, ``affine``, ``track_running_stats``, device, dtype,
    dimensionality and step mode; γ_t = 1 and fresh statistics (the paper trains BNTT from
    scratch) unless ``copy_weights=True``, which copies ``old``'s γ and running statistics into
    every step (its β must be zero: BNTT has none). ``eps``/``momentum`` default to the authors'
    values, not ``old``'s.
    """
    if not isinstance(old, nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"BNTT replaces BatchNorm layers, got {type(old).__name__}")
    names = {c.__name__ for c in type(old).__mro__}
    dim = 1 if "BatchNorm1d" in names else 2 if "BatchNorm2d" in names else 3 if "BatchNorm3d" in names else None
    ref = old.weight if old.weight is not None else old.running_mean
    new = BNTT(old.num_features, T=T, eps=eps, momentum=momentum, affine=old.affine,
               track_running_stats=old.track_running_stats, dim=dim,
               step_mode=kw.pop("step_mode", getattr(old, "step_mode", "m")),
               device=None if ref is None else ref.device, dtype=None if ref is None else ref.dtype, **kw)
    if copy_weights:
        new.load_bn_list([old] * new.T)
        if new.track_running_stats:
            new.num_batches_tracked.zero_()
    new.train(old.training)
    return new
