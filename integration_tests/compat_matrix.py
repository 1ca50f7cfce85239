"""The compatibility matrix: every plugin on the models users already have.

Rows are real models as their authors ship them: SpikingJelly 2.0.0's zoo built with
``spiking_neuron=`` (multi-step), its tutorial ``CSNN`` (which adds the time axis and reads out
itself), torchvision ANNs, and the snnTorch tutorial networks. Columns are one ``snnplug.apply``
line in the user's own loop (Adam 1e-3, cross-entropy on the mean output) or a strategy with its
default optimizer (``strategy.make_optimizer``), and the OPI conversion / snnTorch adapter.

A cell is

* ``works``: a few training steps on one small batch (inputs ``[T=2, B=4, ...]``, 32x32 or the
  model's own size) give finite losses and a last loss below the first; a conversion runs and
  its SNN agrees with its ANN on the stated share of the batch;
* ``refused``: an :class:`~snnplug.errors.SnnplugError` whose message names the module and the
  fix (quoted in the table);
* ``FAILS``: anything else (an error from inside torch, a non-finite or non-falling loss). The
  tests (``integration_tests/test_compat_matrix.py``) require that no cell fails and that refusals are the
  expected ones.

Run ``python integration_tests/compat_matrix.py`` to regenerate ``docs/compatibility.md`` (``--quick`` skips the
rows marked slow).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.errors import SnnplugError

T = 4
B = 4
STEPS = 4
#: a cell whose loss has not fallen after STEPS steps trains on, STEPS at a time, up to this many
#: (nets whose output is silent at initialisation need a few more)
MAX_STEPS = 16
#: steps for strategies whose paper learning rate is small (noise: Adam 1e-4)
SLOW_STEPS = {"noise": 16}
CLASSES = 10


@dataclass(frozen=True)
class Row:
    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]  # one sample
    kind: str  # "sj" (multi-step) | "self-timed" | "ann" | "snntorch"
    slow: bool = False
    user_lr: float = 1e-3  # the Adam lr of the model's own tutorial (SpikingJelly: 1e-3; snnTorch 6/7: 1e-2)


@dataclass(frozen=True)
class Cell:
    status: str  # "works" | "refused" | "n/a" | "FAILS"
    detail: str
    seconds: float = 0.0


# -- rows ----------------------------------------------------------------------------------

def _sj_zoo(fn: str, module: str, **kw: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import importlib

        from spikingjelly.activation_based import functional, neuron, surrogate

        mod = importlib.import_module(f"spikingjelly.activation_based.model.{module}")
        kw2 = dict(kw)
        kw2["spiking_neuron"] = neuron.ParametricLIFNode if kw2.pop("plif", False) else neuron.IFNode
        kw2.setdefault("surrogate_function", surrogate.ATan())
        net = getattr(mod, fn)(**kw2)
        functional.set_step_mode(net, "m")
        return net
    return build


def _csnn() -> nn.Module:
    from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

    return CSNN(T=T, channels=8)


def _tv(fn: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, fn)(num_classes=CLASSES)
    return build


class SnnTorchTutorial5(nn.Module):
    """snnTorch tutorial 5 (``init_hidden=False``, the time loop in ``forward``), verbatim."""

    def __init__(self, num_steps: int = T) -> None:
        import snntorch as snn

        super().__init__()
        self.num_steps = num_steps
        self.fc1 = nn.Linear(784, 1000)
        self.lif1 = snn.Leaky(beta=0.95)
        self.fc2 = nn.Linear(1000, 10)
        self.lif2 = snn.Leaky(beta=0.95)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for _ in range(self.num_steps):
            cur1 = self.fc1(x.flatten(1))
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def _snntorch_convnet(in_ch: int, flat: int) -> Callable[[], nn.Module]:
    """snnTorch tutorials 6 (MNIST, 1x28x28, 64*4*4) and 7 (N-MNIST, 2x34x34, 64*5*5)."""
    def build() -> nn.Module:
        import snntorch as snn
        from snntorch import surrogate

        spike_grad = surrogate.fast_sigmoid(slope=25)
        beta = 0.5
        return nn.Sequential(nn.Conv2d(in_ch, 12, 5), nn.MaxPool2d(2),
                             snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                             nn.Conv2d(12, 64, 5), nn.MaxPool2d(2),
                             snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                             nn.Flatten(), nn.Linear(flat, 10),
                             snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True))
    return build


def rows() -> list[Row]:
    img = (3, 32, 32)
    return [
        Row("spiking_resnet18", _sj_zoo("spiking_resnet18", "spiking_resnet", num_classes=CLASSES), img, "sj"),
        Row("spiking_resnet34", _sj_zoo("spiking_resnet34", "spiking_resnet", num_classes=CLASSES), img, "sj",
            slow=True),
        Row("sew_resnet18 ADD", _sj_zoo("sew_resnet18", "sew_resnet", cnf="ADD", num_classes=CLASSES), img, "sj"),
        Row("sew_resnet18 IAND", _sj_zoo("sew_resnet18", "sew_resnet", cnf="IAND", num_classes=CLASSES), img,
            "sj", slow=True),
        Row("spiking_vgg11", _sj_zoo("spiking_vgg11", "spiking_vgg", num_classes=CLASSES), img, "sj", slow=True),
        Row("spiking_vgg11_bn", _sj_zoo("spiking_vgg11_bn", "spiking_vgg", num_classes=CLASSES), img, "sj",
            slow=True),
        Row("spiking_vgg16_bn", _sj_zoo("spiking_vgg16_bn", "spiking_vgg", num_classes=CLASSES), img, "sj",
            slow=True),
        Row("parametric_lif_net.FashionMNISTNet (PLIF)",
            _sj_zoo("FashionMNISTNet", "parametric_lif_net", channels=8, plif=True), (1, 28, 28), "sj"),
        Row("parametric_lif_net.CIFAR10Net (PLIF)",
            _sj_zoo("CIFAR10Net", "parametric_lif_net", channels=8, plif=True), img, "sj", slow=True),
        Row("ms_resnet18", _sj_zoo("ms_resnet18", "ms_resnet", T=T, num_classes=CLASSES), img, "self-timed",
            slow=True),
        Row("tutorial CSNN (conv_fashion_mnist)", _csnn, (1, 28, 28), "self-timed"),
        Row("torchvision resnet18", _tv("resnet18"), img, "ann"),
        Row("torchvision vgg11_bn", _tv("vgg11_bn"), img, "ann", slow=True),
        Row("torchvision vgg16_bn", _tv("vgg16_bn"), img, "ann", slow=True),
        Row("snnTorch tutorial 5 (init_hidden=False)", SnnTorchTutorial5, (1, 28, 28), "snntorch"),
        Row("snnTorch tutorial 6 (convnet)", _snntorch_convnet(1, 64 * 4 * 4), (1, 28, 28), "snntorch",
            user_lr=1e-2),
        Row("snnTorch tutorial 7 (N-MNIST convnet)", _snntorch_convnet(2, 64 * 5 * 5), (2, 34, 34), "snntorch",
            user_lr=1e-2),
    ]


# -- columns -----------------------------------------------------------------------------------

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _images(n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first ``n`` Fashion-MNIST training images ``[n, 1, 28, 28]`` in [0, 1] and labels
    (None when the IDX files are absent)."""
    try:
        from snnplug.data.idx import load_idx_folder

        trx, try_, _, _ = load_idx_folder(FMNIST)
    except Exception:  # noqa: BLE001 - no data: random images instead
        return None
    x = torch.from_numpy(trx[:n].astype("float32") / 255.0).unsqueeze(1)
    return x, torch.from_numpy(try_[:n].astype("int64"))


