"""Metric 12 (issue 12): event backpressure, latest-wins events, small-event throughput.

Each figure comes from a fresh interpreter (``_events_run.py``), for this checkout and for
tasker 0.1 (the tree before issue 12, extracted with ``git archive``) in the same run, so
the table shows what the event buffer changed: peak RSS of a 1 MiB preview stream with a
2 ms handler, how late the newest coalesced frame reaches the handler, and whether small
events got slower.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from ._harness import BenchmarkError
from ._report import Cell, fmt

ROOT = Path(__file__).resolve().parent.parent
#: tasker 0.1 as it was before event credits (the main branch when issue 12 started).
BASELINE = "75a9359f4617549cac42c8f185c08dd5db7614bb"
#: The default event_buffer (64 MiB): the RSS target is this plus 64 MiB.
EVENT_BUFFER_MIB = 64
#: The default update interval (20 updates a second): the coalesce latency target.
UPDATE_INTERVAL_MS = 50.0

Cells = dict[str, dict[str, Cell]]


def baseline_src(into: Path) -> Path | None:
    """Extract tasker 0.1's ``src/`` into ``into``; None if git or the commit is unavailable."""
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", BASELINE, "src/tasker"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        # The "data" filter exists from Python 3.11.4 (Debian 12 has 3.11.2);
        # the archive is our own git history, so older interpreters go without.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return into / "src"


def run_scenario(src: Path, scenario: str, count: int) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter against the tasker tree at ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._events_run", scenario, str(count)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"{scenario} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(result["tasker"]).startswith(str(src)):
        raise BenchmarkError(f"{scenario} imported tasker from {result['tasker']}, not {src}")
    return result


def events(bench: Any) -> Cells:
    """The three rows of metric 12, tasker column only (the 0.1 figure is in the cell text)."""
    smoke = bench.sizes.throughput_tasks < 1000  # Sizes.smoke() runs 200, full 5,000
    frames = 200 if smoke else 2000
    stream_ms = 300 if smoke else 2000
    small = 20_000 if smoke else 200_000
    reps = 1 if smoke else 3
    rows: Cells = {"events.rss": {}, "events.coalesce": {}, "events.small": {}}
    if "tasker" not in bench.systems:
        return rows
    current = ROOT / "src"
    with tempfile.TemporaryDirectory(prefix="tasker-0.1-") as tmp:
        old = baseline_src(Path(tmp))
        try:
            new_rss = run_scenario(current, "rss", frames)
            old_rss = run_scenario(old, "rss", frames) if old else None
            rows["events.rss"]["tasker"] = Cell(
                new_rss["growth"],
                f"{fmt(new_rss['growth'])} (0.1: {fmt(old_rss['growth'])})"
                if old_rss
                else fmt(new_rss["growth"]),
            )
            bench.notes.append(
                f"12 RSS: {frames} x 1 MiB, 2 ms handler: now {new_rss['growth']:.0f} MiB growth,"
                f" {new_rss['total']:.2f} s"
                + (
                    f"; tasker 0.1 {old_rss['growth']:.0f} MiB, {old_rss['total']:.2f} s"
                    if old_rss
                    else ""
                )
            )
        except BenchmarkError as error:
            rows["events.rss"]["tasker"] = Cell.note(f"error: {error}")
        try:
            lag = run_scenario(current, "coalesce", stream_ms)
            old_lag = run_scenario(old, "coalesce", stream_ms) if old else None
            text = f"{fmt(lag['max_lag'] * 1000)} (p99 {fmt(lag['p99_lag'] * 1000)})"
            if old_lag:
                text += f" (0.1, all queued: {fmt(old_lag['max_lag'] * 1000)})"
            if not lag["last_is_latest"]:
                text += " LAST FRAME MISSING"
            rows["events.coalesce"]["tasker"] = Cell(
                lag["max_lag"] * 1000 if lag["last_is_latest"] else None, text
            )
        except BenchmarkError as error:
            rows["events.coalesce"]["tasker"] = Cell.note(f"error: {error}")
        try:
            new_runs: list[dict[str, Any]] = []
            old_runs: list[dict[str, Any]] = []
            for _ in range(reps):  # interleaved, so load changes hit both alike
                new_runs.append(run_scenario(current, "small", small))
                if old:
                    old_runs.append(run_scenario(old, "small", small))
            new_rates = [run["rate"] for run in new_runs]
            old_rates = [run["rate"] for run in old_runs]
            new_rate = statistics.median(new_rates)
            bench.notes.append(
                "12 small events, CPU µs per event (parent + worker, barely moved by load): "
                + _cpu_text("now", new_runs)
                + (f"; tasker 0.1 {_cpu_text('', old_runs)}" if old_runs else "")
            )
            if old_rates:
                old_rate = statistics.median(old_rates)
                rows["events.small"]["tasker"] = Cell(
                    new_rate / old_rate,
                    f"{new_rate / old_rate:.2f}x ({fmt(new_rate)} vs {fmt(old_rate)}/s)",
                )
            else:
                rows["events.small"]["tasker"] = Cell.note(f"n/a (no git): {fmt(new_rate)}/s")
        except BenchmarkError as error:
            rows["events.small"]["tasker"] = Cell.note(f"error: {error}")
    return rows


def _cpu_text(label: str, runs: list[dict[str, Any]]) -> str:
    parent = statistics.median(run["parent_us"] for run in runs)
    worker = statistics.median(run["worker_us"] for run in runs)
    return f"{label} {parent:.2f} + {worker:.2f}".strip()
