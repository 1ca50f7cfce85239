"""snnplug.kernels: which implementation runs (no Triton needed except where marked)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from snnplug import kernels


def test_cpu_tensors_never_take_a_kernel():
    assert kernels.mode() == "auto"
    x = torch.zeros(2, 3)
    assert kernels.for_tensor(x, "snnplug_dsr.kernels") is None


def test_mode_switches_and_restores():
    with kernels.use("torch"):
        assert kernels.mode() == "torch"
    assert kernels.mode() == "auto"
    with pytest.raises(ValueError, match=r"kernel mode must be one of \('auto', 'torch'\).*got 'cuda'"):
        kernels.set_mode("cuda")
    assert kernels.mode() == "auto"


class _FakeCuda:
    """Stands for a CUDA tensor in the dispatch decision (no GPU here)."""

    is_cuda = True

    def __init__(self, dtype=torch.float32):
        self.dtype = dtype


def test_cuda_float32_takes_the_kernel_unless_forced_to_torch(monkeypatch):
    loaded = []
    monkeypatch.setattr(kernels, "load", lambda m: loaded.append(m) or "module")
    assert kernels.for_tensor(_FakeCuda(), "snnplug_bntt.kernels") == "module"
    assert kernels.for_tensor(_FakeCuda(torch.float64), "snnplug_bntt.kernels") is None
    with kernels.use("torch"):
        assert kernels.for_tensor(_FakeCuda(), "snnplug_bntt.kernels") is None
    assert loaded == ["snnplug_bntt.kernels"]


def test_missing_triton_falls_back_once_with_a_warning(caplog):
    assert kernels.load("snnplug_no_such_kernels") is None
    assert kernels.load("snnplug_no_such_kernels") is None
    warnings = [r for r in caplog.records if "snnplug_no_such_kernels" in r.getMessage()]
    assert len(warnings) == 1 and "using the torch path" in warnings[0].getMessage()


def test_environment_variable_sets_the_mode():
    code = "import snnplug.kernels as k; print(k.mode())"
    env = {**os.environ, "SNNPLUG_KERNELS": "torch"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "torch", out.stderr
    env["SNNPLUG_KERNELS"] = "fast"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "$SNNPLUG_KERNELS must be one of ('auto', 'torch')" in out.stderr and "got 'fast'" in out.stderr


@pytest.mark.triton
def test_interpreted_copy_leaves_the_process_unchanged():
    pytest.importorskip("triton", reason="Triton cannot be imported")
    before = os.environ.get("TRITON_INTERPRET")
    K = kernels.interpreted("snnplug_opi.kernels")
    assert os.environ.get("TRITON_INTERPRET") == before
    assert sys.modules.get("snnplug_opi.kernels") is not K
    assert type(K._forward).__name__ == "InterpretedFunction"
    import triton

    @triton.jit
    def plain(x):  # decorated after the copy: compiled, not interpreted
        pass

    assert type(plain).__name__ == "JITFunction"
    with pytest.raises(ImportError, match="no kernel module 'snnplug_nothing.kernels'"):
        kernels.interpreted("snnplug_nothing.kernels")


def test_cpu_forward_and_backward_never_import_triton():
    """Every plugin neuron, forward and backward on CPU: neither Triton nor a kernel module loads."""
    code = """
import sys, torch
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode
from snnplug_dsr.spike_bits import SpikeBits
from snnplug_bntt.neuron import BNTTLIFNode
from snnplug_noise.neuron import NoisyLIFNode
from snnplug_opi.neuron import OPIIFNode
from snnplug.adapters.nodes import SnnTorchLeakyNode, SynapticNode
x = torch.rand(4, 2, 5, requires_grad=True)
for node in (DSRIFNode(T=4), DSRLIFNode(T=4), BNTTLIFNode(), SnnTorchLeakyNode(beta=0.9),
             SynapticNode(alpha=0.8, beta=0.9), NoisyLIFNode(stage=1)):
    node(x).sum().backward()
with torch.no_grad():
    for node in (DSRIFNode(T=4), OPIIFNode(), NoisyLIFNode(stage=2), NoisyLIFNode(stage=3)):
        node(x)
bits = SpikeBits(4, x.shape[1:], x.device, torch.tensor(1.0))
bits.write(0, (x > 0.5).float()); bits.read(0, 4, torch.float32)
print(sorted(m for m in sys.modules if m == "triton" or (m.endswith(".kernels") and m != "snnplug.kernels")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
