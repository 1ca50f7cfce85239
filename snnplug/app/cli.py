"""The ``snnplug`` command.

    snnplug plugins [--json]
    snnplug train --strategy dsr [--dataset digits] [--T 20] [--epochs 5] [--out runs/dsr] [--resume]
    snnplug evaluate --checkpoint runs/dsr/checkpoint.pt [--T 1,5,20]
    snnplug convert --method opi --checkpoint runs/opi-ann/checkpoint.pt --T 16
    snnplug compare [...]      (same model in snnTorch and SpikingJelly)
    snnplug run [...]          (every method on one dataset's shared backbone: report.html, results.json)

Every error is one line on stderr and exit status 2; ``--debug`` (anywhere) adds the traceback.
Also runs as ``python -m snnplug``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from snnplug import cliargs as ca
from snnplug.errors import CheckpointError, DataError, ShapeError, SnnplugError

_ints = ca.steps_list
_kv = ca.key_value


def _console() -> Any:
    from rich.console import Console

    return Console()


def _print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r])
    _console().print(t)


# -- plugins ---------------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from snnplug.registry import get_registry, list_plugins

    rows = list_plugins()
    failures = [f.__dict__ for f in get_registry().failures]
    slow = [f.__dict__ for f in get_registry().slow]
    if args.json:
        print(json.dumps({"plugins": rows, "failures": failures, "slow": slow}, indent=2))
        return 0
    _print_table("snnplug plugins", ["family", "name", "distribution", "summary"],
                 [[r["family"], r["name"], r["distribution"], r["summary"]] for r in rows])
    for f in failures:
        print(f"failed: {f['plugin']} ({f['distribution']}) at {f['stage']}: {f['error']}", file=sys.stderr)
    for f in slow:
        print(f"slow: {f['plugin']} ({f['distribution']}) took {f['seconds']} s to import", file=sys.stderr)
    return 0


# -- train / evaluate / convert -----------------------------------------------------------
def _strategy_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw = dict(args.set or [])
    if "frames" in kw:
        from snnplug.errors import PluginOptionError

        raise PluginOptionError("--set frames=... is not an option here: the input layout (static images or "
                                "event frames) comes from the dataset; choose it with --dataset")
    if args.T is not None:
        kw["T"] = args.T
    return kw


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    import snnplug
    from snnplug.data import load_dataset
    from snnplug.engine import TrainConfig, train
    from snnplug.engine.seed import seed_everything

    torch.set_num_threads(args.threads) if args.threads else None
    kw = _strategy_kwargs(args)
    probe = ca.build_plugin("strategy", args.strategy,
                            lambda **o: snnplug.strategy(args.strategy, **o), kw)
    bundle = load_dataset(args.dataset, args.data_root, limit=args.limit, T=probe.T)  # frames per sample
    strategy = snnplug.strategy(args.strategy, **kw, frames=bundle.frames)
    seed_everything(args.seed)
    model = ca.build_plugin("strategy", args.strategy,
                            lambda: strategy.build_model(bundle.input_shape, bundle.num_classes), {})
    out = Path(args.out or f"runs/{args.strategy}")
    epochs = args.epochs if args.epochs is not None else strategy.default_epochs
    cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, eval_T=args.eval_T, out_dir=out, resume=args.resume,
                      checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
                      force=args.force, on_nonfinite=args.on_nonfinite)
    if args.distributed:
        from snnplug.engine import train_distributed

        result = train_distributed(strategy, model, bundle, cfg)
    else:
        result = train(strategy, model, bundle, cfg)
    rows = [[h["epoch"], h["train_loss"], h["train_acc"],
             ", ".join(f"T={t}: {a:.4f}" for t, a in h["test_acc"].items()), h["train_seconds"]]
            for h in result.history]
    _print_table(f"{args.strategy} on {bundle.name}", ["epoch", "loss", "train acc", "test acc", "seconds"], rows)
    skipped = result.final.get("nonfinite_skipped", 0) if result.history else 0
    if skipped:
        print(f"skipped {skipped} batch(es) with NaN/Inf (--on-nonfinite skip)", file=sys.stderr)
    print(f"checkpoint: {out / 'checkpoint.pt'}")
    return 0


def _load_trained(checkpoint: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    import snnplug
    from snnplug.engine import load_checkpoint

    state = load_checkpoint(checkpoint)
    strategy = ca.build_plugin("strategy", state["strategy"],
                               lambda **o: snnplug.strategy(state["strategy"], **o), state["strategy_config"])
    ds = state.get("dataset") or {}
    if "input_shape" not in ds or "num_classes" not in ds:
        raise CheckpointError(f"checkpoint {checkpoint} does not record its dataset's shape; it cannot be rebuilt")
    model = strategy.build_model(tuple(ds["input_shape"]), ds["num_classes"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {checkpoint} does not fit strategy {state['strategy']!r}'s model for inputs "
            f"{ds['input_shape']} ({str(exc).splitlines()[-1].strip()[:200]}); it was edited or written by "
            f"another version") from None
    model.eval()
    return strategy, model, state, ds


def _checkpoint_data(args: argparse.Namespace, ds: dict[str, Any], T: int | None = None) -> Any:
    """The dataset named on the command line, else the one the checkpoint trained on (its full
    source path); refused when its samples or classes differ from the checkpoint's."""
    from snnplug.data import load_dataset

    if args.dataset is not None:
        bundle = load_dataset(args.dataset, args.data_root, limit=args.limit, T=T)
    else:
        source = ds.get("source") or ds.get("name")
        root = args.data_root or ds.get("root")
        if source in ("digits",):
            root = None
        bundle = load_dataset(source, root, limit=args.limit, T=T)
    if list(bundle.input_shape) != list(ds["input_shape"]) or bundle.num_classes > ds["num_classes"]:
        raise DataError(
            f"dataset {bundle.name} has samples {list(bundle.input_shape)} and {bundle.num_classes} classes, "
            f"but the checkpoint was trained on {list(ds['input_shape'])} with {ds['num_classes']} classes; "
            f"pass the checkpoint's dataset (--dataset {ds.get('source') or ds.get('name')})")
    return bundle


