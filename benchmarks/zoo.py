"""One ``snnplug.apply`` line in SpikingJelly's own tutorial script (issue 15).

SpikingJelly 2.0.0's ``activation_based/examples/conv_fashion_mnist.py``: its ``CSNN`` (imported
from SpikingJelly, not copied), its loss (MSE between the output firing rate and the one-hot
label), its optimizer (Adam, lr 1e-3) and its loop (``zero_grad``, ``net(img)``, ``backward``,
``step``, ``functional.reset_net(net)``; eval under ``no_grad``). Variants differ by one line
after building the net:

* ``unmodified``: the script as shipped;
* ``dsr``:   ``net = snnplug.apply(net, neuron="dsr", T=T)``
* ``bntt``:  ``net = snnplug.apply(net, normalizer="bntt", T=T)``
* ``noise``: ``net = snnplug.apply(net, neuron="noise-lif")``
* ablations: ``readout="replace"`` for dsr and noise (the readout IFNode after the last Linear
  replaced too; ``apply`` keeps it by default), noise trained at stage 3 (membrane memory across
  steps), DSR with ``preset="paper"`` (Vth 6 instead of the user's 1); the noise variants are also
  evaluated at the paper's inference stage 3 (``configured(net, stage=3, seed=0)``).

All variants start from the same initial weights (one CSNN built under seed 0, copied), see the
same batches in the same order, and are trained in alternating chunks so machine load falls on
all alike. Reported: test accuracy on a fixed subset of the test set after equal steps (with its
binomial standard error) and time per training step relative to the unmodified script.

CPU-feasible sizes: ``channels=32`` (the script's default is 128), T=4 (the script's), batch 64.
Run: ``python benchmarks/zoo.py`` (``--steps``, ``--test``; ``--quick`` for a smoke run).
Results go to docs/benchmarks.md (section ``zoo``).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

FMNIST = Path("/usr/share/datasets/fashion-mnist")

VARIANTS = {
    "unmodified": None,
    "dsr": ('snnplug.apply(net, neuron="dsr", T=T)', dict(neuron="dsr")),
    "bntt": ('snnplug.apply(net, normalizer="bntt", T=T)', dict(normalizer="bntt")),
    "noise": ('snnplug.apply(net, neuron="noise-lif")', dict(neuron="noise-lif")),
    # the readout neurons (conv_fc.12, after the last Linear) replaced as well: what the line did
    # before readout="keep" became the default
    "dsr readout=replace": ('snnplug.apply(net, neuron="dsr", T=T, readout="replace")',
                            dict(neuron="dsr", readout="replace")),
    "noise readout=replace": ('snnplug.apply(net, neuron="noise-lif", readout="replace")',
                              dict(neuron="noise-lif", readout="replace")),
    # the noisy neuron trained at stage 3 (membrane potential carried between steps, as the
    # user's IFNode does) instead of stage 1 (each step on its own)
    "noise stage=3": ('snnplug.apply(net, neuron="noise-lif", neuron_kwargs={"stage": 3})',
                      dict(neuron="noise-lif", neuron_kwargs={"stage": 3})),
    # the paper's values (Vth 6 instead of the user's 1)
    "dsr preset=paper": ('snnplug.apply(net, neuron="dsr-if", T=T, preset="paper")',
                         dict(neuron="dsr-if", preset="paper")),
}
#: variants also evaluated at the noise paper's inference stage 3 (seeded noise), after training
STAGE3_EVAL = ("noise", "noise readout=replace")


def load(n_test: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as the script sees it (``ToTensor``: [N, 1, 28, 28] in [0, 1])."""
    from snnplug.data.idx import load_idx_folder

    trx, try_, tex, tey = load_idx_folder(FMNIST)
    f = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32) / 255.0).unsqueeze(1)  # noqa: E731
    g = torch.Generator().manual_seed(1)
    idx = torch.randperm(len(tex), generator=g)[:n_test]
    return f(trx), torch.from_numpy(np.asarray(try_, dtype=np.int64)), f(tex)[idx], \
        torch.from_numpy(np.asarray(tey, dtype=np.int64))[idx]


def build(T: int, channels: int) -> dict[str, torch.nn.Module]:
    import snnplug
    from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

    torch.manual_seed(0)
    base = CSNN(T=T, channels=channels)
    nets = {}
    for name, spec in VARIANTS.items():
        net = copy.deepcopy(base)
        if spec is not None:
            kw = dict(spec[1])
            if "noise" not in name:
                kw["T"] = T
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the summary is in docs/zoo section below
                net = snnplug.apply(net, **kw)
        nets[name] = net
    return nets


