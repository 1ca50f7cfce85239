"""Cost of the always-on non-finite guards: a guarded training step vs the same step unguarded.

Guarded = what the trainer does: ``NonFiniteGuard.before`` (buffer snapshot + ``isfinite`` on the
batch), ``strategy.loss`` (with its NaN/Inf input check), backward, ``NonFiniteGuard.after``
(loss, one fused ``_foreach_norm`` over the gradients, buffers), optimizer step. Unguarded = the
unwrapped ``loss``, backward, optimizer step. Both arms run alternately on the same model and
batches (digits, batch 64, each strategy's default T); the figure is the ratio of the medians.

    flock /tmp/snnplug-cpu.lock python benchmarks/guards.py [--reps 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import snnplug
from snnplug.data import load_dataset
from snnplug.engine.guards import NonFiniteGuard
from snnplug.engine.seed import seed_everything

STRATEGIES = ("bptt", "dsr", "bntt", "noise", "opi-ann")


def measure(name: str, reps: int) -> tuple[float, float]:
    s = snnplug.strategy(name)
    b = load_dataset("digits")
    seed_everything(0)
    m = s.build_model(b.input_shape, b.num_classes)
    opt, _ = s.make_optimizer(m, 1, 100)
    x, y = b.train.tensors[0][:64], b.train.tensors[1][:64]
    raw_loss = type(s).loss.__wrapped__  # the strategy's loss without the input check
    guard = NonFiniteGuard("raise")

    def guarded() -> None:
        assert guard.before(m, x) is None
        loss, _ = s.loss(m, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        assert guard.after(m, loss) is None
        opt.step()

    def plain() -> None:
        loss, _ = raw_loss(s, m, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for f in (guarded, plain):  # warm-up
        f()
    times: dict[str, list[float]] = {"guarded": [], "plain": []}
    for _ in range(reps):
        for key, f in (("guarded", guarded), ("plain", plain)):
            t0 = time.perf_counter()
            f()
            times[key].append(time.perf_counter() - t0)
    return statistics.median(times["guarded"]), statistics.median(times["plain"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in STRATEGIES:
        g, u = measure(name, args.reps)
        rows.append([name, f"{u * 1e3:.2f}", f"{g * 1e3:.2f}", f"{g / u:.3f}x"])
        print(rows[-1], flush=True)
    from _report import table, write_section

    write_section("guards", "Non-finite guards: cost per training step (issue 17)",
                  table(["strategy", "unguarded step (ms)", "guarded step (ms)", "guarded / unguarded"], rows)
                  + f"\n\nMedian of {args.reps} alternating repetitions each, digits batch 64, 1 thread. "
                    "The guard is on by default (`--on-nonfinite raise`).")


if __name__ == "__main__":
    main()
