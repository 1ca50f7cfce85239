"""``snnplug run``: every installed method on one dataset, like for like, in one report.

Each method trains on the dataset's shared backbone (``snnplug.models.backbone_for``: a small
convnet, or an MLP for flat inputs) with only its own changes (neurons, normaliser, encoding,
readout), unless its plugin declares that it needs its own network (the report says why and
shows the shared one). Settings and epochs come from the plugins' registrations (``run_settings``,
``run_epochs``) and are recorded in results.json. Each method runs in its own process, up to
--jobs at a time (one torch thread each by default), so its training memory is its own.

Writes into --out: results.json, report.html (self-contained: summary table, energy after t
steps, networks, plots embedded) and the plots as PNG files. One line per epoch is printed
(loss, accuracy in percent, time).

  snnplug run                                        # digits, every default method (< 1 min)
  snnplug run --dataset fashion-mnist --limit 4000   # 28x28, 4000 training images (minutes)
  snnplug run --epochs 10 --limit 20000              # longer runs: more epochs, more data
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2


def _parser() -> argparse.ArgumentParser:
    from snnplug import cliargs as ca

    p = ca.Parser(prog="snnplug run", description=(__doc__ or "").replace("``", ""),
                  formatter_class=ca.DefaultsHelp)
    p.add_argument("--dataset", default="digits", help="digits | fashion-mnist | mnist-idx | FOLDER | torchvision:NAME | tonic:NAME")
    p.add_argument("--data-root", default=None, help="folder holding the dataset files (default: the dataset's own place)")
    p.add_argument("--methods", default=None, help="comma-separated strategies (default: those registered with in_default_run)")
    p.add_argument("--T", type=ca.steps, default=None, help="time steps for every method (default: each method's run setting)")
    p.add_argument("--epochs", type=ca.positive_int, default=None,
                   help="epochs for every method (default: each method's run_epochs; more epochs, higher accuracy)")
    p.add_argument("--limit", type=ca.positive_int, default=None,
                   help="use only this many training samples, and a fifth as many test samples (default: all)")
    p.add_argument("--batch-size", type=ca.positive_int, default=64, help="training batch size")
    p.add_argument("--device", type=ca.device, default="cpu", help="torch device")
    p.add_argument("--seed", type=ca.nonnegative_int, default=0, help="seed of data order and weights")
    p.add_argument("--jobs", type=ca.positive_int, default=None,
                   help="methods trained at once, one process each (default: the CPU cores available, at most 2 on a GPU)")
    p.add_argument("--threads", type=ca.positive_int, default=1, help="torch threads per method")
    p.add_argument("--out", default="runs/run", help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they show only on a terminal with --jobs 1)")
    return p


def _methods(arg: str | None) -> list[str]:
    import snnplug
    from snnplug.errors import SnnplugError

    registry = snnplug.get_registry()
    installed = set(registry.names("strategy"))
    if not arg:
        return [m for m in sorted(installed) if registry.get("strategy", m).in_default_run]
    methods = [m.strip() for m in arg.split(",") if m.strip()]
    unknown = [m for m in methods if m not in installed]
    if unknown:
        raise SnnplugError(f"unknown method(s) {unknown}; installed strategies: {sorted(installed)}")
    return methods


def _backbone(bundle: Any) -> dict[str, Any]:
    """The shared backbone of ``bundle`` as an ANN (ReLU): its layers, MACs and energy per sample."""
    import torch
    from torch import nn

    from snnplug.app.run_method import synaptic_layers
    from snnplug.engine.energy import E_MAC_PJ, ann_energy_uj_per_sample
    from snnplug.models import backbone, backbone_for

    spec = backbone_for(bundle.input_shape)
    ann = backbone(bundle.input_shape, bundle.num_classes, activation=nn.ReLU, **spec).eval()
    uj = ann_energy_uj_per_sample(ann, torch.zeros(2, *bundle.input_shape))
    return {"spec": spec, "layers": synaptic_layers(ann), "ann_energy_uj": uj, "ann_macs": uj * 1e6 / E_MAC_PJ}


def _jobs(args: argparse.Namespace, n_methods: int) -> int:
    if args.jobs:
        return args.jobs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = 2 if args.device != "cpu" else cores // max(1, args.threads)
    return max(1, min(n_methods, cap))


def _run_all(methods: list[str], opts: dict[str, Any], jobs: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Each method in a spawned process (a pipe returns its result; no pool, no semaphores), up
    to ``jobs`` at once; results in the order of ``methods``."""
    from snnplug.app.run_method import child

    ctx = mp.get_context("spawn")
    pending, running = list(methods), {}
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=child, args=(name, opts, send), name=f"snnplug-run-{name}")
            proc.start()
            send.close()
            running[recv] = (name, proc)
            print(f"== {name} started", flush=True)
        for conn in wait(list(running)):
            name, proc = running.pop(conn)
            try:
                status, value = conn.recv()
            except EOFError:
                status, value = "error", "the process ended without a result"
            conn.close()
            proc.join()
            if status == "ok":
                done[name] = value
            else:
                failed[name] = value if proc.exitcode == 0 else f"{value} (exit status {proc.exitcode})"
    return {m: done[m] for m in methods if m in done}, failed


def main(argv: list[str] | None = None) -> int:
    from snnplug.app import run_report
    from snnplug.data import load_dataset

    args = _parser().parse_args(argv)
    methods = _methods(args.methods)
    bundle = load_dataset(args.dataset, args.data_root, limit=args.limit)  # refuses a bad dataset once, here
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(args, len(methods))
    opts = {"dataset": args.dataset, "data_root": args.data_root, "T": args.T, "epochs": args.epochs,
            "batch_size": args.batch_size, "limit": args.limit, "device": args.device, "seed": args.seed,
            "threads": args.threads, "progress": not args.no_progress and jobs == 1 and sys.stdout.isatty()}
    results: dict[str, Any] = {"schema": SCHEMA_VERSION, "dataset": args.dataset, "device": args.device,
                               "train_samples": len(bundle.train), "test_samples": len(bundle.test),
                               "input_shape": list(bundle.input_shape), "jobs": jobs, "threads": args.threads,
                               "epochs": args.epochs, "backbone": _backbone(bundle)}
    t0 = time.perf_counter()
    results["methods"], results["failed"] = _run_all(methods, opts, jobs)
    results["wall_seconds"] = time.perf_counter() - t0
    results["energy_note"] = run_report.ENERGY_NOTE
    (out / "results.json").write_text(json.dumps(results, indent=2))  # kept even if a plot fails
    results["plots"] = run_report.write(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    run_report.print_summary(results)
    print(f"report: {out / 'report.html'}; results: {out / 'results.json'}; wall time {results['wall_seconds']:.0f} s")
    return 1 if results["failed"] else 0
