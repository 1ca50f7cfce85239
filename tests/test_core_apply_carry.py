"""``snnplug.apply`` keeps what the user wrote (issue 15): settings carried per rule, families
mapped, what cannot carry reported or refused, shared modules, hooks, summary, presets.
Expectations are hand-computed from SpikingJelly's documented updates."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import snnplug
from snnplug.errors import SettingChangedWarning, SnnplugError, UnsupportedModuleError

pytest.importorskip("spikingjelly")
from spikingjelly.activation_based import layer, neuron, surrogate  # noqa: E402


def _net(*neurons: nn.Module, features: int = 4) -> nn.Sequential:
    mods: list[nn.Module] = []
    for n in neurons:
        mods += [layer.Linear(features, features, step_mode="m"), n]
    return nn.Sequential(*mods)


def _apply(net: nn.Module, **kw):
    """apply, returning (model, summary, SettingChangedWarning messages)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        new, summary = snnplug.apply(net, return_summary=True, **kw)
    msgs = [str(w.message) for w in rec if issubclass(w.category, SettingChangedWarning)]
    return new, summary, msgs


def test_if_threshold_carries_to_dsr_if_and_soft_reset_is_not_reported():
    net = _net(neuron.IFNode(v_threshold=0.7, v_reset=None, step_mode="m"))
    new, summary, msgs = _apply(net, neuron="dsr", T=4)
    n = new[1]
    assert type(n).__name__ == "DSRIFNode"
    assert float(n.v_threshold.detach()) == pytest.approx(0.7)
    assert n.T == 4
    assert not any("hard reset" in m for m in msgs)
    # the surrogate cannot carry (DSR's gradient is the representation's) and is reported
    assert any("surrogate_function Sigmoid is not used" in m for m in msgs)
    assert net[1].v_threshold == 0.7 and type(net[1]).__name__ == "IFNode"  # user's model untouched


def test_lif_maps_to_dsr_lif_with_the_same_decay_per_step():
    # SpikingJelly LIF, decay_input=True: H = V + (X - V)/tau = (1 - 1/tau) V + X/tau.
    # DSR-LIF: v = beta v + (1 - beta) x with beta = exp(-dt/tau'). tau=2 -> beta must be 0.5.
    net = _net(neuron.LIFNode(tau=2.0, v_threshold=0.5, v_reset=None, step_mode="m"))
    new, summary, msgs = _apply(net, neuron="dsr", T=3)
    n = new[1]
    assert type(n).__name__ == "DSRLIFNode"
    assert math.exp(-n.dt / n.tau) == pytest.approx(0.5)
    assert n.dt == 1.0 and n.tau == pytest.approx(1.0 / math.log(2.0))
    assert float(n.v_threshold.detach()) == pytest.approx(0.5)
    assert not any("scales its input" in m for m in msgs)  # (1 - beta) = 1/tau: same input scale


def test_plif_maps_to_dsr_lif_with_its_present_tau_and_says_tau_is_frozen():
    net = _net(neuron.ParametricLIFNode(init_tau=3.0, step_mode="m"))
    new, summary, msgs = _apply(net, neuron="dsr", T=2)
    n = new[1]
    assert math.exp(-n.dt / n.tau) == pytest.approx(1.0 - 1.0 / 3.0)
    assert any("ParametricLIFNode trains tau" in m and "fixed" in m for m in msgs)
    assert any("v_reset=0 (hard reset) -> reset by subtraction" in m for m in msgs)


def test_lif_into_dsr_if_is_reported_and_if_into_dsr_lif_is_refused():
    _, _, msgs = _apply(_net(neuron.LIFNode(tau=2.0, step_mode="m")), neuron="dsr-if", T=2)
    assert any("leak" in m and "dropped" in m and "neuron='dsr'" in m for m in msgs)
    with pytest.raises(UnsupportedModuleError, match=r"IFNode has no leak.*neuron='dsr-if'"):
        snnplug.apply(_net(neuron.IFNode(step_mode="m")), neuron="dsr-lif", T=2)


def test_per_channel_threshold_is_refused_unless_given_explicitly():
    n = neuron.IFNode(step_mode="m")
    n.v_threshold = torch.tensor([0.5, 1.0, 1.5, 2.0])
    with pytest.raises(UnsupportedModuleError, match=r"per-channel v_threshold \(shape \(4,\)\).*neuron_kwargs"):
        snnplug.apply(_net(n), neuron="dsr", T=2)
    new, _, _ = _apply(_net(n), neuron="dsr", T=2, neuron_kwargs={"v_threshold": 1.25})
    assert float(new[1].v_threshold.detach()) == pytest.approx(1.25)


def test_strict_raises_on_what_cannot_carry_and_names_it():
    net = _net(neuron.IFNode(v_reset=0.0, step_mode="m"))
    with pytest.raises(UnsupportedModuleError, match=r"strict=True.*v_reset=0 \(hard reset\)"):
        snnplug.apply(net, neuron="dsr", T=2, strict=True)


def test_one_grouped_warning_names_the_paths():
    net = _net(neuron.IFNode(step_mode="m"), neuron.IFNode(step_mode="m"))
    with pytest.warns(SettingChangedWarning, match=r"hard reset.*\[1, 3\]"):
        snnplug.apply(net, neuron="dsr", T=2, readout="replace")  # 3 is the readout (kept by default)


