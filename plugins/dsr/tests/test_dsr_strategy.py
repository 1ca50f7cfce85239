"""Strategy ``dsr``: construction, parameter groups, loss, user loop, trainer, docs example."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron

import snnplug
from snnplug.errors import SnnplugError, TimeStepError
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode
from snnplug_dsr.strategy import DSRStrategy
from snnplug_dsr.thresholds import threshold_l2, threshold_parameters


def _sj_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.IFNode(step_mode="m"), layer.AvgPool2d(2, step_mode="m"), layer.Flatten(step_mode="m"),
        layer.Linear(4 * 4 * 4, 10, step_mode="m"), neuron.LIFNode(step_mode="m"))


def test_registered_and_config_roundtrip():
    st = snnplug.strategy("dsr", T=5, neuron="lif", chunk=2, optimizer="adam")
    assert isinstance(st, DSRStrategy) and st.name == "dsr"
    again = snnplug.strategy("dsr", **st.config())
    assert again.config() == st.config()
    for bad in ({"neuron": "izh"}, {"backward": "bptt"}, {"chunk": 0}, {"neuron_kwargs": {"T": 3}},
                {"neuron_kwargs": {"alpha": 2.0}}):
        with pytest.raises((ValueError, TypeError)):
            DSRStrategy(**bad)


def test_build_model_has_spiking_output_and_runs():
    st = DSRStrategy(T=4, channels=(4, 8), hidden=16)
    net = st.build_model((1, 8, 8), 10)
    assert isinstance(net[-1], DSRIFNode) and all(n.T == 4 for n in net if isinstance(n, DSRIFNode))
    logits = st.predict(net, torch.rand(3, 1, 8, 8))
    assert logits.shape == (3, 10)
    # the rate output is a multiple of Vth/T in [0, Vth]
    vth = float(net[-1].v_threshold.detach())
    q = logits / (vth / 4)
    assert torch.allclose(q, q.round(), atol=1e-5) and float(logits.max()) <= vth


def test_param_groups_keep_thresholds_out_of_weight_decay():
    st = DSRStrategy(T=4, channels=(4, 8), hidden=16)
    net = st.build_model((1, 8, 8), 10)
    opt, sched = st.make_optimizer(net, epochs=1, steps_per_epoch=10)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.1
    groups = {g.get("name", "weights"): g for g in opt.param_groups}
    ths = threshold_parameters(net)
    assert len(ths) == 4 and groups["dsr_thresholds"]["weight_decay"] == 0.0
    assert {id(p) for p in groups["dsr_thresholds"]["params"]} == {id(p) for p in ths}
    assert groups["weights"]["weight_decay"] == 5e-4 and sched is not None


def test_threshold_lr_scale_moves_thresholds_by_that_factor():
    """One plain SGD step (no momentum yet, wd 0 on thresholds): Vth -= lr * scale * dL/dVth,
    the weights' update is unchanged; the cosine schedule scales the threshold group too."""
    torch.manual_seed(0)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    moved = {}
    for scale in (1.0, 30.0):
        st = DSRStrategy(T=4, channels=(4, 8), hidden=16, lr=0.01, threshold_lr_scale=scale,
                         neuron_kwargs={"v_threshold": 0.5})
        torch.manual_seed(1)
        net = st.build_model((1, 8, 8), 10)
        opt, sched = st.make_optimizer(net, epochs=1, steps_per_epoch=4)
        groups = {g.get("name", "weights"): g for g in opt.param_groups}
        assert groups["dsr_thresholds"]["lr"] == pytest.approx(0.01 * scale)
        before = [float(t.detach()) for t in threshold_parameters(net)]
        loss, _ = st.loss(net, x, y)
        opt.zero_grad()
        loss.backward()
        grads = [float(t.grad) for t in threshold_parameters(net)]
        w0 = net[0].weight.detach().clone()
        opt.step()
        sched.step()
        after = [float(t.detach()) for t in threshold_parameters(net)]
        assert after == pytest.approx([b - 0.01 * scale * g for b, g in zip(before, grads)], rel=1e-5)
        assert any(g != 0.0 for g in grads)
        moved[scale] = net[0].weight.detach() - w0
        # cosine over 4 steps: after one step both groups are at (1 + cos(pi/4)) / 2 of their lr
        f = (1 + torch.cos(torch.tensor(torch.pi / 4)).item()) / 2
        assert groups["dsr_thresholds"]["lr"] == pytest.approx(0.01 * scale * f)
        assert groups["weights"]["lr"] == pytest.approx(0.01 * f)
    assert torch.allclose(moved[1.0], moved[30.0])
    with pytest.raises(ValueError, match="threshold_lr_scale"):
        DSRStrategy(threshold_lr_scale=0.0)


