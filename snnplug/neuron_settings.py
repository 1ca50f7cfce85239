"""What a user's neuron was set to, in one framework-neutral record, for ``snnplug.apply``.

Every neuron :func:`snnplug.apply` replaces is read into a :class:`NeuronSettings`: the
membrane update written as ``H_t = leak * V_{t-1} + input_scale * X_t`` (with the potential
measured from the rest value 0), the threshold (a float or a per-channel tensor), the reset
style and the surrogate. The classes read (public attributes only):

* SpikingJelly ``IFNode``: ``leak = 1``, ``input_scale = 1``;
* ``LIFNode(tau, decay_input)``: ``H = V + (X - V)/tau`` (decay_input) or ``H = V - V/tau + X``,
  so ``leak = 1 - 1/tau`` and ``input_scale = 1/tau`` or ``1``;
* ``ParametricLIFNode``: the same with ``1/tau = sigmoid(w)`` (``tau_trainable=True``);
* snnTorch ``Leaky`` (through :mod:`snnplug.adapters`): ``leak = beta``, ``input_scale = 1``.

Reset: ``v_reset=None`` is reset by subtraction (soft), a float is reset to that value (hard).
Plugins build their replacement from this record (``from_module``) and report, with
:class:`~snnplug.errors.SettingChangedWarning`, every setting they cannot keep.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnplug.errors import SettingChangedWarning, UnsupportedModuleError


@dataclass(frozen=True)
class NeuronSettings:
    """A source neuron's settings (see the module docstring for the update they describe)."""

    source: str  # class name of the module read
    kind: str  # "if" | "lif"
    v_threshold: float | torch.Tensor  # a float, or a tensor of several values (per channel)
    v_reset: float | None  # None: soft reset (subtract the threshold)
    leak: float  # multiplier of V_{t-1}
    input_scale: float  # multiplier of X_t
    tau: float | None  # SpikingJelly's tau (None for IF and snnTorch Leaky)
    tau_trainable: bool = False
    decay_input: bool | None = None
    surrogate: Any = None
    step_mode: str = "m"

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    def scalar_threshold(self, plugin: str) -> float:
        """The threshold as one float; per-channel thresholds raise naming the fix."""
        th = self.v_threshold
        if isinstance(th, torch.Tensor):
            if th.numel() != 1:
                raise UnsupportedModuleError(
                    f"{self.source} has a per-channel v_threshold (shape {tuple(th.shape)}); {plugin} "
                    f"has one threshold per layer. Pass v_threshold=<float> in apply(..., "
                    f"neuron_kwargs={{'v_threshold': ...}}) to choose it explicitly")
            return float(th.detach().item())
        return float(th)

    def carry_leak(self, plugin: str, kw: dict[str, Any], key: str, unscaled: str) -> None:
        """Unless ``kw`` gives ``key``, set it to the leak (clamped to [0, 1]) for a neuron with a
        fixed leak ``V = key*V + X``, and report what that neuron cannot keep: an input scale
        (``unscaled`` says which equation adds the input unscaled) and a trained tau."""
        if key in kw:
            return
        kw[key] = min(max(self.leak, 0.0), 1.0)
        if self.input_scale != 1.0:
            changed(plugin, f"{self.source} scales its input by {self.input_scale:g} (decay_input=True); "
                            f"{unscaled}")
        if self.tau_trainable:
            changed(plugin, f"{self.source} trains tau; {plugin} keeps the {key} fixed at {self.leak:.4g}")

    def describe(self) -> str:
        """Short ``key=value`` text for summaries."""
        th = self.v_threshold
        th_s = f"{float(th):g}" if not isinstance(th, torch.Tensor) or th.numel() == 1 else f"tensor{tuple(th.shape)}"
        parts = [f"v_threshold={th_s}"]
        if self.kind == "lif":
            if self.tau is not None:
                parts.append(f"tau={self.tau:.4g}{' (trained)' if self.tau_trainable else ''}")
            else:
                parts.append(f"leak={self.leak:.4g}")
            if self.decay_input is not None:
                parts.append(f"decay_input={self.decay_input}")
        parts.append("soft reset" if self.soft_reset else f"v_reset={self.v_reset:g}")
        if self.surrogate is not None:
            parts.append(f"surrogate={type(self.surrogate).__name__}")
        return ", ".join(parts)


def _plain(value: Any) -> float | torch.Tensor:
    if isinstance(value, torch.Tensor):
        return float(value.detach().item()) if value.numel() == 1 else value.detach().clone()
    return float(value)


def read(module: nn.Module) -> NeuronSettings:
    """The settings of a SpikingJelly or adapted snnTorch neuron (see the module docstring).

    Raises :class:`~snnplug.errors.UnsupportedModuleError` for neurons whose update this record
    cannot describe (their class is named in the message).
    """
    name = getattr(module, "snnplug_replaces_as", type(module).__name__)
    cls = type(module).__name__
    step_mode = getattr(module, "step_mode", "m")
    if hasattr(module, "beta") and hasattr(module, "threshold") and name in ("LIFNode", "IFNode"):
        beta = module.beta  # snnTorch Leaky adapter: m = beta*m + x
        if isinstance(beta, torch.Tensor) and beta.numel() != 1:
            raise UnsupportedModuleError(f"{cls} has a per-neuron beta (shape {tuple(beta.shape)}); "
                                         f"snnplug plugins take one leak per layer")
        leak = float(torch.as_tensor(beta).detach().clamp(0, 1).item())
        return NeuronSettings(source=f"snnTorch Leaky ({cls})", kind="if" if leak == 1.0 else "lif",
                              v_threshold=_plain(module.threshold), v_reset=module.v_reset, leak=leak,
                              input_scale=1.0, tau=None, surrogate=getattr(module, "surrogate", None),
                              step_mode=step_mode)
    if not hasattr(module, "v_threshold"):
        raise UnsupportedModuleError(f"{cls} has no v_threshold; snnplug reads IFNode, LIFNode and "
                                     f"ParametricLIFNode (SpikingJelly) and snnTorch Leaky")
    common = dict(v_threshold=_plain(module.v_threshold), step_mode=step_mode,
                  v_reset=None if module.v_reset is None else float(module.v_reset),
                  surrogate=getattr(module, "surrogate_function", None))
    if name == "IFNode":
        return NeuronSettings(source=cls, kind="if", leak=1.0, input_scale=1.0, tau=None, **common)
    if name == "ParametricLIFNode":
        inv_tau = float(torch.sigmoid(module.w.detach()).item())
        decay_input = bool(module.decay_input)
        return NeuronSettings(source=cls, kind="lif", leak=1.0 - inv_tau,
                              input_scale=inv_tau if decay_input else 1.0, tau=1.0 / inv_tau,
                              tau_trainable=True, decay_input=decay_input, **common)
    if name == "LIFNode":
        tau = float(module.tau)
        decay_input = bool(module.decay_input)
        return NeuronSettings(source=cls, kind="lif", leak=1.0 - 1.0 / tau,
                              input_scale=1.0 / tau if decay_input else 1.0, tau=tau,
                              decay_input=decay_input, **common)
    raise UnsupportedModuleError(f"snnplug cannot read the settings of {cls}; it reads IFNode, LIFNode, "
                                 f"ParametricLIFNode (SpikingJelly) and snnTorch Leaky")


def changed(plugin: str, what: str) -> None:
    """Report a setting the replacement cannot keep (``apply`` collects these into its summary
    and repeats them in one warning)."""
    warnings.warn(f"{plugin}: {what}", SettingChangedWarning, stacklevel=3)
