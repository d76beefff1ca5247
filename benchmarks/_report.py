"""Table rows, targets, and the plain-text / markdown rendering of one run."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

SYSTEMS = ("tasker", "stdlib", "loky", "pebble", "gnome-thread", "floor")
PEER_COLUMNS = ("stdlib", "loky", "pebble", "gnome-thread")


@dataclass(frozen=True)
class Cell:
    """One figure: ``value`` is numeric when comparable, ``text`` is what the table shows."""

    value: float | None
    text: str

    @classmethod
    def number(cls, value: float) -> Cell:
        return cls(value, fmt(value))

    @classmethod
    def note(cls, text: str) -> Cell:
        return cls(None, text)

    @classmethod
    def flag(cls, ok: bool, text: str | None = None) -> Cell:
        return cls(1.0 if ok else 0.0, text if text is not None else ("yes" if ok else "no"))


def fmt(value: float) -> str:
    """Three significant figures or so, thousands separated."""
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass(frozen=True)
class Target:
    """What tasker's figure must satisfy.

    kind: ``ratio_le`` / ``ratio_ge`` (against the best peer), ``le`` / ``lt`` / ``ge`` (absolute),
    ``floor_ge`` (fraction of the floor column), ``true`` (a yes/no row).
    """

    kind: str
    bound: float = 0.0
    text: str = ""

    def holds(self, tasker: Cell, best: Cell | None, floor: Cell | None) -> bool | None:
        value = tasker.value
        if value is None:
            return None
        if self.kind == "true":
            return value >= 1.0
        if self.kind == "le":
            return value <= self.bound
        if self.kind == "lt":
            return value < self.bound
        if self.kind == "ge":
            return value >= self.bound
        if self.kind in ("ratio_le", "ratio_ge"):
            if best is None or best.value is None:
                # no peer manages at all: tasker managing is enough
                return True if best is not None else None
            if self.kind == "ratio_le":
                return value <= self.bound * best.value
            return value >= self.bound * best.value
        if self.kind == "floor_ge":
            if floor is None or floor.value is None:
                return None
            return value >= self.bound * floor.value
        raise ValueError(self.kind)


@dataclass(frozen=True)
class RowSpec:
    key: str
    title: str
    unit: str
    better: str | None  # "lower", "higher" or None (no best peer / ratio)
    target: Target | None = None


@dataclass
class Row:
    spec: RowSpec
    cells: dict[str, Cell] = field(default_factory=dict)

    def best_peer(self) -> tuple[str, Cell] | None:
        if self.spec.better is None:
            return None
        numeric = [
            (name, cell)
            for name in PEER_COLUMNS
            if (cell := self.cells.get(name)) is not None and cell.value is not None
        ]
        if not numeric:
            # peers that ran but never managed ("never") still make a best peer of sorts
            ran = [(n, c) for n in PEER_COLUMNS if (c := self.cells.get(n)) is not None]
            never = [(n, c) for n, c in ran if "never" in c.text]
            return never[0] if never else None
        pick = min if self.spec.better == "lower" else max
        return pick(numeric, key=lambda item: item[1].value or 0.0)

    def ratio(self) -> str:
        best = self.best_peer()
        tasker = self.cells.get("tasker")
        if best is None or tasker is None or tasker.value is None:
            return "—"
        if best[1].value is None:
            return "peers never"
        if best[1].value == 0:
            return "—"
        ratio = tasker.value / best[1].value
        return "< 0.01x" if ratio < 0.01 else f"{ratio:.2f}x"

    def verdict(self) -> str:
        target = self.spec.target
        if target is None:
            return ""
        best = self.best_peer()
        holds = target.holds(
            self.cells.get("tasker", Cell.note("")),
            best[1] if best else None,
            self.cells.get("floor"),
        )
        return {True: "PASS", False: "MISS", None: "n/a"}[holds]


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} (usable: {usable})",
        "Python": sys.version.split()[0],
        "kernel": f"{platform.system()} {platform.release()}",
    }
    versions = []
    for module in ("gi", "loky", "pebble", "numpy"):
        try:
            imported = __import__(module)
            versions.append(f"{module} {getattr(imported, '__version__', '?')}")
        except ImportError:
            versions.append(f"{module} missing")
    try:
        from gi.repository import GLib

        versions.append(f"GLib {GLib.MAJOR_VERSION}.{GLib.MINOR_VERSION}.{GLib.MICRO_VERSION}")
    except ImportError:
        pass
    info["libraries"] = ", ".join(versions)
    return info


HEADERS = (
    "metric",
    "unit",
    "tasker",
    "stdlib",
    "loky",
    "pebble",
    "gnome-thread",
    "floor",
    "best peer",
    "tasker÷best",
    "target",
    "holds",
)


def _row_values(row: Row) -> list[str]:
    best = row.best_peer()
    values = [row.spec.title, row.spec.unit]
    values += [row.cells[name].text if name in row.cells else "—" for name in SYSTEMS]
    values.append(f"{best[0]} {best[1].text}" if best else "—")
    values.append(row.ratio())
    values.append(row.spec.target.text if row.spec.target else "—")
    values.append(row.verdict())
    return values


def render_text(rows: Sequence[Row], *, wrap: int = 28) -> str:
    """An aligned plain-text table; long cells are cut to ``wrap`` characters."""
    table = [list(HEADERS)] + [_row_values(row) for row in rows]
    limits = [56, 6] + [wrap] * (len(HEADERS) - 2)
    cut = [
        [
            text if len(text) <= limit else text[: limit - 1] + "…"
            for text, limit in zip(r, limits, strict=True)
        ]
        for r in table
    ]
    widths = [max(len(r[i]) for r in cut) for i in range(len(HEADERS))]
    lines = []
    for index, r in enumerate(cut):
        cells = [
            text.ljust(widths[i]) if i < 2 else text.rjust(widths[i]) for i, text in enumerate(r)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row], *, mode: str, notes: Sequence[str]) -> str:
    out = [f"Mode: `{mode}`", ""]
    out += [f"- {key}: {value}" for key, value in machine().items()]
    out.append("")
    out.append("| " + " | ".join(HEADERS) + " |")
    out.append("|" + "|".join("---" if i < 2 else "--:" for i in range(len(HEADERS))) + "|")
    for row in rows:
        cells = [value.replace("|", "\\|") for value in _row_values(row)]
        out.append("| " + " | ".join(cells) + " |")
    if notes:
        out.append("")
        out += [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"
