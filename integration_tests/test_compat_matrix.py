"""The compatibility matrix (issue 15) as tests: every cell of ``integration_tests/compat_matrix.py`` on real
models either works (finite, falling loss; OPI: SNN agrees with its ANN) or is refused with the
snnplug error expected here, written independently of the generator. Rows marked slow (VGGs,
ResNet-34, ...) run only with ``SNNPLUG_COMPAT_FULL=1`` (``python integration_tests/compat_matrix.py`` runs all)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("spikingjelly")
pytest.importorskip("torchvision")
pytest.importorskip("snntorch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat_matrix as compat  # noqa: E402

FULL = os.environ.get("SNNPLUG_COMPAT_FULL") == "1"

#: (row kind or name, column) -> message fragment of the expected refusal
_NO_NEURON = "found no neuron to replace"


def expected(row: compat.Row, col: str) -> tuple[str, str]:
    """(status, fragment) this cell must have."""
    if col == "snnTorch adapter" and row.kind != "snntorch":
        return "n/a", "snnTorch models only"
    if col == "opi: opi-ann prepare + convert" and row.kind != "ann":
        return "n/a", "ANNs only"
    if row.name.startswith("snnTorch tutorial 5"):
        return "refused", "init_hidden=False"
    if row.kind == "ann":
        if col == 'apply normalizer="bntt"' or col == "strategy bntt":
            return "refused", "has no spiking neurons and no multi-step layers"
        if col.startswith("opi: convert"):
            return "refused", "(MaxPool2d) is not supported by the OPI converter"
        if col.startswith("opi: opi-ann"):
            return "works", ""
        return "refused", _NO_NEURON
    if (row.kind == "snntorch" or row.name == "spiking_vgg11") and col in ('apply normalizer="bntt"', "strategy bntt"):
        return "refused", "found no layer to replace"  # no batch norm in these nets
    if row.kind == "self-timed" and row.name.startswith("ms_resnet") and col.startswith("strategy"):
        return "refused", "does not map the strategy's input"  # adds T itself; neurons in several blocks
    if col.startswith("opi: convert"):
        if "PLIF" in row.name or row.kind == "snntorch":
            return "refused", _NO_NEURON  # opi-if replaces IF neurons only
        return "refused", "hard reset (v_reset=0.0)"
    return "works", ""


#: cells measured not to train in the matrix's few steps, with the cause (docs/compatibility.md);
#: strict xfail: a cell that starts working must be moved out of here
KNOWN_OPEN: dict[tuple[str, str], str] = {}


def _params():
    out = []
    for row in compat.rows():
        for col in compat.COLUMNS:
            marks = []
            if row.slow:
                marks += [pytest.mark.slow,
                          pytest.mark.skipif(not FULL, reason="slow row: set SNNPLUG_COMPAT_FULL=1")]
            if (row.name, col) in KNOWN_OPEN:
                marks.append(pytest.mark.xfail(reason=KNOWN_OPEN[(row.name, col)], strict=True))
            out.append(pytest.param(row, col, marks=marks, id=f"{row.name}|{col}"))
    return out


@pytest.mark.parametrize(("row", "col"), _params())
def test_cell(row: compat.Row, col: str) -> None:
    status, fragment = expected(row, col)
    cell = compat.run_cell(row, col)
    assert cell.status != "FAILS" or (row.name, col) in KNOWN_OPEN, cell.detail
    assert cell.status == status, cell.detail
    assert fragment in cell.detail, cell.detail
    if status == "refused":
        assert cell.detail.split(":")[0].endswith("Error")  # an snnplug error class, named


def test_render_lists_every_cell_and_footnotes_refusals():
    rows = [compat.Row("m", lambda: None, (1, 2, 2), "sj")]
    results = {("m", c): compat.Cell("works", "ok") for c in compat.COLUMNS}
    first = next(iter(compat.COLUMNS))
    results[("m", first)] = compat.Cell("refused", "UnsupportedModuleError: x has y; do z")
    text = compat.render(results, [r.name for r in rows])
    lines = text.splitlines()
    assert lines[0] == "| model | " + " | ".join(compat.COLUMNS) + " |"
    assert lines[2].startswith("| m | refused [1] | works |")
    assert f"1. **m / {first}** (refused): UnsupportedModuleError: x has y; do z" in text
