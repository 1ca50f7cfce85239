"""Every fused kernel compiles, through Triton's whole pipeline down to a cubin, for the GPU the
benchmarks target (sm_90: H100/H200), without a GPU.

The interpreter tests check the kernels' arithmetic; the interpreter is lenient about what the
compiler rejects (shapes, types, calls), so here each wrapper is run on CPU tensors with the
kernel launch intercepted, and every launch (each constexpr variant the wrappers use) is compiled
for ``GPUTarget("cuda", 90, 32)`` with the signature the launch would have had.
"""

from __future__ import annotations

import importlib

import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

_DTYPES = {torch.float32: "*fp32", torch.uint8: "*u8"}


class _Recorder:
    """Stands in for a ``@triton.jit`` kernel: records ``kernel[grid](*args, **kw)`` launches."""

    def __init__(self, fn, launches):
        self.fn, self.launches = fn, launches

    def __getitem__(self, grid):
        return lambda *args, **kw: self.launches.append((self.fn, args, kw))


def _signature(fn, args, kw):
    kw = {k: v for k, v in kw.items() if k not in ("enable_fp_fusion", "num_warps")}
    values = dict(zip(fn.arg_names, args, strict=False)) | kw
    sig, consts = {}, {}
    for i, name in enumerate(fn.arg_names):
        v = values[name]
        if i in fn.constexprs or name in ("BLOCK",):
            sig[name], consts[name] = "constexpr", v
        elif isinstance(v, torch.Tensor):
            sig[name] = _DTYPES[v.dtype]
        elif isinstance(v, bool):
            sig[name] = "i1"
        elif isinstance(v, int):
            sig[name] = "i64" if abs(v) >= 2**31 else "i32"
        else:
            sig[name] = "fp32"
    return sig, consts


def _launches(module, calls, monkeypatch):
    mod = importlib.import_module(module)
    launches = []
    for name in dir(mod):
        obj = getattr(mod, name)
        if isinstance(obj, triton.runtime.jit.JITFunction) and name.startswith("_") and "ptr" in str(obj.arg_names):
            monkeypatch.setattr(mod, name, _Recorder(obj, launches))
    for call in calls:
        call(mod)
    monkeypatch.undo()
    return launches


def _x(*shape):
    return torch.rand(*shape)


def _dsr(k):
    x, vth = _x(3, 2, 5), torch.tensor(1.0)
    k.simulate(x, vth, 0.5)
    k.simulate(x, vth, 0.3, torch.zeros(2, 5), lif=True, tau=1.0, dt=0.05, sums=True)
    k.simulate(x, vth, 0.5, out=False, sums=True, bits=torch.zeros(1, 2, 5, dtype=torch.uint8))
    k._rep_backward(x, _x(2, 5), None, 1.0, 1.0)
    k._rep_backward(x, _x(2, 5), _x(3), 6.0, 1.0)
    words = torch.zeros(1, 2, 5, dtype=torch.uint8)
    k.pack_bits(x, words, 0)
    k.unpack_bits(words, 0, 3, torch.tensor(1.0))


def _bntt(k):
    k.lif_forward(_x(3, 4), torch.zeros(4), 0.99, 1.0)

    class Ctx:
        saved_tensors = (_x(3, 4),)
        leak, threshold, alpha, needs_input_grad = 0.99, 1.0, 0.3, (True, True)

    k.LIFSequence.backward(Ctx, _x(3, 4), _x(4))
    k.LIFSequence.backward(Ctx, None, _x(4))


def _opi(k):
    k.if_multi_step(_x(3, 4), torch.zeros(4), 1.0)


def _noise(k):
    from snnplug_noise.noise import NoiseSpec

    k.stage2(_x(3, 2, 4), _x(3, 2, 4), 1.0)
    k.stage3(_x(3, 2, 4), _x(3, 2, 4), None, NoiseSpec(), decay=0.5, alpha=4.0, beta=0.5, v_threshold=1.0, v_reset=0.0)
    k.stage3(_x(3, 2, 4), _x(3, 2, 4), _x(2, 4), NoiseSpec(), decay=0.5, alpha=4.0, beta=0.5, v_threshold=1.0,
             v_reset=0.0)


def _adapters(k):
    from snnplug.adapters.lif_functional import Dynamics, _Buffers

    one = torch.tensor(1.0)
    for reset in ("subtract", "zero", "none"):
        for delay in (True, False):
            dyn = Dynamics(reset, delay)
            for syn in (False, True):
                x = _x(3, 4)
                buf = _Buffers(x, dyn, g_is_one=delay, synaptic=syn)
                k.forward(buf, x, torch.zeros(4) if syn else None, torch.zeros(4), one if syn else None,
                          one * 0.9, one, one, dyn, delay)
    k.scan(_x(3, 4), _x(3, 4), True)
    k.scan(_x(3, 4), torch.tensor(0.9), False)


CASES = {"snnplug_dsr.kernels": _dsr, "snnplug_bntt.kernels": _bntt, "snnplug_opi.kernels": _opi,
         "snnplug_noise.kernels": _noise, "snnplug.adapters.kernels": _adapters}


MIN_VARIANTS = {"snnplug_dsr.kernels": 7, "snnplug_bntt.kernels": 3, "snnplug_opi.kernels": 1,
                "snnplug_noise.kernels": 3, "snnplug.adapters.kernels": 12}


@pytest.mark.parametrize("module", list(CASES))
def test_every_launch_compiles_for_sm90(module, monkeypatch):
    launches = _launches(module, [CASES[module]], monkeypatch)
    assert launches
    seen = set()
    for fn, args, kw in launches:
        sig, consts = _signature(fn, args, kw)
        key = (fn.__name__, tuple(sorted(sig.items())), tuple(sorted(consts.items())))
        if key in seen:
            continue
        seen.add(key)
        compiled = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                                  target=GPUTarget("cuda", 90, 32))
        assert compiled.asm["cubin"], f"{fn.__name__} {consts}"
    assert len(seen) >= MIN_VARIANTS[module]