def _data(row: Row, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of ``B`` real images fitted to the row's input shape (Fashion-MNIST, padded or
    cropped and repeated over channels), or random images when the dataset is absent."""
    got = _images(B)
    if got is None:
        g = torch.Generator().manual_seed(seed)
        return torch.rand((B, *row.shape), generator=g), torch.arange(B) % CLASSES
    x, y = got
    c, h, w = row.shape
    pad_h, pad_w = h - 28, w - 28
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    return x.repeat(1, c, 1, 1).contiguous(), y


def _user_forward(model: nn.Module, x: torch.Tensor, self_timed: bool) -> torch.Tensor:
    """The user's own forward: direct input over T steps, mean of the output over time."""
    from snnplug.backends.spikingjelly import reset

    reset(model)
    if self_timed:
        return model(x)
    out = model(x.unsqueeze(0).repeat(T, *([1] * x.dim())))
    if isinstance(out, tuple):  # snnTorch output=True neurons: (spikes, membrane); tutorial 5's loss
        out = out[1]            # is on the membrane potential
    return out.mean(0)


def _fit(model: nn.Module, loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer,
         sched: Any = None, steps: int | None = None) -> str:
    """``STEPS`` optimizer steps (more, up to ``MAX_STEPS``, until the loss has fallen); the loss
    is measured before and after with the same three random
    seeds (methods that draw noise or Poisson spikes see the same draws), so "falling" compares
    like with like. Every training loss must be finite."""
    def measured() -> float:  # mean over 3 fixed seeds: noise methods' draws are the same before/after
        vals = []
        with torch.random.fork_rng(), torch.no_grad():
            for seed in (1234, 1235, 1236):
                torch.manual_seed(seed)
                vals.append(float(loss_fn()))
        return sum(vals) / len(vals)

    model.train()
    before = measured()
    losses: list[float] = []
    after = before
    budget = steps or STEPS
    while len(losses) < MAX_STEPS * budget // STEPS:
        for _ in range(budget):
            loss = loss_fn()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(float(loss.detach()))
        after = measured()
        if not all(math.isfinite(v) for v in [before, *losses, after]):
            raise AssertionError(f"non-finite loss: {[before, *losses, after]}")
        if after < before:
            return f"loss {before:.3g} -> {after:.3g} in {len(losses)} steps"
    raise AssertionError(f"loss did not fall in {len(losses)} steps: {before:.4g} -> {after:.4g} "
                         f"(training losses {[round(v, 4) for v in losses]})")


