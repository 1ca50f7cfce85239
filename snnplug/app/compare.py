"""``snnplug compare``: the same model, weights and data in snnTorch and in SpikingJelly.

:func:`compare` trains an snnTorch model briefly in snnTorch's own time loop, converts it with
:func:`snnplug.adapters.snntorch.to_spikingjelly` (same weights) and reports, for both
frameworks: test accuracy, spikes of every neuron layer (mismatch count), gradient agreement on
one batch, forward+backward time (median and spread of ``repeats`` interleaved rounds after
``warmup`` calls, :mod:`snnplug.app.timing`) and memory (peak CUDA memory on GPU; on
CPU the bytes autograd saves for backward, counted once per storage). With ``methods=True`` it
also runs snnplug's methods against SpikingJelly's built-ins on one network (DSR vs
``neuron.DSRIFNode``, BNTT vs ``layer.BatchNormThroughTime2d``), skipping plugins that are not
installed. The result is a JSON-serialisable dict; :func:`format_table` prints it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.app.compare_cli import format_table  # noqa: F401 - re-exported
from snnplug.app.timing import Stats, interleaved, paired_ratio
from snnplug.checks import as_steps


# -- measuring ---------------------------------------------------------------------------------

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

def _accuracy(anytime: Callable[[torch.Tensor], torch.Tensor], loader: Any, device: torch.device) -> float:
    from snnplug.engine import anytime_accuracy

    return anytime_accuracy(anytime, loader, device=device)[-1]


def _spike_mismatches(snn_net: nn.Module, sj_net: nn.Module, loader: Any, T: int,
                      dev: torch.device) -> tuple[int, int, list[int] | None]:
    """(mismatching spikes, spikes compared, mismatches per layer) over ``loader``."""
    mismatches = total = 0
    per_layer = None
    for x, _ in loader:
        sa, sb = layer_spikes(snn_net, sj_net, _direct(x.to(dev), T))
        diffs = [int((a != b).sum()) for a, b in zip(sa, sb, strict=True)]
        per_layer = diffs if per_layer is None else [p + d for p, d in zip(per_layer, diffs, strict=True)]
        mismatches += sum(diffs)
        total += sum(a.numel() for a in sa)
    return mismatches, total, per_layer


def _max_rel_grad_diff(snn_net: nn.Module, sj_net: nn.Module, step_snn: Callable[[], None],
                       step_sj: Callable[[], None]) -> float:
    """Largest gradient difference of paired parameters after one step each, relative to the
    largest snnTorch gradient of that parameter."""
    from snnplug.adapters.snntorch import parameter_pairs

    step_snn()
    step_sj()
    grad_err = 0.0
    for _, p, q in parameter_pairs(snn_net, sj_net):
        if p.grad is not None and q.grad is not None:
            scale = float(p.grad.abs().max()) or 1.0
            grad_err = max(grad_err, float((p.grad - q.grad).abs().max()) / scale)
    return grad_err


def _timing(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int, dev: torch.device
            ) -> dict[str, list[float]]:
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None
    return interleaved(fns, repeats=repeats, warmup=warmup, sync=sync)


def _timing_record(times: dict[str, list[float]], warmup: int) -> dict[str, Any]:
    return {"warmup": warmup, "repeats": len(next(iter(times.values()))), "order": "interleaved, alternating",
            "torch_threads": torch.get_num_threads(), "seconds": times}


def prepare_model(model: nn.Module, bundle: Any, dev: torch.device) -> None:
    """Refuse, before anything runs, a model that has no snnTorch neurons, does not take the
    dataset's samples (:func:`~snnplug.app.model_probe.check_model_fits`) or cannot be converted."""
    from snnplug.adapters.snntorch import to_spikingjelly
    from snnplug.app.model_probe import check_model_fits
    from snnplug.errors import ShapeError, UnsupportedModuleError

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (an snnTorch model), got {type(model).__name__}")
    if bundle.frames:
        raise ShapeError(f"dataset {bundle.name!r} gives event frames; compare feeds static images to both "
                         f"frameworks (direct input, repeated T times): pass an image --dataset")
    if not _neurons_snntorch(model):
        raise UnsupportedModuleError(
            "the model has no snnTorch neurons (snn.Leaky or snn.Synaptic with init_hidden=True), so there is "
            "no snnTorch time loop to compare; pass an snnTorch model")
    try:
        to_spikingjelly(model)
    except UnsupportedModuleError as exc:
        raise UnsupportedModuleError(f"the model cannot be converted to SpikingJelly: {exc}") from None
    x = bundle.train.tensors[0][:2].to(dev)
    check_model_fits(model, x, bundle.num_classes, bundle.name)


