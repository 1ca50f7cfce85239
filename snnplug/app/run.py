"""``snnplug run``: train/convert every installed method on one dataset; tables, JSON and plots.

Each method runs in its own spawned process so its peak memory is its own. A strategy's
``quick_overrides`` (settings for a few epochs on small data, e.g. a larger learning rate than a
200-epoch paper schedule) are applied and recorded in ``results.json``. Per method:
accuracy at its inference T and after every step t <= T (one simulation), training wall time,
peak resident memory, spikes per sample, the 45 nm energy estimate against the same network as
an ANN, spike rate per layer, and method-specific series (``Strategy.report``). Writes
``results.json`` and PNG plots to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_method(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one method (runs inside a fresh process)."""
    import torch

    import snnplug
    from snnplug.data import load_dataset, make_loaders
    from snnplug.engine import TrainConfig, evaluate_anytime, train
    from snnplug.engine.energy import record_energy
    from snnplug.engine.seed import seed_everything
    from snnplug.strategies import Reporting

    torch.set_num_threads(opts["threads"])
    base_rss = _rss_mb()
    kw = {"T": opts["T"]} if opts.get("T") else {}
    probe = snnplug.strategy(name, **kw)
    quick = dict(probe.quick_overrides) if isinstance(probe, Reporting) else {}
    bundle = load_dataset(opts["dataset"], opts.get("data_root"), limit=opts.get("limit"), T=probe.T)
    strategy = snnplug.strategy(name, **{**quick, **kw}, frames=bundle.frames)
    seed_everything(opts["seed"])
    model = strategy.build_model(bundle.input_shape, bundle.num_classes)
    T = strategy.inference_T
    epochs = opts["epochs"]
    res = train(strategy, model, bundle, TrainConfig(
        epochs=epochs, batch_size=opts["batch_size"], seed=opts["seed"], device=opts["device"],
        eval_T=[T], progress=opts["progress"]))
    model.eval()

    _, test = make_loaders(bundle, eval_batch_size=512)
    curve = evaluate_anytime(strategy, model, test, T, device=opts["device"])
    acc_vs_t = {str(t + 1): a for t, a in enumerate(curve)}

    x, y = next(iter(test))
    x, y = x[:256].to(opts["device"]), y[:256].to(opts["device"])
    snn = strategy.inference_model(model)
    with torch.no_grad(), record_energy(snn, batch=len(x), steps=T) as rep:
        strategy.predict(model, x, T=T)
    ann_uj, snn_uj = rep.ann_pj / 1e6, rep.snn_pj / 1e6  # per sample; the ANN: the same layers, one pass
    extra = strategy.report(model, x, y) if isinstance(strategy, Reporting) else {}
    return {
        "strategy": name, "config": strategy.config(), "quick_overrides": quick, "T": T, "epochs": epochs,
        "accuracy": acc_vs_t[str(T)], "accuracy_vs_T": acc_vs_t,
        "train_seconds": res.train_seconds, "peak_rss_mb": _rss_mb(), "base_rss_mb": base_rss,
        "spikes_per_sample": rep.spikes, "spike_rates": rep.spike_rates,
        "energy_uj": snn_uj, "ann_energy_uj": ann_uj,
        "energy_ratio": snn_uj / ann_uj if ann_uj else None,
        "history": res.history, "extra": extra,
    }


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    methods = results["methods"]

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in methods.items():
        ts = [int(t) for t in r["accuracy_vs_T"]]
        ax.plot(ts, [100 * a for a in r["accuracy_vs_T"].values()], marker=".", label=f"{name} (T={r['T']})")
    ax.set(xlabel="time steps t", ylabel="test accuracy (%)", title=f"Accuracy vs T ({results['dataset']})")
    ax.grid(alpha=0.3)
    ax.legend()
    files.append(_save(fig, out / "accuracy_vs_T.png"))

    n = len(methods)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], methods.items()):
        rates = r["spike_rates"]
        ax.bar(range(len(rates)), [100 * v for v in rates.values()], color="tab:orange")
        ax.set_xticks(range(len(rates)), list(rates), rotation=45, fontsize=7)
        ax.set(title=name, xlabel="spiking layer", ylabel="firing rate (% per step)")
    fig.suptitle("Firing rate per layer")
    files.append(_save(fig, out / "firing_rate.png"))

    for name, r in methods.items():
        for title, series in (r.get("extra") or {}).items():
            fig, ax = plt.subplots(figsize=(6.5, 4))
            for label, values in series.items():
                ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
            ax.set(xlabel="time step t", title=f"{name}: {title}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            slug = "".join(c if c.isalnum() else "_" for c in f"{name}_{title}").strip("_").lower()
            files.append(_save(fig, out / f"{slug}.png"))
    return files


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def _print_tables(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    for name, r in results["methods"].items():
        t = Table(title=f"{name} on {results['dataset']}", show_header=False)
        t.add_column("metric")
        t.add_column("value")
        rows = [("accuracy", f"{100 * r['accuracy']:.2f}%"), ("T", r["T"]), ("epochs", r["epochs"]),
                ("training wall time", f"{r['train_seconds']:.1f} s"),
                ("peak memory (process RSS)", f"{r['peak_rss_mb']:.0f} MB"),
                ("spikes per sample", f"{r['spikes_per_sample']:.0f}"),
                ("energy per sample", f"{r['energy_uj']:.3f} uJ"),
                ("same net as ANN", f"{r['ann_energy_uj']:.3f} uJ"),
                ("energy vs ANN", f"{r['energy_ratio']:.3f}x" if r["energy_ratio"] else "n/a")]
        for k, v in rows:
            t.add_row(k, str(v))
        con.print(t)
    for name, err in results.get("failed", {}).items():
        con.print(f"[red]{name} failed:[/red] {err}")


def main(argv: list[str] | None = None) -> int:
    import snnplug
    from snnplug import cliargs as ca
    from snnplug.errors import SnnplugError

    p = ca.Parser(prog="snnplug run", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-root", default=None)
    p.add_argument("--methods", default=None, help="comma-separated strategies (default: those registered with in_default_run)")
    p.add_argument("--T", type=ca.steps, default=None, help="time steps for every method (default: each method's)")
    p.add_argument("--epochs", type=ca.positive_int, default=3)
    p.add_argument("--batch-size", type=ca.positive_int, default=64)
    p.add_argument("--limit", type=ca.positive_int, default=None)
    p.add_argument("--device", type=ca.device, default="cpu")
    p.add_argument("--seed", type=ca.nonnegative_int, default=0)
    p.add_argument("--threads", type=ca.nonnegative_int, default=1, help="torch threads per method (1 avoids oversubscription stalls on small models)")
    p.add_argument("--out", default="runs/run")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    registry = snnplug.get_registry()
    installed = set(registry.names("strategy"))
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in methods if m not in installed]
        if unknown:
            raise SnnplugError(f"unknown method(s) {unknown}; installed strategies: {sorted(installed)}")
    else:
        methods = [m for m in sorted(installed) if registry.get("strategy", m).in_default_run]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = {"dataset": args.dataset, "data_root": args.data_root, "T": args.T, "epochs": args.epochs,
            "batch_size": args.batch_size, "limit": args.limit, "device": args.device, "seed": args.seed,
            "threads": args.threads, "progress": not args.no_progress}
    results: dict[str, Any] = {"schema": SCHEMA_VERSION, "dataset": args.dataset, "device": args.device,
                               "epochs": args.epochs, "methods": {}, "failed": {}}
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    for name in methods:
        print(f"== {name}", flush=True)
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            try:
                results["methods"][name] = pool.apply(run_method, (name, opts))
            except SnnplugError:
                raise
            except Exception as exc:  # one broken method must not lose the others' results
                results["failed"][name] = f"{type(exc).__name__}: {exc}"
    results["wall_seconds"] = time.perf_counter() - t0
    results["plots"] = _plots(results, out) if results["methods"] else []
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _print_tables(results)
    print(f"results: {out / 'results.json'}; plots: {', '.join(results['plots'])}; "
          f"wall time {results['wall_seconds']:.0f} s")
    return 1 if results["failed"] else 0
