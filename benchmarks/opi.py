"""OPI benchmark: ANN vs converted SNN accuracy against T, in one run.

Trains the ``opi-ann`` clip-ANN (small VGG-style ``snnplug.models.convnet``) on a Fashion-MNIST
subset on CPU, then converts the same trained weights four ways and evaluates each with one
T_max-step simulation (anytime accuracy, every t <= T_max):

* OPI, v(0) = θ/2 (θ = trained λ)          -- ``snnplug.convert(ann, "opi", T=..)``
* same, v(0) = 0 (ablation)                 -- ``v_init=0.0``
* SpikingJelly 2.x ``ann2snn.RateCodingRecipe`` (ClipReLU -> ReLU, 99.9% percentile thresholds,
  soft-reset IFNode, v(0) = 0): the stock SpikingJelly pipeline on the same weights.
* OPI v(0) = θ/2 on that ReLU copy, θ calibrated (99.9th percentile): v(0) without trained λ.

Also times conversion (calibration + conversion, no training). Results go to docs/benchmarks.md.

    python benchmarks/opi.py            # 12k train / 1k test images, 3 epochs
    python benchmarks/opi.py --quick    # 4k / 500, 1 epoch
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section  # noqa: E402

import snnplug  # noqa: E402
from snnplug.data import load_dataset, make_loaders  # noqa: E402
from snnplug.engine import LogEpochs, TrainConfig, anytime_accuracy, direct_anytime  # noqa: E402
from snnplug.engine import train as train_model  # noqa: E402

T_REPORT = (4, 8, 16, 32, 64)


def ann_accuracy(model: nn.Module, loader) -> float:
    """The ANN's accuracy through the engine's evaluation (an ANN is a one-step "simulation")."""
    model.eval()
    return anytime_accuracy(lambda x: model(x).unsqueeze(0), loader)[0]


def train(strategy, model, loader, epochs: int, lr: float | None) -> float:
    """The engine's loop on the benchmark's loader (the global RNG as seeded in main)."""
    res = train_model(strategy, model, loader, TrainConfig(epochs=epochs, lr=lr, seed=None, progress=False),
                      callbacks=[LogEpochs(lambda line: print("  " + line, flush=True))])
    return res.train_seconds


def relu_copy(model: nn.Module) -> nn.Module:
    """The same weights with every ClipReLU a plain nn.ReLU (for RateCodingRecipe)."""
    from snnplug_opi import ClipReLU

    m = copy.deepcopy(model)
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ClipReLU):
                setattr(parent, name, nn.ReLU())
    return m


def convert_all(model: nn.Module, calib: list, test: list,
                tmax: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every conversion of the same trained weights: accuracy after every step (one ``tmax``-step
    simulation, the engine's evaluation) and conversion seconds (calibration included)."""
    from spikingjelly.activation_based import ann2snn, functional

    relu_ann = relu_copy(model).eval()

    def sj_recipe() -> nn.Module:
        snn = ann2snn.Converter(ann2snn.RateCodingRecipe(dataloader=calib, mode="99.9%")).convert(relu_ann)
        functional.set_step_mode(snn, "m")
        return snn

    makers = {
        "OPI v(0)=θ/2": lambda: snnplug.convert(model, "opi", T=tmax, calibration=calib),
        "OPI converter, v(0)=0": lambda: snnplug.convert(model, "opi", T=tmax, v_init=0.0),
        "SpikingJelly RateCodingRecipe (99.9%)": sj_recipe,
        # relu version with OPI calibration: isolates the threshold choice from v(0)
        "OPI v(0)=θ/2, ReLU + 99.9% calibration":
            lambda: snnplug.convert(relu_ann, "opi", T=tmax, calibration=calib),
    }
    rows: dict[str, list[float]] = {}
    conv_s: dict[str, float] = {}
    for name, make in makers.items():
        t0 = time.perf_counter()
        snn = make()
        conv_s[name] = time.perf_counter() - t0
        rows[name] = anytime_accuracy(direct_anytime(snn, tmax, steps_per_call=8), test)
    return rows, conv_s


