"""``snnplug compare``: the same model, weights and data in snnTorch and in SpikingJelly.

:func:`compare` trains an snnTorch model briefly in snnTorch's own time loop, converts it with
:func:`snnplug.adapters.snntorch.to_spikingjelly` (same weights) and reports, for both
frameworks: test accuracy, spikes of every neuron layer (mismatch count), gradient agreement on
one batch, forward+backward time (best of ``repeats``) and memory (peak CUDA memory on GPU; on
CPU the bytes autograd saves for backward, counted once per storage). With ``methods=True`` it
also runs snnplug's methods against SpikingJelly's built-ins on one network (DSR vs
``neuron.DSRIFNode``, BNTT vs ``layer.BatchNormThroughTime2d``), skipping plugins that are not
installed. The result is a JSON-serialisable dict; :func:`format_table` prints it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.checks import as_steps


# -- measuring ---------------------------------------------------------------------------------

def best_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def memory_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak CUDA memory of ``fn`` on GPU; on CPU the bytes saved for backward (unique storages)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return int(sum(seen.values()))


def default_snntorch_model(input_shape: tuple[int, ...], num_classes: int, *, hidden: int = 128,
                           beta: float = 0.9) -> nn.Module:
    """``Flatten -> Linear -> Leaky -> Linear -> Leaky`` (snnTorch defaults otherwise)."""
    import snntorch as snn

    n_in = 1
    for d in input_shape:
        n_in *= int(d)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), snn.Leaky(beta=beta, init_hidden=True),
                         nn.Linear(hidden, num_classes), snn.Leaky(beta=beta, init_hidden=True))


def _direct(x: torch.Tensor, T: int) -> torch.Tensor:
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _spike_recorder(modules: list[nn.Module]) -> tuple[list[list[torch.Tensor]], list[Any]]:
    rec: list[list[torch.Tensor]] = [[] for _ in modules]
    hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: rec[k].append(_first(o).detach()))
             for k, m in enumerate(modules)]
    return rec, hooks


def _neurons_snntorch(net: nn.Module) -> list[nn.Module]:
    from snnplug.adapters.snntorch import is_snntorch_neuron

    return [m for m in net.modules() if is_snntorch_neuron(m)]


def _neurons_sj(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if getattr(m, "snnplug_spiking", False)]


def layer_spikes(snn_net: nn.Module, sj_net: nn.Module, x_seq: torch.Tensor
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Spikes ``[T, B, ...]`` of every neuron layer, snnTorch loop and SpikingJelly multi-step."""
    from snnplug.adapters.snntorch import run
    from snnplug.backends.spikingjelly import reset

    a_mods, b_mods = _neurons_snntorch(snn_net), _neurons_sj(sj_net)
    rec_a, hooks = _spike_recorder(a_mods)
    try:
        with torch.no_grad():
            run(snn_net, x_seq)
    finally:
        for h in hooks:
            h.remove()
    rec_b, hooks = _spike_recorder(b_mods)
    try:
        with torch.no_grad():
            reset(sj_net)
            sj_net(x_seq)
    finally:
        for h in hooks:
            h.remove()
    return [torch.stack(r) for r in rec_a], [r[0] for r in rec_b]


# -- the framework comparison ------------------------------------------------------------------

