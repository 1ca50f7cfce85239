"""Spikes per layer and the 45 nm energy estimate used by BNTT (Kim & Panda 2021, Sec. 4.3).

Energy model (Horowitz 2014, 32-bit float, 45 nm): ``E_MAC = 4.6 pJ``, ``E_AC = 0.9 pJ``.

* ANN: every conv/linear layer costs ``MACs · E_MAC`` per sample.
* SNN (the paper's convention, ``FLOPs_l · R_l``): a layer fed spikes costs
  ``MACs · r · T · E_AC`` per sample, ``r`` = the firing rate of its input (spikes per input
  element and step, ``mean|x|`` for spikes of amplitude 1). Average pooling preserves the mean,
  so for a pooled input ``r`` is the rate of the spikes before pooling, as in the paper (an
  event-driven pool+conv would do ``k`` times more accumulates per spike for a ``k``-element
  window; this estimate follows the paper, not that). A layer fed real values costs
  ``MACs · T · E_MAC``. BNTT is an affine map per step in inference and
  folds into the preceding weights; neuron updates are not counted (as in the paper).

The functional core (``*_macs``, :func:`event_rate`, :func:`snn_energy_pj`,
:func:`ann_energy_pj`) is independent of BNTT; :func:`measure` runs a model once with hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

E_MAC_PJ = 4.6
E_AC_PJ = 0.9


def conv_macs(in_channels: int, out_channels: int, kernel_size: tuple[int, ...], out_spatial: tuple[int, ...],
              groups: int = 1) -> int:
    """MACs of one conv on one sample: ``C_out·∏out_spatial · (C_in/groups)·∏kernel``."""
    k = 1
    for v in kernel_size:
        k *= int(v)
    n = 1
    for v in out_spatial:
        n *= int(v)
    return out_channels * n * (in_channels // groups) * k


def linear_macs(in_features: int, out_features: int) -> int:
    """MACs of one linear layer on one sample."""
    return int(in_features) * int(out_features)


def module_macs(module: nn.Module, out_per_sample: tuple[int, ...]) -> int:
    """MACs per sample of a ``Linear``/``Conv{1,2,3}d`` whose per-sample output shape is given."""
    if isinstance(module, nn.Linear):
        return linear_macs(module.in_features, module.out_features)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return conv_macs(module.in_channels, module.out_channels, module.kernel_size, tuple(out_per_sample[1:]),
                         module.groups)
    raise TypeError(f"no MAC count for {type(module).__name__}")


def event_rate(x: torch.Tensor, amplitude: float = 1.0, grid: int = 64) -> float | None:
    """Spike events per element and step: ``mean(|x|)/amplitude``, if ``x`` is made of spikes
    of that amplitude, possibly average-pooled (every ``|x| <= amplitude`` and a multiple of
    ``amplitude/grid``; ``grid=64`` covers pooling windows up to 8x8). ``None`` for real-valued
    input (a dense layer)."""
    a = x.detach().abs().float()
    units = a * (grid / amplitude)
    if bool((a > amplitude * (1 + 1e-6)).any()) or not bool(((units - units.round()).abs() <= 1e-3).all()):
        return None
    return float(a.mean()) / amplitude


@dataclass
class LayerOps:
    """One synaptic layer: MACs per sample and step, input events per element and step."""

    name: str
    macs: int
    rate: float | None  # None: real-valued input (dense MACs)
    steps: int

    def snn_pj(self, e_ac: float = E_AC_PJ, e_mac: float = E_MAC_PJ) -> float:
        if self.rate is None:
            return self.macs * self.steps * e_mac
        return self.macs * self.rate * self.steps * e_ac

    def ann_pj(self, e_mac: float = E_MAC_PJ) -> float:
        return self.macs * e_mac


@dataclass
class EnergyReport:
    layers: list[LayerOps] = field(default_factory=list)
    spike_rates: dict[str, float] = field(default_factory=dict)  # spikes per neuron and step
    spikes_per_sample: dict[str, float] = field(default_factory=dict)

    @property
    def snn_pj(self) -> float:
        return snn_energy_pj(self.layers)

    @property
    def ann_pj(self) -> float:
        return ann_energy_pj(self.layers)

    @property
    def ann_over_snn(self) -> float:
        """``E_ANN / E_SNN`` (the paper's Table 3 column; > 1 means the SNN is cheaper)."""
        return self.ann_pj / self.snn_pj if self.snn_pj > 0 else float("inf")


def snn_energy_pj(layers: list[LayerOps], e_ac: float = E_AC_PJ, e_mac: float = E_MAC_PJ) -> float:
    """SNN energy per sample (pJ) over all steps."""
    return sum(l.snn_pj(e_ac, e_mac) for l in layers)


def ann_energy_pj(layers: list[LayerOps], e_mac: float = E_MAC_PJ) -> float:
    """Energy per sample (pJ) of the same layers as an ANN (one pass, all MACs)."""
    return sum(l.ann_pj(e_mac) for l in layers)


@torch.no_grad()
def measure(model: nn.Module, x_seq: torch.Tensor) -> EnergyReport:
    """Run the multi-step ``model`` once on ``x_seq [T, B, ...]`` (after a reset) and count
    MACs, input events of every Linear/Conv, and spikes of every spiking neuron."""
    from snnplug.backends.spikingjelly import is_spiking_neuron, reset

    T, B = x_seq.shape[:2]
    rep = EnergyReport()
    handles = []

    def syn_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            x = inp[0]
            lead = 2 if x.dim() == out.dim() and out.shape[:2] == (T, B) else 1
            per_sample = tuple(out.shape[lead:])
            rep.layers.append(LayerOps(name, module_macs(mod, per_sample), event_rate(x), int(T)))
        return hook

    def neuron_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            rep.spike_rates[name] = float((out != 0).float().mean())
            rep.spikes_per_sample[name] = float((out != 0).sum()) / B
        return hook

    for name, m in model.named_modules():
        if is_spiking_neuron(m):
            handles.append(m.register_forward_hook(neuron_hook(name)))
        elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            handles.append(m.register_forward_hook(syn_hook(name)))
    try:
        reset(model)
        model(x_seq)
    finally:
        for h in handles:
            h.remove()
        reset(model)
    return rep
