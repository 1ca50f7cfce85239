"""DSR benchmark: speed/memory against SpikingJelly, and accuracy on Fashion-MNIST.

    python benchmarks/dsr.py            # full run (speed + accuracy), writes docs/benchmarks.md
    python benchmarks/dsr.py --quick    # reduced run
    python benchmarks/dsr.py --part speed|accuracy|select|zoo|fidelity|parity
    python benchmarks/dsr.py --part accuracy --resume   # after an interruption: reuse finished runs

Speed/memory: one training iteration (forward + backward) of the same network
(``snnplug.models.convnet`` for 1x28x28, channels 32-64, hidden 128, batch norm) and batch, at
T=20, for snnplug DSR (representation backward with the default layer-wise simulation, 4 steps
at a time, spikes kept as bits; with the whole-model simulation of all T steps at once; per-step
backward), SpikingJelly ``DSRIFNode`` and SpikingJelly surrogate-gradient BPTT (IFNode, LIFNode).
Each case runs in fresh subprocesses (one torch thread): one for time (median of the iterations
after a warm-up one, default allocator) and one for memory: after one warm-up iteration the
process's peak-RSS mark is reset (``/proc/self/clear_refs``) and peak memory is
``VmHWM - VmRSS`` (peak resident memory during the next iteration above the resident memory
before it), with glibc's ``MALLOC_MMAP_THRESHOLD_=65536``
so freed tensors leave the process and RSS follows the live tensors.

Accuracy (``--part accuracy``, ``--part select``): see ``benchmarks/dsr_accuracy.py``; representation vs
per-step backward on a residual net (``--part parity``): ``benchmarks/dsr_parity.py``.
Zoo networks (``--part zoo``: spiking_resnet18, sew_resnet18; allocator peak from the profiler):
see ``benchmarks/dsr_zoo.py``."""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

BATCH = 32
SHAPE = (1, 28, 28)


# -- one speed/memory case (runs in a subprocess) ------------------------------------------------
def build_case(case: str, T: int, norm: bool):
    import torch
    from spikingjelly.activation_based import neuron

    from snnplug.models import convnet
    from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode

    factories = {
        "sj-bptt-if": lambda: neuron.IFNode(v_reset=None, step_mode="m"),
        "sj-bptt-lif": lambda: neuron.LIFNode(v_reset=None, step_mode="m"),
        "sj-dsr-if": lambda: neuron.DSRIFNode(T=T),
        "snnplug-dsr-if-perstep": lambda: DSRIFNode(T=T),
        "snnplug-dsr-if": lambda: DSRIFNode(T=T),
        "snnplug-dsr-if-whole": lambda: DSRIFNode(T=T),
        "snnplug-dsr-lif": lambda: DSRLIFNode(T=T),
    }
    torch.manual_seed(0)
    return convnet(SHAPE, 10, node=factories[case], norm=norm)


def run_case(case: str, T: int, norm: bool, iters: int) -> dict:
    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional

    from snnplug_dsr.representation import representation_forward

    torch.set_num_threads(1)
    net = build_case(case, T, norm)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, *SHAPE, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    xs = x.unsqueeze(0).expand(T, *x.shape)
    layerwise = not case.endswith("whole")

    def step() -> None:
        if case.startswith("snnplug") and not case.endswith("perstep"):
            out = representation_forward(net, xs, layerwise=layerwise)
        else:
            functional.reset_net(net)
            out = net(xs).mean(0)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        raise RuntimeError(f"{key} not in /proc/self/status")

    step()  # warm-up: SpikingJelly selects/compiles kernels on the first call
    gc.collect()
    before = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS high-water mark
        f.write("5")
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = status("VmHWM:")
    return {"case": case, "T": T, "norm": norm, "time_s": statistics.median(times),
            "peak_mb": (peak - before) / 1024.0}


def spawn(case: str, T: int, norm: bool, iters: int) -> dict:
    """Time in one fresh process (default allocator), memory in another (mmap threshold)."""
    def one(n: int, extra_env: dict) -> dict:
        env = {**os.environ, "OMP_NUM_THREADS": "1", **extra_env}
        cmd = [sys.executable, __file__, "--case", case, "--T", str(T), "--iters", str(n)]
        if not norm:
            cmd.append("--no-norm")
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    timed = one(iters, {})
    mem = one(1, {"MALLOC_MMAP_THRESHOLD_": "65536"})
    return {**timed, "peak_mb": mem["peak_mb"]}


