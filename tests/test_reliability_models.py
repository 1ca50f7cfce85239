"""Neurons, converted SNNs and surgery: layouts and models they cannot run are refused clearly."""

from __future__ import annotations

import threading

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron

import snnplug
from snnplug.checks import MAX_STEPS, any_length
from snnplug.errors import TimeStepError, UnsupportedModuleError

T = 8
BATCH_MAJOR = "if this is a batch-major \\[B, T, ...\\] tensor, make it time-major with x.transpose\\(0, 1\\)"


@pytest.mark.parametrize("name", ["bntt-lif", "noise-lif", "dsr-if"])
def test_batch_major_input_with_b_below_t_is_refused(name):
    n = snnplug.neuron(name, T=T)
    x = torch.rand(4, T, 16)  # [B=4, T=8, features]: looks like 4 time steps of a batch of 8
    with pytest.raises(TimeStepError, match=rf"was built for T={T} but got .*4 steps"):
        n(x)
    functional.reset_net(n)
    out = n(x.transpose(0, 1).contiguous())  # time-major is accepted
    assert out.shape == (T, 4, 16)


@pytest.mark.parametrize("name", ["bntt-lif", "noise-lif"])
def test_batch_major_message_and_opt_in_for_shorter_runs(name):
    n = snnplug.neuron(name, T=T)
    with pytest.raises(TimeStepError, match=BATCH_MAJOR):
        n(torch.rand(4, T, 16))
    functional.reset_net(n)
    with any_length(n):  # fewer steps on purpose (early exit, anytime inference)
        assert n(torch.rand(4, T, 16)).shape == (4, T, 16)
    assert n.strict_T is True  # restored


def _ann():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.ReLU(), torch.nn.Linear(10, 4))


def test_converted_opi_snn_refuses_batch_major_input():
    x = torch.rand(32, 1, 8, 8)
    snn = snnplug.convert(_ann(), "opi", T=T, calibration=[(x, None)])
    seq = x[:4].unsqueeze(0).expand(T, 4, 1, 8, 8)
    with pytest.raises(TimeStepError, match=rf"OPISpikingNet \(multi-step\) was built for T={T} but got a sequence "
                                            rf"of 4 steps .*{BATCH_MAJOR}"):
        snn(seq.transpose(0, 1))
    functional.reset_net(snn)
    ref = snn(seq)
    assert ref.shape == (T, 4, 4)
    # predict at fewer steps is meant: it matches the first steps of the full simulation
    torch.testing.assert_close(snn.predict(x[:4], 3), ref[:3].mean(0))


@pytest.mark.parametrize("steps", [0, -1, MAX_STEPS + 1, 2**31])
def test_step_counts_checked_before_allocating(steps):
    s = snnplug.strategy("bptt", T=2)
    m = s.build_model((1, 8, 8), 10)
    x = torch.rand(3, 1, 8, 8)
    err = (TypeError, r"T must be a positive int number of time steps") if steps < 1 else \
        (TimeStepError, rf"T={steps} time steps is more than snnplug accepts \({MAX_STEPS}\)")
    with pytest.raises(err[0], match=err[1]):
        s.predict(m, x, T=steps)
    with pytest.raises(err[0], match=err[1]):
        snnplug.neuron("bntt-lif", T=steps)
    with pytest.raises(err[0], match=err[1]):
        snnplug.normalizer("bntt", 4, T=steps)


def test_predict_with_ten_million_steps_is_refused_before_allocating():
    s = snnplug.strategy("dsr", T=2)
    m = s.build_model((1, 8, 8), 10)
    with pytest.raises(TimeStepError, match=r"T=10000000 time steps is more than snnplug accepts"):
        s.predict(m, torch.rand(2, 1, 8, 8), T=10**7)


def _sj_net():
    return torch.nn.Sequential(layer.Linear(8, 4, step_mode="m"), neuron.IFNode(step_mode="m"),
                               layer.BatchNorm1d(4, step_mode="m"))


def test_lazy_modules_are_refused_with_the_fix():
    lazy = torch.nn.Sequential(torch.nn.LazyLinear(4), neuron.IFNode(step_mode="m"))
    with pytest.raises(UnsupportedModuleError, match=r"snnplug.apply copies the model, but it has uninitialised lazy "
                                                     r"modules \(0 \(LazyLinear\)\); run one forward pass"):
        snnplug.apply(lazy, neuron="dsr-if", T=4)
    with pytest.raises(UnsupportedModuleError, match=r"the OPI converter copies the model, but it has uninitialised "
                                                     r"lazy modules \(1 \(LazyLinear\)\)"):
        snnplug.convert(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4), torch.nn.ReLU()), "opi", T=4)


def test_unpicklable_member_is_named():
    net = _sj_net()
    net[1].lock = threading.Lock()
    with pytest.raises(UnsupportedModuleError, match=r"snnplug.apply copies the model \(copy.deepcopy\) but 1.lock "
                                                     r"\(lock\) cannot be copied \(cannot pickle '_thread.lock' object\)"):
        snnplug.apply(net, neuron="dsr-if", T=4)
    # in place there is nothing to copy
    out = snnplug.apply(net, neuron="dsr-if", T=4, inplace=True)
    assert type(out[1]).__name__ == "DSRIFNode"


def test_meta_device_model_is_refused_when_run():
    s = snnplug.strategy("bptt", T=2)
    with torch.device("meta"):
        m = s.build_model((1, 8, 8), 10)
    with pytest.raises(UnsupportedModuleError, match=r"strategy 'bptt': the model's .* are on the meta device "
                                                     r"\(shapes without data\); materialise it first"):
        s.loss(m, torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3]))
    with pytest.raises(UnsupportedModuleError, match=r"on the meta device"):
        s.predict(m, torch.rand(3, 1, 8, 8))
