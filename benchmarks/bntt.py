"""BNTT benchmarks (Kim & Panda 2021), in DSR's style (issue 21).

``--part accuracy`` (section "bntt" of docs/benchmarks.md), the paper's setting at CPU scale:
signed Poisson input drawn fresh every step, BNTT LIF neurons (leak 0.99, soft reset),
accumulating output, T=25, SGD lr 0.1 momentum 0.9 wd 5e-4 cosine, batch 64.

1. Budget: the number of epochs (over the first ``Budget.train`` training images) for each
   normalisation is chosen on a validation split (images 50000-54999 of the training file,
   never trained on) from seed-0 runs; then 3 seeds per normalisation at the chosen budget,
   scored once on the full 10000-image test set; BNTT minus BN per seed (same initial
   weights of the shared layers and the same batch order), mean +- standard error.
2. Early exit: per seed the γ threshold is chosen on the validation split (most steps saved for
   <= 0.5 points below the full-T validation accuracy) and applied once to the test set.
3. The paper's Fig. 3: mean γ per BNTT layer and step after training (seed 0).
4. Energy: the engine's 45 nm model (``snnplug.engine.energy``) against the same net as an ANN.
5. The paper's Fig. 1: spike rate per spiking layer and step (seed 0 of each normalisation).

``--norms`` adds the paper's own baseline, the same net without normalisation ("w.o. BNTT",
Table 1); ``--channels`` a deeper conv stack; ``--T``/``--epochs`` another latency and budget.

``--part gamma [--epochs 16]`` (section "bntt-gamma-T25"): BNTT alone, seed 0, trained longer
than the accuracy protocol; the paper's Fig. 3 (mean γ per layer and step) after several epochs,
next to what weight decay alone does to a γ without gradient.

``--part speed`` (section "bntt-speed"): forward+backward of the ``bntt`` layer against
SpikingJelly's ``BatchNormThroughTime2d`` (same eps) at T=25; target <= 0.33x.

    python benchmarks/bntt.py --part accuracy [--resume]   # every finished run is cached
    python benchmarks/bntt.py --part gamma --epochs 16 --resume
    python benchmarks/bntt.py --part speed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cache  # noqa: E402
from _report import table, write_section  # noqa: E402


def time_fb(fn, x, g, reps: int) -> float:
    """Median seconds of ``fn(x).backward(g)``."""
    for _ in range(2):
        fn(x).backward(g)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x).backward(g)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_speed(quick: bool) -> tuple[str, list[float]]:
    from spikingjelly.activation_based import functional, layer

    from snnplug_bntt.norm import BNTT

    T = 25
    shapes = [(32, 64, 16, 16), (64, 32, 28, 28), (16, 128, 8, 8)] if not quick else [(32, 64, 16, 16)]
    rows, ratios = [], []
    for B, C, H, W in shapes:
        torch.manual_seed(0)
        x = torch.randn(T, B, C, H, W, requires_grad=True)
        g = torch.randn(T, B, C, H, W)
        ours = BNTT(C, T=T, eps=1e-4)
        sj = layer.BatchNormThroughTime2d(T, C, eps=1e-4, step_mode="m")

        def run_sj(inp):
            functional.reset_net(sj)
            return sj(inp)

        def run_ours(inp):
            ours.reset()
            return ours(inp)

        reps = 3 if quick else 7
        t_sj = time_fb(run_sj, x, g, reps)
        t_ours = time_fb(run_ours, x, g, reps)
        ratio = t_ours / t_sj
        ratios.append(ratio)
        rows.append([f"[{T}, {B}, {C}, {H}, {W}]", f"{t_sj * 1e3:.1f}", f"{t_ours * 1e3:.1f}", f"{ratio:.2f}x",
                     "met" if ratio <= 0.33 else "**missed**"])
        print(f"speed {B}x{C}x{H}x{W}: SJ {t_sj * 1e3:.1f} ms, bntt {t_ours * 1e3:.1f} ms, ratio {ratio:.3f}")
    body = ("Forward+backward, training mode, median of repeated runs, torch threads = 1.\n\n"
            + table(["input [T,B,C,H,W]", "SpikingJelly BatchNormThroughTime2d (ms)", "snnplug bntt (ms)",
                     "ratio", "target <= 0.33x"], rows))
    return body, ratios


ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "bntt"
VAL = (50000, 55000)  # validation images of the training file (never trained on)
SEEDS = (0, 1, 2)
NORMS = {"bntt": "BNTT (per-step γ and statistics)", "bn": "ordinary BatchNorm (shared over time)",
         "none": "no normalisation (the paper's 'w.o. BNTT')"}
SHORT = {"bntt": "BNTT", "bn": "BN", "none": "no normalisation"}  # in sentences


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every accuracy run shares; ``epochs`` is chosen per normalisation from ``candidates``."""

    train: int = 12000
    T: int = 25
    channels: tuple[int, ...] = (8, 16)
    hidden: int = 128
    batch: int = 64
    lr: float = 0.1
    val: int = 5000
    test: int | None = None  # None: all 10000 test images
    candidates: tuple[int, ...] = (2, 4)


