"""DSR on SpikingJelly's zoo (``python benchmarks/dsr.py --part zoo``): time and allocator peak of
one training step of the unmodified ``spiking_resnet18`` / ``sew_resnet18`` (ADD), side by side:

* ``sj-bptt-if``: SpikingJelly surrogate-gradient BPTT, the model built with ``IFNode``;
* ``sj-dsr-if``: SpikingJelly's own ``DSRIFNode`` (per-step graph, DSR gradient);
* ``snnplug-dsr-if``: the ``IFNode`` model through ``snnplug.apply(net, neuron="dsr-if", T=T)``
  and ``representation_forward`` (traced graph, layer-wise streamed simulation, representation
  backward).

Input 64x64 (3 channels, direct encoding: the image repeated over T), batch 8, 1000 classes,
one torch thread, SGD step included. Each case runs in fresh subprocesses: one for time
(median of 5 steps after a warm-up step; 2 with ``--quick``), one for memory: the allocator
peak of one step after a warm-up step, from ``torch.profiler`` memory events (every CPU
allocation and free, in time order; the peak of their running sum), i.e. the most bytes the step had allocated at once beyond what was
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

        model = snnplug.apply(model, neuron="dsr-if", T=T, readout="replace")
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

    iters = 2 if quick else 5
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


# -- gradient fidelity ---------------------------------------------------------------------------
FIDELITY_NETS = ("spiking_resnet18", "sew_resnet18-ADD", "sew_resnet18-IAND", "sew_resnet18-AND", "csnn")


def _fidelity_net(name: str, T: int):
    import torch
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.model import sew_resnet, spiking_resnet

    import snnplug

    torch.manual_seed(0)
    if name == "spiking_resnet18":
        net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    elif name.startswith("sew_resnet18"):
        net = sew_resnet.sew_resnet18(spiking_neuron=neuron.IFNode, cnf=name.split("-")[1], num_classes=10)
    else:
        from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

        net = CSNN(T=T, channels=32).conv_fc
    functional.set_step_mode(net, "m")
    return snnplug.apply(net, neuron="dsr-if", T=T, v_threshold=1.0, readout="replace").double()


def fidelity_case(name: str, T: int, train_bn: bool) -> dict:
    """Relative difference between the representation and the per-step gradients (float64)."""
    import copy

    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional

    from snnplug_dsr.representation import representation_forward

    torch.set_num_threads(1)
    net = _fidelity_net(name, T)
    net.train(train_bn)
    g = torch.Generator().manual_seed(1)
    shape = (8, 1, 28, 28) if name == "csnn" else (8, 3, 32, 32)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (8,), generator=g)
    xs = x.unsqueeze(0).expand(T, *shape)
    a, b = net, copy.deepcopy(net)
    functional.reset_net(a)
    F.cross_entropy(a(xs).mean(0), y).backward()
    F.cross_entropy(representation_forward(b, xs), y).backward()
    ga = torch.cat([p.grad.flatten() for p in a.parameters()])
    gb = torch.cat([p.grad.flatten() for p in b.parameters()])
    per_layer = [float((p.grad - q.grad).norm() / p.grad.norm()) for p, q in zip(a.parameters(), b.parameters())
                 if p.grad.norm() > 0 and p.dim() > 1]
    cos = float(torch.nn.functional.cosine_similarity(ga, gb, dim=0))
    nan = float("nan")
    return {"net": name, "T": T, "train_bn": train_bn, "rel": float((ga - gb).norm() / ga.norm()),
            "layer_median": float(torch.tensor(per_layer).median()) if per_layer else nan,
            "layer_max": max(per_layer) if per_layer else nan, "cos": cos,
            "weights_with_grad": f"{len(per_layer)}/{sum(1 for p in a.parameters() if p.dim() > 1)}"}


def fidelity(quick: bool) -> str:
    from _report import table

    rows = []
    Ts = (4, 16) if quick else (4, 8, 16)
    for name in FIDELITY_NETS:
        for train_bn in (True, False):
            for T in (Ts if train_bn else Ts[-1:]):
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                cmd = [sys.executable, str(Path(__file__).resolve().parent / "dsr.py"), "--fidelity-case",
                       name, "--T", str(T)] + ([] if train_bn else ["--eval-bn"])
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"{name} T={T}: {out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"  {name} T={T} BN {'train' if train_bn else 'eval'}: rel {r['rel']:.3g}", flush=True)
                rows.append([name, "train" if train_bn else "eval", T, f"{r['rel']:.3g}",
                             f"{r['layer_median']:.3g}", f"{r['layer_max']:.3g}", f"{r['cos']:.4f}",
                             r["weights_with_grad"]])
    return ("Relative difference `|g_rep - g_step| / |g_step|` between the representation backward "
            "and the per-step DSR backward, over all parameters (and per weight tensor: median, max), "
            "and their cosine; float64, batch 8 of N(0,1) images (32x32x3; 28x28x1 for the CSNN), "
            "untrained networks, DSR-IF with Vth=1, direct encoding.\n\n"
            + table(["net", "BN", "T", "rel. diff", "per-layer median", "per-layer max", "cosine",
                     "weights with gradient"], rows))
