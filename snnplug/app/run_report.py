"""``snnplug run``'s outputs from ``results.json``: the summary table, the plots and ``report.html``.

One row per method: accuracy after ``t = 1, 2, 4, ...`` steps up to the largest T of the run
(one simulation per method), the first ``t`` reaching 99% of the method's final accuracy,
training time and allocator peak, synaptic operations and energy per sample against the shared
backbone as an ANN. ``report.html`` is one self-contained file (plots embedded as PNG).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

ENERGY_NOTE = (
    "Energy is an estimate on the 45 nm CMOS figures of Horowitz (2014), 32-bit float: 4.6 pJ per "
    "multiply-accumulate (MAC), 0.9 pJ per accumulate (AC), the convention of BNTT (Kim & Panda 2021). "
    "It counts the synaptic operations of the convolution and linear layers only, per test sample: a layer "
    "fed spikes does one AC per input spike and connection, a layer fed real values one MAC per connection "
    "and step (so the first layer of a directly encoded SNN does T dense MACs, which is why a short, small "
    "network on 8x8 images can cost more than its ANN); the ANN is the same layers, one pass, all MACs. "
    "Neuron updates, normalisation (folded into the weights at inference), pooling and memory traffic are "
    "not counted.")


def checkpoint_ts(results: dict[str, Any]) -> list[int]:
    """``1, 2, 4, ...`` up to the largest T of any method, and that T."""
    top = max((r["T"] for r in results["methods"].values()), default=1)
    ts, t = [], 1
    while t < top:
        ts.append(t)
        t *= 2
    return ts + [top]


def t_to_99(curve: dict[str, float]) -> int:
    """First ``t`` whose accuracy reaches 99% of the accuracy at the last step."""
    final = curve[str(len(curve))]
    return next(int(t) for t, a in curve.items() if a >= 0.99 * final)


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and one row of strings per method (the table of the console, HTML and docs)."""
    ts = checkpoint_ts(results)
    heads = (["method", "network", "T"] + [f"acc t={t} %" for t in ts]
             + ["t to 99% of final", "train s", "train memory MiB", "synaptic ops/sample",
                "energy uJ", "backbone as ANN uJ", "SNN/ANN energy"])
    ann = results["backbone"]["ann_energy_uj"]
    rows = []
    for name, r in results["methods"].items():
        acc = r["accuracy_vs_T"]
        mem = r.get("train_memory_mb")
        rows.append([name, "shared" if r["shared_backbone"] else "own", str(r["T"])]
                    + [f"{100 * acc[str(t)]:.1f}" if str(t) in acc else "-" for t in ts]
                    + [str(t_to_99(acc)), f"{r['train_seconds']:.1f}", "n/a" if mem is None else f"{mem:.1f}",
                       f"{r['synaptic_ops']:.3g}", f"{r['energy_uj']:.3f}", f"{ann:.3f}",
                       f"{r['energy_uj'] / ann:.2f}x" if ann else "n/a"])
    return heads, rows


