"""``snnplug compare`` on the command line: options, ``--out`` and the printed table.

The comparison itself is :func:`snnplug.app.compare.compare`; this module parses the options
(``--model package.module:factory`` through :mod:`snnplug.app.model_spec`), checks ``--out``
before anything runs, and writes ``compare.json`` and ``compare.txt`` there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MB"


def _cell(path: dict[str, Any]) -> str:
    """``median (q1-q3)`` in ms."""
    st = path["fwd_bwd_stats"]
    return f"{path['fwd_bwd_s'] * 1e3:.1f} ({st['q1'] * 1e3:.1f}-{st['q3'] * 1e3:.1f})"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of a :func:`compare` result (times: median, IQR in brackets)."""
    fw = result["frameworks"]
    a, b, sp, tm = fw["snntorch"], fw["spikingjelly"], fw["speedup_stats"], fw["timing"]
    speed = f"{fw['speedup']:.2f}x ({sp['q1']:.2f}-{sp['q3']:.2f}x)"
    mem = f"{fw['memory_ratio'] or 0:.2f}x"
    lines = [f"snnTorch loop vs SpikingJelly multi-step: {result.get('model', 'model')} on {fw['dataset']}, "
             f"T={fw['T']}, batch {fw['batch_size']}, layers={fw['layers']}, {fw['device']}",
             f"{'':24}{'snnTorch':>20}{'SpikingJelly':>20}{'ratio':>22}",
             f"{'accuracy':24}{a['accuracy']:>20.4f}{b['accuracy']:>20.4f}",
             f"{'fwd+bwd ms (IQR)':24}{_cell(a):>20}{_cell(b):>20}{speed:>22}",
             f"{'memory':24}{_mb(a['memory_bytes']):>20}{_mb(b['memory_bytes']):>20}"
             f"{mem:>22}",
             f"timing: median of {tm['repeats']} interleaved rounds after {tm['warmup']} warm-up calls each, "
             f"{tm['torch_threads']} torch thread(s); speedup = median of per-round ratios "
             f"(min {sp['min']:.2f}x, max {sp['max']:.2f}x)",
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


RESULT_NAME = "compare.json"


def check_out(folder: str | Path, force: bool) -> Path:
    """``--out``, checked before anything runs and without creating anything (a command that fails
    leaves no folder behind): not a file, writable where it will be created, and not already
    holding a compare result unless ``force`` (as :func:`snnplug.engine.rundir.claim` refuses a
    run folder that holds a checkpoint)."""
    import os

    from snnplug.engine.rundir import RunFolderError

    out = Path(folder).expanduser()
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder; pass a folder for compare.json and compare.txt")
    if (out / RESULT_NAME).exists() and not force:
        raise RunFolderError(f"{out} already holds a compare result ({out / RESULT_NAME}); pass --force to replace "
                             f"it, or choose another --out")
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise RunFolderError(f"output folder {out} cannot be created or written ({existing} is not writable); choose "
                             f"another --out or fix its permissions")
    return out


def build_parser() -> Any:
    """The ``snnplug compare`` options (``--help`` shows every default)."""
    import argparse

    from snnplug import cliargs as ca

    from snnplug.app import compare as cmp

    p = ca.Parser(prog="snnplug compare", description=(cmp.__doc__ or "").split("\n\n")[0],
                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                   help="your snnTorch model as an import string, package.module:factory (a function or class "
                        "called with the --model-arg values, or an nn.Module); default: a Linear-Leaky MLP")
    p.add_argument("--model-arg", type=ca.key_value, action="append", default=None, metavar="KEY=VALUE",
                   help="keyword argument for the --model factory (repeatable, JSON values)")
    p.add_argument("--dataset", default="digits", help="digits | fashion-mnist | mnist-idx | FOLDER | torchvision:NAME")
    p.add_argument("--data-root", default=None, help="folder holding the dataset files")
    p.add_argument("--T", type=ca.steps, default=32, help="time steps")
    p.add_argument("--batch-size", type=ca.positive_int, default=64, help="batch size (training and timing)")
    p.add_argument("--epochs", type=ca.nonnegative_int, default=1,
                   help="training epochs in snnTorch before comparing accuracy (0: untrained)")
    p.add_argument("--limit", type=ca.positive_int, default=None, help="use only this many training samples")
    p.add_argument("--seed", type=ca.nonnegative_int, default=0, help="seed of the weights and the data order")
    p.add_argument("--repeats", type=ca.positive_int, default=15, help="timed rounds (each times both paths)")
    p.add_argument("--warmup", type=ca.nonnegative_int, default=3, help="untimed calls of each path first")
    p.add_argument("--threads", type=ca.nonnegative_int, default=1,
                   help="torch threads (0: torch's default); with more than one, small ops wait on each other "
                        "and, on a busy machine, on the scheduler, and the timings swing by 10x and more")
    p.add_argument("--layers", choices=("vectorized", "per-step"), default="vectorized",
                   help="converted stateless layers: once on [T*B] or once per step (bit-exact)")
    p.add_argument("--no-methods", action="store_true", help="skip snnplug methods vs SpikingJelly built-ins")
    p.add_argument("--device", type=ca.device, default="cpu", help="cpu | cuda[:N] | mps")
    p.add_argument("--out", default="runs/compare", help="folder for compare.json and compare.txt")
    p.add_argument("--force", action="store_true", help="replace a compare result already in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    """``snnplug compare``: print the comparison table, write compare.json and compare.txt to ``--out``."""
    args = build_parser().parse_args(argv)
    model = None
    if args.model is not None:
        from snnplug.app.model_spec import load_model

        model = load_model(args.model, dict(args.model_arg or []))
    elif args.model_arg:
        from snnplug.app.model_spec import ModelSpecError

        raise ModelSpecError("--model-arg is given without --model; pass --model package.module:factory too")
    out = check_out(args.out, args.force)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from snnplug.app.compare import compare

    result = compare(model, dataset=args.dataset, T=args.T, batch_size=args.batch_size, epochs=args.epochs,
                     limit=args.limit, seed=args.seed, repeats=args.repeats, warmup=args.warmup,
                     layers=args.layers, methods=not args.no_methods, device=args.device,
                     model_name=args.model, data_root=args.data_root)
    from snnplug.engine.rundir import check_writable

    check_writable(out)
    (out / RESULT_NAME).write_text(json.dumps(result, indent=2))
    text = format_table(result)
    (out / "compare.txt").write_text(text + "\n")
    print(text)
    print(f"results: {out / RESULT_NAME}, {out / 'compare.txt'}")
    return 0