def report(rows: dict[str, list[float]], conv_s: dict[str, float], ann_acc: float, tmax: int, setup: str) -> str:
    """The Markdown section: accuracy against T, gaps to the ANN, targets."""
    ts = [t for t in T_REPORT if t <= tmax]
    headers = ["method", "convert (s)"] + [f"T={t}" for t in ts]
    body_rows = [["ANN (clip, trained)", "-"] + [f"{100 * ann_acc:.2f}"] * len(ts)]
    for name, acc in rows.items():
        body_rows.append([name, f"{conv_s[name]:.2f}"] + [f"{100 * acc[t - 1]:.2f}" for t in ts])
    opi = rows["OPI v(0)=θ/2"]
    gap = {t: 100 * (ann_acc - opi[t - 1]) for t in ts}
    checks = []
    if 16 in gap:
        checks.append(("T=16 within 1 point of the ANN", gap[16] <= 1.0, f"gap {gap[16]:.2f}"))
    if 8 in gap:
        checks.append(("T=8 within 3 points of the ANN", gap[8] <= 3.0, f"gap {gap[8]:.2f}"))
    c = conv_s["OPI v(0)=θ/2"]
    checks.append(("conversion under 10 s on CPU", c < 10.0, f"{c:.2f} s"))
    ratio_rows = []
    zero = rows["OPI converter, v(0)=0"]
    for t in ts:
        ratio_rows.append([t, f"{100 * (ann_acc - opi[t - 1]):.2f}", f"{100 * (ann_acc - zero[t - 1]):.2f}",
                           f"{100 * (ann_acc - rows['SpikingJelly RateCodingRecipe (99.9%)'][t - 1]):.2f}"])
    return (
        setup + f" Accuracy (%) after t steps, all t from one {tmax}-step "
        f"simulation per method; the same trained weights for every row.\n\n"
        + table(headers, body_rows)
        + "\n\nAccuracy gap to the ANN (points, lower is better):\n\n"
        + table(["T", "OPI v(0)=θ/2", "v(0)=0", "SJ RateCoding"], ratio_rows)
        + "\n\nTargets:\n\n"
        + table(["target", "met", "measured"], [[n, "yes" if ok else "**MISSED**", v] for n, ok, v in checks])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced run (4k train, 500 test, 1 epoch)")
    ap.add_argument("--limit", type=int, default=None, help="training images (default 12000; quick 4000)")
    ap.add_argument("--test", type=int, default=None, help="test images (default 1000; quick 500)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="default: the strategy's (SGD 0.1)")
    ap.add_argument("--tmax", type=int, default=max(T_REPORT))
    ap.add_argument("--calib-batches", type=int, default=8)
    ap.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    limit = args.limit or (4000 if args.quick else 12000)
    n_test = args.test or (500 if args.quick else 1000)
    epochs = args.epochs or (1 if args.quick else 3)

    bundle = load_dataset("fashion-mnist", limit=limit)
    train_loader, _ = make_loaders(bundle, batch_size=128, seed=0)
    test_x, test_y = bundle.test.tensors[0][:n_test], bundle.test.tensors[1][:n_test]
    test = [(test_x[i:i + 250], test_y[i:i + 250]) for i in range(0, n_test, 250)]
    calib = [(x, None) for (x, _), _ in zip(train_loader, range(args.calib_batches))]

    strategy = snnplug.strategy("opi-ann")
    model = strategy.build_model(bundle.input_shape, bundle.num_classes)
    print(f"training opi-ann on {limit} Fashion-MNIST images, {epochs} epoch(s)", flush=True)
    train_s = train(strategy, model, train_loader, epochs, args.lr)
    model.eval()
    ann_acc = ann_accuracy(model, test)
    from snnplug_opi import ClipReLU

    lambdas = [round(m.threshold, 3) for m in model.modules() if isinstance(m, ClipReLU)]
    print(f"ANN accuracy {ann_acc:.4f}; λ = {lambdas}", flush=True)

    tmax = args.tmax
    rows, conv_s = convert_all(model, calib, test, tmax)

    body = report(rows, conv_s, ann_acc, tmax, f"Fashion-MNIST, {limit} training / {n_test} test images, `opi-ann` "
                  f"convnet (conv32-conv64-fc128, avg pool, BN folded at conversion), {epochs} epoch(s) SGD "
                  f"(training {train_s:.0f} s). Trained λ per layer: {lambdas}.")
    print(body)
    if not args.no_report:
        write_section("opi", "OPI: ANN-to-SNN conversion with optimal initial potential", body)


if __name__ == "__main__":
    main()
