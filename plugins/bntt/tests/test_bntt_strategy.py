"""Strategy ``bntt``, early exit, energy counting, registration and ``snnplug.apply``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snnplug
from snnplug.errors import SnnplugError
from snnplug_bntt.early_exit import early_exit_sweep, exit_step, exit_step_from_profile, gamma_profile
from snnplug.engine.energy import E_AC_PJ, E_MAC_PJ, conv_macs, event_rate, linear_macs, measure
from snnplug_bntt.neuron import Accumulator, BNTTLIFNode
from snnplug_bntt.norm import BNTT

torch.set_num_threads(1)


def _small_strategy(T=4):
    return snnplug.strategy("bntt", T=T, channels=(4, 8), hidden=16)


def test_registration_and_docstrings():
    reg = snnplug.get_registry()
    for family, name in (("normalizer", "bntt"), ("neuron", "bntt-lif"), ("strategy", "bntt")):
        rec = reg.get(family, name)
        assert "Kim" in rec.paper and rec.doc
    n = snnplug.normalizer("bntt", 8, T=4)
    assert isinstance(n, BNTT) and (n.T, n.eps, n.momentum) == (4, 1e-4, 0.1)
    lif = snnplug.neuron("bntt-lif", T=4)
    assert isinstance(lif, BNTTLIFNode) and lif.leak == 0.99 and lif.snnplug_spiking


def test_apply_replaces_batchnorm_in_spikingjelly_model_and_reset_net_resets():
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.LIFNode(step_mode="m"), layer.Flatten(step_mode="m"), layer.Linear(4 * 16, 8, step_mode="m"),
        layer.BatchNorm1d(8, step_mode="m"), neuron.IFNode(step_mode="m"), layer.Linear(8, 3, step_mode="m"))
    new = snnplug.apply(net, normalizer="bntt", T=5)
    bnts = [m for m in new.modules() if isinstance(m, BNTT)]
    assert [(m.dim, m.T) for m in bnts] == [(2, 5), (1, 5)]
    assert isinstance(net[1], layer.BatchNorm2d)  # the original is untouched (deep copy)
    x = torch.rand(5, 2, 1, 4, 4)
    y1 = new(x)
    functional.reset_net(new)
    assert all(m.t == 0 for m in bnts)
    new.eval()
    assert new(x[:3]).shape == (3, 2, 3)  # shorter run allowed
    functional.reset_net(new)
    with pytest.raises(snnplug.TimeStepError):
        new(torch.rand(6, 2, 1, 4, 4))
    assert y1.shape == (5, 2, 3)


def test_strategy_loss_backward_and_prepare():
    s = _small_strategy()
    model = s.build_model((1, 8, 8), 10)
    assert isinstance(model[-1], Accumulator)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    loss, logits = s.loss(model, x, y)
    loss.backward()
    assert logits.shape == (6, 10) and torch.isfinite(loss)
    bntts = [m for m in model.modules() if isinstance(m, BNTT)]
    assert len(bntts) == 3 and all(m.weight.grad is not None for m in bntts)
    assert all(m.weight.grad[:, :].abs().sum() > 0 for m in bntts)
    opt, _ = s.make_optimizer(model, epochs=1, steps_per_epoch=1)
    assert isinstance(opt, torch.optim.SGD)
    rebuilt = snnplug.strategy("bntt", **s.config())
    assert rebuilt.config() == s.config()
    bn_model = s.build_model((1, 8, 8), 10, norm="bn")
    prepared = s.prepare(bn_model)
    assert sum(isinstance(m, BNTT) for m in prepared.modules()) == 3


def test_readout_is_accumulated_potential_over_steps():
    s = _small_strategy(T=4)
    u = torch.tensor([[[1.0, 2.0]], [[3.0, 2.0]], [[3.0, 6.0]], [[8.0, 4.0]]])  # [T, B, C]
    assert torch.equal(s.readout(u), torch.tensor([[2.0, 1.0]]))


def test_predict_early_exit_runs_only_the_exit_steps():
    s = _small_strategy(T=8)
    model = s.build_model((1, 8, 8), 10).eval()
    bntts = [m for m in model.modules() if isinstance(m, BNTT)]
    with torch.no_grad():
        for m in bntts:
            m.weight[5:] = 0.01  # all layers quiet after step 5
    x = torch.rand(3, 1, 8, 8)
    torch.manual_seed(0)
    out = s.predict_early_exit(model, x, 0.1)
    logits, t_exit = out.logits, out.exit_step
    assert t_exit == 5 and all(m.t == 5 for m in bntts)
    torch.manual_seed(0)
    torch.testing.assert_close(logits, s.predict(model, x, T=5))
    anytime = s.predict_anytime(model, x)
    assert anytime.shape == (8, 3, 10)


def test_exit_rule_on_a_hand_made_profile():
    # rows: layers, columns: steps 1..6; the deep layer peaks late (step 4)
    prof = torch.tensor([[0.9, 0.5, 0.2, 0.05, 0.05, 0.05],
                         [0.0, 0.1, 0.3, 0.6, 0.08, 0.02]])
    assert exit_step_from_profile(prof, 0.1) == 4  # from step 5 on every layer < 0.1
    assert exit_step_from_profile(prof, 0.5) == 4
    assert exit_step_from_profile(prof, 0.7) == 1
    assert exit_step_from_profile(prof, 0.01) == 6
    assert exit_step_from_profile(prof, 2.0) == 1


def test_gamma_profile_and_sweep():
    s = _small_strategy(T=4)
    model = s.build_model((1, 8, 8), 3)
    with torch.no_grad():
        for i, m in enumerate(m for m in model.modules() if isinstance(m, BNTT)):
            m.weight.copy_(torch.tensor([1.0, 0.5, 0.25, 0.125]).unsqueeze(1).expand(4, m.num_features) * (i + 1))
    prof = gamma_profile(model)
    assert prof.shape == (3, 4) and torch.equal(prof[0], torch.tensor([1.0, 0.5, 0.25, 0.125]))
    assert exit_step(model, 1.0) == 2  # largest layer (x3): 3, 1.5, 0.75, 0.375 -> last step >= 1 is 2
    data = [(torch.rand(5, 1, 8, 8), torch.randint(0, 3, (5,)))]
    rows = early_exit_sweep(s, model, data, [1.0, 0.01])
    assert [r["exit_step"] for r in rows] == [2, 4]
    assert rows[1]["steps_saved"] == 0.0 and 0.0 <= rows[0]["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="no BNTT"):
        gamma_profile(nn.Sequential(nn.Linear(2, 2)))


def test_mac_counts_and_event_rates_by_hand():
    assert conv_macs(3, 8, (3, 3), (4, 4)) == 8 * 16 * 27
    assert conv_macs(4, 4, (3, 3), (2, 2), groups=4) == 4 * 4 * 9
    assert linear_macs(10, 5) == 50
    assert event_rate(torch.tensor([0.0, 1.0, -1.0, 0.0])) == 0.5
    assert event_rate(torch.tensor([0.25, 0.5, 0.0, 0.0]), amplitude=1.0) == 0.1875  # pooled spikes: mean of |x|
    assert event_rate(torch.tensor([0.3, 0.7])) is None  # real values: dense


def test_measure_energy_on_a_two_layer_snn():
    from spikingjelly.activation_based import layer

    lin1, lin2 = layer.Linear(4, 2, bias=False, step_mode="m"), layer.Linear(2, 3, bias=False, step_mode="m")
    with torch.no_grad():
        lin1.weight.fill_(1.0)  # input with two spikes -> u = 2 > 1: both neurons fire every step
        lin2.weight.fill_(1.0)
    net = nn.Sequential(lin1, BNTTLIFNode(), lin2, Accumulator())
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(2, 1, 4)  # T=2, B=1, rate 1/2
    rep = measure(net, x)
    assert [(l.macs, l.rate, l.steps) for l in rep.layers] == [(8, 0.5, 2), (6, 1.0, 2)]
    assert list(rep.spike_rates.values()) == [1.0]
    snn = (8 * 0.5 * 2 + 6 * 1.0 * 2) * E_AC_PJ
    ann = (8 + 6) * E_MAC_PJ
    assert rep.snn_pj == pytest.approx(snn) and rep.ann_pj == pytest.approx(ann)
    assert rep.ann_over_snn == pytest.approx(ann / snn)


def test_prepare_without_batchnorm_raises():
    from spikingjelly.activation_based import layer, neuron

    net = nn.Sequential(layer.Linear(2, 2, step_mode="m"), neuron.IFNode(step_mode="m"))
    with pytest.raises(SnnplugError, match="no layer to replace"):
        _small_strategy().prepare(net)


def test_docs_snippet_runs():
    """The two-line example of docs/bntt.md."""
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(layer.Conv2d(1, 8, 3, padding=1, bias=False, step_mode="m"),
                        layer.BatchNorm2d(8, step_mode="m"), neuron.LIFNode(step_mode="m"),
                        layer.Flatten(step_mode="m"), layer.Linear(8 * 8 * 8, 10, step_mode="m"))
    net = snnplug.apply(net, normalizer="bntt", T=25)
    out = net(torch.rand(25, 4, 1, 8, 8))
    functional.reset_net(net)
    assert out.shape == (25, 4, 10)


def test_report_gives_mean_gamma_per_layer_and_step():
    import snnplug

    s = snnplug.strategy("bntt", T=5)
    model = s.build_model((1, 8, 8), 10)
    layers = [m for m in model.modules() if isinstance(m, BNTT)]
    with torch.no_grad():
        for i, m in enumerate(layers):
            m.weight.copy_(torch.arange(1, 6, dtype=torch.float32).unsqueeze(1).expand_as(m.weight) * (i + 1))
    series = s.report(model, torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))["mean gamma over time"]
    assert len(series) == len(layers) > 0
    for i, values in enumerate(series.values()):
        assert values == [float(t * (i + 1)) for t in range(1, 6)]


def test_prepare_starts_gamma_at_tau_before_neurons_that_scale_their_input():
    """BNTT's LIF adds the normalised input unscaled (eq. 4); LIFNode(decay_input=True) scales it
    by 1/τ, so γ_t starts at τ there (1 before IF neurons and decay_input=False)."""
    from spikingjelly.activation_based import layer, neuron

    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.ParametricLIFNode(init_tau=4.0, step_mode="m"),
        layer.Conv2d(4, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.LIFNode(tau=2.0, decay_input=False, step_mode="m"),
        layer.Conv2d(4, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.IFNode(step_mode="m"), layer.Flatten(step_mode="m"), layer.Linear(4 * 16, 3, step_mode="m"))
    prepared = _small_strategy(T=3).prepare(net)
    gammas = [m.weight for m in prepared.modules() if isinstance(m, BNTT)]
    assert [tuple(g.shape) for g in gammas] == [(3, 4)] * 3
    assert torch.allclose(gammas[0], torch.full((3, 4), 4.0))
    assert torch.equal(gammas[1], torch.ones(3, 4)) and torch.equal(gammas[2], torch.ones(3, 4))


def test_prepare_makes_the_readout_neurons_accumulate_as_the_papers_output_layer():
    """A subthreshold output (bias 0.2, θ = 1, T = 4: an IF readout never spikes, logits 0) reads
    out as the accumulated potential u_T/T = 0.2 (Algorithm 2 line 9); the VotingLayer after it stays."""
    from spikingjelly.activation_based import layer, neuron

    head = layer.Linear(4 * 16, 6, step_mode="m")
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(0.2)
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.IFNode(step_mode="m"), layer.Flatten(step_mode="m"), head, neuron.IFNode(step_mode="m"),
        layer.VotingLayer(2, step_mode="m"))
    s = _small_strategy(T=4)
    prepared = s.prepare(net)
    assert isinstance(prepared[5], Accumulator) and isinstance(prepared[6], layer.VotingLayer)
    assert isinstance(prepared[2], neuron.IFNode)  # hidden neurons kept
    logits = s.forward(prepared, torch.rand(3, 1, 4, 4))
    assert torch.allclose(logits, torch.full((3, 3), 0.2))
