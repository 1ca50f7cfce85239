"""``snnplug.app.compare``: the framework comparison on a tiny run, JSON output, table."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("snntorch")
from snnplug.app.compare import compare, format_table  # noqa: E402


def test_compare_frameworks_tiny(tmp_path):
    path = tmp_path / "cmp.json"
    res = compare(dataset="digits", T=4, batch_size=32, epochs=0, limit=160, repeats=1, methods=False,
                  json_path=path)
    fw = res["frameworks"]
    assert fw["spike_mismatches"] == 0 and fw["spikes_compared"] == 32 * 4 * (128 + 10)
    assert fw["snntorch"]["accuracy"] == fw["spikingjelly"]["accuracy"]
    assert fw["max_rel_grad_diff"] < 1e-4
    assert fw["snntorch"]["memory_bytes"] > 0 and fw["spikingjelly"]["memory_bytes"] > 0
    assert json.loads(path.read_text()) == json.loads(json.dumps(res))
    text = format_table(res)
    assert "spike mismatches: 0 of" in text and "accuracy" in text


def test_compare_methods_rows_or_skips():
    from snnplug.app.compare import compare_methods

    rows = compare_methods(T=2, batch_size=8, repeats=1)
    assert [r["method"].split()[0] for r in rows] == ["dsr-if", "bntt"]
    for r in rows:
        assert "skipped" in r or (r["snnplug_fwd_bwd_s"] > 0 and r["spikingjelly_fwd_bwd_s"] > 0)
