"""DSR on SpikingJelly's zoo (``python benchmarks/dsr.py --part zoo``): time and allocator peak of
one training step of the unmodified ``spiking_resnet18`` / ``sew_resnet18`` (ADD), side by side:

* ``sj-bptt-if``: SpikingJelly surrogate-gradient BPTT, the model built with ``IFNode``;
* ``sj-dsr-if``: SpikingJelly's own ``DSRIFNode`` (per-step graph, DSR gradient);
* ``snnplug-dsr-if``: the ``IFNode`` model through ``snnplug.apply(net, neuron="dsr-if", T=T)``
  and ``representation_forward`` (traced graph, layer-wise streamed simulation, representation
  backward).

Input 64x64 (3 channels, direct encoding: the image repeated over T), batch 8, 1000 classes,
one torch thread, SGD step included. Each case runs in fresh subprocesses: one for time (median
of 2 steps after a warm-up step), one for memory: the allocator peak of one step after a warm-up
step, from ``torch.profiler`` memory events (every CPU allocation and free, in time order; the
peak of their running sum), i.e. the most bytes the step had allocated at once beyond what was
allocated before it (parameters, optimizer state).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH = 8
SIZE = 64
NETS = ("spiking_resnet18", "sew_resnet18")


def build(net: str, case: str, T: int):
    import torch
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.model import sew_resnet, spiking_resnet

    torch.manual_seed(0)
    ctor = spiking_resnet.spiking_resnet18 if net == "spiking_resnet18" else sew_resnet.sew_resnet18
    extra = {} if net == "spiking_resnet18" else {"cnf": "ADD"}
    if case == "sj-dsr-if":
        model = ctor(spiking_neuron=neuron.DSRIFNode, T=T, **extra)
    else:
        model = ctor(spiking_neuron=neuron.IFNode, **extra)
    functional.set_step_mode(model, "m")
    if case.startswith("snnplug"):
        import snnplug

        model = snnplug.apply(model, neuron="dsr-if", T=T)
    return model


def run_case(net: str, case: str, T: int, iters: int, memory: bool) -> dict:
    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional

    from snnplug_dsr.representation import representation_forward

    torch.set_num_threads(1)
    model = build(net, case, T)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, 3, SIZE, SIZE, generator=g)
    y = torch.randint(0, 1000, (BATCH,), generator=g)
    xs = x.unsqueeze(0).expand(T, *x.shape)

    def step() -> None:
        if case.startswith("snnplug"):
            out = representation_forward(model, xs)
        else:
            functional.reset_net(model)
            out = model(xs).mean(0)
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    if memory:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        ev = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
        peak = max(itertools.accumulate(b for _, b in ev))
        return {"net": net, "case": case, "T": T, "peak_mb": peak / 2 ** 20}
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"net": net, "case": case, "T": T, "time_s": statistics.median(times)}


def spawn(net: str, case: str, T: int, iters: int) -> dict:
    def one(memory: bool) -> dict:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "dsr.py"), "--zoo-case", case,
               "--net", net, "--T", str(T), "--iters", str(iters)] + (["--memory"] if memory else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{net} {case} T={T} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    return {**one(False), **one(True)}


def zoo(quick: bool, nets: tuple[str, ...] = NETS) -> str:
    from _report import table

    iters = 1 if quick else 2
    plan = [("sj-bptt-if", 16), ("sj-dsr-if", 16), ("snnplug-dsr-if", 4), ("snnplug-dsr-if", 16),
            ("snnplug-dsr-if", 32)]
    parts, tg = [], []
    for net in nets:
        res = {}
        for case, T in plan:
            res[(case, T)] = r = spawn(net, case, T, iters)
            print(f"  {net} {case:16s} T={T}: {r['time_s']:.2f} s/step, {r['peak_mb']:.0f} MB", flush=True)
        b, d = res[("sj-bptt-if", 16)], res[("sj-dsr-if", 16)]
        rows = []
        for case, T in plan:
            r = res[(case, T)]
            rel = (f"{r['time_s'] / b['time_s']:.2f}", f"{r['peak_mb'] / b['peak_mb']:.2f}",
                   f"{r['peak_mb'] / d['peak_mb']:.2f}") if T == 16 else ("", "", "")
            rows.append([case, T, f"{r['time_s']:.2f}", f"{r['peak_mb']:.0f}", *rel])
        parts.append(f"**{net}** (unmodified, {SIZE}x{SIZE}, batch {BATCH}, 1000 classes)\n\n"
                     + table(["case", "T", "s/step", "peak MB", "time / BPTT", "mem / BPTT",
                              "mem / SJ-DSR"], rows))
        r = res[("snnplug-dsr-if", 16)]
        scale = res[("snnplug-dsr-if", 32)]["peak_mb"] / res[("snnplug-dsr-if", 4)]["peak_mb"]
        for name, val, lim in [("mem T=16 <= 0.25x BPTT", r["peak_mb"] / b["peak_mb"], 0.25),
                               ("mem T=16 <= 0.5x SJ-DSR", r["peak_mb"] / d["peak_mb"], 0.5),
                               ("mem T=32 <= 1.25x T=4", scale, 1.25),
                               ("time T=16 <= 0.5x BPTT", r["time_s"] / b["time_s"], 0.5)]:
            tg.append([net, name, f"{val:.2f}", "met" if val <= lim else "**missed**"])
    parts.append("Targets (CPU, 1 thread)\n\n" + table(["net", "target", "measured", ""], tg))
    return "\n\n".join(parts)