QUICK = Budget(train=320, T=4, val=200, test=200, candidates=(1, 2))


def make_strategy(b: Budget):
    import snnplug

    return snnplug.strategy("bntt", T=b.T, channels=b.channels, hidden=b.hidden, lr=b.lr)


def energy_of(strategy, model, x: torch.Tensor, T: int) -> dict:
    """The engine's 45 nm energy model on ``x`` in inference mode (JSON-ready)."""
    from snnplug.engine.energy import measure

    model.eval()
    torch.manual_seed(3000)
    rep = measure(model, strategy.encode(x, T))
    return {"layers": [[str(l.name), int(l.macs), l.rate, l.snn_pj(), l.ann_pj()] for l in rep.layers],
            "rates": {str(k): float(v) for k, v in rep.spike_rates.items()}, "snn_pj": rep.snn_pj,
            "ann_pj": rep.ann_pj, "images": len(x)}


@torch.no_grad()
def rates_per_step(strategy, model, x: torch.Tensor, T: int) -> list[list[float]]:
    """The paper's Fig. 1: spike rate of every spiking layer at every step, ``[layer][t]``
    (spikes / neurons, inference mode, one simulation of ``x``)."""
    from snnplug.backends.spikingjelly import is_spiking_neuron, reset

    model.eval()
    seqs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seqs.append(out.detach().flatten(1).mean(1)))
             for m in model.modules() if is_spiking_neuron(m)]
    try:
        torch.manual_seed(4000)
        reset(model)
        model(strategy.encode(x, T))
    finally:
        reset(model)
        for h in hooks:
            h.remove()
    return [s.tolist() for s in seqs]


