"""Every Python example in docs/hooks/*.md and docs/getting-started.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted((DOCS / "hooks").glob("*.md")) + [DOCS / "getting-started.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_one_page_per_hook_family():
    from snnplug.registry import HOOKS

    assert {p.stem for p in (DOCS / "hooks").glob("*.md")} == {"neurons", "normalizers", "strategies", "converters"}
    text = "".join(p.read_text() for p in (DOCS / "hooks").glob("*.md"))
    assert all(hook in text for hook in HOOKS.values())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page):
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no example"
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "__doc_example__"})
