"""GPU benchmarks of the fused Triton kernels, side by side in one run (-> docs/benchmarks.md,
section "gpu"). Needs CUDA; ``--dry-run`` checks the whole script on CPU with tiny sizes.

1. Neurons at equal work: every fused snnplug neuron against SpikingJelly's Triton ``LIFNode``
   (training: forward + backward) or ``IFNode`` (inference: forward), on ``[T, 100, N/100]``
   inputs, T in 4, 16, 64 and N in 1e5, 1e6, 1e7. Target: every fused neuron >= 1.0x
   SpikingJelly's Triton LIF throughput (ratio = SJ time / our time). Also a FlexSN-built
   bntt-lif (SpikingJelly's generic fused-neuron builder) against the hand-written kernel, which
   decides whether the hand-written one is kept (docs/gpu.md); at N=1e6 each snnplug neuron also
   on its torch path (the speed-up of the kernels over the code they replace). Stops after 4 min.
2. One training step per method on SpikingJelly's ``spiking_resnet18`` (32x32 input, batch 64,
   10 classes, T = 4 and 16) against SpikingJelly BPTT with its Triton LIF, each with the
   kernels and with ``snnplug.kernels.use("torch")``. Targets at T=16: DSR step <= 0.5x BPTT time
   and <= 0.25x BPTT memory. (OPI trains an ANN, so its row is the converted network's inference
   step against SpikingJelly's IF network; noise trains at T=1.)

Time: CUDA events around each call, 3 warm-up calls, median of 10 (neurons) / 5 (steps).
Memory: ``torch.cuda.max_memory_allocated`` during the call minus what was allocated before it.

    python benchmarks/gpu.py              # on a CUDA machine (estimated 3-5 minutes on an H200, capped at 7)
    python benchmarks/gpu.py --dry-run    # CPU, tiny sizes, kernels in Triton's interpreter; prints only
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as Fn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section  # noqa: E402

KERNEL_MODULES = ("snnplug_dsr.kernels", "snnplug_bntt.kernels", "snnplug_opi.kernels",
                  "snnplug_noise.kernels", "snnplug.adapters.kernels")
BUDGET_S = 7 * 60  # stop starting new measurements after this (the run must fit in ~8 minutes)
NEURON_BUDGET_S = 4 * 60  # part 1 stops here, so part 2 always gets its turn


class Clock:
    """Median time and peak extra memory of a callable (CUDA events, or perf_counter on CPU)."""

    def __init__(self, device: torch.device, warmup: int, reps: int) -> None:
        self.device, self.warmup, self.reps = device, warmup, reps

    def __call__(self, fn: Callable[[], object]) -> tuple[float, float | None]:
        cuda = self.device.type == "cuda"
        for _ in range(self.warmup):
            fn()
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(self.reps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else None
        return statistics.median(times), peak


def _failure(error: Exception) -> str:
    first = (str(error).splitlines() or [""])[0][:120]
    return f"failed: {type(error).__name__}: {first}"


# -- 1. neurons ---------------------------------------------------------------------------------
def _flexsn_bntt_lif(leak: float = 0.99, theta: float = 1.0, alpha: float = 0.3):
    """BNTT's LIF built with SpikingJelly's FlexSN (forward 1[u > θ], backward the triangle
    surrogate α·max(0, 1−|u/θ−1|) through a straight-through term, reset detached)."""
    from spikingjelly.activation_based.neuron import FlexSN

    def core(x, v, leak_t, theta_t, alpha_t):
        u = leak_t * v + x
        z = torch.clamp(u / theta_t - 1.0, -1.0, 1.0)
        smooth = alpha_t * theta_t * (z - z * z.abs() / 2)  # d/du = α·max(0, 1−|u/θ−1|)
        s = (u > theta_t).to(u.dtype) + (smooth - smooth.detach())
        return s, u - s.detach() * theta_t

    return FlexSN(core, num_states=1, static_inputs=(torch.tensor(leak), torch.tensor(theta),
                                                      torch.tensor(alpha)), step_mode="m")


def neuron_cases(T: int) -> dict[str, tuple[str, Callable[[], torch.nn.Module]]]:
    """name -> (kind, factory); kind "train" (forward+backward) or "infer" (forward only)."""
    from spikingjelly.activation_based import neuron, surrogate

    from snnplug.adapters.nodes import SnnTorchLeakyNode, SynapticNode
    from snnplug_bntt.neuron import BNTTLIFNode
    from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode
    from snnplug_noise.neuron import NoisyLIFNode
    from snnplug_opi.neuron import OPIIFNode

    return {
        "SJ LIFNode (Triton)": ("train", lambda: neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m",
                                                                surrogate_function=surrogate.Sigmoid())),
        "dsr-if (per-step backward)": ("train", lambda: DSRIFNode(T=T, v_threshold=1.0)),
        "dsr-lif (per-step backward)": ("train", lambda: DSRLIFNode(T=T)),
        "bntt-lif": ("train", lambda: BNTTLIFNode(T=T)),
        "bntt-lif via FlexSN": ("train", _flexsn_bntt_lif),
        "snnTorch Leaky": ("train", lambda: SnnTorchLeakyNode(beta=0.9)),
        "snnTorch Synaptic": ("train", lambda: SynapticNode(alpha=0.8, beta=0.9)),
        "SJ IFNode (Triton), inference": ("infer", lambda: neuron.IFNode(v_reset=None, step_mode="m")),
        "SJ LIFNode (Triton), inference": ("infer", lambda: neuron.LIFNode(tau=2.0, step_mode="m")),
        "dsr-if simulate": ("infer", lambda: DSRIFNode(T=T, v_threshold=1.0)),
        "opi-if": ("infer", lambda: OPIIFNode(v_threshold=1.0, T=T)),
        "noise-lif stage 2": ("infer", lambda: NoisyLIFNode(stage=2, seed=0)),
        "noise-lif stage 3": ("infer", lambda: NoisyLIFNode(stage=3, seed=0)),
    }


def bench_neurons(device, Ts, Ns, rows_per_step, clock, deadline) -> tuple[str, list[str]]:
    """Part 1. For the middle N the snnplug neurons are also timed on their torch path
    (``kernels.use("torch")``): the speed-up of the kernels over the code they replace."""
    from spikingjelly.activation_based import functional

    from snnplug import kernels

    rows, notes = [], []
    for T in Ts:
        for N in Ns:
            cases = neuron_cases(T)
            res: dict[str, tuple[float, float | None] | str] = {}
            res_torch: dict[str, tuple[float, float | None]] = {}
            for name, (kind, make) in cases.items():
                if time.monotonic() > deadline:
                    res[name] = "skipped (time budget)"
                    continue
                try:
                    node = make().to(device)
                    gen = torch.Generator(device=device).manual_seed(0)
                    shape = (T, rows_per_step, N // rows_per_step)
                    x = torch.randn(shape, device=device, generator=gen) * 0.8 + 0.4
                    g = torch.randn(shape, device=device, generator=gen)
                    if kind == "train":
                        x.requires_grad_()

                        def run(node=node, x=x, g=g):
                            functional.reset_net(node)
                            torch.autograd.grad(node(x), [x], g)
                    else:
                        def run(node=node, x=x):
                            functional.reset_net(node)
                            with torch.no_grad():
                                node(x)
                    res[name] = clock(run)
                    if N == Ns[len(Ns) // 2] and not name.startswith("SJ") and "FlexSN" not in name:
                        with kernels.use("torch"):
                            res_torch[name] = clock(run)
                    del node, x, g
                except Exception as error:  # reported, the run goes on
                    res[name] = _failure(error)
                    notes.append(f"T={T} N={N:.0e} {name}: " + traceback.format_exc(limit=3).replace("\n", " | "))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            base = {"train": res.get("SJ LIFNode (Triton)"), "infer": res.get("SJ IFNode (Triton), inference")}
            for name, (kind, _) in cases.items():
                r, b = res[name], base[kind]
                if isinstance(r, str):
                    rows.append([T, f"{N:.0e}", name, r, "", "", "", ""])
                    continue
                ratio = f"{b[0] / r[0]:.2f}x" if isinstance(b, tuple) and not name.startswith("SJ") else ""
                mem = "" if r[1] is None else f"{r[1]:.0f}"
                tp = f"{res_torch[name][0] / r[0]:.2f}x" if name in res_torch else ""
                rows.append([T, f"{N:.0e}", name, f"{r[0] * 1e3:.3f}", ratio, mem,
                             f"{N * T / r[0] / 1e9:.2f}", tp])
    headers = ["T", "neurons", "neuron", "time (ms)", "SJ time / ours", "peak extra memory (MiB)",
               "G neuron-steps/s", "torch path / kernels"]
    return table(headers, rows), notes


# -- 2. training steps --------------------------------------------------------------------------
def _resnet(neuron_cls, **kw):
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model import spiking_resnet

    net = spiking_resnet.spiking_resnet18(num_classes=10, spiking_neuron=neuron_cls, **kw)
    functional.set_step_mode(net, "m")
    return net


def method_steps(T: int) -> dict[str, Callable[[torch.device], Callable[[torch.Tensor, torch.Tensor], object]]]:
    """method -> builder(device) -> step(x [B,3,32,32], y [B])."""
    import snnplug
    from spikingjelly.activation_based import functional, neuron, surrogate

    def bptt(device):
        net = _resnet(neuron.LIFNode, surrogate_function=surrogate.Sigmoid(), detach_reset=True).to(device)

        def step(x, y):
            functional.reset_net(net)
            out = net(x.unsqueeze(0).expand(T, *x.shape)).mean(0)
            Fn.cross_entropy(out, y).backward()
        return step

    def with_strategy(name, prepare, **kw):
        def build(device):
            base = _resnet(neuron.LIFNode, surrogate_function=surrogate.Sigmoid(), detach_reset=True)
            strat = snnplug.strategy(name, **kw)
            model = prepare(strat, base).to(device)

            def step(x, y):
                functional.reset_net(model)
                strat.loss(model, x, y)[0].backward()
            return step
        return build

    def bntt_prepare(strat, net):
        return snnplug.apply(strat.prepare(net), neuron="bntt-lif", T=T)

    def opi_infer(device):
        net = _resnet(neuron.IFNode, v_reset=None)
        snn = snnplug.apply(net, neuron="opi-if", T=T).to(device)

        def step(x, y):
            functional.reset_net(snn)
            with torch.no_grad():
                snn(x.unsqueeze(0).expand(T, *x.shape))
        return step

    def sj_if_infer(device):
        net = _resnet(neuron.IFNode, v_reset=None).to(device)

        def step(x, y):
            functional.reset_net(net)
            with torch.no_grad():
                net(x.unsqueeze(0).expand(T, *x.shape))
        return step

    return {
        "SJ BPTT (Triton LIF)": bptt,
        "dsr": with_strategy("dsr", lambda s, n: s.prepare(n), T=T),
        "bntt": with_strategy("bntt", bntt_prepare, T=T),
        "noise (trains at T=1)": with_strategy("noise", lambda s, n: s.prepare(n)),
        "SJ IF inference": sj_if_infer,
        "opi-if inference": opi_infer,
    }


def bench_steps(device, Ts, batch, clock, deadline) -> tuple[str, list[str], dict]:
    from snnplug import kernels

    rows, notes, figures = [], [], {}
    for T in Ts:
        gen = torch.Generator(device=device).manual_seed(0)
        x = torch.rand(batch, 3, 32, 32, device=device, generator=gen)
        y = torch.randint(0, 10, (batch,), device=device, generator=gen)
        res = {}
        for name, build in method_steps(T).items():
            for mode in ("auto", "torch"):
                if name.startswith("SJ") and mode == "torch":
                    continue
                key = (name, mode)
                if time.monotonic() > deadline:
                    res[key] = "skipped (time budget)"
                    continue
                try:
                    with kernels.use(mode):
                        torch.manual_seed(0)
                        step = build(device)
                        res[key] = clock(lambda: step(x, y))
                    del step
                except Exception as error:
                    res[key] = _failure(error)
                    notes.append(f"T={T} {name} ({mode}): " + traceback.format_exc(limit=3).replace("\n", " | "))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        bptt, sj_if = res.get(("SJ BPTT (Triton LIF)", "auto")), res.get(("SJ IF inference", "auto"))
        for (name, mode), r in res.items():
            label = name if name.startswith("SJ") else f"{name} ({'kernels' if mode == 'auto' else 'torch path'})"
            if isinstance(r, str):
                rows.append([T, label, r, "", "", ""])
                continue
            b = sj_if if "inference" in name else bptt
            tr = f"{r[0] / b[0]:.2f}x" if isinstance(b, tuple) else ""
            mr = f"{r[1] / b[1]:.2f}x" if isinstance(b, tuple) and r[1] is not None and b[1] else ""
            rows.append([T, label, f"{r[0] * 1e3:.1f}", tr, "" if r[1] is None else f"{r[1]:.0f}", mr])
            figures[(T, name, mode)] = (tr, mr)
    headers = ["T", "method", "step time (ms)", "time / SJ", "peak extra memory (MiB)", "memory / SJ"]
    return table(headers, rows), notes, figures


# -- driver -------------------------------------------------------------------------------------
def _route_to_interpreter() -> None:
    """Dry run: CPU tensors go to interpreted copies of the kernel modules (as the tests do)."""
    import triton.language  # noqa: F401

    from snnplug import kernels

    copies = {m: kernels.interpreted(m) for m in KERNEL_MODULES}
    def route(x, module):
        if kernels.mode() == "torch" or getattr(x, "dtype", None) != torch.float32:
            return None
        return copies.get(module)

    kernels.for_tensor = route


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU, tiny sizes, kernels in Triton's interpreter; prints, writes nothing")
    args = ap.parse_args(argv)
    start = time.monotonic()
    if args.dry_run:
        torch.set_num_threads(1)
        device = torch.device("cpu")
        _route_to_interpreter()
        Ts, Ns, rows, step_Ts, batch = (4,), (1000,), 4, (2,), 2
        clock = Clock(device, warmup=1, reps=1)
    else:
        if not torch.cuda.is_available():
            print("benchmarks/gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); "
                  "use --dry-run to check the script on CPU", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        Ts, Ns, rows, step_Ts, batch = (4, 16, 64), (10**5, 10**6, 10**7), 100, (4, 16), 64
        clock = Clock(device, warmup=3, reps=10)
    deadline = start + BUDGET_S
    neurons, notes1 = bench_neurons(device, Ts, Ns, rows, clock, start + NEURON_BUDGET_S)
    print(neurons, flush=True)
    step_clock = Clock(device, warmup=clock.warmup, reps=min(clock.reps, 5))
    steps, notes2, figures = bench_steps(device, step_Ts, batch, step_clock, deadline)
    print(steps, flush=True)
    notes = notes1 + notes2
    for n in notes:
        print("NOTE", n, file=sys.stderr)
    elapsed = time.monotonic() - start
    print(f"total {elapsed:.0f} s", flush=True)
    if args.dry_run:
        return 0
    dsr = figures.get((max(step_Ts), "dsr", "auto"), ("", ""))
    body = (f"Run time {elapsed:.0f} s. Targets: every fused neuron >= 1.0x SpikingJelly's Triton LIF "
            f"(column 'SJ time / ours' >= 1 for training rows); DSR step at T={max(step_Ts)} <= 0.5x BPTT "
            f"time (measured {dsr[0] or 'n/a'}) and <= 0.25x BPTT memory (measured {dsr[1] or 'n/a'}).\n\n"
            f"### Neurons at equal work (input [T, {rows}, N/{rows}])\n\n{neurons}\n\n"
            f"### One training step on spiking_resnet18 (32x32, batch {batch})\n\n{steps}\n")
    if notes:
        body += "\n### Failures\n\n" + "\n".join(f"- {n[:400]}" for n in notes) + "\n"
    write_section("gpu", "GPU: fused Triton kernels", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
