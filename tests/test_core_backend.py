"""SpikingJelly backend: 0.0.0.0.14-script guidance, neuron detection, reset."""

from __future__ import annotations

import pytest
from spikingjelly.activation_based import neuron

from snnplug.backends import spikingjelly as sjb


def test_legacy_backend_argument_gets_a_clear_instruction():
    with pytest.raises(TypeError) as info:
        neuron.IFNode(backend="cupy", step_mode="m")  # a 0.0.0.0.14 script's line on 2.x
    msg = sjb.explain_legacy_error(info.value)
    assert msg is not None and "remove `backend=...`" in msg
    assert sjb.explain_legacy_error(TypeError("unrelated")) is None


def test_spiking_neuron_detection_and_reset():
    import torch

    n = neuron.IFNode(step_mode="m")
    assert sjb.is_spiking_neuron(n) and not sjb.is_spiking_neuron(torch.nn.ReLU())
    n(torch.ones(3, 2, 4) * 0.6)
    assert isinstance(n.v, torch.Tensor)
    sjb.reset(n)
    assert n.v == 0.0
