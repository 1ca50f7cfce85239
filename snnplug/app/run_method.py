"""One method of ``snnplug run``, in its own process: train, then measure.

Settings: the strategy's defaults, then its registration's ``run_settings`` (a short run on
small data), then the dataset's shared backbone (``channels``/``hidden`` from
:func:`snnplug.models.backbone_for`) when the registration says ``shared_backbone``, then
``--T``. Measured: accuracy after every step ``t <= T`` from one simulation
(:func:`snnplug.engine.evaluate_anytime`), the training steps' wall time and allocator peak
(:class:`snnplug.engine.PeakMemory`), and, on one test batch, synaptic operations, spikes and
the 45 nm energy estimate (:mod:`snnplug.engine.energy`) at ``t = 1, 2, 4, ...`` and ``T``, the
firing rate per layer and the method's own series (``Strategy.report``).
"""

from __future__ import annotations

import sys
from typing import Any

#: samples of the test set the energy and firing-rate figures are measured on
ENERGY_SAMPLES = 256


def checkpoints(T: int) -> list[int]:
    """``1, 2, 4, 8, ...`` below ``T``, then ``T``: where accuracy and energy are tabulated."""
    ts, t = [], 1
    while t < T:
        ts.append(t)
        t *= 2
    return ts + [T]


def settings_for(rec: Any, input_shape: tuple[int, ...], T: int | None) -> dict[str, Any]:
    """The factory keywords of a method's run (see the module docstring)."""
    from snnplug.models import backbone_for

    kw = dict(rec.run_settings)
    if rec.shared_backbone:
        kw.update(backbone_for(input_shape))
    if T is not None:
        kw["T"] = T
    return kw


def _train(name: str, opts: dict[str, Any]) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    import snnplug
    from snnplug.data import load_dataset
    from snnplug.engine import LogEpochs, PeakMemory, TrainConfig, train
    from snnplug.engine.seed import seed_everything

    rec = snnplug.get_registry().get("strategy", name)
    probe = snnplug.strategy(name, **{k: v for k, v in rec.run_settings.items() if k == "T"})
    bundle = load_dataset(opts["dataset"], opts.get("data_root"), limit=opts.get("limit"),
                          T=opts.get("T") or probe.T)
    kw = settings_for(rec, bundle.input_shape, opts.get("T"))
    strategy = snnplug.strategy(name, **kw, frames=bundle.frames)
    epochs = opts.get("epochs") or rec.run_epochs or strategy.default_epochs
    seed_everything(opts["seed"])
    model = strategy.build_model(bundle.input_shape, bundle.num_classes)
    log = LogEpochs(lambda line: print(line, flush=True))
    res = train(strategy, model, bundle, TrainConfig(
        epochs=epochs, batch_size=opts["batch_size"], seed=opts["seed"], device=opts["device"],
        eval_T=[strategy.inference_T], progress=opts["progress"]), callbacks=[PeakMemory(), log])
    model.eval()
    run = {"settings": kw, "epochs": epochs, "shared_backbone": rec.shared_backbone,
           "own_network": rec.own_network, "network": synaptic_layers(model)}
    return strategy, model, bundle, res, run


def synaptic_layers(model: Any) -> list[str]:
    """The synaptic layers of a network, ``Conv2d(1->32, 3x3)`` style (for the report)."""
    from torch import nn

    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out.append(f"Conv2d({m.in_channels}->{m.out_channels}, {m.kernel_size[0]}x{m.kernel_size[1]})")
        elif isinstance(m, nn.Linear):
            out.append(f"Linear({m.in_features}->{m.out_features})")
    return out


def _energy(strategy: Any, model: Any, x: Any, T: int) -> tuple[dict[str, Any], Any]:
    """Energy, synaptic operations and spikes per sample at each checkpoint t (one simulation of
    t steps each); the report of the full-T simulation (firing rates)."""
    import torch

    from snnplug.engine.energy import record_energy

    snn = strategy.inference_model(model)
    per_t, rep = {}, None
    for t in checkpoints(T):
        with torch.no_grad(), record_energy(snn, batch=len(x), steps=t) as rep:
            strategy.predict(model, x, T=t)
        per_t[str(t)] = {"energy_uj": rep.snn_pj / 1e6, "synaptic_ops": rep.synaptic_ops,
                         "spikes": rep.spikes}
    return per_t, rep


def run_method(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Train and measure one method (see the module docstring); a JSON-ready dict."""
    import torch

    from snnplug.data import make_loaders
    from snnplug.engine import evaluate_anytime
    from snnplug.strategies import Reporting

    torch.set_num_threads(opts["threads"])
    strategy, model, bundle, res, run = _train(name, opts)
    T = strategy.inference_T
    _, test = make_loaders(bundle, eval_batch_size=512)
    curve = evaluate_anytime(strategy, model, test, T, device=opts["device"])
    x, y = bundle.test.tensors if hasattr(bundle.test, "tensors") else next(iter(test))[:2]
    x, y = x[:ENERGY_SAMPLES].to(opts["device"]), y[:ENERGY_SAMPLES].to(opts["device"])
    per_t, rep = _energy(strategy, model, x, T)
    extra = strategy.report(model, x, y) if isinstance(strategy, Reporting) else {}
    return {
        "strategy": name, "config": strategy.config(), **run, "T": T,
        "accuracy": curve[-1], "accuracy_vs_T": {str(t + 1): a for t, a in enumerate(curve)},
        "train_seconds": res.train_seconds, "train_memory_mb": res.peak_memory_mb,
        "train_memory_steps": res.metrics.get("peak_memory_steps"),
        "history": res.history, "spikes_per_sample": rep.spikes, "synaptic_ops": rep.synaptic_ops,
        "spike_rates": rep.spike_rates, "energy_uj": rep.snn_pj / 1e6, "ann_energy_uj": rep.ann_pj / 1e6,
        "energy_vs_T": per_t, "extra": extra,
    }


def child(name: str, opts: dict[str, Any], conn: Any) -> None:
    """Process entry: ``run_method`` and send ``("ok", result)`` or ``("error", message)``."""
    try:
        result: tuple[str, Any] = ("ok", run_method(name, opts))
    except BaseException as exc:  # noqa: BLE001 - reported by name, the other methods go on
        result = ("error", f"{type(exc).__name__}: {exc}")
    finally:
        sys.stdout.flush()
    conn.send(result)
    conn.close()
