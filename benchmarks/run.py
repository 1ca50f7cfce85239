"""Time `snnplug run` (every method on digits, default settings) and record its table.

    python benchmarks/run.py [--epochs 3]

Writes the "run" section of docs/benchmarks.md: total wall time against the 5-minute target on
2 CPU cores, and per method accuracy, T, training time, peak memory, spikes and energy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    from snnplug.app.run import main as run_main

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rc = run_main(["--out", tmp, "--no-progress", "--epochs", str(args.epochs)])
        wall = time.perf_counter() - t0
        res = json.loads((Path(tmp) / "results.json").read_text())
    rows = [[name, r["T"], f"{100 * r['accuracy']:.2f}", f"{r['train_seconds']:.1f}", f"{r['peak_rss_mb']:.0f}",
             f"{r['spikes_per_sample']:.0f}", f"{r['energy_uj']:.3f}", f"{r['ann_energy_uj']:.3f}",
             f"{r['energy_ratio']:.2f}x" if r["energy_ratio"] else "n/a", r["quick_overrides"] or ""]
            for name, r in res["methods"].items()]
    body = (f"`snnplug run` with default settings ({args.epochs} epochs per method, digits, each method in "
            f"its own process, 1 torch thread): total wall time **{wall:.0f} s** (target <= 300 s on 2 CPU "
            f"cores: {'met' if wall <= 300 else '**missed**'}); exit status {rc}; failed: {res['failed'] or 'none'}.\n\n"
            + table(["method", "T", "accuracy %", "train s", "peak RSS MB", "spikes/sample", "SNN uJ",
                     "same net as ANN uJ", "SNN/ANN energy", "quick overrides"], rows)
            + "\n\nEnergy: 45 nm model (MAC 4.6 pJ, AC 0.9 pJ); the first synaptic layer of a directly "
              "encoded SNN does T dense MACs, which is why short runs of small nets on 8x8 digits can cost "
              "more than the ANN.")
    write_section("run", "snnplug run (every method on digits)", body)
    print(body)


if __name__ == "__main__":
    main()
