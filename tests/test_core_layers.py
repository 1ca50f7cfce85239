"""Architecture rules: the library never imports the application layer, and core code names no
plugin (defaults come from registration data)."""

from __future__ import annotations

import ast
from pathlib import Path

from snnplug.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "snnplug"
APP = CORE / "app"


def _modules(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
            out |= {f"{n.module}.{a.name}" for a in n.names}
    return out


def test_library_imports_nothing_from_the_app_layer():
    offenders = []
    for p in CORE.rglob("*.py"):
        if APP in p.parents or p.name == "__main__.py":
            continue
        if any(m == "snnplug.app" or m.startswith("snnplug.app.") for m in _modules(ast.parse(p.read_text()))):
            offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []


def _string_literals(tree: ast.AST) -> list[ast.Constant]:
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_core_and_app_name_no_plugin():
    """Only the built-in baseline (``bptt``) may be named; snnTorch's own module ``bntt`` is not ours."""
    allowed = {("snnplug/adapters/snntorch.py", "bntt")}  # snntorch._layers.bntt, in an error hint
    names = {r.name for r in get_registry().all() if r.name != "bptt"}
    assert {"dsr-if", "bntt", "noise", "opi-ann"} <= names
    found = set()
    for p in CORE.rglob("*.py"):
        rel = str(p.relative_to(ROOT))
        for c in _string_literals(ast.parse(p.read_text())):
            if c.value in names and (rel, c.value) not in allowed:
                found.add((rel, c.lineno, c.value))
    assert found == set()