def speed(quick: bool) -> str:
    from _report import table

    iters = 2 if quick else 3
    cases = ["sj-bptt-if", "sj-bptt-lif", "sj-dsr-if", "snnplug-dsr-if-perstep", "snnplug-dsr-if",
             "snnplug-dsr-if-whole", "snnplug-dsr-lif"]
    res = {}
    for norm in (True, False):
        for c in cases:
            res[(c, 20, norm)] = r = spawn(c, 20, norm, iters)
            print(f"  {c:24s} T=20 norm={norm}: {r['time_s']:.3f} s/it, {r['peak_mb']:.0f} MB", flush=True)
        for c in ("sj-bptt-if", "snnplug-dsr-if", "snnplug-dsr-if-whole"):
            for T in (10, 40):
                res[(c, T, norm)] = r = spawn(c, T, norm, iters)
                print(f"  {c:24s} T={T} norm={norm}: {r['time_s']:.3f} s/it, {r['peak_mb']:.0f} MB", flush=True)

    parts = []
    for norm in (True, False):
        b, d = res[("sj-bptt-if", 20, norm)], res[("sj-dsr-if", 20, norm)]
        rows = []
        for c in cases:
            r = res[(c, 20, norm)]
            rows.append([c, f"{r['time_s']:.3f}", f"{r['peak_mb']:.0f}",
                         f"{r['time_s'] / b['time_s']:.2f}", f"{r['peak_mb'] / b['peak_mb']:.2f}",
                         f"{r['time_s'] / d['time_s']:.2f}", f"{r['peak_mb'] / d['peak_mb']:.2f}"])
        parts.append(f"**T=20, batch {BATCH}, convnet 32-64-128 {'with' if norm else 'without'} batch norm**\n\n"
                     + table(["case", "s/iter", "peak MB", "time / BPTT-IF", "mem / BPTT-IF",
                              "time / SJ-DSR", "mem / SJ-DSR"], rows))
        rows = []
        for c in ("sj-bptt-if", "snnplug-dsr-if", "snnplug-dsr-if-whole"):
            a, z = res[(c, 10, norm)], res[(c, 40, norm)]
            rows.append([c, f"{a['peak_mb']:.0f}", f"{res[(c, 20, norm)]['peak_mb']:.0f}",
                         f"{z['peak_mb']:.0f}", f"{z['peak_mb'] / a['peak_mb']:.2f}",
                         f"{a['time_s']:.3f}", f"{z['time_s']:.3f}"])
        parts.append("Peak memory vs T " + ("(batch norm)" if norm else "(no batch norm)") + "\n\n"
                     + table(["case", "MB T=10", "MB T=20", "MB T=40", "T=40 / T=10", "s/it T=10",
                              "s/it T=40"], rows))
    # targets
    tg = []
    for norm in (True, False):
        tag = "BN" if norm else "no BN"
        b, d = res[("sj-bptt-if", 20, norm)], res[("sj-dsr-if", 20, norm)]
        for c in ("snnplug-dsr-if", "snnplug-dsr-if-whole"):
            r = res[(c, 20, norm)]
            scale = res[(c, 40, norm)]["peak_mb"] / res[(c, 10, norm)]["peak_mb"]
            checks = [("mem <= 0.25x BPTT", r["peak_mb"] / b["peak_mb"], 0.25),
                      ("mem <= 0.5x SJ-DSR", r["peak_mb"] / d["peak_mb"], 0.5),
                      ("time <= 0.5x BPTT", r["time_s"] / b["time_s"], 0.5),
                      ("time <= 0.8x SJ-DSR", r["time_s"] / d["time_s"], 0.8),
                      ("mem T=40 <= 1.25x T=10", scale, 1.25)]
            for name, val, lim in checks:
                tg.append([tag, c, name, f"{val:.2f}", "met" if val <= lim else "**missed**"])
    parts.append("Targets (CPU)\n\n" + table(["net", "case", "target", "measured", ""], tg))
    return "\n\n".join(parts)


# -- accuracy ------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["speed", "accuracy", "select", "zoo", "fidelity", "parity", "all"], default="all",
                    help="all = speed + accuracy; select = the threshold-lr sweep on a validation split")
    ap.add_argument("--case")
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--no-norm", action="store_true")
    ap.add_argument("--zoo-case")
    ap.add_argument("--net", default="spiking_resnet18")
    ap.add_argument("--nets", default=",".join(("spiking_resnet18", "sew_resnet18")),
                    help="zoo: comma-separated networks")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--fidelity-case")
    ap.add_argument("--eval-bn", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="accuracy: reuse the results of runs an earlier (interrupted) run of the same "
                         "settings finished (benchmarks/.cache/); do not use after changing the code")
    return ap


def main() -> None:
    args = _parser().parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.T, not args.no_norm, args.iters)))
        return
    if args.fidelity_case:
        import dsr_zoo

        print(json.dumps(dsr_zoo.fidelity_case(args.fidelity_case, args.T, not args.eval_bn)))
        return
    if args.zoo_case:
        import dsr_zoo

        print(json.dumps(dsr_zoo.run_case(args.net, args.zoo_case, args.T, args.iters, args.memory)))
        return
    import dsr_accuracy
    from _report import write_section

    if args.part in ("speed", "all"):
        print("speed/memory:", flush=True)
        write_section("dsr-speed", "DSR: time and memory per training iteration", speed(args.quick))
    if args.part in ("accuracy", "all"):
        print("accuracy:", flush=True)
        write_section("dsr-accuracy", "DSR: accuracy on Fashion-MNIST",
                      dsr_accuracy.accuracy(args.quick, resume=args.resume))
    if args.part == "zoo":
        import dsr_zoo

        print("zoo networks:", flush=True)
        nets = tuple(args.nets.split(","))
        write_section("dsr-zoo" + ("" if len(nets) > 1 else "-" + nets[0]),
                      "DSR on SpikingJelly's zoo: time and allocator peak per training step",
                      dsr_zoo.zoo(args.quick, nets))
    if args.part == "fidelity":
        import dsr_zoo

        print("gradient fidelity:", flush=True)
        write_section("dsr-fidelity", "DSR: representation vs per-step gradients on the zoo",
                      dsr_zoo.fidelity(args.quick))
    if args.part == "parity":
        import dsr_parity

        print("accuracy parity, representation vs per-step backward (residual net):", flush=True)
        write_section("dsr-parity", "DSR: representation vs per-step backward, accuracy on a residual net",
                      dsr_parity.parity(args.quick, resume=args.resume))
    if args.part == "select":
        print("threshold learning-rate sweep (validation split):", flush=True)
        write_section("dsr-select", "DSR: choosing threshold_lr_scale (validation split)",
                      dsr_accuracy.select(args.quick, resume=args.resume))


if __name__ == "__main__":
    main()
