"""DSR accuracy parity on a small residual net (issue 16): representation vs per-step backward.

    python benchmarks/dsr.py --part parity            # report -> docs/benchmarks.md (dsr-parity)
    python benchmarks/dsr.py --part parity --resume   # reuse runs an interrupted call finished

The network is a small SpikingJelly-style residual net written with stock SpikingJelly layers and
``IFNode`` neurons (what a user has), made DSR by the one line ``snnplug.apply(net, neuron="dsr",
T=20)`` (thresholds carried: Vth 1, alpha 0.5, trainable)::

    conv3x3(1->16) BN IF  maxpool2
    block(16):  conv BN IF conv BN  (+ identity)  IF            14x14
    avgpool2
    block(16->32): conv BN IF conv BN (+ conv1x1 BN shortcut) IF  7x7
    flatten  linear(32*7*7 -> 10)                                 rate readout (mean over T)

Both runs of a seed start from the same initial weights and see the same batches; they differ
only in ``DSRStrategy(backward=...)``: ``"representation"`` (one simulation without graph plus one
pass on time means, :mod:`snnplug_dsr.representation`) or ``"per-step"`` (the DSR autograd
functions on the full ``[T, B, ...]`` graph). Training: the strategy's default for models it did
not build (Adam lr 1e-3, cosine), cross-entropy on the rate readout plus the threshold L2.

Each run is its own process with one torch thread, cached in ``benchmarks/.cache/dsr-parity``
(``--resume`` reuses finished runs), one at a time (``cpuslot`` gives one core).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import _cache
from _report import table

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "dsr-parity"
SEEDS = (0, 1, 2)
BACKWARDS = ("per-step", "representation")


@dataclasses.dataclass(frozen=True)
class Budget:
    train: int = 25600
    epochs: int = 1
    batch: int = 64
    T: int = 20
    test: int = 5000


QUICK = Budget(train=256, T=4, test=200)


def residual_net() -> Any:
    """The residual net of the module docstring, with SpikingJelly ``IFNode`` neurons (multi-step)."""
    from spikingjelly.activation_based import functional, layer, neuron
    from torch import nn

    def cbn(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
        return [layer.Conv2d(cin, cout, k, padding=k // 2, bias=False), layer.BatchNorm2d(cout)]

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.body = nn.Sequential(*cbn(cin, cout), neuron.IFNode(), *cbn(cout, cout))
            self.short = nn.Sequential(*cbn(cin, cout, 1)) if cin != cout else nn.Identity()
            self.sn = neuron.IFNode()

        def forward(self, x):
            return self.sn(self.body(x) + self.short(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(*cbn(1, 16), neuron.IFNode(), layer.MaxPool2d(2))
            self.b1 = Block(16, 16)
            self.pool = layer.AvgPool2d(2)
            self.b2 = Block(16, 32)
            self.fc = nn.Sequential(layer.Flatten(), layer.Linear(32 * 7 * 7, 10))

        def forward(self, x):
            return self.fc(self.b2(self.pool(self.b1(self.stem(x)))))

    net = Net()
    functional.set_step_mode(net, "m")
    return net


def train_eval(seed: int, backward: str, budget: Budget) -> dict[str, Any]:
    """Train one run; accuracy % on the first ``budget.test`` test images and training seconds."""
    import warnings

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import snnplug
    from snnplug.data import load_dataset
    from snnplug.engine import TrainConfig, evaluate_anytime, train
    from snnplug_dsr.strategy import DSRStrategy

    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    X, Y = data.train.tensors
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = snnplug.apply(residual_net(), neuron="dsr", T=budget.T)
    st = DSRStrategy(T=budget.T, backward=backward)
    assert st.backward_mode(net) == backward
    loader = DataLoader(TensorDataset(X[: budget.train], Y[: budget.train]), batch_size=budget.batch,
                        shuffle=True, generator=torch.Generator().manual_seed(seed))
    res = train(st, net, loader, TrainConfig(epochs=budget.epochs, seed=None, progress=False))
    ev = DataLoader(TensorDataset(*(t[: budget.test] for t in data.test.tensors)), batch_size=500)
    acc = evaluate_anytime(st, net, ev, st.T)[-1]
    return {"acc": 100.0 * acc, "train_s": res.train_seconds, "steps": res.steps}


def _cache_file(seed: int, backward: str, budget: Budget) -> Path:
    key = json.dumps([seed, backward, dataclasses.asdict(budget)], sort_keys=True)
    return _cache.cache_file(CACHE, key)


def _one(seed: int, backward: str, budget: Budget, resume: bool) -> dict[str, Any]:
    path = _cache_file(seed, backward, budget)
    if resume and path.exists():
        return _cache.load(path)
    cmd = [sys.executable, __file__, json.dumps([seed, backward, dataclasses.asdict(budget)])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    _cache.save(path, r)
    return r


def parity(quick: bool, resume: bool) -> str:
    """Three seeds x both backward paths, one run at a time; the report section's Markdown."""
    budget = QUICK if quick else Budget()
    got: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKWARDS}
    for seed in SEEDS:
        for b in BACKWARDS:
            r = _one(seed, b, budget, resume)
            print(f"  seed {seed} {b}: {r['acc']:.2f}% ({r['train_s']:.0f} s)", flush=True)
            got[b].append(r)
    rows = []
    for b in BACKWARDS:
        accs = [r["acc"] for r in got[b]]
        rows.append([b, " / ".join(f"{a:.2f}" for a in accs), f"{statistics.mean(accs):.2f}",
                     f"{statistics.stdev(accs):.2f}", f"{statistics.mean(r['train_s'] for r in got[b]):.0f}"])
    diffs = [r["acc"] - p["acc"] for r, p in zip(got["representation"], got["per-step"])]
    d = statistics.mean(diffs)
    verdict = "met" if abs(d) <= 1.0 else "**missed**"
    steps = got["per-step"][0]["steps"]
    return (f"Fashion-MNIST, the residual net of `benchmarks/dsr_parity.py` (stock SpikingJelly layers "
            f"and IFNode, then `snnplug.apply(net, neuron=\"dsr\", T={budget.T})`), first {budget.train} "
            f"training images, {budget.epochs} epoch ({steps} steps of batch {budget.batch}), Adam lr 1e-3 "
            f"cosine (the DSR strategy's default on models it did not build), T={budget.T}, direct input; "
            f"evaluated on the first {budget.test} test images (one standard error near 80%: "
            f"{100 * (0.8 * 0.2 / budget.test) ** 0.5:.2f} points). Seeds 0-2; both runs of a seed share "
            f"initial weights and batch order. One process per run, one torch thread, one run at a "
            f"time.\n\n" + table(["backward", "per seed %", "mean %", "sd", "train s (mean)"], rows)
            + f"\n\nRepresentation minus per-step, per seed: {' / '.join(f'{x:+.2f}' for x in diffs)}; "
            f"mean {d:+.2f} (sd {statistics.stdev(diffs):.2f}). Target: within 1 point at T=20, three "
            f"seeds: **{verdict}**.")


if __name__ == "__main__":
    s, b, bud = json.loads(sys.argv[1])
    print(json.dumps(train_eval(int(s), str(b), Budget(**bud))))
