"""DSR accuracy on Fashion-MNIST: DSR-IF against the same network as an ANN with clamp activations.

    python benchmarks/dsr.py --part accuracy            # test-set report -> docs/benchmarks.md
    python benchmarks/dsr.py --part accuracy --resume   # reuse runs an interrupted call finished
    python benchmarks/dsr.py --part select              # threshold-lr sweep on a validation split

One budget for every run: the first 24000 Fashion-MNIST training images, 2 epochs (750 SGD steps
at batch 64), convnet 16-32-128 with batch norm and the paper's spiking output layer, SGD lr
0.05 / momentum 0.9 / weight decay 5e-4 / cosine, threshold L2 5e-4, initial threshold 6 (the
paper's). The ANN is the same network with trainable ``clamp(x, 0, Vth)`` activations (the
T -> infinity limit of DSR-IF), trained with the same optimiser and threshold settings.

``threshold_lr_scale`` (the thresholds' learning rate over the weights') is chosen by
``--part select`` on images 50000-54999 of the training file, which no run trains on; the
report then evaluates on the 10000 test images. Each run is its own process (one torch thread),
two at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _cache  # noqa: E402
from _report import table  # benchmarks/ is on sys.path: this script's folder, or dsr.py's insert

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "dsr-accuracy"
SEEDS = (0, 1, 2)
VAL = (50000, 55000)  # validation images (training file) for --part select
SCALES = (1.0, 10.0, 30.0, 100.0)
# chosen by `--part select` (section dsr-select of docs/benchmarks.md): the scale with the best
# mean validation accuracy of DSR-IF at T=20 and T=5
THRESHOLD_LR_SCALE = 30.0


@dataclasses.dataclass(frozen=True)
class Budget:
    train: int = 24000
    epochs: int = 2
    lr: float = 0.05
    batch: int = 64
    test: int | None = None  # None: all 10000 test images


QUICK = Budget(train=2000, epochs=1, test=1000)


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run. ``kind``: "ann" (clamp activations) or "dsr" (DSR-IF)."""

    kind: str
    seed: int
    T: int = 20
    vth: float = 6.0
    alpha: float = 0.5
    fixed: bool = False
    thlr: float = 1.0
    backward: str = "representation"
    split: str = "test"  # "test" or "val"


