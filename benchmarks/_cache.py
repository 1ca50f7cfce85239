"""Finished benchmark runs cached as JSON under ``benchmarks/.cache`` (what ``--resume`` reuses)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def cache_file(folder: Path, key: str, prefix: str = "") -> Path:
    """``folder/<prefix><first 16 hex digits of sha1(key)>.json``: where the run named by ``key``
    (a JSON string of everything that determines its result) is kept."""
    return folder / f"{prefix}{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def save(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` to ``path`` atomically: a killed run leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