def _train_snntorch(net: nn.Module, loader: Any, T: int, epochs: int, lr: float, device: torch.device) -> None:
    from snnplug.adapters.snntorch import run

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(_first(run(net, _direct(x, T))).sum(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()


def _accuracy(forward: Callable[[torch.Tensor], torch.Tensor], loader: Any, T: int, device: torch.device) -> float:
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            counts = _first(forward(_direct(x, T))).sum(0)
            correct += int((counts.argmax(-1) == y).sum())
            total += int(y.numel())
    return correct / max(1, total)


def compare_frameworks(model: nn.Module | None = None, *, dataset: str = "digits", T: int = 32,
                       batch_size: int = 64, epochs: int = 1, lr: float = 2e-3, limit: int | None = None,
                       seed: int = 0, repeats: int = 3, layers: str = "vectorized",
                       device: str = "cpu") -> dict[str, Any]:
    """snnTorch loop vs the converted SpikingJelly model on one dataset (see the module doc)."""
    from snnplug.adapters.snntorch import parameter_pairs, run, to_spikingjelly
    from snnplug.backends.spikingjelly import reset
    from snnplug.data import load_dataset, make_loaders

    T = as_steps("T", T)
    dev = torch.device(device)
    torch.manual_seed(seed)
    bundle = load_dataset(dataset, limit=limit)
    train_loader, test_loader = make_loaders(bundle, batch_size, seed=seed)
    snn_net = (model if model is not None else default_snntorch_model(bundle.input_shape, bundle.num_classes)).to(dev)
    if epochs > 0:
        _train_snntorch(snn_net, train_loader, T, epochs, lr, dev)
    snn_net.eval()
    sj_net = to_spikingjelly(snn_net, layers=layers).to(dev)

    def sj_forward(x_seq: torch.Tensor) -> Any:
        reset(sj_net)
        return sj_net(x_seq)

    # accuracy and spikes of every layer on the whole test set
    acc_a = _accuracy(lambda xs: run(snn_net, xs), test_loader, T, dev)
    acc_b = _accuracy(sj_forward, test_loader, T, dev)
    mismatches = total = 0
    per_layer = None
    for x, _ in test_loader:
        sa, sb = layer_spikes(snn_net, sj_net, _direct(x.to(dev), T))
        diffs = [int((a != b).sum()) for a, b in zip(sa, sb, strict=True)]
        per_layer = diffs if per_layer is None else [p + d for p, d in zip(per_layer, diffs, strict=True)]
        mismatches += sum(diffs)
        total += sum(a.numel() for a in sa)

    # gradients and speed on one training batch
    x, y = next(iter(train_loader))
    x_seq, y = _direct(x.to(dev), T), y.to(dev)
    snn_net.train()
    sj_net.train()

    def step_snn() -> None:
        snn_net.zero_grad(set_to_none=True)
        F.cross_entropy(_first(run(snn_net, x_seq)).sum(0), y).backward()

    def step_sj() -> None:
        sj_net.zero_grad(set_to_none=True)
        F.cross_entropy(_first(sj_forward(x_seq)).sum(0), y).backward()

    step_snn()
    step_sj()
    grad_err = 0.0
    for _, p, q in parameter_pairs(snn_net, sj_net):
        if p.grad is not None and q.grad is not None:
            scale = float(p.grad.abs().max()) or 1.0
            grad_err = max(grad_err, float((p.grad - q.grad).abs().max()) / scale)
    t_a, t_b = best_time(step_snn, repeats), best_time(step_sj, repeats)
    mem_a, mem_b = memory_bytes(step_snn, dev), memory_bytes(step_sj, dev)
    return {
        "dataset": bundle.name, "T": T, "batch_size": batch_size, "epochs": epochs, "layers": layers,
        "device": str(dev),
        "snntorch": {"accuracy": acc_a, "fwd_bwd_s": t_a, "memory_bytes": mem_a},
        "spikingjelly": {"accuracy": acc_b, "fwd_bwd_s": t_b, "memory_bytes": mem_b},
        "spikes_compared": total, "spike_mismatches": mismatches, "spike_mismatches_per_layer": per_layer,
        "spike_agreement": 1.0 - mismatches / max(1, total),
        "max_rel_grad_diff": grad_err, "speedup": t_a / t_b if t_b > 0 else None,
        "memory_ratio": mem_a / mem_b if mem_b else None,
    }


# -- snnplug methods vs SpikingJelly built-ins ------------------------------------------------

def _replace(net: nn.Module, match: Callable[[nn.Module], bool], make: Callable[[nn.Module], nn.Module]) -> int:
    n = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                setattr(parent, name, make(child))
                n += 1
    return n


def _method_row(name: str, ours: nn.Module, theirs: nn.Module, x_seq: torch.Tensor, y: torch.Tensor,
                repeats: int, dev: torch.device) -> dict[str, Any]:
    from snnplug.backends.spikingjelly import invalidate_reset_cache, reset

    for net in (ours, theirs):
        invalidate_reset_cache(net)

    def step(net: nn.Module) -> Callable[[], torch.Tensor]:
        def fn() -> torch.Tensor:
            net.zero_grad(set_to_none=True)
            reset(net)
            out = net(x_seq)
            F.cross_entropy(out.mean(0), y).backward()
            return out.detach()
        return fn

    out_a, out_b = step(ours)(), step(theirs)()
    t_a, t_b = best_time(step(ours), repeats), best_time(step(theirs), repeats)
    return {"method": name, "snnplug_fwd_bwd_s": t_a, "spikingjelly_fwd_bwd_s": t_b,
            "speedup": t_b / t_a if t_a > 0 else None,
            "snnplug_memory_bytes": memory_bytes(step(ours), dev),
            "spikingjelly_memory_bytes": memory_bytes(step(theirs), dev),
            "output_agreement": float((out_a == out_b).float().mean()),
            "max_abs_output_diff": float((out_a - out_b).abs().max())}


def compare_methods(*, T: int = 8, batch_size: int = 64, seed: int = 0, repeats: int = 3,
                    device: str = "cpu") -> list[dict[str, Any]]:
    """snnplug DSR vs SpikingJelly ``DSRIFNode``; snnplug BNTT vs ``BatchNormThroughTime2d``.

    Same network, weights and digits batch for both; a method whose plugin is not installed gives
    a row with ``skipped``.
    """
    import snnplug
    from snnplug.backends.spikingjelly import sj
    from snnplug.data import load_dataset
    from snnplug.errors import UnknownPluginError
    from snnplug.models import convnet, mlp

    ab = sj()
    dev = torch.device(device)
    T = as_steps("T", T)
    bundle = load_dataset("digits")
    x = bundle.train.tensors[0][:batch_size].to(dev)
    y = bundle.train.tensors[1][:batch_size].to(dev)
    x_seq = _direct(x, T)
    rows: list[dict[str, Any]] = []

    torch.manual_seed(seed)
    base = mlp(64, 10, hidden=(128,), neuron=lambda: ab.neuron.IFNode(step_mode="m")).to(dev)
    try:
        ours = snnplug.apply(base, neuron="dsr-if", T=T, v_threshold=6.0, alpha=0.5)
        theirs = copy.deepcopy(base)
        _replace(theirs, lambda m: isinstance(m, ab.neuron.IFNode),
                 lambda m: ab.neuron.DSRIFNode(T=T, v_threshold=6.0, alpha=0.5, step_mode="m"))
        rows.append(_method_row("dsr-if vs neuron.DSRIFNode", ours.to(dev), theirs.to(dev), x_seq, y, repeats, dev))
    except UnknownPluginError as exc:
        rows.append({"method": "dsr-if vs neuron.DSRIFNode", "skipped": str(exc)})

    torch.manual_seed(seed)
    base = convnet(bundle.input_shape, 10, neuron=lambda: ab.neuron.LIFNode(step_mode="m")).to(dev)
    try:
        ours = snnplug.apply(base, normalizer="bntt", T=T)
        eps = next(m for m in ours.modules() if hasattr(m, "eps")).eps

        theirs = copy.deepcopy(base)  # every BatchNorm apply() replaced, 2d and 1d, same eps
        _replace(theirs, lambda m: isinstance(m, nn.BatchNorm2d),
                 lambda bn: ab.layer.BatchNormThroughTime2d(T, bn.num_features, eps=float(eps), step_mode="m"))
        _replace(theirs, lambda m: isinstance(m, nn.BatchNorm1d),
                 lambda bn: ab.layer.BatchNormThroughTime1d(T, bn.num_features, eps=float(eps), step_mode="m"))
        rows.append(_method_row("bntt vs layer.BatchNormThroughTime2d", ours.to(dev), theirs.to(dev), x_seq, y,
                                repeats, dev))
    except UnknownPluginError as exc:
        rows.append({"method": "bntt vs layer.BatchNormThroughTime2d", "skipped": str(exc)})
    return rows


# -- entry point and table ---------------------------------------------------------------------

def compare(model: nn.Module | None = None, *, dataset: str = "digits", T: int = 32, batch_size: int = 64,
            epochs: int = 1, limit: int | None = None, seed: int = 0, repeats: int = 3,
            layers: str = "vectorized", methods: bool = True, device: str = "cpu",
            json_path: str | Path | None = None) -> dict[str, Any]:
    """Run the framework comparison (and the methods comparison); optionally write JSON."""
    result: dict[str, Any] = {
        "frameworks": compare_frameworks(model, dataset=dataset, T=T, batch_size=batch_size, epochs=epochs,
                                         limit=limit, seed=seed, repeats=repeats, layers=layers, device=device),
        "methods": compare_methods(batch_size=batch_size, seed=seed, repeats=repeats, device=device)
        if methods else [],
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MB"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of a :func:`compare` result."""
    fw = result["frameworks"]
    lines = [f"snnTorch loop vs SpikingJelly multi-step ({fw['dataset']}, T={fw['T']}, batch {fw['batch_size']}, "
             f"layers={fw['layers']}, {fw['device']})",
             f"{'':24}{'snnTorch':>14}{'SpikingJelly':>14}{'ratio':>10}",
             f"{'accuracy':24}{fw['snntorch']['accuracy']:>14.4f}{fw['spikingjelly']['accuracy']:>14.4f}{'':>10}",
             f"{'fwd+bwd time':24}{fw['snntorch']['fwd_bwd_s'] * 1e3:>12.1f}ms{fw['spikingjelly']['fwd_bwd_s'] * 1e3:>12.1f}ms"
             f"{fw['speedup']:>9.2f}x",
             f"{'memory':24}{_mb(fw['snntorch']['memory_bytes']):>14}{_mb(fw['spikingjelly']['memory_bytes']):>14}"
             f"{(fw['memory_ratio'] or 0):>9.2f}x",
             f"spike mismatches: {fw['spike_mismatches']} of {fw['spikes_compared']} "
             f"(agreement {fw['spike_agreement']:.6f}); max relative gradient difference {fw['max_rel_grad_diff']:.2e}"]
    if result.get("methods"):
        lines += ["", f"{'snnplug method vs SpikingJelly built-in':44}{'snnplug':>12}{'SpikingJelly':>14}"
                      f"{'speedup':>9}{'same out':>10}{'max |dout|':>12}"]
        for row in result["methods"]:
            if "skipped" in row:
                lines.append(f"{row['method']:44}skipped: {row['skipped']}")
                continue
            lines.append(f"{row['method']:44}{row['snnplug_fwd_bwd_s'] * 1e3:>10.1f}ms"
                         f"{row['spikingjelly_fwd_bwd_s'] * 1e3:>12.1f}ms{row['speedup']:>8.2f}x"
                         f"{row['output_agreement']:>10.3f}{row['max_abs_output_diff']:>12.2e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``snnplug compare``: print the comparison table and write JSON."""
    from snnplug import cliargs as ca

    p = ca.Parser(prog="snnplug compare", description=compare.__doc__)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--T", type=ca.steps, default=32)
    p.add_argument("--batch-size", type=ca.positive_int, default=64)
    p.add_argument("--epochs", type=ca.positive_int, default=1, help="training epochs in snnTorch before comparing accuracy")
    p.add_argument("--limit", type=ca.positive_int, default=None)
    p.add_argument("--seed", type=ca.nonnegative_int, default=0)
    p.add_argument("--repeats", type=ca.positive_int, default=3)
    p.add_argument("--layers", choices=("vectorized", "per-step"), default="vectorized")
    p.add_argument("--no-methods", action="store_true", help="skip snnplug methods vs SpikingJelly built-ins")
    p.add_argument("--device", type=ca.device, default="cpu")
    p.add_argument("--json", default="compare.json", help="where to write the JSON result")
    args = p.parse_args(argv)
    result = compare(dataset=args.dataset, T=args.T, batch_size=args.batch_size, epochs=args.epochs,
                     limit=args.limit, seed=args.seed, repeats=args.repeats, layers=args.layers,
                     methods=not args.no_methods, device=args.device, json_path=args.json)
    print(format_table(result))
    print(f"json: {args.json}")
    return 0
