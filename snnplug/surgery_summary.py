"""What ``snnplug.apply`` replaced: one row per replaced module, printable as a table."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class Replacement:
    """One replaced module: every path it is registered under (shared modules have several),
    the old and new class with their settings, and what could not carry over."""

    family: str  # "neuron" | "normalizer"
    paths: tuple[str, ...]
    old: str
    new: str
    changes: tuple[str, ...] = ()


def describe(m: nn.Module) -> str:
    """``ClassName(extra_repr)`` on one line."""
    extra = m.extra_repr().replace("\n", " ")
    return f"{type(m).__name__}({extra})"


@dataclass
class Summary:
    """Rows of :class:`Replacement`; ``str(summary)`` is a Markdown table."""

    rows: list[Replacement] = field(default_factory=list)
    #: neurons left as the user wrote them because they are the model's readout
    #: (``apply(readout="keep")``, :mod:`snnplug.readout`): ``"path (Class)"``
    kept_readout: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def changes(self) -> dict[str, list[str]]:
        """Each distinct change message -> the paths it applies to."""
        out: dict[str, list[str]] = {}
        for r in self.rows:
            for c in r.changes:
                out.setdefault(c, []).extend(r.paths)
        return out

    def __str__(self) -> str:
        lines = ["| path | old | new | not carried over |", "|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {', '.join(r.paths)} | {r.old} | {r.new} | {'; '.join(r.changes) or '-'} |")
        if self.kept_readout:
            lines.append(f"\nkept as the readout (readout=\"keep\"): {', '.join(self.kept_readout)}")
        return "\n".join(lines)