def cmd_evaluate(args: argparse.Namespace) -> int:
    from snnplug.data import make_loaders
    from snnplug.engine import evaluate

    strategy, model, state, ds = _load_trained(args.checkpoint)
    bundle = _checkpoint_data(args, ds, T=strategy.T)
    if bundle.frames != strategy.frames:
        raise ShapeError(f"{args.checkpoint} was trained on {'event frames' if strategy.frames else 'static images'}"
                         f" but dataset {bundle.name!r} gives {'event frames' if bundle.frames else 'static images'}")
    _, test = make_loaders(bundle)
    accs = evaluate(strategy, model, test, args.T, args.device)
    _print_table(f"{state['strategy']} on {bundle.name}", ["T", "accuracy"], [[t, a] for t, a in accs.items()])
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import torch

    import snnplug
    from snnplug.data import make_loaders

    _, model, state, ds = _load_trained(args.checkpoint)
    bundle = _checkpoint_data(args, ds)
    train_loader, test_loader = make_loaders(bundle, batch_size=256, seed=args.seed)
    kw = dict(args.set or [])
    T = max(args.T)
    if snnplug.get_registry().get("converter", args.method).calibrates:
        kw.setdefault("calibration", train_loader)
    snn = ca.build_plugin("converter", args.method, lambda **o: snnplug.convert(model, args.method, **o),
                          {"T": T, **kw})
    from snnplug.engine import anytime_accuracy, direct_anytime

    curve = anytime_accuracy(direct_anytime(snn, T), test_loader)
    accs = {t: curve[t - 1] for t in sorted(set(args.T))}
    _print_table(f"{args.method}: {state['strategy']} -> SNN on {bundle.name}", ["T", "accuracy"],
                 [[t, a] for t, a in accs.items()])
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(snn.state_dict(), out / "snn_state_dict.pt")
        (out / "convert.json").write_text(json.dumps({"method": args.method, "accuracy": accs}, indent=2))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from snnplug.app import compare as cmp

    return cmp.main(args.rest)