def _train_user_loop(model: nn.Module, row: Row, self_timed: bool) -> str:
    x, y = _data(row)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=row.user_lr)
    return _fit(model, lambda: F.cross_entropy(_user_forward(model, x, self_timed), y), opt)


def _sj_model(row: Row) -> nn.Module:
    """The row's model as a SpikingJelly multi-step model (snnTorch ones through the adapter)."""
    m = row.build()
    if row.kind == "snntorch":
        from snnplug.adapters.snntorch import to_spikingjelly

        m = to_spikingjelly(m)
    return m


def _apply(**kw: Any) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        import snnplug

        model = _sj_model(row)
        if "neuron" in kw and kw["neuron"] != "noise-lif":
            kw2 = {**kw, "T": T}
        elif "normalizer" in kw:
            kw2 = {**kw, "T": T}
        else:
            kw2 = dict(kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new, summary = snnplug.apply(model, return_summary=True, **kw2)
        kept = f" (readout kept: {', '.join(summary.kept_readout)})" if summary.kept_readout else ""
        return f"{len(summary)} replaced{kept}; " + _train_user_loop(new, row, row.kind == "self-timed")
    return cell


def _strategy(name: str, **kw: Any) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        import snnplug

        from snnplug.strategies import Strategy

        st = snnplug.strategy(name, **kw)
        # a strategy that trains an ANN and converts it overrides inference_model (the SNN it deploys)
        trains_ann = type(st).inference_model is not Strategy.inference_model
        if row.kind == "ann" and not trains_ann:
            model = row.build()
        else:
            model = _sj_model(row)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = st.prepare(model)
            opt, sched = st.make_optimizer(model, epochs=1, steps_per_epoch=100)
            x, y = _data(row)
            text = _fit(model, lambda: st.loss(model, x, y)[0], opt, sched, SLOW_STEPS.get(name))
        return f"lr {opt.param_groups[0]['initial_lr'] if 'initial_lr' in opt.param_groups[0] else opt.param_groups[0]['lr']:.3g}; " + text
    return cell


def _agreement(ann: nn.Module, snn: nn.Module, x: torch.Tensor, Tc: int) -> str:
    from snnplug.backends.spikingjelly import reset

    with torch.no_grad():
        ref = ann(x).argmax(1)
        reset(snn)
        out = snn(x.unsqueeze(0).repeat(Tc, *([1] * x.dim()))).mean(0)
    if not torch.isfinite(out).all():
        raise AssertionError("non-finite SNN output")
    agree = float((out.argmax(1) == ref).float().mean())
    if agree < OPI_AGREEMENT:
        raise AssertionError(f"SNN argmax agrees with its ANN on {agree:.0%} < {OPI_AGREEMENT:.0%}")
    return f"T={Tc}: argmax agrees with the ANN on {agree:.0%} of {len(x)} inputs"


#: OPI conversion cells: the SNN at T=OPI_T must pick the ANN's class on this share of the batch
OPI_T = 64
OPI_AGREEMENT = 0.75


def _opi(row: Row) -> str:
    """SNNs: ``apply(neuron='opi-if')`` + the user loop; ANNs: ``convert(ann, 'opi',
    calibration=x)`` of the plain ReLU net (percentile thresholds)."""
    import snnplug

    if row.kind != "ann":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = snnplug.apply(_sj_model(row), neuron="opi-if", T=T)
        return _train_user_loop(model, row, row.kind == "self-timed")
    ann = row.build().eval()
    x, _ = _data(row)
    return _agreement(ann, snnplug.convert(ann, "opi", T=OPI_T, calibration=x), x, OPI_T)


def _opi_prepared(row: Row) -> str:
    """ANNs: ``strategy('opi-ann').prepare`` (clip ReLU, average pooling), a few training steps,
    then ``convert(..., 'opi')`` (θ = λ)."""
    import snnplug

    if row.kind != "ann":
        raise _NA("ANNs only")
    st = snnplug.strategy("opi-ann", T=OPI_T)
    ann = st.prepare(row.build())
    opt, sched = st.make_optimizer(ann, epochs=1, steps_per_epoch=100)
    x, y = _data(row)
    text = _fit(ann, lambda: st.loss(ann, x, y)[0], opt, sched)
    ann.eval()
    return text + "; " + _agreement(ann, snnplug.convert(ann, "opi", T=OPI_T), x, OPI_T)


def _adapter(row: Row) -> str:
    if row.kind != "snntorch":
        raise _NA("snnTorch models only")
    return "to_spikingjelly; " + _train_user_loop(_sj_model(row), row, False)


class _NA(Exception):
    pass


def _na_for(kinds: tuple[str, ...], why: str, fn: Callable[[Row], str]) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        if row.kind in kinds:
            raise _NA(why)
        return fn(row)
    return cell


COLUMNS: dict[str, Callable[[Row], str]] = {
    'apply neuron="dsr"': _apply(neuron="dsr"),
    'apply normalizer="bntt"': _apply(normalizer="bntt"),
    'apply neuron="noise-lif"': _apply(neuron="noise-lif"),
    'opi: convert / apply neuron="opi-if"': _opi,
    "opi: opi-ann prepare + convert": _opi_prepared,
    "strategy dsr": _strategy("dsr", T=T),
    "strategy bntt": _strategy("bntt", T=T),
    "strategy noise": _strategy("noise"),
    "snnTorch adapter": _adapter,
}


def run_cell(row: Row, column: str) -> Cell:
    torch.manual_seed(0)
    t0 = time.perf_counter()
    try:
        detail = COLUMNS[column](row)
        status = "works"
    except _NA as exc:
        status, detail = "n/a", str(exc)
    except SnnplugError as exc:
        status, detail = "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a failing cell is reported, not raised
        status, detail = "FAILS", f"{type(exc).__name__}: {exc}"
    return Cell(status, detail, time.perf_counter() - t0)


def render(results: dict[tuple[str, str], Cell], names: list[str]) -> str:
    cols = list(COLUMNS)
    out = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    notes: list[str] = []
    for r in names:
        cells = []
        for c in cols:
            cell = results.get((r, c))
            if cell is None:
                cells.append("not run")
            elif cell.status in ("works", "n/a"):
                cells.append(cell.status)
            else:
                notes.append(f"- **{r} / {c}** ({cell.status}): {cell.detail}")
                cells.append(f"{cell.status} [{len(notes)}]")
        out.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n\n" + "\n".join(f"{i + 1}. {n[2:]}" for i, n in enumerate(notes)) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description="regenerate docs/compatibility.md")
    ap.add_argument("--quick", action="store_true", help="skip rows marked slow")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    all_rows = rows()
    rs = [r for r in all_rows if not r.slow] + ([] if args.quick else [r for r in all_rows if r.slow])
    results: dict[tuple[str, str], Cell] = {}
    details = []
    for r in rs:
        for c in COLUMNS:
            cell = run_cell(r, c)
            results[(r.name, c)] = cell
            details.append(f"| {r.name} | {c} | {cell.status} | {cell.detail.replace('|', '/')} | {cell.seconds:.1f} |")
            print(f"{r.name:45s} {c:30s} {cell.status:8s} {cell.seconds:6.1f}s {cell.detail[:100]}", flush=True)
        # written after every row: an interrupted run leaves the finished rows ("not run" for the rest)
        text = (HEADER + render(results, [r.name for r in all_rows])
                + "\n## Every cell\n\n| model | column | status | detail | seconds |\n|---|---|---|---|---|\n"
                + "\n".join(details) + "\n")
        Path(args.out).write_text(text)


HEADER = f"""# Compatibility matrix

Generated by `python integration_tests/compat_matrix.py` (do not edit by hand); kept by
`integration_tests/test_compat_matrix.py` (rows marked slow run with `SNNPLUG_COMPAT_FULL=1`).

Each model is built as its authors ship it (SpikingJelly zoo: `spiking_neuron=neuron.IFNode`,
`surrogate_function=surrogate.ATan()`, multi-step; PLIF nets: `ParametricLIFNode`; torchvision:
`num_classes=10`; snnTorch tutorials 5-7 as the tutorials write them). Inputs: one batch of
{B} Fashion-MNIST images fitted to the model's input (zero-padded to 32x32 and repeated over
3 channels for the ImageNet/CIFAR-style models, 2x34x34 for the N-MNIST net), T={T}.

* **apply** columns: `net = snnplug.apply(net, ...)` (settings carried from the model; the
  readout neurons after the last weight layer kept as the model's, `readout="keep"`), then the
  user's own loop: Adam with the lr of the model's tutorial (SpikingJelly 1e-3, snnTorch
  tutorials 6/7 1e-2), cross-entropy on the mean output over time (snnTorch
  `output=True` neurons: on the mean membrane potential, as tutorial 5), {STEPS} steps.
* **strategy** columns: `st.prepare(net)`, `st.make_optimizer(...)` (the strategy's defaults),
  `st.loss(net, x, y)`, {STEPS} steps.
* **works**: every loss finite and the last below the first (OPI conversion: the SNN's
  argmax agreement with its ANN is given in the cell detail). **refused**: an snnplug error
  naming the module and the fix (quoted below). **n/a**: the column does not apply.
  **FAILS**: not trained within the steps given; each such cell is listed with its cause in
  `KNOWN_OPEN` of `integration_tests/test_compat_matrix.py` (a strict xfail: it must be moved out when it
  starts working). No cell fails inside torch: errors from torch would show as FAILS here.

"""


if __name__ == "__main__":
    main()