def compare_frameworks(model: nn.Module | None = None, *, dataset: str = "digits", T: int = 32,
                       batch_size: int = 64, epochs: int = 1, lr: float = 2e-3, limit: int | None = None,
                       seed: int = 0, repeats: int = 15, warmup: int = 3, layers: str = "vectorized",
                       device: str = "cpu", data_root: str | None = None) -> dict[str, Any]:
    """snnTorch loop vs the converted SpikingJelly model on one dataset (see the module doc)."""
    from snnplug.adapters.snntorch import SnnTorchLoop, run, to_spikingjelly
    from snnplug.backends.spikingjelly import reset
    from snnplug.data import load_dataset, make_loaders
    from snnplug.engine import TrainConfig, train
    from snnplug.engine.evaluate import running_mean

    T = as_steps("T", T)
    dev = torch.device(device)
    torch.manual_seed(seed)
    bundle = load_dataset(dataset, data_root, limit=limit)
    snn_net = (model if model is not None else default_snntorch_model(bundle.input_shape, bundle.num_classes)).to(dev)
    prepare_model(snn_net, bundle, dev)
    train_loader, test_loader = make_loaders(bundle, batch_size, seed=seed)
    if epochs > 0:  # snnTorch's own time loop, driven by snnplug's engine
        train(SnnTorchLoop(T=T, lr=lr), snn_net, train_loader,
              TrainConfig(epochs=epochs, seed=None, device=str(dev), progress=False))
    snn_net.eval()
    sj_net = to_spikingjelly(snn_net, layers=layers).to(dev)

    def sj_forward(x_seq: torch.Tensor) -> Any:
        reset(sj_net)
        return sj_net(x_seq)

    # accuracy (spike counts, from the running mean of one simulation) and spikes of every layer
    acc_a = _accuracy(lambda x: running_mean(_first(run(snn_net, _direct(x, T)))), test_loader, dev)
    acc_b = _accuracy(lambda x: running_mean(_first(sj_forward(_direct(x, T)))), test_loader, dev)
    mismatches, total, per_layer = _spike_mismatches(snn_net, sj_net, test_loader, T, dev)

    speed = _gradients_and_speed(snn_net, sj_forward, sj_net, next(iter(train_loader)), T, repeats, warmup, dev)
    speed["snntorch"] = {"accuracy": acc_a, **speed["snntorch"]}
    speed["spikingjelly"] = {"accuracy": acc_b, **speed["spikingjelly"]}
    return {
        "dataset": bundle.name, "T": T, "batch_size": batch_size, "epochs": epochs, "layers": layers,
        "device": str(dev), **speed,
        "spikes_compared": total, "spike_mismatches": mismatches, "spike_mismatches_per_layer": per_layer,
        "spike_agreement": 1.0 - mismatches / max(1, total),
    }


def _gradients_and_speed(snn_net: nn.Module, sj_forward: Callable[[torch.Tensor], Any], sj_net: nn.Module,
                         batch: tuple[torch.Tensor, torch.Tensor], T: int, repeats: int, warmup: int,
                         dev: torch.device) -> dict[str, Any]:
    """Gradient agreement, fwd+bwd timing and memory of both paths on one training batch."""
    from snnplug.adapters.snntorch import run

    x, y = batch
    x_seq, y = _direct(x.to(dev), T), y.to(dev)
    snn_net.train()
    sj_net.train()

    def step_snn() -> None:
        snn_net.zero_grad(set_to_none=True)
        F.cross_entropy(_first(run(snn_net, x_seq)).sum(0), y).backward()

    def step_sj() -> None:
        sj_net.zero_grad(set_to_none=True)
        F.cross_entropy(_first(sj_forward(x_seq)).sum(0), y).backward()

    grad_err = _max_rel_grad_diff(snn_net, sj_net, step_snn, step_sj)
    times = _timing({"snntorch": step_snn, "spikingjelly": step_sj}, repeats, warmup, dev)
    st_a, st_b = Stats.of(times["snntorch"]), Stats.of(times["spikingjelly"])
    speed = paired_ratio(times["snntorch"], times["spikingjelly"])
    mem_a, mem_b = memory_bytes(step_snn, dev), memory_bytes(step_sj, dev)
    return {
        "timing": _timing_record(times, warmup),
        "snntorch": {"fwd_bwd_s": st_a.median, "fwd_bwd_stats": st_a.as_dict(), "memory_bytes": mem_a},
        "spikingjelly": {"fwd_bwd_s": st_b.median, "fwd_bwd_stats": st_b.as_dict(), "memory_bytes": mem_b},
        "max_rel_grad_diff": grad_err, "speedup": speed.median, "speedup_stats": speed.as_dict(),
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
                repeats: int, warmup: int, dev: torch.device) -> dict[str, Any]:
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
    times = _timing({"snnplug": step(ours), "spikingjelly": step(theirs)}, repeats, warmup, dev)
    speed = paired_ratio(times["spikingjelly"], times["snnplug"])
    return {"method": name, "snnplug_fwd_bwd_s": Stats.of(times["snnplug"]).median,
            "spikingjelly_fwd_bwd_s": Stats.of(times["spikingjelly"]).median,
            "speedup": speed.median, "speedup_stats": speed.as_dict(),
            "snnplug_memory_bytes": memory_bytes(step(ours), dev),
            "spikingjelly_memory_bytes": memory_bytes(step(theirs), dev),
            "output_agreement": float((out_a == out_b).float().mean()),
            "max_abs_output_diff": float((out_a - out_b).abs().max())}


