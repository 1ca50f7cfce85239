"""The code blocks of docs/noise.md run as written (one namespace, in order)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[3] / "docs" / "noise.md"


def test_docs_examples_run() -> None:
    if not DOC.is_file():
        pytest.skip(f"{DOC} not found")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2
    torch.manual_seed(0)
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), ns)
    from snnplug_noise.convert import NoiseSNN

    assert isinstance(ns["snn"], NoiseSNN) and ns["rates"].shape[1] == 10
    assert 0.0 <= ns["accuracy"] <= 1.0
    assert ns["loss"].dim() == 0 and ns["loss"].requires_grad
    assert sum(type(m).__name__ == "NoisyLIFNode" for m in ns["net"].modules()) == 2
