"""benchmarks/gpu.py: refuses cleanly without CUDA; its CPU dry run goes through every case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _load():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("snnplug_gpu_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_refuses_without_cuda(capsys):
    assert _load().main([]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "--dry-run" in err


@pytest.mark.slow
@pytest.mark.triton
def test_dry_run_measures_every_case(capsys, monkeypatch):
    pytest.importorskip("triton", reason="Triton cannot be imported")
    from snnplug import kernels

    monkeypatch.setattr(kernels, "for_tensor", kernels.for_tensor)  # the dry run reroutes it
    mod = _load()
    assert mod.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in ("dsr-if (per-step backward)", "bntt-lif via FlexSN", "snnTorch Synaptic", "noise-lif stage 3",
                 "SJ BPTT (Triton LIF)", "dsr (kernels)", "opi-if inference (kernels)"):
        row = next(line for line in out.splitlines() if f"| {name} |" in line)
        assert "failed" not in row, row