def cmd_run(args: argparse.Namespace) -> int:
    from snnplug.app import run as run_mod

    return run_mod.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    p = ca.Parser(prog="snnplug", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="print tracebacks with errors")
    sub = p.add_subparsers(dest="command", required=True)
    fmt = {"formatter_class": ca.DefaultsHelp}  # every --help shows its defaults

    sp = sub.add_parser("plugins", help="list installed plugins", **fmt)
    sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sp.set_defaults(func=cmd_plugins)

    def data_args(q: argparse.ArgumentParser, default: str | None = "digits") -> None:
        names = "digits | fashion-mnist | mnist-idx | FOLDER | torchvision:NAME | tonic:NAME"
        q.add_argument("--dataset", default=default,
                       help=names if default else names + " (default: the checkpoint's dataset)")
        q.add_argument("--data-root", default=None, help="folder holding the dataset files (default: the dataset's usual place)")
        q.add_argument("--limit", type=ca.positive_int, default=None, help="use only this many training samples (default: all)")
        q.add_argument("--device", type=ca.device, default="cpu", help="cpu, cuda or cuda:N")

    sp = sub.add_parser("train", help="train a model with a strategy plugin", **fmt)
    sp.add_argument("--strategy", required=True, help="a strategy plugin (snnplug plugins lists them)")
    data_args(sp)
    sp.add_argument("--T", type=ca.steps, default=None, help="time steps (default: the strategy's)")
    sp.add_argument("--epochs", type=ca.positive_int, default=None, help="epochs (default: the strategy's)")
    sp.add_argument("--batch-size", type=ca.positive_int, default=64, help="training batch size")
    sp.add_argument("--lr", type=ca.positive_float, default=None, help="learning rate (default: the strategy's)")
    sp.add_argument("--seed", type=ca.nonnegative_int, default=0, help="seed of weights and batch order")
    sp.add_argument("--eval-T", type=_ints, default=None, help="comma-separated T values to evaluate (default: the strategy's inference T)")
    sp.add_argument("--out", default=None, help="checkpoint folder (default: runs/<strategy>)")
    sp.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    sp.add_argument("--force", action="store_true", help="replace a checkpoint already in --out")
    sp.add_argument("--on-nonfinite", choices=("raise", "skip"), default="raise",
                    help="a batch whose input, loss or gradients hold NaN/Inf: stop or skip and count it")
    sp.add_argument("--checkpoint-every", type=ca.nonnegative_int, default=0, help="also checkpoint every N steps")
    sp.add_argument("--threads", type=ca.nonnegative_int, default=0, help="torch threads (0: torch's choice)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.add_argument("--distributed", action="store_true", help="run under torchrun (DDP, gloo on CPU)")
    sp.add_argument("--set", type=_kv, action="append", help="strategy option key=value (repeatable)")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("evaluate", help="accuracy of a checkpoint at several T", **fmt)
    sp.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by snnplug train")
    data_args(sp, default=None)
    sp.add_argument("--T", type=_ints, default=None, help="comma-separated T values (default: the strategy's inference T)")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("convert", help="convert a trained checkpoint into a multi-step SNN", **fmt)
    sp.add_argument("--method", required=True, help="a converter plugin (snnplug plugins lists them)")
    sp.add_argument("--checkpoint", required=True, help="the trained ANN's checkpoint.pt")
    data_args(sp, default=None)
    sp.add_argument("--T", type=_ints, default=[16], help="comma-separated T values (the largest is simulated)")
    sp.add_argument("--seed", type=ca.nonnegative_int, default=0, help="seed of the calibration batches")
    sp.add_argument("--out", default=None, help="folder for the converted model (default: not saved)")
    sp.add_argument("--set", type=_kv, action="append", help="converter option key=value (repeatable)")
    sp.set_defaults(func=cmd_convert)

    for name, func, hlp in (("compare", cmd_compare, "same model in snnTorch and SpikingJelly"),
                            ("run", cmd_run, "train every default method on one dataset's shared backbone; "
                                              "accuracy vs T, energy, memory in report.html and results.json")):
        sp = sub.add_parser(name, help=hlp, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
        sp.set_defaults(func=func)
    return p


_PASSTHROUGH = {"compare": cmd_compare, "run": cmd_run}  # these parse their own options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if argv and argv[0] in _PASSTHROUGH:
        args = argparse.Namespace(rest=argv[1:], func=_PASSTHROUGH[argv[0]])
    else:
        args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # every error: one line (and exit 2); --debug adds the traceback
        return ca.report(exc, debug)
    except KeyboardInterrupt as exc:
        return ca.report(exc, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
