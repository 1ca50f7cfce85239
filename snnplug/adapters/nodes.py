"""SpikingJelly nodes that reproduce snnTorch's ``Leaky`` and ``Synaptic`` exactly.

SpikingJelly has no neuron with snnTorch's update order (reset flag from the previous membrane,
``reset_delay``, firing strictly above threshold), so the adapter brings its own. They are
``base.MemoryModule`` s (``functional.reset_net`` resets them; single- and multi-step modes) and
keep snnTorch's parameter names (``threshold``, ``graded_spikes_factor``, ``beta``, ``alpha``) so a
state dict moves between the two frameworks unchanged. Update equations: see
:mod:`snnplug.adapters.lif_functional`.

:class:`LIFNode` / :class:`IFNode` are the ``Leaky`` node under the class names SpikingJelly uses
for LIF and IF neurons (``IFNode`` when ``beta`` is fixed at exactly 1), so ``snnplug.apply``'s
neuron plugins, which replace modules by class name, also replace converted snnTorch neurons.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnplug.adapters.lif_functional import Dynamics, LeakySeq, SynapticSeq, leaky_step, synaptic_step
from snnplug.adapters.surrogates import AnySurrogate, Surrogate
from snnplug.backends.spikingjelly import sj
from snnplug.checks import check_sequence
from snnplug.errors import UnsupportedModuleError

_RESET_VAL = {"subtract": 0, "zero": 1, "none": 2}
IMPLS = ("auto", "fused", "autograd")


def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a float or a tensor, got {type(value).__name__}")
    return torch.as_tensor(float(value))


class _SnnTorchNode(sj().base.MemoryModule):
    """Shared parts: parameters as in snnTorch, state handling, implementation choice."""

    snnplug_spiking = True

    def __init__(self, *, threshold: float | torch.Tensor, reset_mechanism: str, reset_delay: bool,
                 surrogate: AnySurrogate | None, learn_threshold: bool, graded_spikes_factor: float | torch.Tensor,
                 learn_graded_spikes_factor: bool, output: bool, store_v_seq: bool, step_mode: str,
                 impl: str) -> None:
        super().__init__()
        self.dynamics = Dynamics(reset_mechanism, bool(reset_delay))
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.surrogate: AnySurrogate = surrogate if surrogate is not None else Surrogate.make("atan")
        if impl == "fused" and not isinstance(self.surrogate, Surrogate):
            raise ValueError(f"impl='fused' needs a known surrogate; {self.surrogate!r} only runs with "
                             f"impl='autograd' (or 'auto')")
        self.impl = impl
        self._param("threshold", threshold, learn_threshold)
        self._param("graded_spikes_factor", graded_spikes_factor, learn_graded_spikes_factor)
        self.register_buffer("reset_mechanism_val", torch.as_tensor(_RESET_VAL[reset_mechanism]))
        self.output = bool(output)
        self.store_v_seq = bool(store_v_seq)
        self.step_mode = step_mode

    def _param(self, name: str, value: Any, learn: bool) -> None:
        t = _tensor(value)
        if learn:
            setattr(self, name, nn.Parameter(t))
        else:
            self.register_buffer(name, t)

    # -- SpikingJelly-style views ------------------------------------------------------------
    @property
    def reset_mechanism(self) -> str:
        return self.dynamics.reset

    @property
    def reset_delay(self) -> bool:
        return self.dynamics.reset_delay

    @property
    def v_threshold(self) -> float | torch.Tensor:
        """The threshold as SpikingJelly names it (a float when it is one value)."""
        th = self.threshold
        return float(th) if th.numel() == 1 else th

    @property
    def v_reset(self) -> float | None:
        """SpikingJelly's convention: None for soft (subtract) reset, 0.0 for reset to zero."""
        return 0.0 if self.dynamics.reset == "zero" else None

    def _use_fused(self) -> bool:
        return self.impl != "autograd" and isinstance(self.surrogate, Surrogate)

    def _g_is_one(self) -> bool:
        g = self.graded_spikes_factor
        return not g.requires_grad and bool((g == 1).all())

    @staticmethod
    def _state(value: Any, like: torch.Tensor) -> torch.Tensor:
        """snnTorch's rule: a stored state of another shape starts again from zeros."""
        if isinstance(value, torch.Tensor) and value.shape == like.shape:
            return value
        return torch.zeros_like(like)

    def _check(self, x_seq: torch.Tensor) -> None:
        check_sequence(x_seq, who=f"{type(self).__name__} (multi-step)", min_rank=2)

    def extra_repr(self) -> str:
        th = self.v_threshold
        return (f"threshold={th if isinstance(th, float) else tuple(th.shape)}, "
                f"reset={self.dynamics.reset!r}, reset_delay={self.dynamics.reset_delay}, "
                f"surrogate={self.surrogate!r}, output={self.output}, step_mode={self.step_mode}")