def train_steps(net, opt, batches) -> float:
    """The script's training loop body, verbatim, over ``batches``; returns wall seconds."""
    from spikingjelly.activation_based import functional

    net.train()
    t0 = time.perf_counter()
    for img, label in batches:
        opt.zero_grad()
        label_onehot = F.one_hot(label, 10).float()
        out_fr = net(img)
        loss = F.mse_loss(out_fr, label_onehot)
        loss.backward()
        opt.step()
        functional.reset_net(net)
    return time.perf_counter() - t0


@torch.no_grad()
def test(net, x, y, batch: int = 500) -> float:
    from spikingjelly.activation_based import functional

    net.eval()
    correct = 0
    for i in range(0, len(x), batch):
        out_fr = net(x[i:i + batch])
        correct += int((out_fr.argmax(1) == y[i:i + batch]).sum())
        functional.reset_net(net)
    return correct / len(x)


def test_stage3(net, x, y) -> float:
    """Accuracy with the noisy neurons at the paper's inference stage 3 (potential carried,
    seeded noise), as ``snnplug.convert(..., "noise-multistep", stage=3)`` sets them."""
    from snnplug_noise.control import configured

    with configured(net, stage=3, seed=0):
        return test(net, x, y)


def results(nets: dict[str, Any], wall: dict[str, float], tex: torch.Tensor, tey: torch.Tensor,
            steps: int) -> list[list[str]]:
    """One table row per variant (accuracy, vs unmodified, time per step), then the noise
    variants evaluated at stage 3."""
    acc = {k: test(n, tex, tey) for k, n in nets.items()}
    rows = []
    for k in nets:
        line = "(the script as shipped)" if VARIANTS[k] is None else f"`net = {VARIANTS[k][0]}`"
        rows.append(_row(k, line, acc[k], acc["unmodified"], len(tex),
                         f"{wall[k] / steps * 1e3:.0f}", f"{wall[k] / wall['unmodified']:.2f}x"))
        print(rows[-1], flush=True)
    for k in STAGE3_EVAL:
        a = test_stage3(nets[k], tex, tey)
        rows.append(_row(f"{k}, evaluated at stage 3", "the same trained net, "
                         "`configured(net, stage=3, seed=0)` at evaluation", a, acc["unmodified"],
                         len(tex), "", ""))
        print(rows[-1], flush=True)
    return rows


def _row(name: str, line: str, a: float, ref: float, n: int, ms: str, rel: str) -> list[str]:
    se = math.sqrt(a * (1 - a) / n)
    return [name, line, f"{100 * a:.2f} ± {100 * se:.2f}", f"{100 * (a - ref):+.2f}", ms, rel]


def _user_loop_losses(st: Any, model: Any, opt: Any, sched: Any, x_all: torch.Tensor, y_all: torch.Tensor,
                      steps: int, gray: bool) -> list[float]:
    """The loss of every step of the loop a user writes around ``strategy.loss`` (what the
    stability check is about; batches of 8 in order, 28x28 one-channel crops for ``gray`` models)."""
    losses = []
    model.train()
    for i in range(steps):
        x = x_all[i * 8:(i + 1) * 8]
        if gray:
            x = x[:, :1, 2:30, 2:30]
        loss, _ = st.loss(model, x, y_all[i * 8:(i + 1) * 8])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(float(loss.detach()))
    return losses


