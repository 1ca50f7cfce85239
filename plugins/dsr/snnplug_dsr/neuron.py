"""DSR-IF and DSR-LIF neurons: SpikingJelly ``MemoryModule`` wrappers around :mod:`.functional`.

A multi-step call is one whole presentation of ``T`` steps starting from ``v = 0`` (DSR's
backward is defined on whole sequences); the final potential is kept in ``self.v``. The
threshold is a trainable scalar per layer, projected in place to ``>= v_threshold_bound`` before
every forward (a projection: the parameter keeps receiving gradient, unlike a functional clamp).

Besides the plain per-step path (``forward``), the engine of :mod:`.representation` drives the
neurons through an explicit API, with the state of one streamed simulation held in a
:class:`Record` the engine owns:

* :meth:`DSRNode.new_record` starts a simulation of ``T`` steps;
* :meth:`DSRNode.stream` simulates the next chunk of steps under ``no_grad`` and accumulates the
  layer's mean input and firing rate into the record;
* :meth:`DSRNode.replay` is one autograd node whose forward returns the measured rate and whose
  backward is the representation gradient;
* :meth:`DSRNode.any_length` lets inference run on sequences of another length.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from spikingjelly.activation_based import base
from torch import nn

from snnplug import kernels
from snnplug.checks import as_float, as_steps, check_sequence
from snnplug.errors import ShapeError, SnnplugError, TimeStepError

from snnplug_dsr import functional as F


def _fused(x: torch.Tensor, name: str) -> Any:
    """The fused Triton version of ``name`` for CUDA tensors (:mod:`.kernels`), else None."""
    k = kernels.for_tensor(x, "snnplug_dsr.kernels")
    return None if k is None else getattr(k, name)


@dataclass
class Record:
    """What a streamed simulation measured for one neuron layer (see :mod:`.representation`)."""

    T: int
    steps: int = 0
    sum_in: torch.Tensor | None = None  # sum_t x_t (IF) or sum_t w_t x_t (LIF, weights normalised)
    sum_out: torch.Tensor | None = None  # sum_t out_t
    v: torch.Tensor | None = None  # membrane potential after the steps simulated so far
    extra: dict[str, Any] = field(default_factory=dict)

    def rep_in(self) -> torch.Tensor:
        return self.sum_in if self.extra.get("weighted") else self.sum_in / self.T

    def rate(self) -> torch.Tensor:
        return self.sum_out / self.T


class DSRNode(base.MemoryModule):
    """Base class of the DSR neurons (see the subclasses for the equations)."""

    snnplug_spiking = True
    weighted_representation = False  # True: the representation is a weighted time mean (LIF)

    def __init__(self, T: int, v_threshold: float, alpha: float, v_threshold_bound: float,
                 train_threshold: bool = True, threshold_grad_scale: float = 1.0,
                 step_mode: str = "m") -> None:
        super().__init__()
        self.T = as_steps("T", T)
        vth = as_float("v_threshold", v_threshold, positive=True)
        self.alpha = as_float("alpha", alpha, lo=0.0, hi=1.0)
        if self.alpha == 0.0:
            raise ValueError("alpha must be in (0, 1]: alpha=0 fires on any non-negative potential")
        self.v_threshold_bound = as_float("v_threshold_bound", v_threshold_bound, positive=True)
        if vth < self.v_threshold_bound:
            raise ValueError(f"v_threshold={vth} is below v_threshold_bound={self.v_threshold_bound}")
        self.threshold_grad_scale = as_float("threshold_grad_scale", threshold_grad_scale, lo=0.0)
        if not isinstance(train_threshold, bool):
            raise TypeError(f"train_threshold must be a bool, got {train_threshold!r}")
        self.train_threshold = train_threshold
        if train_threshold:
            self.v_threshold = nn.Parameter(torch.tensor(vth))
        else:
            self.register_buffer("v_threshold", torch.tensor(vth))
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' or 'm', got {step_mode!r}")
        self.step_mode = step_mode
        self.register_memory("v", 0.0)
        self.strict_T = True  # relaxed for inference at other T by :meth:`any_length`

    # -- threshold -----------------------------------------------------------------------------
    def project_threshold(self) -> None:
        """Project the threshold in place onto ``[v_threshold_bound, inf)`` (no gradient effect)."""
        with torch.no_grad():
            if bool(self.v_threshold < self.v_threshold_bound):
                self.v_threshold.clamp_(min=self.v_threshold_bound)

    # -- to implement ----------------------------------------------------------------------------
    def _simulate(self, x_seq: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _per_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _stream_weights(self, start: int, n: int, x: torch.Tensor) -> torch.Tensor | None:
        return None

    def _rep_grads(self, G: torch.Tensor, rep_in: torch.Tensor, vth: torch.Tensor):
        raise NotImplementedError

    def spike_amplitude(self, dtype: torch.dtype) -> torch.Tensor:
        """The value an emitted spike has in the output (computed as the simulation does)."""
        raise NotImplementedError

    # -- forwards --------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor, min_rank: int) -> None:
        check_sequence(x, who=type(self).__name__, min_rank=min_rank)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self._check(x_seq, 3)
        dtype = x_seq.dtype
        x = x_seq if dtype in (torch.float32, torch.float64) else x_seq.float()  # half: simulate in fp32
        self.project_threshold()
        vth = self.v_threshold.to(x.dtype)
        steps = x.shape[0]
        if steps != self.T and (self.strict_T or torch.is_grad_enabled()):
            raise TimeStepError(
                f"{type(self).__name__} was built for T={self.T} but got {steps} steps (shape "
                f"{tuple(x_seq.shape)}); build it with T={steps} (snnplug.apply(net, neuron=..., "
                f"T={steps})) or feed {self.T} steps"
            )
        if torch.is_grad_enabled() and (x.requires_grad or vth.requires_grad):
            out = self._per_step(x)
        else:
            out, v = self._simulate(x, None)
            self.v = v
        return out if out.dtype == dtype else out.to(dtype)

    @contextmanager
    def any_length(self) -> Iterator[None]:
        """Within the block, inference (no autograd) runs on sequences of any length (the
        dynamics do not depend on ``T``; training still requires ``T`` steps)."""
        old = self.strict_T
        self.strict_T = False
        try:
            yield
        finally:
            self.strict_T = old

    # -- engine API (see :mod:`.representation`) ---------------------------------------------------
    def new_record(self, T: int | None = None) -> Record:
        """An empty record for one streamed simulation of ``T`` steps (default: the neuron's)."""
        T = self.T if T is None else T
        if T != self.T:
            raise TimeStepError(f"{type(self).__name__} was built for T={self.T}; a streamed "
                                f"simulation of {T} steps needs neurons built with T={T}")
        return Record(T=T, extra={"weighted": self.weighted_representation})

    def stream(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        """Simulate the next ``x.shape[0]`` steps of ``rec``'s sequence (no autograd): returns the
        output spikes and adds this chunk's input and output sums to ``rec``."""
        self._check(x, 3)
        dtype = x.dtype
        xf = x if dtype in (torch.float32, torch.float64) else x.float()
        self.project_threshold()
        out = self._stream(xf, rec)
        return out if out.dtype == dtype else out.to(dtype)

    def replay(self, x_rep: torch.Tensor, rec: Record) -> torch.Tensor:
        """The representation pass through this layer: returns the rate ``rec`` measured (shape
        ``[1, B, ...]``, the value of ``x_rep`` is ignored) with the DSR gradient as backward."""
        out = self._replay(x_rep if x_rep.dtype in (torch.float32, torch.float64) else x_rep.float(), rec)
        return out if out.dtype == x_rep.dtype else out.to(x_rep.dtype)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects a floating-point tensor [B, ...]")
        self.project_threshold()
        if torch.is_grad_enabled() and (x.requires_grad or self.v_threshold.requires_grad):
            raise SnnplugError(
                f"{type(self).__name__} in single-step mode can only run inference: DSR's backward "
                f"needs the whole sequence. Train in multi-step mode (step_mode='m', input "
                f"[T, B, ...]), or wrap single-step inference in torch.no_grad()"
            )
        xf = x.float() if x.dtype not in (torch.float32, torch.float64) else x
        v = self.v if isinstance(self.v, torch.Tensor) else None
        if v is not None and v.shape != xf.shape:
            raise ShapeError(f"{type(self).__name__}: input shape {tuple(x.shape)} differs from the "
                             f"state's {tuple(v.shape)}; call functional.reset_net(net) between batches")
        out, v = self._simulate(xf.unsqueeze(0), v)
        self.v = v
        return out[0].to(x.dtype)

    def _stream(self, x: torch.Tensor, rec: Record) -> torch.Tensor:
        if rec.steps + x.shape[0] > rec.T:
            raise TimeStepError(f"{type(self).__name__} was built for T={rec.T} but the stream "
                                f"delivered more than {rec.T} steps")
        v = rec.v if rec.steps > 0 else None
        with torch.no_grad():
            out, v = self._simulate(x, v)
            s_out = out.sum(0)
            rec.sum_out = s_out if rec.sum_out is None else rec.sum_out + s_out
            rec.steps += x.shape[0]
            w = self._stream_weights(rec.steps - x.shape[0], x.shape[0], x)
            if w is not None:
                s_in = F.weighted_mean(x, w)
                rec.sum_in = s_in if rec.sum_in is None else rec.sum_in + s_in
            elif rec.steps == rec.T:
                # IF charge conservation (v(0) = 0): sum_t x_t = sum_t out_t + v_T
                rec.sum_in = rec.sum_out + v
        rec.v = v
        return out

    def _replay(self, x_rep: torch.Tensor, rec: Record) -> torch.Tensor:
        if rec.steps != rec.T:
            raise SnnplugError(f"{type(self).__name__}: no complete streamed simulation to replay "
                               f"(got {rec.steps} of {rec.T} steps)")
        rate = rec.rate().unsqueeze(0)
        if x_rep.shape != rate.shape:
            raise ShapeError(f"{type(self).__name__}: representation input {tuple(x_rep.shape)} does "
                             f"not match the simulated layer {tuple(rate.shape)}")
        vth = self.v_threshold
        rep_in = rec.rep_in().unsqueeze(0)
        fn = functools.partial(self._rep_grads, rep_in=rep_in, vth=vth.detach())
        return F.ReplayFunction.apply(x_rep, vth, rate.to(x_rep.dtype), fn)

    def extra_repr(self) -> str:
        return (f"T={self.T}, v_threshold={float(self.v_threshold.detach()):.4g}, alpha={self.alpha}, "
                f"bound={self.v_threshold_bound}, train_threshold={self.train_threshold}, "
                f"grad_scale={self.threshold_grad_scale}, step_mode={self.step_mode}")


class DSRIFNode(DSRNode):
    """DSR integrate-and-fire neuron (Meng et al., CVPR 2022, eqs. 4, 6, 15, 20).

    ``v += x_t; s_t = 1[v >= alpha*Vth]; out_t = Vth*s_t; v -= out_t`` (v(0) = 0), and backward
    through ``clamp(mean_t x_t, 0, Vth)``: ``dL/dx_t = G/T*1[0 <= mean x <= Vth]``,
    ``dL/dVth = grad_scale * sum G*1[mean x > Vth]`` with ``G = sum_t dL/dout_t``.
    """

    def __init__(self, T: int = 20, v_threshold: float = 6.0, alpha: float = 0.5,
                 v_threshold_bound: float = 0.01, train_threshold: bool = True,
                 threshold_grad_scale: float = 1.0, step_mode: str = "m") -> None:
        super().__init__(T, v_threshold, alpha, v_threshold_bound, train_threshold,
                         threshold_grad_scale, step_mode)

    def _simulate(self, x_seq, v):
        sim = _fused(x_seq, "if_simulate") or F.if_simulate
        return sim(x_seq, self.v_threshold.detach().to(x_seq.dtype), self.alpha, v)

    def _per_step(self, x_seq):
        fn = _fused(x_seq, "IFFunction") or F.DSRIFFunction
        return fn.apply(x_seq, self.v_threshold.to(x_seq.dtype), self.alpha, self.threshold_grad_scale)

    def _rep_grads(self, G, rep_in, vth):
        return F.if_rep_grads(G, rep_in, vth.to(G.dtype), self.threshold_grad_scale)

    def spike_amplitude(self, dtype):
        return self.v_threshold.detach().to(dtype)  # out = Vth * s


class DSRLIFNode(DSRNode):
    """DSR leaky integrate-and-fire neuron (Meng et al., CVPR 2022, eqs. 5, 6, 14, 20).

    ``v = beta*v + (1-beta)*x_t`` with ``beta = exp(-dt/tau)``; ``s_t = 1[v >= alpha*Vth]``;
    ``v -= Vth*s_t``; ``out_t = Vth*s_t/dt``. Backward through ``clamp(x_w/tau, 0, Vth/dt)`` with
    the weighted mean ``x_w = sum_t beta**(T-t) x_t / sum_t beta**(T-t)``; the input gradient is
    spread evenly over the steps and the threshold gradient is scaled by ``dt`` (authors' code).
    """

    def __init__(self, T: int = 20, v_threshold: float = 0.3, tau: float = 1.0, dt: float = 0.05,
                 alpha: float = 0.3, v_threshold_bound: float = 5e-4, train_threshold: bool = True,
                 threshold_grad_scale: float = 1.0, step_mode: str = "m") -> None:
        super().__init__(T, v_threshold, alpha, v_threshold_bound, train_threshold,
                         threshold_grad_scale, step_mode)
        self.tau = as_float("tau", tau, positive=True)
        self.dt = as_float("dt", dt, positive=True)

    def _simulate(self, x_seq, v):
        sim = _fused(x_seq, "lif_simulate") or F.lif_simulate
        return sim(x_seq, self.v_threshold.detach().to(x_seq.dtype), self.alpha, self.tau, self.dt, v)

    def _per_step(self, x_seq):
        fn = _fused(x_seq, "LIFFunction") or F.DSRLIFFunction
        return fn.apply(x_seq, self.v_threshold.to(x_seq.dtype), self.alpha, self.tau, self.dt,
                        self.threshold_grad_scale)

    weighted_representation = True

    def _stream_weights(self, start, n, x):
        w = F.lif_weights(self.T, self.tau, self.dt, device=x.device, dtype=x.dtype)
        return w[start:start + n]

    def _rep_grads(self, G, rep_in, vth):
        return F.lif_rep_grads(G, rep_in, vth.to(G.dtype), self.tau, self.dt,
                               self.threshold_grad_scale)

    def spike_amplitude(self, dtype):
        return torch.div(self.v_threshold.detach().to(dtype), self.dt)  # out = Vth * s / dt

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, dt={self.dt}"