class SnnTorchLeakyNode(_SnnTorchNode):
    """snnTorch ``Leaky`` as a SpikingJelly node (see :mod:`snnplug.adapters.lif_functional`).

    ``m[t] = clamp(beta,0,1)*m[t-1] + x[t] - r[t]*thr``, ``s[t] = 1[m[t] > thr]*g`` with
    ``r[t] = 1[m[t-1] > thr]`` (subtract reset, ``reset_delay=True``; the other resets likewise).
    Defaults are snnTorch's: ``threshold=1``, subtract reset, ``reset_delay=True``, ATan surrogate
    with ``alpha=2``. Citation: Eshraghian et al., Proc. IEEE 111(9), 2023 (snnTorch).
    """

    def __init__(self, beta: float | torch.Tensor = 1.0, threshold: float | torch.Tensor = 1.0, *,
                 reset_mechanism: str = "subtract", reset_delay: bool = True,
                 surrogate: AnySurrogate | None = None, learn_beta: bool = False, learn_threshold: bool = False,
                 graded_spikes_factor: float | torch.Tensor = 1.0, learn_graded_spikes_factor: bool = False,
                 output: bool = False, store_v_seq: bool = False, step_mode: str = "m", impl: str = "auto") -> None:
        super().__init__(threshold=threshold, reset_mechanism=reset_mechanism, reset_delay=reset_delay,
                         surrogate=surrogate, learn_threshold=learn_threshold,
                         graded_spikes_factor=graded_spikes_factor,
                         learn_graded_spikes_factor=learn_graded_spikes_factor, output=output,
                         store_v_seq=store_v_seq, step_mode=step_mode, impl=impl)
        self._param("beta", beta, learn_beta)
        self.register_memory("v", 0.0)
        self.register_memory("v_seq", None)

    def single_step_forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        m = self._state(self.v, x)
        s, m = leaky_step(x, m, self.beta.clamp(0, 1), self.threshold, self.graded_spikes_factor,
                          self.dynamics, self.surrogate)
        self.v = m
        return (s, m) if self.output else s

    def multi_step_forward(self, x_seq: torch.Tensor) -> Any:  # type: ignore[override]
        self._check(x_seq)
        m0 = self._state(self.v, x_seq[0])
        b = self.beta.clamp(0, 1)
        if self._use_fused():
            s_seq, m_seq = LeakySeq.apply(x_seq, m0, b, self.threshold, self.graded_spikes_factor,
                                          self.dynamics, self.surrogate, self._g_is_one())
        else:
            s_l, m_l, m = [], [], m0
            for t in range(x_seq.shape[0]):
                s, m = leaky_step(x_seq[t], m, b, self.threshold, self.graded_spikes_factor,
                                  self.dynamics, self.surrogate)
                s_l.append(s)
                m_l.append(m)
            s_seq, m_seq = torch.stack(s_l), torch.stack(m_l)
        self.v = m_seq[-1]
        if self.store_v_seq:
            self.v_seq = m_seq
        return (s_seq, m_seq) if self.output else s_seq


class LIFNode(SnnTorchLeakyNode):
    """snnTorch ``Leaky`` (a leaky integrate-and-fire neuron) as a SpikingJelly node.

    Same as :class:`SnnTorchLeakyNode`; the class name lets ``snnplug.apply`` neuron plugins
    that replace ``LIFNode`` replace it. Citation: Eshraghian et al., Proc. IEEE 2023.
    """