def stability(args: argparse.Namespace) -> None:
    """Strategy defaults on zoo models: ``--steps`` steps of batch 8 (Fashion-MNIST, padded to 3x32x32),
    T=2, each strategy's ``make_optimizer`` defaults (and the ``--extra`` settings); reports the
    first loss, the largest loss and the mean of the last 10 losses."""
    import snnplug
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration_tests"))
    from compat_matrix import rows

    trx, try_, _, _ = load(1)
    g = torch.Generator().manual_seed(3)
    idx = torch.randperm(len(trx), generator=g)[:args.steps * 8]
    x_all = F.pad(trx[idx], (2, 2, 2, 2)).repeat(1, 3, 1, 1)
    y_all = try_[idx]
    picked = [r for r in rows() if r.name in args.models]
    out = []
    for r in picked:
        extra = []
        for spec in args.extra:  # "dsr:sgd:0.1"
            n, o, lr = spec.split(":")
            kw_extra = {"T": 2, "lr": float(lr)}
            if n == "dsr":
                kw_extra["optimizer"] = o  # the other strategies have one optimizer
            extra.append((n, kw_extra))
        defaults = [(n, k) for n, k in [("dsr", {"T": 2}), ("bntt", {"T": 2}), ("noise", {})] if n in args.defaults]
        for name, kw in extra + defaults:
            torch.manual_seed(0)
            st = snnplug.strategy(name, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = st.prepare(r.build())
            opt, sched = st.make_optimizer(model, epochs=1, steps_per_epoch=args.steps)
            losses = _user_loop_losses(st, model, opt, sched, x_all, y_all, args.steps, gray=r.shape[0] == 1)
            lr0 = opt.param_groups[0].get("initial_lr", opt.param_groups[0]["lr"])
            tail = sum(losses[-10:]) / len(losses[-10:])
            opt_name = type(opt).__name__
            row = [r.name, name, f"{opt_name} {lr0:g}" + (" (default)" if "lr" not in kw else ""), f"{losses[0]:.3g}",
                   f"{max(losses):.3g}", f"{tail:.3g}",
                   "diverged" if (not math.isfinite(tail) or tail > 2 * losses[0]) else "stable"]
            print(row, flush=True)
            out.append(row)
    from _report import table, write_section

    write_section(args.section, "Strategy defaults on SpikingJelly zoo models (first steps)"
                  + (f" ({args.section})" if args.section != "zoo-stability" else ""),
                  f"{args.steps} steps of batch 8 (Fashion-MNIST images padded and repeated to 3x32x32 for "
                  f"the 32x32 models), T=2, each strategy's `prepare` and `make_optimizer` defaults "
                  f"(cosine over the run); `diverged` = mean of the last 10 losses above twice the first "
                  f"loss or not finite.\n\n"
                  + table(["model", "strategy", "optimizer, lr", "first loss", "max loss", "last-10 mean", "verdict"], out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stability", action="store_true", help="strategy defaults on zoo models instead")
    ap.add_argument("--models", nargs="*", default=["spiking_resnet18", "sew_resnet18 ADD", "spiking_vgg11_bn",
                                                    "tutorial CSNN (conv_fashion_mnist)"])
    ap.add_argument("--defaults", nargs="*", default=["dsr", "bntt", "noise"],
                    help="strategies whose defaults --stability measures")
    ap.add_argument("--section", default="zoo-stability", help="docs/benchmarks.md section of --stability")
    ap.add_argument("--extra", nargs="*", default=["dsr:sgd:0.1"],
                    help="extra strategy settings to compare, as name:optimizer:lr")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="smoke run, no report")
    args = ap.parse_args()
    if args.stability:
        torch.set_num_threads(1)
        return stability(args)
    if args.quick:
        args.steps, args.test, args.chunk = 10, 500, 5
    torch.set_num_threads(1)
    trx, try_, tex, tey = load(args.test)
    g = torch.Generator().manual_seed(2)
    order = torch.randperm(len(trx), generator=g)[:args.steps * args.batch]
    batches = [(trx[order[i:i + args.batch]], try_[order[i:i + args.batch]])
               for i in range(0, len(order), args.batch)]
    nets = build(args.T, args.channels)
    opts = {k: torch.optim.Adam(n.parameters(), lr=1e-3) for k, n in nets.items()}
    wall = {k: 0.0 for k in nets}
    for s in range(0, args.steps, args.chunk):
        for k in nets:
            wall[k] += train_steps(nets[k], opts[k], batches[s:s + args.chunk])
        print(f"step {min(s + args.chunk, args.steps)}: " + ", ".join(
            f"{k} {wall[k] / min(s + args.chunk, args.steps) * 1e3:.0f} ms/step" for k in nets), flush=True)
    rows = results(nets, wall, tex, tey, args.steps)
    if args.quick:
        return
    from _report import table, write_section

    body = (f"SpikingJelly 2.0.0 tutorial `conv_fashion_mnist.CSNN(T={args.T}, channels={args.channels})`, "
            f"its MSE-on-firing-rate loss, Adam lr 1e-3 and loop, {args.steps} steps of batch {args.batch} "
            f"(same initial weights and batches for every variant, trained in alternating chunks of "
            f"{args.chunk}); test accuracy on {args.test} fixed Fashion-MNIST test images (± binomial "
            f"standard error). Time per step is the training wall time (torch threads 1).\n\n"
            + table(["variant", "the one line", "test accuracy %", "vs unmodified (pt)", "ms/step",
                     "time vs unmodified"], rows))
    write_section("zoo", "One apply line in SpikingJelly's tutorial script (Fashion-MNIST CSNN)", body)


if __name__ == "__main__":
    main()
