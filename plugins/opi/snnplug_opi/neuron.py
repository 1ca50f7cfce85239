"""``OPIIFNode``: integrate-and-fire neuron with soft reset and initial potential ``v(0) = c·θ``.

A SpikingJelly ``MemoryModule`` (``functional.reset_net`` restores ``v`` to ``c·θ``), multi-step by
default (``[T, B, ...] -> [T, B, ...]`` spikes in {0, 1}); single-step mode works too.
"""

from __future__ import annotations

from typing import Any

import torch

from snnplug import kernels
from snnplug.backends.spikingjelly import memory_module_base
from snnplug.checks import as_float, as_steps, check_sequence
from snnplug.errors import ShapeError
from snnplug_opi import functional as OF

MemoryModule = memory_module_base()


class OPIIFNode(MemoryModule):
    r"""IF neuron for ANN→SNN conversion with optimized initial potential (Bu et al., AAAI 2022).

    .. math::
        h_t = v_{t-1} + x_t,\quad s_t = \mathbb{1}[h_t \ge \theta],\quad v_t = h_t - \theta s_t,
        \quad v_0 = c\,\theta

    ``v_threshold`` is θ, ``v_init`` is the fraction ``c`` (paper: ½; 0 is the classic zero
    initialization). The output is the spike train ``s_t`` in {0, 1}; the converter multiplies it
    by θ (the postsynaptic potential). With ``v_init=0.5`` this equals SpikingJelly's
    ``neuron.HalfThresholdIFNode``. ``surrogate_function`` (optional, e.g.
    ``surrogate.ATan()``) gives spikes a gradient; without it they carry none.
    """

    snnplug_spiking = True

    def __init__(self, v_threshold: float = 1.0, v_init: float = 0.5, *,
                 surrogate_function: Any = None, step_mode: str = "m", T: int | None = None) -> None:
        super().__init__()
        self.T = None if T is None else as_steps("T", T)  # None: any number of steps (anytime use)
        self.v_threshold = as_float("v_threshold", v_threshold, positive=True)
        self.v_init = as_float("v_init", v_init, lo=0.0, hi=1.0)
        if surrogate_function is not None and not callable(surrogate_function):
            raise TypeError(f"surrogate_function must be callable, got {surrogate_function!r}")
        self.surrogate_function = surrogate_function
        self.register_memory("v", self.v_init * self.v_threshold)
        self.step_mode = step_mode

    def extra_repr(self) -> str:
        return (f"v_threshold={self.v_threshold}, v_init={self.v_init} (v(0)="
                f"{self.v_init * self.v_threshold}), soft reset, step_mode={self.step_mode}")

    # -- SpikingJelly 2.x functional protocol --------------------------------------------
    def materialize_states(self, inputs: tuple[Any, ...], states: tuple[Any, ...],
                           step_mode: str) -> tuple[Any, ...]:
        x = inputs[0][0] if step_mode == "m" else inputs[0]
        v = states[0]
        if not torch.is_tensor(v):
            v = torch.full_like(x, float(v))
        elif v.shape != x.shape:
            raise ShapeError(
                f"OPIIFNode holds a membrane potential of shape {tuple(v.shape)} from the previous "
                f"input but got a step of shape {tuple(x.shape)}; call "
                f"spikingjelly.activation_based.functional.reset_net(net) between batches"
            )
        elif v.dtype != x.dtype or v.device != x.device:
            v = v.to(dtype=x.dtype, device=x.device)
        return (v, *states[1:])

    def single_step_functional_forward(self, inputs: tuple[torch.Tensor, ...],
                                       states: tuple[Any, ...], **kw: Any) -> tuple[tuple, tuple]:
        s, v = OF.if_step(inputs[0], states[0], self.v_threshold, self.surrogate_function)
        return (s,), (v, *states[1:])

    def multi_step_functional_forward(self, inputs: tuple[torch.Tensor, ...],
                                      states: tuple[Any, ...], **kw: Any) -> tuple[tuple, tuple]:
        x, v0 = inputs[0], states[0]
        k = kernels.for_tensor(x, "snnplug_opi.kernels")  # fused Triton kernel on CUDA, inference
        if k is not None and not (torch.is_grad_enabled() and (x.requires_grad or v0.requires_grad)):
            s, v = k.if_multi_step(x, v0, self.v_threshold)
        else:
            s, v = OF.if_multi_step(x, v0, self.v_threshold, self.surrogate_function)
        return (s,), (v, *states[1:])

    # -- entry points (checked) ------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise TypeError(f"OPIIFNode expects a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
        return super().single_step_forward(x, *args, **kw)

    def multi_step_forward(self, x_seq: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
        check_sequence(x_seq, who="OPIIFNode (multi-step)", min_rank=2, T=self.T, allow_shorter=True)
        return super().multi_step_forward(x_seq, *args, **kw)


def make_neuron(T: int = 4, v_threshold: float = 1.0, v_init: float = 0.5, **kw: Any) -> OPIIFNode:
    r"""OPI integrate-and-fire neuron (Bu et al., "Optimized Potential Initialization for
    Low-latency Spiking Neural Networks", AAAI 2022).

    ``h_t = v_{t-1} + x_t;  s_t = 1[h_t ≥ θ];  v_t = h_t − θ·s_t;  v_0 = v_init·θ`` (soft reset,
    fires on ≥, spikes in {0, 1}). Defaults: θ = 1, ``v_init = 0.5`` (the paper's optimum,
    Theorem 1). A neuron built for ``T`` steps runs up to ``T`` steps (fewer for anytime
    read-outs; more raises :class:`~snnplug.errors.TimeStepError`). Extra keywords:
    ``surrogate_function``, ``step_mode``.
    """
    return OPIIFNode(v_threshold, v_init, T=T, **kw)


def neuron_from_module(old: Any, T: int = 4, v_init: float = 0.5, **kw: Any) -> OPIIFNode:
    """Replacement for a SpikingJelly soft-reset ``IFNode``: same threshold and surrogate,
    ``v(0) = v_init·θ`` (OPI, Bu et al., AAAI 2022). A hard-reset IFNode is refused, since the
    OPI analysis (and the charge bookkeeping ``θ·N = Σx + v(0) − v_T``) needs soft reset."""
    from snnplug.checks import as_steps
    from snnplug.errors import UnsupportedModuleError

    as_steps("T", T)
    if getattr(old, "v_reset", None) is not None:
        raise UnsupportedModuleError(
            f"{type(old).__name__} has a hard reset (v_reset={old.v_reset}); the OPI neuron uses a "
            f"soft reset (reset by subtraction). Build the layer as IFNode(v_reset=None), or use "
            f"snnplug.neuron('opi-if', v_threshold=...) explicitly"
        )
    theta = old.v_threshold
    if torch.is_tensor(theta):
        if theta.numel() != 1:
            raise UnsupportedModuleError("opi-if needs a scalar v_threshold on the IFNode it replaces")
        theta = float(theta.item())
    kw.setdefault("surrogate_function", getattr(old, "surrogate_function", None))
    kw.setdefault("step_mode", getattr(old, "step_mode", "m"))
    return OPIIFNode(float(theta), v_init, T=T, **kw)
