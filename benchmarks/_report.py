"""Write one benchmark's section into docs/benchmarks.md (between BEGIN/END markers), under a lock."""

from __future__ import annotations

import fcntl
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEvery figure below was produced by the command printed above it, on the machine it names.\n"


def machine() -> str:
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {dev}; "
            f"torch {torch.__version__}, torch threads {torch.get_num_threads()}")


def write_section(key: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) the section ``key`` of docs/benchmarks.md."""
    command = command or "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- BEGIN {key} -->\n## {title}\n\nCommand: `{command}`  \n"
               f"Measured {stamp} on {machine()}.\n\n{body.strip()}\n<!-- END {key} -->\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = REPORT.read_text() if REPORT.exists() else HEADER
        begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
        if begin in text and end in text:
            i, j = text.index(begin), text.index(end) + len(end)
            text = text[:i] + section.rstrip("\n") + text[j:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
        tmp = REPORT.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, REPORT)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
