"""Time `snnplug run` as a user runs it and record its summary table in docs/benchmarks.md.

    python benchmarks/run.py [--part digits|fashion|all]

* digits: `snnplug run` (defaults: every default method, digits, each method's run settings);
  targets: whole run <= 60 s on 2 CPU cores, every method >= 90% test accuracy.
* fashion: `snnplug run --dataset fashion-mnist --limit 4000` (4000 training, 800 test images,
  28x28; IDX files from the Debian package); target: <= 6 minutes on 2 CPU cores.

Wall time is that of the whole command (a fresh `python -m snnplug run` process: imports,
data, every method, report). Run it under `cpuslot -2` (both cores, nothing else running).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section  # noqa: E402

PARTS = {
    "digits": ([], 60.0, "run", "snnplug run on digits (every default method, shared backbone)"),
    "fashion": (["--dataset", "fashion-mnist", "--limit", "4000"], 360.0, "run-fashion",
                "snnplug run on Fashion-MNIST, 4000 training images"),
}


def _run(extra: list[str]) -> tuple[float, int, dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "snnplug", "run", "--out", tmp, *extra]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if not (Path(tmp) / "results.json").exists():
            raise RuntimeError(f"snnplug run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return wall, out.returncode, json.loads((Path(tmp) / "results.json").read_text()), out.stderr


def _body(part: str, wall: float, rc: int, res: dict, stderr: str) -> str:
    from snnplug.app.run_report import ENERGY_NOTE, energy_rows, summary_rows

    extra, target, _, _ = PARTS[part]
    heads, rows = summary_rows(res)
    eh, er = energy_rows(res)
    low = [n for n, m in res["methods"].items() if m["accuracy"] < 0.9]
    settings = [[n, m["T"], m["epochs"], json.dumps(m["settings"])] for n, m in res["methods"].items()]
    bb = res["backbone"]
    acc = (f"; every method >= 90%: {'met' if not low else '**missed** (' + ', '.join(low) + ')'}"
           if part == "digits" else "")
    return (f"`snnplug run {' '.join(extra)}`: whole command **{wall:.0f} s** wall (target <= {target:.0f} s on 2 "
            f"CPU cores: {'met' if wall <= target else '**missed**'}){acc}; {res['train_samples']} training / "
            f"{res['test_samples']} test samples, {res['jobs']} methods at a time, 1 torch thread each; exit status "
            f"{rc}; failed: {res['failed'] or 'none'}; stderr {'empty' if not stderr.strip() else 'NOT empty'}.\n\n"
            f"Shared backbone {bb['spec']}: {' - '.join(bb['layers'])}; as an ANN {bb['ann_macs']:.3g} MACs, "
            f"{bb['ann_energy_uj']:.3f} uJ per sample.\n\n" + table(heads, rows)
            + "\n\nEnergy per sample after t steps (uJ):\n\n" + table(eh, er)
            + "\n\nSettings (registration `run_settings` + the backbone):\n\n"
            + table(["method", "T", "epochs", "settings"], settings) + f"\n\n{ENERGY_NOTE}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    args = ap.parse_args()
    for part in PARTS if args.part == "all" else [args.part]:
        extra, _, key, title = PARTS[part]
        wall, rc, res, stderr = _run(extra)
        body = _body(part, wall, rc, res, stderr)
        write_section(key, title, body, command=f"python benchmarks/run.py --part {part}")
        print(body, flush=True)


if __name__ == "__main__":
    main()
