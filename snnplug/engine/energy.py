"""The one energy model: synaptic operations per layer and the 45 nm energy estimate.

Energy per operation (Horowitz 2014, 45 nm CMOS, 32-bit float; the convention of BNTT, Kim &
Panda 2021, Sec. 4.3): a multiply-accumulate ``E_MAC = 4.6 pJ``, an accumulate ``E_AC = 0.9 pJ``.

Per synaptic layer (``Linear``/``Conv1d/2d/3d``) with ``MACs`` per sample and step:

* ANN: ``MACs · E_MAC`` per sample (one pass).
* SNN over ``T`` steps: a layer fed events costs ``MACs · r · T · E_AC``; a layer fed real
  values costs ``MACs · T · E_MAC``. Neuron updates and normalisers (which fold into the
  weights at inference) are not counted, as in the paper.

The **event rate** ``r`` (:func:`event_rate`) is the number of spike events per input element
and step: ``mean|x| / a`` with ``a`` the spike amplitude. :func:`record_energy` takes ``a`` from
the spiking neuron that ran last before the layer (its largest output), since the largest
``|x|`` of an average-pooled input is below the amplitude whenever no pooling window is all
spikes (then ``3/4`` with windows of 4 is no multiple of ``(3/4)/64``, and the layer was wrongly
counted as dense); a module that scales its neurons' spikes says so with a ``spike_amplitude``
attribute (the amplitude of its output), which then counts; without either, ``a`` is the
largest ``|x|``. It is
exact for spikes of one amplitude (0/1, ±1, 0/Vth) and for average-pooled spikes, whose mean is
the rate before pooling (the paper's ``FLOPs_l · R_l``; an event-driven pool+conv would do
``k`` accumulates per spike of a ``k``-element window, this estimate follows the paper). An
input counts as events when every ``|x|`` is a multiple of ``a/64`` (pooling windows up to 8x8);
the first synaptic layer counts as events only when its input is strictly binary (spike
encoding) or a spiking neuron ran before it, so quantised images (e.g. digits in sixteenths) are dense.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


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


def call_macs(module: nn.Module, out: torch.Tensor) -> int:
    """MACs of one call of a synaptic layer, all leading dims (time, batch) included."""
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        k = 1
        for v in module.kernel_size:
            k *= int(v)
        return out.numel() * k * module.in_channels // module.groups
    raise TypeError(f"no MAC count for {type(module).__name__}")


def is_binary(x: torch.Tensor) -> bool:
    """Spikes of one amplitude: every non-zero entry has the same absolute value."""
    nz = x.detach()[x != 0].abs()
    if nz.numel() == 0:
        return True
    hi, lo = nz.max(), nz.min()
    return bool(hi - lo <= 1e-6 * hi)


def event_rate(x: torch.Tensor, amplitude: float | None = None, grid: int = 64) -> float | None:
    """Spike events per element and step, ``mean|x| / amplitude`` (amplitude: the largest
    ``|x|`` unless given), when ``x`` is made of spikes, possibly average-pooled (every ``|x|``
    at most the amplitude and a multiple of ``amplitude/grid``); ``None`` for real values."""
    a = x.detach().abs().float()
    amp = float(a.max()) if amplitude is None and a.numel() else float(amplitude or 0.0)
    if amp <= 0:
        return 0.0
    units = a * (grid / amp)
    if bool((a > amp * (1 + 1e-6)).any()) or not bool(((units - units.round()).abs() <= 1e-3).all()):
        return None
    return float(a.mean()) / amp


@dataclass
class LayerOps:
    """One synaptic layer: MACs per sample and step, input events per element and step."""

    name: str
    macs: float
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
    """Per-sample operations and energy of one recorded simulation (see the module docstring)."""

    layers: list[LayerOps] = field(default_factory=list)
    spike_rates: dict[str, float] = field(default_factory=dict)  # spikes per neuron and step
    spikes_per_sample: dict[str, float] = field(default_factory=dict)

    @property
    def spikes(self) -> float:
        """Spikes per sample over the whole simulation, all layers."""
        return sum(self.spikes_per_sample.values())

    @property
    def snn_pj(self) -> float:
        """SNN energy per sample (pJ) over all steps."""
        return sum(l.snn_pj() for l in self.layers)

    @property
    def ann_pj(self) -> float:
        """Energy per sample (pJ) of the same layers as an ANN (one pass, all MACs)."""
        return sum(l.ann_pj() for l in self.layers)

    @property
    def synaptic_ops(self) -> float:
        """Synaptic operations per sample: accumulates of event-fed layers + MACs of dense ones."""
        return sum(l.macs * l.steps * (1.0 if l.rate is None else l.rate) for l in self.layers)

    @property
    def ann_over_snn(self) -> float:
        """``E_ANN / E_SNN`` (the paper's Table 3 column; > 1 means the SNN is cheaper)."""
        return self.ann_pj / self.snn_pj if self.snn_pj > 0 else float("inf")


@dataclass
class _Tally:
    macs: int = 0
    events: float = 0.0
    elements: int = 0
    dense: bool = False


@contextmanager
def record_energy(model: nn.Module, batch: int, steps: int) -> Iterator[EnergyReport]:
    """Count MACs and input events of every synaptic layer and the spikes of every spiking
    neuron of ``model`` while active, for ``batch`` samples simulated for ``steps`` steps in
    total (any layout: ``[T, B, ...]``, time folded into the batch, or one step per call). The
    report is filled in when the block ends::

        with torch.no_grad(), record_energy(snn, batch=len(x), steps=T) as rep:
            strategy.predict(model, x, T=T)
        rep.snn_pj, rep.ann_pj, rep.spike_rates
    """
    from snnplug.backends.spikingjelly import is_spiking_neuron

    rep = EnergyReport()
    tallies: dict[str, _Tally] = {}
    neurons: dict[str, list[int]] = {}  # name -> [spikes, elements]
    amplitude: list[float | None] = [None]  # the last spiking neuron's largest output
    fed = [False]  # a spiking neuron ran before the first synaptic layer

    def syn_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            x = inp[0]
            # the first synaptic layer, fed by the (encoded) input rather than by a neuron
            first = (not tallies or next(iter(tallies)) == name) and not fed[0]
            t = tallies.setdefault(name, _Tally())
            t.macs += call_macs(mod, out)
            amp = amplitude[0] if amplitude[0] and float(x.detach().abs().max()) <= amplitude[0] * (1 + 1e-6) else None
            r = event_rate(x, amp) if (not first or is_binary(x)) else None
            if r is None:
                t.dense = True
            else:
                t.events += r * x.numel()
                t.elements += x.numel()
        return hook

    def neuron_hook(name: str):
        def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            if isinstance(out, torch.Tensor):
                n = neurons.setdefault(name, [0, 0])
                n[0] += int((out != 0).sum())
                n[1] += out.numel()
                top = float(out.detach().abs().max()) if out.numel() else 0.0
                amplitude[0] = top if top > 0 else None
                fed[0] = fed[0] or not tallies
        return hook

    def scaled_hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        amplitude[0] = float(mod.spike_amplitude)

    handles = []
    for name, m in model.named_modules():
        label = name or type(m).__name__
        if is_spiking_neuron(m):
            handles.append(m.register_forward_hook(neuron_hook(label)))
        elif getattr(m, "spike_amplitude", None):
            handles.append(m.register_forward_hook(scaled_hook))
        elif isinstance(m, SYNAPSES):
            handles.append(m.register_forward_hook(syn_hook(label)))
    try:
        yield rep
    finally:
        for h in handles:
            h.remove()
    per = max(1, batch) * max(1, steps)
    for name, t in tallies.items():
        rate = None if t.dense else (t.events / t.elements if t.elements else 0.0)
        macs = t.macs // per if t.macs % per == 0 else t.macs / per  # exact for [T, B, ...] layouts
        rep.layers.append(LayerOps(name, macs, rate, int(steps)))
    for name, (spikes, elements) in neurons.items():
        rep.spike_rates[name] = spikes / elements if elements else 0.0
        rep.spikes_per_sample[name] = spikes / max(1, batch)


@torch.no_grad()
def measure(model: nn.Module, x_seq: torch.Tensor) -> EnergyReport:
    """Run the multi-step ``model`` once on ``x_seq [T, B, ...]`` (reset before and after) and
    return its :class:`EnergyReport`."""
    from snnplug.backends.spikingjelly import reset

    T, B = x_seq.shape[:2]
    try:
        with record_energy(model, batch=B, steps=T) as rep:
            reset(model)
            model(x_seq)
    finally:
        reset(model)
    return rep


def ann_energy_uj_per_sample(model: nn.Module, x: torch.Tensor) -> float:
    """Energy of one ANN forward per sample (all MACs at ``E_MAC``), in microjoules."""
    total = 0
    handles = []

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += call_macs(mod, out)

    for m in model.modules():
        if isinstance(m, SYNAPSES):
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total * E_MAC_PJ / x.shape[0] / 1e6