class IFNode(SnnTorchLeakyNode):
    """snnTorch ``Leaky`` with ``beta`` fixed at 1 (integrate-and-fire) as a SpikingJelly node.

    ``m[t] = m[t-1] + x[t] - r[t]*thr``; otherwise as :class:`SnnTorchLeakyNode`.
    """


class SynapticNode(_SnnTorchNode):
    """snnTorch ``Synaptic`` (2nd-order LIF) as a SpikingJelly node.

    ``syn[t] = clamp(alpha,0,1)*syn[t-1] + x[t]``, ``m[t] = clamp(beta,0,1)*m[t-1] + syn[t] - r[t]*thr``,
    ``s[t] = 1[m[t] > thr]*g``, ``r[t] = 1[m[t-1] > thr]`` (subtract reset; ``zero`` zeroes the
    integrated membrane). Returns spikes, or ``(spk, syn, mem)`` sequences with ``output=True``.
    Citation: Eshraghian et al., Proc. IEEE 2023 (snnTorch).
    """

    def __init__(self, alpha: float | torch.Tensor, beta: float | torch.Tensor, threshold: float | torch.Tensor = 1.0,
                 *, reset_mechanism: str = "subtract", reset_delay: bool = True,
                 surrogate: AnySurrogate | None = None, learn_alpha: bool = False, learn_beta: bool = False,
                 learn_threshold: bool = False, graded_spikes_factor: float | torch.Tensor = 1.0,
                 learn_graded_spikes_factor: bool = False, output: bool = False, store_v_seq: bool = False,
                 step_mode: str = "m", impl: str = "auto") -> None:
        super().__init__(threshold=threshold, reset_mechanism=reset_mechanism, reset_delay=reset_delay,
                         surrogate=surrogate, learn_threshold=learn_threshold,
                         graded_spikes_factor=graded_spikes_factor,
                         learn_graded_spikes_factor=learn_graded_spikes_factor, output=output,
                         store_v_seq=store_v_seq, step_mode=step_mode, impl=impl)
        self._param("beta", beta, learn_beta)
        self._param("alpha", alpha, learn_alpha)
        self.register_memory("syn", 0.0)
        self.register_memory("v", 0.0)
        self.register_memory("v_seq", None)

    def single_step_forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        syn, m = self._state(self.syn, x), self._state(self.v, x)
        s, syn, m = synaptic_step(x, syn, m, self.alpha.clamp(0, 1), self.beta.clamp(0, 1), self.threshold,
                                  self.graded_spikes_factor, self.dynamics, self.surrogate)
        self.syn, self.v = syn, m
        return (s, syn, m) if self.output else s

    def multi_step_forward(self, x_seq: torch.Tensor) -> Any:  # type: ignore[override]
        self._check(x_seq)
        syn0, m0 = self._state(self.syn, x_seq[0]), self._state(self.v, x_seq[0])
        a, b = self.alpha.clamp(0, 1), self.beta.clamp(0, 1)
        if self._use_fused():
            s_seq, syn_seq, m_seq = SynapticSeq.apply(x_seq, syn0, m0, a, b, self.threshold,
                                                      self.graded_spikes_factor, self.dynamics,
                                                      self.surrogate, self._g_is_one())
        else:
            out: list[list[torch.Tensor]] = [[], [], []]
            syn, m = syn0, m0
            for t in range(x_seq.shape[0]):
                s, syn, m = synaptic_step(x_seq[t], syn, m, a, b, self.threshold, self.graded_spikes_factor,
                                          self.dynamics, self.surrogate)
                for lst, v in zip(out, (s, syn, m), strict=True):
                    lst.append(v)
            s_seq, syn_seq, m_seq = (torch.stack(v) for v in out)
        self.syn, self.v = syn_seq[-1], m_seq[-1]
        if self.store_v_seq:
            self.v_seq = m_seq
        return (s_seq, syn_seq, m_seq) if self.output else s_seq