def test_threshold_pieces_cover_the_clamp_ann():
    """The representation network (clamp activations) gets the same threshold groups and L2."""
    from snnplug.models import convnet
    from snnplug_dsr.ann import ClampAct
    from snnplug_dsr.thresholds import param_groups

    acts = iter([ClampAct(2.0), ClampAct(3.0, train_threshold=False), ClampAct(4.0)])
    net = convnet((1, 8, 8), 10, activation=lambda: next(acts), channels=(4, 8), hidden=16)
    ths = threshold_parameters(net)
    assert [float(t.detach()) for t in ths] == [2.0, 4.0]  # the fixed one (a buffer) is not trained
    groups = {g.get("name", "weights"): g for g in param_groups(net, 5e-4, 0.1, 30.0)}
    assert [id(p) for p in groups["dsr_thresholds"]["params"]] == [id(t) for t in ths]
    assert groups["dsr_thresholds"]["lr"] == pytest.approx(3.0)
    assert all(id(p) not in {id(t) for t in ths} for p in groups["weights"]["params"])
    assert float(threshold_l2(net, 0.5).detach()) == 0.25 * (4.0 + 16.0)


def test_loss_is_cross_entropy_plus_threshold_l2():
    st = DSRStrategy(T=4, channels=(4, 8), hidden=16, threshold_l2=0.5)
    net = st.build_model((1, 8, 8), 10)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    loss, logits = st.loss(net, x, y)
    # four layers at the initial Vth = 6: 0.5/2 * 4 * 36 = 36
    assert float(threshold_l2(net, 0.5).detach()) == 36.0
    assert torch.allclose(loss, F.cross_entropy(logits, y) + 36.0)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_prepare_user_model_and_own_training_loop():
    st = DSRStrategy(T=4)
    model = st.prepare(_sj_model())
    assert [type(m).__name__ for m in model if "Node" in type(m).__name__] == ["DSRIFNode", "DSRIFNode"]
    opt, _ = st.make_optimizer(model, 1, 1, lr=0.05)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    loss0, _ = st.loss(model, x, y)
    opt.zero_grad()
    loss0.backward()
    before = copy.deepcopy(model.state_dict())
    opt.step()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("v_threshold") for k in changed) and any(k.endswith("weight") for k in changed)
    with pytest.raises(TimeStepError):
        DSRStrategy(T=5).prepare(model)


def test_auto_falls_back_to_per_step_with_a_warning():
    # torch's Dropout draws a new mask at every step: not supported (SpikingJelly's layer.Dropout is)
    net = torch.nn.Sequential(layer.Conv2d(1, 2, 3, padding=1, step_mode="m"),
                              torch.nn.Dropout(0.5), layer.AvgPool2d(2, step_mode="m"), DSRIFNode(T=3),
                              layer.Flatten(step_mode="m"), layer.Linear(8, 3, step_mode="m"))
    st = DSRStrategy(T=3)
    with pytest.warns(UserWarning, match=r"1 \(Dropout\)"):
        assert st.backward_mode(net) == "per-step"
    loss, _ = st.loss(net, torch.rand(2, 1, 4, 4), torch.tensor([0, 2]))
    loss.backward()
    assert net[0].weight.grad is not None
    assert DSRStrategy(T=3, backward="per-step").backward_mode(_sj_model()) == "per-step"


def test_predict_at_other_T_and_training_requires_configured_T():
    st = DSRStrategy(T=4, channels=(4, 8), hidden=16)
    net = st.build_model((1, 8, 8), 10)
    x = torch.rand(2, 1, 8, 8)
    assert st.predict(net, x, T=7).shape == (2, 10)
    assert st.predict_anytime(net, x, T=6).shape == (6, 2, 10)
    functional.reset_net(net)
    with pytest.raises(TimeStepError):
        net(x.unsqueeze(0).repeat(7, 1, 1, 1, 1))  # direct calls keep the configured T
    with pytest.raises(SnnplugError, match="no DSR neurons"):
        st.loss(torch.nn.Sequential(layer.Flatten(step_mode="m")), x, torch.tensor([0, 1]))


def test_lif_strategy_one_step():
    st = DSRStrategy(T=5, neuron="lif", channels=(4, 8), hidden=16, chunk=2)
    net = st.build_model((1, 8, 8), 10)
    assert isinstance(net[-1], DSRLIFNode)
    loss, logits = st.loss(net, torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert logits.shape == (4, 10) and torch.isfinite(loss)


def test_generic_trainer_runs_dsr():
    from snnplug.data import load_dataset
    from snnplug.engine.trainer import TrainConfig, train

    bundle = load_dataset("digits", limit=64)
    st = snnplug.strategy("dsr", T=4, channels=(4, 8), hidden=16)
    model = st.build_model(bundle.input_shape, bundle.num_classes)
    res = train(st, model, bundle, TrainConfig(epochs=1, batch_size=32, max_steps=2, progress=False))
    last = res.history[-1]
    assert torch.isfinite(torch.tensor(last["train_loss"])) and set(last["test_acc"]) == {"4"}


def test_docs_example_runs():
    """The snippet in docs/dsr.md ("Enable it in a SpikingJelly script")."""
    net = _sj_model()
    # --- docs snippet ---
    import snnplug

    net = snnplug.apply(net, neuron="dsr-if", T=20)
    strategy = snnplug.strategy("dsr", T=20)
    opt, _ = strategy.make_optimizer(net, epochs=1, steps_per_epoch=1)
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([1, 2, 3, 4])
    loss, logits = strategy.loss(net, x, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    # --- end ---
    assert logits.shape == (4, 10)