def train_net(norm: str, seed: int, epochs: int, b: Budget, callbacks: tuple = ()) -> tuple:
    """One net of ``norm`` built and trained by the engine on the budget's images, seeded by
    ``seed`` (weights and batch order): ``(strategy, model, train result, dataset)``."""
    from torch.utils.data import DataLoader, TensorDataset

    from snnplug.data import load_dataset
    from snnplug.engine import TrainConfig, train

    data = load_dataset("fashion-mnist")
    X, Y = data.train.tensors
    st = make_strategy(b)
    torch.manual_seed(seed)
    model = st.build_model(data.input_shape, data.num_classes, norm=norm)
    loader = DataLoader(TensorDataset(X[: b.train], Y[: b.train]), batch_size=b.batch, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    res = train(st, model, loader, TrainConfig(epochs=epochs, seed=None, progress=False), callbacks=list(callbacks))
    return st, model, res, data


def one_run(norm: str, seed: int, epochs: int, b: Budget) -> dict:
    """Train one net with the engine; accuracy after every step on validation and test."""
    from snnplug.engine import evaluate_anytime
    from snnplug.engine.evaluate import batches
    from snnplug_bntt.early_exit import gamma_profile

    st, model, res, data = train_net(norm, seed, epochs, b)
    X, Y = data.train.tensors
    val = (X[VAL[0]:VAL[0] + b.val], Y[VAL[0]:VAL[0] + b.val])
    test = tuple(t[: b.test or len(t)] for t in data.test.tensors)
    out = {"norm": norm, "seed": seed, "epochs": epochs, "steps": res.steps, "train_s": res.train_seconds,
           "train_cpu_s": res.train_cpu_seconds}
    torch.manual_seed(1000 + seed)  # the Poisson input of the evaluation
    out["val_curve"] = evaluate_anytime(st, model, batches(val, 500), b.T)
    torch.manual_seed(2000 + seed)
    out["test_curve"] = evaluate_anytime(st, model, batches(test, 500), b.T)
    if norm == "bntt":
        out["gamma"] = gamma_profile(model).tolist()
    out["energy"] = energy_of(st, model, test[0][:200], b.T)
    out["rates_t"] = rates_per_step(st, model, test[0][:500], b.T)
    return out


def cached_run(norm: str, seed: int, epochs: int, b: Budget, resume: bool) -> dict:
    """:func:`one_run`, from benchmarks/.cache/bntt with ``--resume`` when it finished before."""
    setting = {k: v for k, v in dataclasses.asdict(b).items() if k != "candidates"}  # a protocol choice, not the run's
    key = json.dumps([norm, seed, epochs, setting], sort_keys=True)
    path = _cache.cache_file(CACHE, key)
    if resume and path.exists():
        r = _cache.load(path)
    else:
        r = one_run(norm, seed, epochs, b)
        _cache.save(path, r)
    print(f"  {norm} seed {seed} {epochs} ep: val {100 * r['val_curve'][-1]:.2f}%, test "
          f"{100 * r['test_curve'][-1]:.2f}% ({r['train_cpu_s']:.0f} s CPU training)", flush=True)
    return r


def mean_se(vals: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    return statistics.mean(vals), (statistics.stdev(vals) / len(vals) ** 0.5 if len(vals) > 1 else float("nan"))


def choose_exit(profile: torch.Tensor, val_curve: list[float], T: int) -> tuple[float, int]:
    """The γ threshold (and its exit step) saving the most steps for <= 0.5 points below the
    full-T validation accuracy (thresholds: every distinct per-step max of the layer means)."""
    from snnplug_bntt.early_exit import exit_step_from_profile

    best = (0.0, T)
    for th in sorted({float(v) for v in profile.max(0).values.tolist()}):
        t = min(T, exit_step_from_profile(profile, th))
        if 100 * (val_curve[-1] - val_curve[t - 1]) <= 0.5 and t < best[1]:
            best = (th, t)
    return best


def fixed_exit(val_curve: list[float], T: int) -> int:
    """Reference without γ: the first step whose validation accuracy is within 0.5 points of full T."""
    return next(t for t in range(1, T + 1) if 100 * (val_curve[-1] - val_curve[t - 1]) <= 0.5)


def select_budget(b: Budget, norms: tuple[str, ...], resume: bool) -> tuple[dict[str, int], str, dict]:
    """Seed-0 runs at every candidate budget; per normalisation the best validation accuracy."""
    runs = {(n, e): cached_run(n, 0, e, b, resume) for e in b.candidates for n in norms}
    chosen = {n: max(b.candidates, key=lambda e: (runs[(n, e)]["val_curve"][-1], -e)) for n in norms}
    rows = [[NORMS[n], e, runs[(n, e)]["steps"], f"{100 * runs[(n, e)]['val_curve'][-1]:.2f}",
             "**chosen**" if chosen[n] == e else ""] for n in norms for e in b.candidates]
    fixed = (f"One budget given (`--epochs {b.candidates[0]}`), not chosen here; shown for reference. "
             if len(b.candidates) == 1 else "")
    body = (fixed + f"Seed 0, every candidate budget, scored on images {VAL[0]}-{VAL[0] + b.val - 1} of the training "
            f"file (validation, never trained on); per normalisation the budget with the best validation "
            f"accuracy at T={b.T} (ties: the shorter):\n\n"
            + table(["normalisation", "epochs", "SGD steps", f"validation accuracy at T={b.T} (%)", ""], rows))
    return chosen, body, runs


def accuracy_rows(by: dict[str, list[dict]], T: int) -> tuple[list[list[str]], dict[str, list[float]]]:
    """Test accuracy per normalisation (mean, sd, per seed, at a few t) and, per other
    normalisation, BNTT minus it per seed."""
    ts = sorted({t for t in (1, 2, 5, 10, 15, 20, T) if t <= T})
    rows = []
    for n, rs in by.items():
        accs = [100 * r["test_curve"][-1] for r in rs]
        rows.append([NORMS[n], rs[0]["epochs"], f"{statistics.mean(accs):.2f}", f"{statistics.stdev(accs):.2f}"
                     if len(accs) > 1 else "", " / ".join(f"{a:.2f}" for a in accs)]
                    + [f"{statistics.mean(100 * r['test_curve'][t - 1] for r in rs):.2f}" for t in ts]
                    + [f"{statistics.mean(r['train_cpu_s'] for r in rs):.0f}"])
    diffs = {n: [100 * (a["test_curve"][-1] - c["test_curve"][-1]) for a, c in zip(by["bntt"], rs, strict=True)]
             for n, rs in by.items() if n != "bntt"}
    return rows, diffs


def early_exit_rows(rs: list[dict], T: int) -> tuple[list[list[str]], list[float], list[float]]:
    """Per seed: threshold and exit step chosen on validation, applied once to test."""
    rows, saved, loss = [], [], []
    for r in rs:
        th, t = choose_exit(torch.tensor(r["gamma"]), r["val_curve"], T)
        tf = fixed_exit(r["val_curve"], T)
        tc = r["test_curve"]
        saved.append(100 * (1 - t / T))
        loss.append(100 * (tc[-1] - tc[t - 1]))
        rows.append([r["seed"], f"{th:.4f}", f"{t}/{T}", f"{saved[-1]:.0f}%",
                     f"{100 * (r['val_curve'][-1] - r['val_curve'][t - 1]):+.2f}", f"{loss[-1]:+.2f}",
                     f"{tf}/{T}", f"{100 * (tc[-1] - tc[tf - 1]):+.2f}"])
    return rows, saved, loss


def gamma_section(r: dict) -> tuple[str, float]:
    """The paper's Fig. 3 (mean γ per BNTT layer and step) for one run, as a table."""
    prof = torch.tensor(r["gamma"])
    rows = [[f"layer {i}"] + [f"{v:.3f}" for v in row] for i, row in enumerate(prof.tolist())]
    spread = float(prof.max() - prof.min())
    return (f"Mean γ per BNTT layer and step (the paper's Fig. 3), seed {r['seed']} after {r['epochs']} epochs "
            f"({r['steps']} SGD steps; γ starts at 1 everywhere):\n\n"
            + table(["layer"] + [str(t + 1) for t in range(prof.shape[1])], rows)
            + f"\n\nSpread (max - min) of the profile: {spread:.3f}; first-step vs last-step mean γ per layer: "
            + ", ".join(f"{row[0]:.3f} -> {row[-1]:.3f}" for row in prof.tolist()) + ".", spread)


def energy_section(by: dict[str, list[dict]], T: int, t_exit: float) -> tuple[str, float]:
    """The engine's energy model for BNTT (seed 0) and the ratios over seeds."""
    e = by["bntt"][0]["energy"]
    rows = [[l[0], l[1], "dense" if l[2] is None else f"{l[2]:.4f}", f"{l[3] / 1e6:.3f}", f"{l[4] / 1e6:.3f}"]
            for l in e["layers"]]
    ratios = {n: [r["energy"]["ann_pj"] / r["energy"]["snn_pj"] for r in rs] for n, rs in by.items()}
    m = statistics.mean(ratios["bntt"])
    others = "; ".join(f"{SHORT[n]} " + " / ".join(f"{v:.2f}x" for v in ratios[n])
                       for n in by if n != "bntt")
    return (f"`snnplug.engine.energy` (45 nm: MAC 4.6 pJ, AC 0.9 pJ), {e['images']} test images, T={T}, "
            f"inference mode. BNTT seed 0, spike rates per neuron and step: "
            + ", ".join(f"{k}: {v:.4f}" for k, v in e["rates"].items()) + "\n\n"
            + table(["layer", "MACs/sample/step", "input event rate", "SNN µJ/sample", "ANN µJ/sample"], rows)
            + f"\n\nE_ANN / E_SNN at T={T}, per seed: BNTT " + " / ".join(f"{v:.2f}x" for v in ratios["bntt"])
            + f" (mean **{m:.2f}x**); {others}"
            + f"; at the mean early-exit step {t_exit:.1f} about {m * T / t_exit:.2f}x (energy scaled by "
              f"steps, equal rates assumed). Paper (VGG9, CIFAR-10, T=25): 9.14x. The ANN pass costs "
              f"MACs x 4.6 pJ; the SNN pays 0.9 pJ per event per step, so at T={T} it wins only where the "
              f"event rate stays below {4.6 / 0.9 / T:.3f} per step; the first layer's input is signed "
              f"Poisson spikes of the normalised image, so it counts as events too.", m)


def rates_section(by: dict[str, list[dict]], T: int) -> str:
    """The paper's Fig. 1 as a table: spike rate per spiking layer at a few steps, seed 0 of each
    normalisation ('' when these runs predate the measurement)."""
    if not all("rates_t" in rs[0] for rs in by.values()):
        return ""
    ts = sorted({t for t in (1, 2, 3, 5, 10, 15, 20, T) if t <= T})
    rows = [[NORMS[n].split(" (")[0], f"spiking layer {i + 1}"] + [f"{row[t - 1]:.3f}" for t in ts]
            for n, rs in by.items() for i, row in enumerate(rs[0]["rates_t"])]
    return ("\n\n### 5. Spike rate per layer and step (the paper's Fig. 1)\n\nSeed 0 of each normalisation, "
            "500 test images, inference mode: spikes / neurons of each spiking layer at step t.\n\n"
            + table(["normalisation", "layer"] + [f"t={t}" for t in ts], rows))


def layout(b: Budget) -> str:
    """The net as text, e.g. ``conv8-pool-conv16-pool-fc128-fc10`` (pooling after the first two convs)."""
    convs = [f"conv{c}" + ("-pool" if i < 2 else "") for i, c in enumerate(b.channels)]
    return "-".join(convs + [f"fc{b.hidden}", "fc10"])


def verdict_rows(diffs: dict[str, list[float]]) -> list[list[str]]:
    """One summary row per comparison: BNTT minus BN / minus no normalisation, > 2 SE?"""
    rows = []
    for n, d in diffs.items():
        m, se = mean_se(d)
        baseline = " (the paper's Table 1 baseline)" if n == "none" else ""
        rows.append([f"BNTT > {SHORT[n]}{baseline} at equal T by more than two standard errors (test, 3 seeds)",
                     f"{m:+.2f} ± {se:.2f} points", "met" if m > 2 * se else "**missed**"])
    return rows


def accuracy_part(b: Budget, resume: bool, norms: tuple[str, ...] = ("bntt", "bn")) -> str:
    """Budget selection, 3 seeds per normalisation, early exit, Fig. 3, energy -> Markdown."""
    print(f"budget selection: {b}, normalisations {norms}", flush=True)
    chosen, sel_body, sel_runs = select_budget(b, norms, resume)
    by = {n: [sel_runs[(n, chosen[n])] if s == 0 else cached_run(n, s, chosen[n], b, resume) for s in SEEDS]
          for n in norms}
    rows, diffs = accuracy_rows(by, b.T)
    ts = sorted({t for t in (1, 2, 5, 10, 15, 20, b.T) if t <= b.T})
    ee_rows, saved, loss = early_exit_rows(by["bntt"], b.T)
    g_body, g_spread = gamma_section(by["bntt"][0])
    t_exit = statistics.mean(b.T * (1 - s / 100) for s in saved)
    en_body, en = energy_section(by, b.T, t_exit)
    ok_ee = statistics.mean(saved) >= 15 and statistics.mean(loss) <= 0.5
    setting = (f"Fashion-MNIST: first {b.train} training images, batch {b.batch}, T={b.T}; signed Poisson input "
               f"(fresh every step), {layout(b)} with BNTT LIF neurons (leak 0.99, threshold 1, soft reset) and "
               f"an accumulating output; SGD lr {b.lr} momentum 0.9 wd 5e-4 cosine; trained by "
               f"`snnplug.engine.train`, one torch thread. 'BN' is the same net with SpikingJelly's "
               f"BatchNorm2d/1d (one set of statistics and affine parameters shared by all steps); 'no "
               f"normalisation' is the same net without any (conv/linear biases on). Test: {b.test or 10000} "
               f"test images, scored once per run.")
    summary = table(["target", "measured", "status"], verdict_rows(diffs) + [
        [">= 15% of steps saved for <= 0.5 points (threshold from validation, test)",
         f"{statistics.mean(saved):.0f}% saved, {statistics.mean(loss):+.2f} points (means over seeds)",
         "met" if ok_ee else "**missed**"],
        ["γ moves during training (Fig. 3)", f"profile spread {g_spread:.3f}", "reported"],
        ["energy vs the ANN", f"{en:.2f}x", "reported"]])
    per_seed = "; ".join(f"BNTT minus {SHORT[n]} per seed (same seed, same "
                         f"batch order): {' / '.join(f'{v:+.2f}' for v in d)}, mean {mean_se(d)[0]:+.2f} ± "
                         f"{mean_se(d)[1]:.2f}" for n, d in diffs.items())
    return ("### Summary\n\n" + summary + "\n\n### Setting\n\n" + setting + "\n\n### 1. Budget (validation split)\n\n"
            + sel_body + "\n\n### 2. Accuracy (test set, 3 seeds)\n\n"
            + table(["normalisation", "epochs", "mean test acc (%)", "sd", "per seed (0/1/2)"]
                    + [f"acc at t={t}" for t in ts] + ["train CPU s"], rows)
            + f"\n\n{per_seed} (± one standard error). One standard error of a single accuracy near "
              f"85% on {b.test or 10000} images is {100 * (0.85 * 0.15 / (b.test or 10000)) ** 0.5:.2f} points."
            + "\n\n### 3. Early exit (threshold from validation, applied once to test)\n\n"
            + table(["seed", "γ threshold", "exit step", "steps saved", "val loss (pt)", "test loss (pt)",
                     "reference: fixed exit step from val (no γ)", "its test loss (pt)"], ee_rows)
            + "\n\n" + g_body + "\n\n### 4. Energy\n\n" + en_body + rates_section(by, b.T))


def decay_only(b: Budget, epochs: int, steps_per_epoch: int) -> list[float]:
    """What weight decay alone does to a γ that starts at 1 and gets no gradient: the strategy's
    own optimizer and schedule (``make_optimizer``) on one scalar, its value after every epoch."""
    holder = torch.nn.Module()
    holder.g = torch.nn.Parameter(torch.ones(()))
    g = holder.g
    opt, sched = make_strategy(b).make_optimizer(holder, epochs, steps_per_epoch)
    out = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            g.grad = torch.zeros(())
            opt.step()
            sched.step()
        out.append(float(g.detach()))
    return out


def gamma_run(b: Budget, epochs: int, resume: bool) -> dict:
    """BNTT only, seed 0, ``epochs`` epochs: γ per layer and step after every epoch (cached)."""
    from snnplug.engine import evaluate_anytime
    from snnplug.engine.evaluate import batches
    from snnplug_bntt.early_exit import gamma_profile

    key = json.dumps(["gamma", epochs, dataclasses.asdict(b)], sort_keys=True)
    path = _cache.cache_file(CACHE, key)
    if resume and path.exists():
        return _cache.load(path)
    profiles: list[list[list[float]]] = []

    class Record:
        def on_epoch(self, state) -> None:
            profiles.append(gamma_profile(state.model).tolist())
            print(f"  gamma run: epoch {len(profiles)}/{epochs}", flush=True)

    st, model, res, data = train_net("bntt", 0, epochs, b, (Record(),))
    torch.manual_seed(2000)
    test = data.test.tensors
    out = {"epochs": epochs, "steps": res.steps, "steps_per_epoch": res.steps // epochs, "profiles": profiles,
           "test_curve": evaluate_anytime(st, model, batches(test, 500), b.T), "train_cpu_s": res.train_cpu_seconds}
    _cache.save(path, out)
    return out


def gamma_part(b: Budget, epochs: int, resume: bool) -> str:
    """The paper's Fig. 3 after a longer run than the accuracy protocol's, next to weight decay alone."""
    r = gamma_run(b, epochs, resume)
    wd = decay_only(b, epochs, r["steps_per_epoch"])
    ts = sorted({t for t in (1, 2, 3, 4, 5, 10, 15, 20, b.T) if t <= b.T})
    shown = sorted({e for e in (1, 2, 4, 8, epochs) if e <= epochs})
    rows = [[e, f"layer {i}"] + [f"{layer[t - 1]:.3f}" for t in ts] + [f"{wd[e - 1]:.3f}"]
            for e in shown for i, layer in enumerate(r["profiles"][e - 1])]
    last = torch.tensor(r["profiles"][-1])
    late = last[:, b.T // 2:]
    return (f"BNTT only, seed 0, {layout(b)}, T={b.T}, the accuracy protocol's data and optimiser (SGD lr {b.lr}, "
            f"momentum 0.9, wd 5e-4, cosine over {epochs} epochs, {r['steps']} steps, batch {b.batch}, first "
            f"{b.train} training images). Mean γ per BNTT layer and step after some epochs (the paper's Fig. 3), "
            f"and what weight decay alone predicts for a γ without gradient (same SGD and schedule on one "
            f"scalar):\n\n"
            + table(["epoch", "layer"] + [f"t={t}" for t in ts] + ["weight decay alone"], rows)
            + f"\n\nAfter {epochs} epochs: test accuracy {100 * r['test_curve'][-1]:.2f}% at T={b.T} "
              f"({100 * r['test_curve'][b.T // 2 - 1]:.2f}% at t={b.T // 2}); spread of γ over the steps "
              f"t >= {b.T // 2 + 1} per layer: " + ", ".join(f"{float(row.max() - row.min()):.3f}" for row in late)
            + f"; weight decay alone ends at {wd[-1]:.3f}. Training CPU {r['train_cpu_s']:.0f} s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("accuracy", "speed", "gamma"), default="accuracy")
    ap.add_argument("--quick", action="store_true", help="reduced run (a few minutes)")
    ap.add_argument("--resume", action="store_true", help="reuse runs an interrupted call finished")
    ap.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    ap.add_argument("--T", type=int, default=None, help="accuracy: another T (section bntt-T<T>)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="accuracy: one fixed budget instead of choosing among the candidates on validation")
    ap.add_argument("--norms", default="bntt,bn,none",
                    help="accuracy: normalisations compared with BNTT (bn: time-shared BatchNorm; none: the "
                         "paper's 'w.o. BNTT')")
    ap.add_argument("--channels", default=None,
                    help="accuracy: conv channels, e.g. 8,16,32,32,32 for a deeper net (default 8,16)")
    args = ap.parse_args()
    norms = tuple(n.strip() for n in args.norms.split(","))
    if norms[0] != "bntt" or len(norms) < 2 or any(n not in NORMS for n in norms):
        ap.error(f"--norms must start with bntt and add one or more of bn, none; got {args.norms!r}")
    torch.set_num_threads(1)
    if args.part == "speed":
        body, _ = bench_speed(args.quick)
        key, title = "bntt-speed", "BNTT layer speed against SpikingJelly"
    elif args.part == "gamma":
        b = QUICK if args.quick else Budget()
        b = dataclasses.replace(b, T=args.T or b.T)
        epochs = args.epochs or (2 if args.quick else 16)
        body = gamma_part(b, epochs, args.resume)
        key, title = f"bntt-gamma-T{b.T}", f"BNTT γ over time after {epochs} epochs (the paper's Fig. 3, issue 21)"
    else:
        b = QUICK if args.quick else Budget()
        b = dataclasses.replace(b, T=args.T or b.T, candidates=(args.epochs,) if args.epochs else b.candidates)
        if args.channels:
            b = dataclasses.replace(b, channels=tuple(int(c) for c in args.channels.split(",")))
        body = accuracy_part(b, args.resume, norms)
        key, title = "bntt", "BNTT (Kim & Panda 2021): BNTT vs BN, early exit, γ, energy (issue 21)"
        if b.channels != Budget.channels and not args.quick:
            key, title = f"bntt-T{b.T}-{layout(b)}", f"BNTT vs BN at T={b.T} on a deeper net, {layout(b)} (issue 21)"
        elif b.T != Budget.T and not args.quick:
            key, title = f"bntt-T{b.T}", f"BNTT vs BN at T={b.T} (low latency, issue 21)"
    print(body)
    if not args.no_write:
        write_section(key, title + (" — quick run" if args.quick else ""), body)


if __name__ == "__main__":
    main()
