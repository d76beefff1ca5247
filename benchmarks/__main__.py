"""``python -m benchmarks [--smoke] [--markdown PATH]``: measure tasker and its peers."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ._tasker import ensure_src_on_path

ensure_src_on_path()  # before any pool or forkserver starts, so workers can import tasker

from . import _coldstart, _metrics, _peers  # noqa: E402
from ._report import Row, RowSpec, Target, render_markdown, render_text  # noqa: E402


def row_specs(grace: float) -> list[RowSpec]:
    grace_ms = grace * 1000
    return [
        RowSpec("floor.raw", "1 floor: Pipe ping-pong, raw, median", "ms", None),
        RowSpec("floor.glib", "1 floor: Pipe ping-pong via GLib fd watch, median", "ms", None),
        RowSpec(
            "rt.median",
            "2 warm round trip, median",
            "ms",
            "lower",
            Target("ratio_le", 1 / 3, "≤ best/3"),
        ),
        RowSpec("rt.p95", "2 warm round trip, p95", "ms", "lower"),
        RowSpec(
            "tp.rate",
            "3 throughput, tiny tasks",
            "tasks/s",
            "higher",
            Target("ratio_ge", 2, "≥ 2x best"),
        ),
        RowSpec("tp.submit", "3 submit cost on the main thread, mean", "µs", "lower"),
        RowSpec(
            "tp.growth",
            "3 submit cost growth, last ÷ first 10%",
            "x",
            None,
            Target("le", 2.0, "≤ 2 (flat)"),
        ),
        RowSpec(
            "cost.is_cancelled",
            "4 is_cancelled() | Event.is_set()",
            "ns",
            "lower",
            Target("le", 100, "≤ 100"),
        ),
        RowSpec(
            "cost.set_progress",
            "4 set_progress() | Queue.put()",
            "ns",
            "lower",
            Target("le", 200, "≤ 200"),
        ),
        RowSpec(
            "cost.set_message",
            "4 set_message() | Queue.put()",
            "ns",
            "lower",
            Target("le", 300, "≤ 300"),
        ),
        RowSpec(
            "cost.callbacks",
            "4 main-thread callbacks caused by those calls",
            "",
            "lower",
            Target("le", 100, "≤ 100 (bounded)"),
        ),
        RowSpec("cancel.coop", "5a cooperative cancel → final status, median", "ms", "lower"),
        RowSpec(
            "cancel.stuck",
            "5b stuck task: cancel → slot free (follow-up done)",
            "ms",
            "lower",
            Target("le", grace_ms + 50, f"≤ grace {grace_ms:g} + 50"),
        ),
        RowSpec(
            "crash.exit",
            "6 worker os._exit → failure on main thread",
            "ms",
            "lower",
            Target("le", 10, "≤ 10"),
        ),
        RowSpec(
            "crash.kill",
            "6 worker SIGKILL → failure on main thread",
            "ms",
            "lower",
            Target("le", 10, "≤ 10"),
        ),
        RowSpec("crash.next", "6 crash → next task done", "ms", "lower", Target("le", 30, "≤ 30")),
        RowSpec(
            "crash.pool", "6 pool still works after a crash", "", None, Target("true", text="yes")
        ),
        RowSpec("storm.p50", "7 storm: main-loop lateness p50", "ms", "lower"),
        RowSpec(
            "storm.p99", "7 storm: main-loop lateness p99", "ms", "lower", Target("le", 2, "≤ 2")
        ),
        RowSpec(
            "storm.max", "7 storm: main-loop lateness max", "ms", "lower", Target("le", 8, "≤ 8")
        ),
        RowSpec(
            "storm.cbps",
            "7 storm: main-thread callbacks (total)",
            "/s",
            "lower",
            Target("lt", 100, "< 100/s"),
        ),
        RowSpec(
            "storm.catchup",
            "7 storm: caught up after last worker ended",
            "ms",
            "lower",
            Target("le", 50, "≤ 50"),
        ),
        RowSpec(
            "large.bytes",
            "8 large bytes result",
            "MB/s",
            "higher",
            Target("floor_ge", 0.5, "≥ floor/2"),
        ),
        RowSpec(
            "large.numpy",
            "8 large NumPy array result",
            "MB/s",
            "higher",
            Target("floor_ge", 0.5, "≥ floor/2"),
        ),
        RowSpec(
            "cold.import",
            "9 import (tasker | c.f.process | loky | pebble)",
            "ms",
            "lower",
            Target("le", 20, "≤ 20"),
        ),
        RowSpec(
            "cold.clean",
            "9 import starts no thread or process",
            "",
            None,
            Target("true", text="yes"),
        ),
        RowSpec(
            "cold.first", "9 first task incl. pool start", "ms", "lower", Target("le", 60, "≤ 60")
        ),
        *lean_row_specs(),
        *event_row_specs(),
        *origin_row_specs(),
        *scheduling_row_specs(),
    ]


def scheduling_row_specs() -> list[RowSpec]:
    """Metric 13 (issue 13, see benchmarks/_scheduling.py): key policies and groups."""
    return [
        RowSpec(
            "sched.started",
            "13 slider, 1,000 moves in 2 s, keep_latest+debounce: renders started",
            "",
            "lower",
        ),
        RowSpec(
            "sched.killed",
            "13 slider: renders killed halfway",
            "",
            "lower",
            Target("le", 0, "0"),
        ),
        RowSpec("sched.latency", "13 slider: last move → its render's when_done", "ms", "lower"),
        RowSpec(
            "sched.submit",
            "13 submit with policy + group ÷ plain submit",
            "x",
            "lower",
            Target("le", 1.2, "≤ 1.2"),
        ),
    ]


def origin_row_specs() -> list[RowSpec]:
    """Metric 10 (issue 10, see benchmarks/_origin.py): main-thread calls, pool restart."""
    return [
        RowSpec(
            "main.call",
            "10 call_on_main_thread from a thread, median | idle_add + Event",
            "µs",
            "lower",
        ),
        RowSpec(
            "main.schedule",
            "10 schedule_on_main_thread burst from a thread | idle_add each",
            "calls/s",
            "higher",
        ),
        RowSpec("main.wakeups", "10 main-loop dispatches for that burst", "", "lower"),
        RowSpec(
            "restart.next",
            "10 restart_worker_pool → next task done | new executor",
            "ms",
            "lower",
        ),
        RowSpec(
            "restart.busy",
            "10 same, while a 1 s task runs (it completes) | shutdown(wait) + new",
            "ms",
            "lower",
        ),
    ]


def lean_row_specs() -> list[RowSpec]:
    """Metric 11 (issue 11, see benchmarks/_lean.py): workers of a GTK application."""
    return [
        RowSpec("lean.rss_glib", "11 worker RSS, GLib-only main script", "MiB", "lower"),
        RowSpec("lean.rss_gtk", "11 worker RSS, GTK main script", "MiB", "lower"),
        RowSpec(
            "lean.rss_extra",
            "11 worker RSS, GTK minus GLib-only main script",
            "MiB",
            "lower",
            Target("le", 5, "≤ 5"),
        ),
        RowSpec(
            "lean.gtk_free",
            "11 worker free of GTK (GTK main script)",
            "",
            None,
            Target("true", text="yes"),
        ),
        RowSpec(
            "lean.display",
            "11 display sockets in a worker (GTK main script)",
            "",
            "lower",
            Target("le", 0, "0"),
        ),
        RowSpec(
            "lean.first_glib", "11 first task incl. pool start, GLib-only script", "ms", "lower"
        ),
        RowSpec("lean.first_gtk", "11 first task incl. pool start, GTK script", "ms", "lower"),
        RowSpec("lean.warm", "11 warm round trip, GTK main script, median", "ms", "lower"),
        RowSpec("lean.submit", "11 submit cost, main-script function (by value)", "µs", "lower"),
        RowSpec("lean.after", "11 first task after start_workers(), GTK script", "ms", "lower"),
        RowSpec(
            "lean.after_ratio",
            "11 first task after start_workers() ÷ warm round trip",
            "x",
            None,
            Target("le", 2, "≤ 2"),
        ),
    ]


def event_row_specs() -> list[RowSpec]:
    """Metric 12 (issue 12, see benchmarks/_events.py): event backpressure."""
    from ._events import EVENT_BUFFER_MIB, UPDATE_INTERVAL_MS

    rss_bound = EVENT_BUFFER_MIB + 64
    return [
        RowSpec(
            "events.rss",
            "12 1 MiB events, 2 ms handler: app peak RSS growth (vs 0.1)",
            "MiB",
            "lower",
            Target("le", rss_bound, f"≤ buffer + 64 = {rss_bound}"),
        ),
        RowSpec(
            "events.coalesce",
            "12 coalesce: newest frame sent → handler, max (vs 0.1)",
            "ms",
            "lower",
            Target("le", UPDATE_INTERVAL_MS, f"≤ {UPDATE_INTERVAL_MS:g} (1 update)"),
        ),
        RowSpec(
            "events.small",
            "12 small events/s from a process, now ÷ 0.1, same run",
            "x",
            "higher",
            Target("ge", 0.9, "≥ 0.9"),
        ),
    ]


def tasker_revision() -> str:
    """The commit benchmarked, and whether src/ differs from it (work in progress)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head} + uncommitted changes in src/" if dirty else head


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sample counts: seconds, not minutes"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as markdown here")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated metric numbers (1-13), dask, progress or qt to run, default all",
    )
    parser.add_argument(
        "--systems",
        default="tasker," + ",".join(_peers.PEERS),
        help="comma-separated systems to run (tasker, stdlib, loky, pebble, gnome-thread)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of errors")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    sizes = _metrics.Sizes.smoke() if args.smoke else _metrics.Sizes.full()
    bench = _metrics.Bench(
        sizes=sizes,
        systems=tuple(s.strip() for s in args.systems.split(",") if s.strip()),
        verbose=args.verbose,
    )
    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or [
        *_metrics.METRICS,
        "dask",
        "progress",
        "qt",
    ]
    # The progress rows (issue 14: set_progress cost, ETA, freeze) are their own table.
    with_progress = "progress" in chosen
    chosen = [m for m in chosen if m != "progress"]
    # The Dask rows (tasker on a LocalCluster vs the local pool) are their own table.
    with_dask = "dask" in chosen
    # The Qt rows (progress storm on a Qt loop, beside superqt) are their own table, too.
    with_qt = "qt" in chosen
    chosen = [m for m in chosen if m not in ("dask", "qt")]
    # Every system's workers import benchmarks._work, and tasker's import the
    # checkout: with bytecode, as installed packages have, for every metric.
    _coldstart.compile_checkout()
    rows = {spec.key: Row(spec) for spec in row_specs(sizes.grace)}
    started = time.perf_counter()
    load_before = load_average()
    for number in chosen:
        t0 = time.perf_counter()
        cells = _metrics.METRICS[number](bench)
        for key, by_system in cells.items():
            rows[key].cells.update(by_system)
        print(f"metric {number} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    shown = [row for row in rows.values() if row.cells]
    mode = "smoke" if args.smoke else "full"
    notes = [
        f"{mode} run, {time.perf_counter() - started:.0f} s; sizes: "
        + ", ".join(f"{name}={value:_}" for name, value in asdict(sizes).items()),
        f"tasker revision: {tasker_revision()}",
        f"load average before / after: {load_before} / {load_average()}",
    ]
    if bench.tasker_reason:
        notes.append(f"tasker column missing: {bench.tasker_reason}")
    notes.extend(bench.notes)
    if shown:
        print(render_text(shown))
        for note in notes:
            print(f"* {note}")
    dask_table = ""
    if with_dask:
        from . import _dask

        dask_table = _dask.run(args.smoke)
        print()
        print(dask_table)
    if with_progress:
        from . import _progress

        print()
        print(_progress.run(args.smoke))
    if with_qt:
        from . import _qt

        print()
        print(_qt.run(args.smoke))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        text = render_markdown(shown, mode=mode, notes=notes)
        if dask_table:
            text += f"\n```\n{dask_table}\n```\n"
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