def energy_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Energy per sample (uJ) after ``t`` steps, one row per method."""
    ts = checkpoint_ts(results)
    rows = [[name] + [f"{r['energy_vs_T'][str(t)]['energy_uj']:.3f}" if str(t) in r["energy_vs_T"] else "-"
                      for t in ts] for name, r in results["methods"].items()]
    return ["method"] + [f"uJ at t={t}" for t in ts], rows


def _slug(text: str) -> str:
    s = "".join(c if c.isalnum() else "_" for c in text.lower())
    while "__" in s:
        s = s.replace("__", "_")
    return s.strip("_")


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _accuracy_plot(results: dict[str, Any], plt: Any) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results["methods"].items():
        acc = r["accuracy_vs_T"]
        ax.plot([int(t) for t in acc], [100 * a for a in acc.values()], marker=".", label=f"{name} (T={r['T']})")
    ax.set(xlabel="time steps t", ylabel="test accuracy (%)", title=f"Accuracy vs time steps ({results['dataset']})")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def _energy_plot(results: dict[str, Any], plt: Any) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results["methods"].items():
        pts = [(v["energy_uj"], 100 * r["accuracy_vs_T"][t]) for t, v in r["energy_vs_T"].items()]
        ax.plot(*zip(*pts), marker="o", label=name)
        for (e, a), t in zip(pts, r["energy_vs_T"]):
            ax.annotate(f"t={t}", (e, a), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.axvline(results["backbone"]["ann_energy_uj"], color="gray", ls="--", label="shared backbone as ANN")
    ax.set(xlabel="energy per sample (uJ, 45 nm estimate)", ylabel="test accuracy (%)",
           title=f"Accuracy vs energy ({results['dataset']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _rate_plot(results: dict[str, Any], plt: Any) -> bytes:
    n = len(results["methods"])
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], results["methods"].items()):
        rates = r["spike_rates"]
        ax.bar(range(len(rates)), [100 * v for v in rates.values()], color="tab:orange")
        ax.set_xticks(range(len(rates)), list(rates), rotation=45, fontsize=7)
        ax.set(title=name, xlabel="spiking layer", ylabel="firing rate (% per step)")
    fig.suptitle("Firing rate per layer")
    return _png(fig)


def _series_plot(name: str, title: str, series: dict[str, list[float]], plt: Any) -> bytes:
    """A method's own series; series titled '...accuracy...' are fractions, shown in percent."""
    percent = "accuracy" in title.lower()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), [100 * v if percent else v for v in values], marker=".", label=label)
    ax.set(xlabel="time step t", ylabel="accuracy (%)" if percent else title, title=f"{name}: {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def plots(results: dict[str, Any]) -> dict[str, bytes]:
    """``{file name: PNG bytes}``: accuracy vs T, accuracy vs energy, firing rates, method plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results["methods"]:
        return {}
    out = {"accuracy_vs_T.png": _accuracy_plot(results, plt), "accuracy_vs_energy.png": _energy_plot(results, plt),
           "firing_rate.png": _rate_plot(results, plt)}
    for name, r in results["methods"].items():
        for title, series in (r.get("extra") or {}).items():
            out[f"{_slug(name)}_{_slug(title)}.png"] = _series_plot(name, title, series, plt)
    return out


def _table(heads: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in heads)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def _networks(results: dict[str, Any]) -> str:
    bb = results["backbone"]
    parts = [f"<p><b>Shared backbone</b> ({html.escape(str(bb['spec']))}): "
             f"{html.escape(' - '.join(bb['layers']))}; as an ANN {bb['ann_macs']:.3g} MACs, "
             f"{bb['ann_energy_uj']:.3f} uJ per sample.</p><ul>"]
    for name, r in results["methods"].items():
        if r["shared_backbone"]:
            parts.append(f"<li>{html.escape(name)}: shared backbone; settings {html.escape(str(r['settings']))}, "
                         f"{r['epochs']} epochs</li>")
        else:
            why = r["own_network"] or "its plugin does not declare that it can train on the shared backbone"
            parts.append(f"<li>{html.escape(name)}: <b>own network</b> ({html.escape(' - '.join(r['network']))}) "
                         f"because {html.escape(why)}; settings {html.escape(str(r['settings']))}, "
                         f"{r['epochs']} epochs</li>")
    return "".join(parts) + "</ul>"


def html_report(results: dict[str, Any], images: dict[str, bytes]) -> str:
    """The self-contained ``report.html``."""
    heads, rows = summary_rows(results)
    eh, er = energy_rows(results)
    figs = "".join(f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode()}"><figcaption>{html.escape(n)}</figcaption></figure>'
                   for n, b in images.items())
    failed = "".join(f"<p class=err>{html.escape(n)} failed: {html.escape(e)}</p>" for n, e in results["failed"].items())
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}figure{display:inline-block}"
             "img{max-width:560px}.err{color:#b00}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>snnplug run: {html.escape(results['dataset'])}"
            f"</title><style>{style}</style></head><body><h1>snnplug run on {html.escape(results['dataset'])}</h1>"
            f"<p>{results['train_samples']} training and {results['test_samples']} test samples, device "
            f"{html.escape(results['device'])}, wall time {results['wall_seconds']:.0f} s.</p>"
            f"<h2>Summary</h2>{_table(heads, rows)}<p>Training memory: allocator peak of the training steps "
            f"(CPU: torch.profiler memory events of the first steps; CUDA: max_memory_allocated), not the "
            f"process.</p><h2>Energy after t steps</h2>{_table(eh, er)}<p>{html.escape(ENERGY_NOTE)}</p>"
            f"<h2>Networks</h2>{_networks(results)}{failed}<h2>Plots</h2>{figs}</body></html>")


def write(results: dict[str, Any], out: Path) -> list[str]:
    """Write the plots (PNG files) and ``report.html`` into ``out``; the plot file names."""
    images = plots(results)
    for name, data in images.items():
        (out / name).write_bytes(data)
    (out / "report.html").write_text(html_report(results, images), encoding="utf-8")
    return list(images)


def print_summary(results: dict[str, Any]) -> None:
    """The summary table on the console."""
    from rich.console import Console
    from rich.table import Table

    heads, rows = summary_rows(results)
    t = Table(title=f"snnplug run on {results['dataset']}")
    for h in heads:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    con = Console()
    if not con.is_terminal:  # a log file: do not squeeze the columns into 80 characters
        con = Console(width=220)
    con.print(t)
    for name, err in results.get("failed", {}).items():
        con.print(f"[red]{name} failed:[/red] {err}")