def _common_kwargs(neuron: Any) -> dict[str, Any]:
    from snnplug.adapters.surrogates import from_snntorch

    name = type(neuron).__name__
    if getattr(neuron, "inhibition", False):
        raise UnsupportedModuleError(f"snnTorch {name} with inhibition=True has no SpikingJelly equivalent "
                                     f"in snnplug; build it with inhibition=False")
    if getattr(neuron, "state_quant", False):
        raise UnsupportedModuleError(f"snnTorch {name} with state_quant is not supported by the adapter; "
                                     f"remove state_quant or quantize after conversion")
    if not getattr(neuron, "init_hidden", False):
        raise UnsupportedModuleError(
            f"snnTorch {name} has init_hidden=False: its state is passed through your forward() "
            f"(usually a time loop written in forward), which cannot be converted automatically. Build the "
            f"neurons with init_hidden=True (states kept inside the module), one call per time step, e.g. "
            f"nn.Sequential(nn.Linear(...), snn.Leaky(beta=0.9, init_hidden=True), ...)")
    th = neuron.threshold
    g = neuron.graded_spikes_factor
    return dict(threshold=th, learn_threshold=isinstance(th, nn.Parameter), graded_spikes_factor=g,
                learn_graded_spikes_factor=isinstance(g, nn.Parameter),
                reset_mechanism=neuron.reset_mechanism, reset_delay=bool(getattr(neuron, "reset_delay", True)),
                surrogate=from_snntorch(neuron), output=bool(neuron.output))


def leaky_from_snntorch(neuron: Any, **kw: Any) -> SnnTorchLeakyNode:
    """The node equivalent to an ``snntorch.Leaky`` (parameters copied; learnable stays learnable)."""
    beta = neuron.beta
    learn_beta = isinstance(beta, nn.Parameter)
    is_if = not learn_beta and bool((beta == 1).all())
    cls = IFNode if is_if else LIFNode
    return cls(beta=beta, learn_beta=learn_beta, **_common_kwargs(neuron), **kw)


def synaptic_from_snntorch(neuron: Any, **kw: Any) -> SynapticNode:
    """The node equivalent to an ``snntorch.Synaptic``."""
    return SynapticNode(alpha=neuron.alpha, beta=neuron.beta, learn_alpha=isinstance(neuron.alpha, nn.Parameter),
                        learn_beta=isinstance(neuron.beta, nn.Parameter), **_common_kwargs(neuron), **kw)


def _snn_kwargs(node: _SnnTorchNode) -> dict[str, Any]:
    sur = node.surrogate
    kw: dict[str, Any] = dict(threshold=node.threshold.detach().clone(),
                              learn_threshold=isinstance(node.threshold, nn.Parameter),
                              reset_mechanism=node.dynamics.reset, reset_delay=node.dynamics.reset_delay,
                              init_hidden=True, output=node.output)
    if isinstance(sur, Surrogate) and sur.name == "none":
        kw["surrogate_disable"] = True
    else:
        kw["spike_grad"] = sur.to_snntorch()
    return kw


def leaky_to_snntorch(node: SnnTorchLeakyNode) -> nn.Module:
    """The ``snntorch.Leaky`` equivalent to a node (imports snnTorch)."""
    import snntorch as snn

    g = node.graded_spikes_factor
    return snn.Leaky(beta=node.beta.detach().clone(), learn_beta=isinstance(node.beta, nn.Parameter),
                     graded_spikes_factor=g.detach().clone(),
                     learn_graded_spikes_factor=isinstance(g, nn.Parameter), **_snn_kwargs(node))


def synaptic_to_snntorch(node: SynapticNode) -> nn.Module:
    """The ``snntorch.Synaptic`` equivalent to a node (imports snnTorch)."""
    import snntorch as snn

    g = node.graded_spikes_factor
    if isinstance(g, nn.Parameter) or not bool((g == 1).all()):
        raise UnsupportedModuleError("snnTorch Synaptic has no graded_spikes_factor argument; this "
                                     "SynapticNode has a graded spike factor other than a fixed 1")
    return snn.Synaptic(alpha=node.alpha.detach().clone(), beta=node.beta.detach().clone(),
                        learn_alpha=isinstance(node.alpha, nn.Parameter),
                        learn_beta=isinstance(node.beta, nn.Parameter), **_snn_kwargs(node))
