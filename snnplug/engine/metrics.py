"""Spike counts per layer and the 45 nm energy estimate.

Energy model (Horowitz 2014, 45 nm CMOS, 32-bit float; used by BNTT, Kim & Panda 2021):
a multiply-accumulate costs ``E_MAC = 4.6 pJ``, an accumulate ``E_AC = 0.9 pJ``. An ANN layer
costs ``MACs * E_MAC``. In an SNN a layer whose input is spikes (binary up to a constant
amplitude) performs one accumulate per input spike and fan-out connection:
``ACs = MACs * r_in * T`` with ``r_in`` the input spike rate (:func:`event_rate`). Every synaptic layer
after the first is fed by spiking neurons (possibly through average pooling, which folds into
the weights), so it is counted as event-driven; the first one is counted as dense
(``MACs * T * E_MAC``) unless its input is itself spikes (Poisson encoding).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

E_MAC_PJ = 4.6
E_AC_PJ = 0.9


@dataclass
class LayerStats:
    name: str
    kind: str  # "neuron" or "synapse"
    elements: int = 0  # neuron outputs (T*B*features) or synaptic input elements seen
    nonzero: int = 0
    macs: int = 0  # dense multiply-accumulates over all calls (T*B samples)
    acs: float = 0.0  # accumulates triggered by spikes
    dense_macs: int = 0  # MACs of layers fed real values
    samples: int = 0


@dataclass
class SpikeReport:
    layers: dict[str, LayerStats] = field(default_factory=dict)
    batch: int = 0

    def spike_rates(self) -> dict[str, float]:
        """Fraction of neuron outputs that are spikes, per spiking layer (per neuron and step)."""
        return {n: (s.nonzero / s.elements if s.elements else 0.0)
                for n, s in self.layers.items() if s.kind == "neuron"}

    def spikes_per_sample(self) -> float:
        return sum(s.nonzero for s in self.layers.values() if s.kind == "neuron") / max(1, self.batch)

    def energy_uj_per_sample(self) -> float:
        """SNN energy per sample in microjoules."""
        pj = sum(s.acs * E_AC_PJ + s.dense_macs * E_MAC_PJ for s in self.layers.values())
        return pj / max(1, self.batch) / 1e6


def _is_spike_tensor(x: torch.Tensor) -> bool:
    """Binary up to one amplitude: every non-zero entry has the same absolute value."""
    nz = x[x != 0].abs()
    if nz.numel() == 0:
        return True
    hi, lo = nz.max(), nz.min()
    return bool(hi - lo <= 1e-6 * hi)


def event_rate(x: torch.Tensor) -> float:
    """Spikes per input element and step: ``mean|x| / amplitude`` (the paper's ``R_l``).

    The amplitude is the largest ``|x|``: exact for spikes of one amplitude (0/1, ±1, 0/Vth) and
    for average-pooled spikes, whose mean equals the spike rate before pooling, whenever one
    window is fully active (otherwise the rate is over-, never under-estimated).
    """
    peak = x.abs().max() if x.numel() else x.new_zeros(())
    return float(x.abs().mean() / peak) if float(peak) > 0 else 0.0


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call (all leading dims included)."""
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return out.numel() * k
    if isinstance(module, nn.Conv1d):
        return out.numel() * module.kernel_size[0] * module.in_channels // module.groups
    return 0


@contextmanager
def record_spikes(model: nn.Module, batch: int) -> Iterator[SpikeReport]:
    """Record spikes of every spiking neuron and synaptic ops of every Linear/Conv while active.

    ``with record_spikes(model) as rep: model(x_seq)`` then ``rep.spike_rates()``,
    ``rep.spikes_per_sample()``, ``rep.energy_uj_per_sample()``; ``batch`` is the number of
    samples the recorded forwards process in total (per-sample figures divide by it).
    """
    from snnplug.backends.spikingjelly import is_spiking_neuron

    rep = SpikeReport(batch=batch)
    handles = []
    seen_synapse: list[str] = []  # the first synaptic layer called (it receives the encoded input)

    def neuron_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            if not isinstance(out, torch.Tensor):
                return
            st = rep.layers.setdefault(name, LayerStats(name, "neuron"))
            st.elements += out.numel()
            st.nonzero += int((out != 0).sum())
        return hook

    def synapse_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            x = inp[0]
            st = rep.layers.setdefault(name, LayerStats(name, "synapse"))
            macs = _macs(mod, out)
            st.macs += macs
            first = not seen_synapse or seen_synapse[0] == name
            if not seen_synapse:
                seen_synapse.append(name)
            if not first or _is_spike_tensor(x):
                st.acs += macs * event_rate(x)
            else:
                st.dense_macs += macs
        return hook

    for name, m in model.named_modules():
        if is_spiking_neuron(m):
            handles.append(m.register_forward_hook(neuron_hook(name or type(m).__name__)))
        elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(synapse_hook(name or type(m).__name__)))
    try:
        yield rep
    finally:
        for h in handles:
            h.remove()


def ann_energy_uj_per_sample(model: nn.Module, x: torch.Tensor) -> float:
    """Energy of one ANN forward per sample (all MACs at ``E_MAC``), in microjoules."""
    total = 0
    handles = []

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += _macs(mod, out)

    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total * E_MAC_PJ / x.shape[0] / 1e6


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())