def _public_name(cls: type) -> str:
    """``neuron.DSRIFNode`` / ``layer.BatchNormThroughTime2d``: where SpikingJelly exports it."""
    from snnplug.backends.spikingjelly import sj

    for ns in ("neuron", "layer"):
        if getattr(getattr(sj(), ns), cls.__name__, None) is cls:
            return f"{ns}.{cls.__name__}"
    return cls.__name__


def _reference_pair(rec: Any, base: nn.Module, T: int) -> tuple[nn.Module, nn.Module, str]:
    """(ours, theirs, SpikingJelly class): ``base`` with the plugin applied, and ``base`` with
    SpikingJelly's implementation (``rec.reference``) at every module the plugin replaced."""
    import snnplug

    ours = snnplug.apply(base, **{rec.family: rec.name}, T=T, readout="replace", **rec.reference_kwargs)
    theirs = copy.deepcopy(base)
    names: list[str] = []
    done: list[str] = []  # replaced paths (their submodules are not compared)
    for path, old in base.named_modules():
        if not path or any(path.startswith(d + ".") for d in done):
            continue
        new = ours.get_submodule(path)
        if type(new) is not type(old):
            done.append(path)
            ref = rec.reference(new, T)
            parent, _, leaf = path.rpartition(".")
            setattr(theirs.get_submodule(parent) if parent else theirs, leaf, ref)
            names.append(_public_name(type(ref)))
    return ours, theirs, names[0] if names else "(nothing replaced)"


def compare_methods(*, T: int = 8, batch_size: int = 64, seed: int = 0, repeats: int = 15, warmup: int = 3,
                    device: str = "cpu") -> list[dict[str, Any]]:
    """Every installed neuron/normalizer plugin that names a SpikingJelly implementation of its
    method (registration ``reference``, e.g. DSR-IF vs ``neuron.DSRIFNode``, BNTT vs
    ``layer.BatchNormThroughTime2d``) against it: same network (neurons: an IF MLP; normalizers:
    a LIF convnet), weights and digits batch, the registration's ``reference_kwargs``."""
    import snnplug
    from snnplug.backends.spikingjelly import sj
    from snnplug.data import load_dataset
    from snnplug.models import convnet, mlp

    ab = sj()
    dev = torch.device(device)
    T = as_steps("T", T)
    bundle = load_dataset("digits")
    x = bundle.train.tensors[0][:batch_size].to(dev)
    y = bundle.train.tensors[1][:batch_size].to(dev)
    x_seq = _direct(x, T)
    rows: list[dict[str, Any]] = []
    for rec in snnplug.get_registry().all():
        if rec.family not in ("neuron", "normalizer") or rec.reference is None:
            continue
        torch.manual_seed(seed)
        if rec.family == "neuron":
            base = mlp(64, 10, hidden=(128,), node=lambda: ab.neuron.IFNode(step_mode="m")).to(dev)
        else:
            base = convnet(bundle.input_shape, 10, node=lambda: ab.neuron.LIFNode(step_mode="m")).to(dev)
        ours, theirs, cls = _reference_pair(rec, base, T)
        rows.append(_method_row(f"{rec.name} vs {cls}", ours.to(dev), theirs.to(dev), x_seq, y, repeats, warmup, dev))
    return rows


# -- entry point and table ---------------------------------------------------------------------

def compare(model: nn.Module | None = None, *, dataset: str = "digits", T: int = 32, batch_size: int = 64,
            epochs: int = 1, limit: int | None = None, seed: int = 0, repeats: int = 15, warmup: int = 3,
            layers: str = "vectorized", methods: bool = True, device: str = "cpu",
            json_path: str | Path | None = None, model_name: str | None = None,
            data_root: str | None = None) -> dict[str, Any]:
    """Run the framework comparison (and the methods comparison); optionally write JSON."""
    result: dict[str, Any] = {
        "model": model_name or ("default MLP" if model is None else type(model).__name__),
        "frameworks": compare_frameworks(model, dataset=dataset, T=T, batch_size=batch_size, epochs=epochs,
                                         limit=limit, seed=seed, repeats=repeats, warmup=warmup, layers=layers,
                                         device=device, data_root=data_root),
        "methods": compare_methods(batch_size=batch_size, seed=seed, repeats=repeats, warmup=warmup,
                                   device=device) if methods else [],
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    """``snnplug compare`` (options and output: :mod:`snnplug.app.compare_cli`)."""
    from snnplug.app.compare_cli import main as cli_main

    return cli_main(argv)