def clamp_ann_strategy(thlr: float, lr: float) -> Any:
    """The ANN counterpart trained by the engine: clamp activations, cross-entropy plus the DSR
    threshold L2, the DSR strategy's parameter groups and SGD/cosine settings."""
    import torch
    import torch.nn.functional as F

    from snnplug.strategies import OptimConfig, Strategy
    from snnplug_dsr.thresholds import param_groups, threshold_l2

    class ClampANN(Strategy):
        name = "clamp-ann"

        def optim_config(self) -> OptimConfig:
            return OptimConfig(name="sgd", lr=lr, momentum=0.9, weight_decay=5e-4, schedule="cosine")

        def param_groups(self, model: Any, cfg: OptimConfig) -> list[dict[str, Any]]:
            return param_groups(model, cfg.weight_decay, cfg.lr, thlr)

        def loss(self, model: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = model(x)
            return F.cross_entropy(logits, y) + threshold_l2(model, 5e-4), logits

        def predict_anytime(self, model: Any, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
            with torch.no_grad():
                return model(x).unsqueeze(0)  # an ANN: one "step"

    return ClampANN(T=1)


def train_eval(run: Run, budget: Budget) -> dict[str, Any]:
    """Train ``run`` for ``budget`` with the engine; accuracy %, training seconds, trained thresholds."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from snnplug.data import load_dataset
    from snnplug.engine import TrainConfig, evaluate_anytime, train
    from snnplug.models import convnet
    from snnplug_dsr.ann import ClampAct
    from snnplug_dsr.representation import dsr_neurons
    from snnplug_dsr.strategy import DSRStrategy

    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    X, Y = data.train.tensors
    lo, hi = VAL if run.split == "val" else (None, None)
    ev = (X[lo:hi], Y[lo:hi]) if run.split == "val" else tuple(t[: budget.test or len(t)] for t in data.test.tensors)
    arch = {"channels": (16, 32), "hidden": 128}
    torch.manual_seed(run.seed)
    loader = DataLoader(TensorDataset(X[: budget.train], Y[: budget.train]), batch_size=budget.batch,
                        shuffle=True, generator=torch.Generator().manual_seed(run.seed))
    if run.kind == "ann":
        def act() -> ClampAct:
            return ClampAct(run.vth, train_threshold=not run.fixed)

        net = convnet(data.input_shape, data.num_classes, activation=act, **arch)
        net.append(act())  # the counterpart of DSR's spiking output layer
        st = clamp_ann_strategy(run.thlr, budget.lr)
        all_ths = [m.v_threshold for m in net.modules() if isinstance(m, ClampAct)]
    else:
        nk: dict[str, Any] = {"v_threshold": run.vth, "alpha": run.alpha}
        if run.fixed:
            nk["train_threshold"] = False
        st = DSRStrategy(T=run.T, neuron="if", neuron_kwargs=nk, lr=budget.lr, backward=run.backward,
                         threshold_lr_scale=run.thlr, **arch)
        net = st.build_model(data.input_shape, data.num_classes)
        all_ths = [n.v_threshold for n in dsr_neurons(net)]
    res = train(st, net, loader, TrainConfig(epochs=budget.epochs, seed=None, progress=False))
    acc = evaluate_anytime(st, net, DataLoader(TensorDataset(*ev), batch_size=500), st.T)[-1]
    vth = [float(t.detach()) for t in all_ths]
    return {"acc": 100.0 * acc, "train_s": res.train_seconds, "hidden_vth": statistics.mean(vth[:-1]),
            "output_vth": vth[-1]}


# -- orchestration -------------------------------------------------------------------------------
def cache_file(run: Run, budget: Budget) -> Path:
    key = json.dumps([dataclasses.asdict(run), dataclasses.asdict(budget)], sort_keys=True)
    return _cache.cache_file(CACHE, key)


def run_all(runs: list[tuple[str, Run]], budget: Budget, resume: bool) -> list[dict[str, Any]]:
    """Each run in its own process, two at a time, in the given order (longest first)."""
    def one(item: tuple[str, Run]) -> dict[str, Any]:
        label, run = item
        path = cache_file(run, budget)
        if resume and path.exists():
            r = _cache.load(path)
            how = f"from {path.name}"
        else:
            cmd = [sys.executable, __file__, "--run", json.dumps(dataclasses.asdict(run)),
                   "--budget", json.dumps(dataclasses.asdict(budget))]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            _cache.save(path, r)
            how = f"{r['train_s']:.0f} s"
        print(f"  {label} seed {run.seed}: {r['acc']:.2f}% ({how}, Vth {r['hidden_vth']:.2f}/"
              f"{r['output_vth']:.2f})", flush=True)
        return r

    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(one, runs))


def describe(budget: Budget, split: str) -> str:
    ev = (f"images {VAL[0]}-{VAL[1] - 1} of the training file (validation)" if split == "val"
          else f"{budget.test or 10000} test images")
    return (f"Fashion-MNIST: first {budget.train} training images, {budget.epochs} epoch(s) "
            f"({budget.epochs * -(-budget.train // budget.batch)} SGD steps, batch {budget.batch}); "
            f"evaluated on {ev}. Convnet 16-32-128 with batch norm and a spiking output layer "
            f"(ANN: clamp output), SGD lr {budget.lr} momentum 0.9 wd 5e-4 cosine, threshold L2 5e-4 "
            f"(thresholds: no weight decay, learning rate `threshold_lr_scale` x lr), initial "
            f"threshold 6, alpha 0.5 unless stated. Every run is its own process with one torch "
            f"thread, two runs at a time ('train s' is wall time under that load).")


def summarise(runs: list[tuple[str, Run]], got: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for (label, run), r in zip(runs, got):
        by.setdefault(label, []).append({**r, "seed": run.seed})
    return by


def row(label: str, rs: list[dict[str, Any]], ref: float | None) -> list[str]:
    accs = [r["acc"] for r in rs]
    m = statistics.mean(accs)
    return [label, " / ".join(str(r["seed"]) for r in rs), f"{m:.2f}",
            f"{statistics.stdev(accs):.2f}" if len(accs) > 1 else "",
            " / ".join(f"{a:.2f}" for a in accs), "" if ref is None else f"{m - ref:+.2f}",
            f"{statistics.mean(r['hidden_vth'] for r in rs):.2f}",
            f"{statistics.mean(r['output_vth'] for r in rs):.2f}",
            f"{statistics.mean(r['train_s'] for r in rs):.0f}"]


HEAD = ["run", "seeds", "mean acc %", "sd", "per seed", "vs ANN", "hidden Vth after", "output Vth after",
        "train s"]


def select(quick: bool, resume: bool, scales: tuple[float, ...] = SCALES) -> str:
    """Threshold-lr sweep on the validation split (seed 0): ANN, DSR-IF T=20 and T=5."""
    budget = QUICK if quick else Budget()
    runs = [(f"{kind} x{s:g}", Run(kind=k, seed=0, T=T, thlr=s, split="val"))
            for k, T, kind in (("dsr", 20, "DSR-IF T=20"), ("dsr", 5, "DSR-IF T=5"), ("ann", 20, "ANN"))
            for s in scales]
    by = summarise(runs, run_all(runs, budget, resume))
    rows = []
    for s in scales:
        ann = by[f"ANN x{s:g}"][0]["acc"]
        rows += [row(f"{k} x{s:g}", by[f"{k} x{s:g}"], None if k == "ANN" else ann)
                 for k in ("ANN", "DSR-IF T=20", "DSR-IF T=5")]
    score = {s: statistics.mean(by[f"{k} x{s:g}"][0]["acc"] for k in ("DSR-IF T=20", "DSR-IF T=5"))
             for s in scales}
    best = max(scales, key=lambda s: score[s])
    return (describe(budget, "val") + " Seed 0; 'vs ANN': against the ANN with the same "
            "`threshold_lr_scale`.\n\n" + table(HEAD, rows) + "\n\nRule: the scale with the best mean "
            "validation accuracy of DSR-IF at T=20 and T=5 (" + ", ".join(
                f"x{s:g}: {score[s]:.2f}" for s in scales) + f") is **x{best:g}**; `--part accuracy` "
            f"uses `THRESHOLD_LR_SCALE = {THRESHOLD_LR_SCALE:g}`"
            + ("." if best == THRESHOLD_LR_SCALE else " (**differs: update it**)."))


def accuracy(quick: bool, resume: bool, thlr: float = THRESHOLD_LR_SCALE) -> str:
    """Target rows (seeds 0-2) and the paper's ablation (Table 3) on the test set."""
    budget = QUICK if quick else Budget()
    labels = {"ann": "ANN, clamp(x, 0, Vth)", "t20": "DSR-IF T=20", "t5": "DSR-IF T=5",
              "t5ps": "DSR-IF T=5, per-step backward (exact per-step gradient)",
              "noF": "DSR-IF T=20 w/o F (alpha=1)", "noT": "DSR-IF T=20 w/o T (fixed Vth 6)",
              "noFT": "DSR-IF T=20 w/o F&T (alpha=1, fixed Vth 6)",
              "t20x1": "DSR-IF T=20, threshold_lr_scale 1 (the paper's)",
              "annx1": "ANN, threshold_lr_scale 1"}
    runs: list[tuple[str, Run]] = []
    for s in SEEDS:  # longest first
        runs += [(labels["noF"], Run("dsr", s, alpha=1.0, thlr=thlr)),
                 (labels["noT"], Run("dsr", s, fixed=True)),
                 (labels["t20"], Run("dsr", s, thlr=thlr)),
                 (labels["t5ps"], Run("dsr", s, T=5, thlr=thlr, backward="per-step"))]
    runs += [(labels["noFT"], Run("dsr", 0, alpha=1.0, fixed=True)),
             (labels["t20x1"], Run("dsr", 0))]
    for s in SEEDS:
        runs += [(labels["t5"], Run("dsr", s, T=5, thlr=thlr)), (labels["ann"], Run("ann", s, thlr=thlr))]
    runs.append((labels["annx1"], Run("ann", 0)))
    by = summarise(runs, run_all(runs, budget, resume))

    def mean(key: str) -> float:
        return statistics.mean(r["acc"] for r in by[labels[key]])

    def paired(key: str, ref: str) -> str:
        """Per seed (same initial weights and batch order): ``key`` minus ``ref``."""
        return " / ".join(f"{a['acc'] - b['acc']:+.2f}" for a, b in zip(by[labels[key]], by[labels[ref]]))

    ann = mean("ann")
    refs = {"ann": None, "annx1": None, "t20x1": mean("annx1")}  # the x1 DSR row against the x1 ANN
    rows = [row(labels[k], by[labels[k]], refs.get(k, ann))
            for k in ("ann", "t20", "t5", "t5ps", "noF", "noT", "noFT", "t20x1", "annx1")]

    def check(label: str, val: float, ok: bool) -> list[str]:
        return [label, f"{val:+.2f}", "met" if ok else "**missed**"]

    t20, t5 = mean("t20"), mean("t5")
    tg = [check("DSR-IF T=20 within 1 point of the ANN (means over seeds)", t20 - ann, t20 >= ann - 1),
          check("DSR-IF T=5 within 2 points of the ANN (means over seeds)", t5 - ann, t5 >= ann - 2),
          check("DSR-IF T=5 with the per-step backward (the paper's exact DSR gradient) within 2 points "
                "of the ANN (means)", mean("t5ps") - ann, mean("t5ps") >= ann - 2),
          check("alpha=0.5 beats alpha=1 (DSR-IF T=20 minus w/o F, means)", t20 - mean("noF"),
                t20 > mean("noF")),
          check("trained Vth beats fixed Vth (DSR-IF T=20 minus w/o T, means)", t20 - mean("noT"),
                t20 > mean("noT")),
          check("BN parity: representation backward at most 1 point below the per-step one (T=5, means)",
                t5 - mean("t5ps"), t5 >= mean("t5ps") - 1)]
    return (describe(budget, "test") + f" `threshold_lr_scale` {thlr:g} (chosen on the validation "
            f"split, `--part select`) except where a row says otherwise; 'w/o T' rows have fixed "
            f"thresholds. 'vs ANN': difference of means against the ANN row (the x1 DSR row against "
            f"the x1 ANN). Per seed, DSR minus ANN (same initial weights and batch order): T=20 "
            f"{paired('t20', 'ann')}, T=5 {paired('t5', 'ann')}, T=5 per-step {paired('t5ps', 'ann')}; "
            f"DSR T=20 minus w/o F: {paired('t20', 'noF')}. One standard error of a single "
            f"accuracy near 88% on {budget.test or 10000} images is "
            f"{100 * (0.88 * 0.12 / (budget.test or 10000)) ** 0.5:.2f} points.\n\n"
            + table(HEAD, rows) + "\n\n" + table(["target", "measured", ""], tg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="(internal) one run as JSON")
    ap.add_argument("--budget", help="(internal) the budget as JSON")
    args = ap.parse_args()
    if args.run is None:
        ap.error("use benchmarks/dsr.py --part accuracy|select")
    budget = Budget(**json.loads(args.budget)) if args.budget else Budget()
    print(json.dumps(train_eval(Run(**json.loads(args.run)), budget)))


if __name__ == "__main__":
    main()
