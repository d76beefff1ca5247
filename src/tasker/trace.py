"""``python -m tasker.trace FILE``: summarise a trace written by ``TaskManager.write_trace``.

For each kind of task (coroutine, thread, process) it prints the count, the
median (p50) and 99th percentile (p99) of the queue wait and of the run
time, and how many tasks were cancelled and how many failed. Open the same
file in https://ui.perfetto.dev or chrome://tracing to see the timeline.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KindSummary", "TraceError", "format_summary", "main", "summarize"]

_KINDS = ("coroutine", "thread", "process")


class TraceError(ValueError):
    """The file is not a trace that ``write_trace`` wrote (or cannot be read)."""


@dataclass(frozen=True, slots=True)
class KindSummary:
    """Figures for one kind of task; durations in seconds."""

    kind: str
    count: int
    queue_wait_p50: float
    queue_wait_p99: float
    run_time_p50: float
    run_time_p99: float
    cancelled: int
    failed: int


def summarize(path: str | os.PathLike[str]) -> list[KindSummary]:
    """Read a trace file and return one ``KindSummary`` per kind of task it holds.

    Raises ``TraceError`` for a file that cannot be read or is not a tasker trace.
    """
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except OSError as error:
        raise TraceError(f"cannot read {os.fspath(path)!r}: {error.strerror or error}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise TraceError(f"{os.fspath(path)!r} is not JSON: {error}") from error
    events = document.get("traceEvents") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise TraceError(f"{os.fspath(path)!r} is not a Chrome trace (no traceEvents list)")
    tasks: dict[Any, dict[str, Any]] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("cat") != "task":
            continue
        args = event.get("args")
        if isinstance(args, dict) and "kind" in args and "task_id" in args:
            tasks[args["task_id"]] = args
    if not tasks:
        raise TraceError(f"{os.fspath(path)!r} holds no tasker tasks")
    summaries = []
    kinds = sorted({str(a.get("kind")) for a in tasks.values()}, key=_kind_order)
    for kind in kinds:
        group = [a for a in tasks.values() if a.get("kind") == kind]
        waits = sorted(float(a.get("queue_wait", 0.0)) for a in group)
        runs = sorted(float(a.get("run_time", 0.0)) for a in group)
        summaries.append(
            KindSummary(
                kind=kind,
                count=len(group),
                queue_wait_p50=_percentile(waits, 50),
                queue_wait_p99=_percentile(waits, 99),
                run_time_p50=_percentile(runs, 50),
                run_time_p99=_percentile(runs, 99),
                cancelled=sum(1 for a in group if a.get("status") == "cancelled"),
                failed=sum(1 for a in group if a.get("status") == "failed"),
            )
        )
    return summaries


def _kind_order(kind: str) -> tuple[int, str]:
    return (_KINDS.index(kind) if kind in _KINDS else len(_KINDS), kind)


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(percent / 100 * len(values)))
    return values[rank - 1]


def format_summary(summaries: Sequence[KindSummary]) -> str:
    """The table ``python -m tasker.trace`` prints."""
    header = (
        "kind",
        "count",
        "queue p50",
        "queue p99",
        "run p50",
        "run p99",
        "cancelled",
        "failed",
    )
    rows = [header]
    for s in summaries:
        rows.append(
            (
                s.kind,
                str(s.count),
                _duration(s.queue_wait_p50),
                _duration(s.queue_wait_p99),
                _duration(s.run_time_p50),
                _duration(s.run_time_p99),
                str(s.cancelled),
                str(s.failed),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for a bad file)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tasker.trace",
        description="Summarise a tasker trace (TaskManager.write_trace) per kind of task.",
    )
    parser.add_argument("file", help="a trace file written by TaskManager.write_trace()")
    options = parser.parse_args(argv)
    try:
        summaries = summarize(options.file)
    except TraceError as error:
        print(f"python -m tasker.trace: {error}", file=sys.stderr)
        return 2
    print(format_summary(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