def test_bntt_lif_carries_leak_threshold_and_reports_input_scale():
    # LIF decay_input=False: H = (1 - 1/tau) V + X -> BNTT's u = leak*v + x with leak = 1 - 1/tau.
    new, _, msgs = _apply(_net(neuron.LIFNode(tau=4.0, decay_input=False, v_reset=None, v_threshold=0.8,
                                              step_mode="m")), neuron="bntt-lif")
    n = new[1]
    assert n.leak == pytest.approx(0.75) and n.v_threshold == pytest.approx(0.8)
    assert not any("scales its input" in m for m in msgs)
    _, _, msgs = _apply(_net(neuron.LIFNode(tau=4.0, decay_input=True, step_mode="m")), neuron="bntt-lif")
    assert any("scales its input by 0.25" in m for m in msgs)
    new, _, _ = _apply(_net(neuron.IFNode(step_mode="m")), neuron="bntt-lif")
    assert new[1].leak == 1.0  # IF: no leak


def test_noise_lif_carries_decay_threshold_and_reset_value():
    new, _, msgs = _apply(_net(neuron.LIFNode(tau=2.0, decay_input=False, v_reset=-0.2, v_threshold=0.9,
                                              step_mode="m")), neuron="noise-lif")
    n = new[1]
    assert n.decay == pytest.approx(0.5) and n.v_threshold == pytest.approx(0.9)
    assert n.v_reset == pytest.approx(-0.2)
    _, _, msgs = _apply(_net(neuron.IFNode(v_reset=None, step_mode="m")), neuron="noise-lif")
    assert any("resets by subtraction -> hard reset to v_reset=0" in m for m in msgs)


def test_snntorch_leaky_beta_maps_to_dsr_lif_decay():
    snn = pytest.importorskip("snntorch")
    net = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True))
    new, _, msgs = _apply(net, neuron="dsr", T=2)
    ns = [m for m in new.modules() if type(m).__name__ == "DSRLIFNode"]
    assert len(ns) == 1 and math.exp(-ns[0].dt / ns[0].tau) == pytest.approx(0.9)
    # snnTorch adds x unscaled; DSR-LIF scales it by 1 - beta: reported
    assert any("scales its input by 1" in m and "1-beta=0.1" in m for m in msgs)


def test_preset_paper_uses_the_papers_values_and_explicit_keywords_win():
    net = _net(neuron.IFNode(v_threshold=1.0, step_mode="m"))
    new, summary, msgs = _apply(net, neuron="dsr-if", T=2, preset="paper")
    assert float(new[1].v_threshold.detach()) == pytest.approx(6.0)  # Meng et al.: initial Vth 6
    assert any("preset='paper'" in c for r in summary for c in r.changes)
    new, _, _ = _apply(net, neuron="dsr", T=2, neuron_kwargs={"v_threshold": 2.0})
    assert float(new[1].v_threshold.detach()) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="preset must be None"):
        snnplug.apply(net, neuron="dsr", T=2, preset="authors")


def test_shared_module_is_replaced_by_one_module_at_every_use():
    shared = neuron.IFNode(step_mode="m")
    net = nn.Sequential(layer.Linear(4, 4, step_mode="m"), shared, layer.Linear(4, 4, step_mode="m"), shared)
    new, summary, _ = _apply(net, neuron="dsr", T=2)
    assert new[1] is new[3] and type(new[1]).__name__ == "DSRIFNode"
    assert len(summary) == 1 and summary.rows[0].paths == ("1", "3")


def test_hooks_survive_on_the_replacement():
    n = neuron.IFNode(step_mode="m")
    calls = []
    n.register_forward_pre_hook(lambda m, args: calls.append(("pre", type(m).__name__)))
    n.register_forward_hook(lambda m, args, kwargs, out: calls.append(("post", type(m).__name__)),
                            with_kwargs=True)
    new, summary, _ = _apply(_net(n), neuron="dsr", T=2)
    with torch.no_grad():
        new(torch.rand(2, 3, 4))
    assert calls == [("pre", "DSRIFNode"), ("post", "DSRIFNode")]
    assert "+2 hook(s)" in summary.rows[0].new


def test_summary_table_lists_path_old_and_new():
    net = _net(neuron.IFNode(surrogate_function=surrogate.ATan(), step_mode="m"))
    _, summary, _ = _apply(net, neuron="dsr", T=2)
    text = str(summary)
    assert text.splitlines()[0] == "| path | old | new | not carried over |"
    row = summary.rows[0]
    assert row.paths == ("1",) and row.family == "neuron"
    assert row.old.startswith("IFNode(") and row.new.startswith("DSRIFNode(T=2, v_threshold=1")
    assert any("ATan is not used" in c for c in row.changes)


def test_unknown_family_member_and_no_match_still_raise():
    with pytest.raises(SnnplugError, match="found no neuron to replace"):
        snnplug.apply(nn.Sequential(nn.Linear(2, 2)), neuron="dsr", T=2)


def test_preset_paper_with_a_normalizer_builds_bntt_from_the_batch_norm():
    net = nn.Sequential(layer.Conv2d(1, 3, 3, step_mode="m"), layer.BatchNorm2d(3, step_mode="m"),
                        neuron.IFNode(step_mode="m"))
    new, summary, _ = _apply(net, normalizer="bntt", neuron="dsr", T=2, preset="paper")
    assert type(new[1]).__name__ == "BNTT" and new[1].num_features == 3 and new[1].eps == 1e-4
    assert float(new[2].v_threshold.detach()) == pytest.approx(6.0)
