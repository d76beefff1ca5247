"""Qt rows: the progress storm on a Qt event loop, tasker's QtDispatcher beside superqt.

Four workers report progress as fast as they can for a few seconds (a message
every 100th step) while a 1 ms ``QTimer`` on the GUI thread measures how late
it fires. Systems, all on one ``QCoreApplication`` in one run:

* ``tasker threads`` / ``tasker processes``: ``TaskManager(QtDispatcher())``,
  ``run_thread`` / ``run_process`` of ``_work.ctx_storm`` (``set_progress``,
  ``set_message``), results by ``when_done``;
* ``superqt``: napari's choice, ``superqt.utils.thread_worker`` on a generator
  that yields each update (one queued ``Signal(object)`` emission per update,
  delivered to a slot on the GUI thread), on ``QThreadPool`` with 4 threads.

Figures: GUI-loop lateness (p50, p99, max), GUI-thread callbacks per second
(tasker: callables its dispatcher ran; superqt: slot calls), and catch-up
(from the last worker's end until the GUI thread has seen everything). Run it
alone with ``python -m benchmarks --only qt`` (or ``python -m benchmarks._qt``);
the table prints tasker threads ÷ superqt, like for like (threads both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")  # superqt goes through qtpy

WORKERS = 4
MS = 1000.0
now = time.perf_counter  # the clock _work's storm functions report in


def available() -> str | None:
    """None when PySide6 and superqt can be imported, else why the rows are skipped."""
    try:
        import PySide6  # noqa: F401
        import superqt  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc}); pip install 'tasker-gtk[qt,bench]'"
    return None


# -- the Qt loop and the lateness probe --------------------------------------------------


class QtLoop:
    """Processes Qt events on this thread, the way ``QApplication.exec()`` does."""

    def __init__(self) -> None:
        from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

        self.app = QCoreApplication.instance() or QCoreApplication([sys.argv[0]])
        self._process = QCoreApplication.processEvents
        self._flags = QEventLoop.ProcessEventsFlag.AllEvents | (
            QEventLoop.ProcessEventsFlag.WaitForMoreEvents
        )
        self._wake = QTimer()
        self._wake.setSingleShot(True)

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = now() + timeout
        while not predicate():
            remaining = deadline - now()
            if remaining <= 0:
                return False
            self._wake.start(max(1, min(50, round(remaining * MS))))
            self._process(self._flags)
        return True

    def run_for(self, seconds: float) -> None:
        end = now() + seconds
        self.run_until(lambda: now() >= end, seconds + 1.0)


class LatenessProbe:
    """A 1 ms precise ``QTimer``: each firing's delay beyond 1 ms after the previous one."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.samples: list[tuple[float, float]] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = now()
        self._timer.start(1)

    def _tick(self) -> None:
        t = now()
        self.samples.append((t, max(0.0, t - self._last - 0.001)))
        self._last = t

    def stop(self) -> None:
        self._timer.stop()

    def lateness(self, start: float, end: float) -> list[float]:
        return [late for t, late in self.samples if start <= t <= end]


@dataclass
class Result:
    lateness: list[float]
    callbacks: int
    per_second: float
    catchup: float | None  # None: not caught up within the cap
    note: str = ""
    updates: int = 0  # progress updates the workers made (how much work got done)


# -- tasker -------------------------------------------------------------------------------


def storm_tasker(loop: QtLoop, kind: str, seconds: float, cap: float) -> Result:
    from tasker import TaskManager
    from tasker.qt import QtDispatcher

    from . import _work

    calls = [0]

    class CountingQtDispatcher(QtDispatcher):
        """Counts the callables tasker runs on the GUI thread (drains, ticks, timers)."""

        def call_soon(self, fn: Callable[[], object]) -> None:
            super().call_soon(lambda: (calls.__setitem__(0, calls[0] + 1), fn()))

        def call_later(self, delay: float, fn: Callable[[], object]) -> None:
            super().call_later(delay, lambda: (calls.__setitem__(0, calls[0] + 1), fn()))

    manager = TaskManager(CountingQtDispatcher(), max_workers=WORKERS, max_threads=WORKERS)
    start = manager.run_thread if kind == "thread" else manager.run_process
    probe = LatenessProbe()
    try:
        # Warm: workers started (processes) and every code path run once.
        warm: list[Any] = []
        for worker_id in range(WORKERS):
            start(_work.ctx_storm, worker_id, now() + 0.01, when_done=warm.append)
        if not loop.run_until(lambda: len(warm) == WORKERS, 60):
            raise RuntimeError("tasker did not warm up")
        probe.start()
        loop.run_for(0.05)
        done: list[tuple[float, Any]] = []
        calls[0] = 0
        t_start = now()
        deadline = t_start + seconds
        for worker_id in range(WORKERS):
            start(
                _work.ctx_storm,
                worker_id,
                deadline,
                when_done=lambda task: done.append((now(), task)),
            )
        if not loop.run_until(lambda: len(done) == WORKERS, seconds + cap + 30):
            raise RuntimeError("the storm tasks did not finish")
        t_caught = max(t for t, _ in done)
        t_end = max(task.result()[0] for _, task in done)
        updates = sum(task.result()[1] for _, task in done)
        callbacks = calls[0]
    finally:
        probe.stop()
        manager.shutdown(timeout=10.0)
    return Result(
        lateness=probe.lateness(t_start, t_end),
        callbacks=callbacks,
        per_second=callbacks / (t_caught - t_start),
        catchup=max(0.0, t_caught - t_end),
        updates=updates,
    )


# -- superqt ------------------------------------------------------------------------------


def _superqt_storm(worker_id: int, deadline: float) -> Any:
    """The peer's natural storm: yield every update; superqt emits each one to the GUI."""
    steps = 0
    t = now()
    while t < deadline:
        steps += 1
        yield ("p", worker_id, steps)
        if steps % 100 == 0:
            yield ("m", worker_id, f"step {steps}")
        t = now()
    yield ("end", worker_id, t)
    return t, steps


def storm_superqt(loop: QtLoop, seconds: float, cap: float) -> Result:
    from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, Slot
    from superqt.utils import thread_worker

    class Sink(QObject):
        """The GUI-thread end: one slot call per yielded update."""

        def __init__(self) -> None:
            super().__init__()
            self.callbacks = 0
            self.ends: dict[int, float] = {}
            self.worker_ends: dict[int, float] = {}
            self.progress: dict[int, int] = {}
            self.closed = False

        @Slot(object)
        def on_yield(self, item: Any) -> None:
            self.callbacks += 1
            if self.closed:
                return
            kind, worker_id, value = item
            if kind == "p":
                self.progress[worker_id] = value
            elif kind == "end":
                self.ends[worker_id] = now()
                self.worker_ends[worker_id] = value

    pool = QThreadPool.globalInstance()
    pool.setMaxThreadCount(max(pool.maxThreadCount(), WORKERS))
    worker_fn = thread_worker(_superqt_storm, start_thread=False)
    sink = Sink()
    probe = LatenessProbe()
    workers: list[Any] = []
    caught = False
    try:
        warm = Sink()
        for worker_id in range(WORKERS):
            w = worker_fn(worker_id, now() + 0.01)
            w.yielded.connect(warm.on_yield)
            workers.append(w)
            w.start()
        if not loop.run_until(lambda: len(warm.ends) == WORKERS, 30):
            raise RuntimeError("superqt did not warm up")
        workers.clear()
        probe.start()
        loop.run_for(0.05)
        t_start = now()
        deadline = t_start + seconds
        for worker_id in range(WORKERS):
            w = worker_fn(worker_id, deadline)
            w.yielded.connect(sink.on_yield)
            workers.append(w)
            w.start()
        # The workers end at the deadline; what they emitted may take far longer to show.
        loop.run_until(lambda: now() >= deadline, seconds + 1)
        caught = loop.run_until(lambda: len(sink.ends) == WORKERS, cap)
        t_now = max(sink.ends.values()) if caught else now()
        t_end = max(sink.worker_ends.values()) if caught else deadline
        callbacks = sink.callbacks
        shown = sum(sink.progress.values())
    finally:
        probe.stop()
        sink.closed = True
        for w in workers:
            w.quit()
        # Drop the updates still queued for the GUI thread (they would take long to show).
        QCoreApplication.removePostedEvents(sink)
        pool.waitForDone(30_000)
        loop.run_for(0.05)
        QCoreApplication.removePostedEvents(sink)
    note = ""
    if not caught:
        note = f"> {cap:g} s ({shown:,} progress updates shown by then)"
    return Result(
        lateness=probe.lateness(t_start, t_end),
        callbacks=callbacks,
        per_second=callbacks / (t_now - t_start),
        catchup=max(0.0, t_now - t_end) if caught else None,
        note=note,
        updates=shown,
    )


def idle(loop: QtLoop, seconds: float) -> Result:
    probe = LatenessProbe()
    probe.start()
    start = now()
    loop.run_for(seconds)
    probe.stop()
    return Result(
        lateness=probe.lateness(start + 0.05, now()), callbacks=0, per_second=0.0, catchup=None
    )


# -- table --------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


COLUMNS = ("floor (idle)", "tasker threads", "tasker processes", "superqt threads")


def figures(result: Result | str) -> dict[str, tuple[float | None, str]]:
    if isinstance(result, str):
        return {row: (None, result) for row in ROWS}
    late = result.lateness
    values = {
        "p50": statistics.median(late) * MS if late else float("nan"),
        "p99": _pct(late, 0.99) * MS,
        "max": max(late, default=float("nan")) * MS,
    }
    out: dict[str, tuple[float | None, str]] = {
        f"GUI-loop lateness {name}": (v, f"{v:.2f}") for name, v in values.items()
    }
    if result.callbacks:
        out["GUI-thread callbacks"] = (
            result.per_second,
            f"{result.per_second:,.0f}/s ({result.callbacks:,})",
        )
        if result.catchup is not None:
            out["catch-up after the last worker"] = (
                result.catchup * MS,
                f"{result.catchup * MS:.1f}",
            )
        else:
            out["catch-up after the last worker"] = (None, result.note)
    else:
        out["GUI-thread callbacks"] = (None, "—")
        out["catch-up after the last worker"] = (None, "—")
    if result.updates:
        out["progress updates the workers made"] = (
            float(result.updates),
            f"{result.updates:,}",
        )
    return out


ROWS = (
    "GUI-loop lateness p50",
    "GUI-loop lateness p99",
    "GUI-loop lateness max",
    "GUI-thread callbacks",
    "catch-up after the last worker",
    "progress updates the workers made",
)
UNITS = ("ms", "ms", "ms", "/s", "ms", "")


def render(results: dict[str, Result | str]) -> str:
    cells = {column: figures(results[column]) for column in COLUMNS}
    header = ["Qt progress storm (4 workers)", "unit", *COLUMNS, "tasker threads ÷ superqt"]
    table = [header]
    for row, unit in zip(ROWS, UNITS, strict=True):
        line = [row, unit]
        for column in COLUMNS:
            line.append(cells[column].get(row, (None, "—"))[1])
        ours = cells["tasker threads"].get(row, (None, ""))[0]
        peer = cells["superqt threads"].get(row, (None, ""))[0]
        if ours is not None and peer:
            line.append(f"{ours / peer:.2f}x")
        elif ours is not None and peer is None and row.startswith("catch-up"):
            line.append("peer never caught up")
        else:
            line.append("—")
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for index, r in enumerate(table):
        lines.append(
            "  ".join(t.ljust(widths[i]) if i < 2 else t.rjust(widths[i]) for i, t in enumerate(r))
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def measure(smoke: bool) -> dict[str, Result | str]:
    seconds = 0.25 if smoke else 3.0
    cap = 0.5 if smoke else 8.0
    loop = QtLoop()
    results: dict[str, Result | str] = {"floor (idle)": idle(loop, 0.3 if smoke else 1.5)}
    for column, run in (
        ("tasker threads", lambda: storm_tasker(loop, "thread", seconds, cap)),
        ("tasker processes", lambda: storm_tasker(loop, "process", seconds, cap)),
        ("superqt threads", lambda: storm_superqt(loop, seconds, cap)),
    ):
        try:
            results[column] = run()
        except Exception as exc:  # a failing system is a cell, not a crashed run
            results[column] = f"error: {type(exc).__name__}: {exc}"
    return results


def versions() -> str:
    import PySide6
    import superqt

    return f"PySide6 {PySide6.__version__}, superqt {superqt.__version__}, platform offscreen"


def run(smoke: bool) -> str:
    """Measure in a child process (its own QCoreApplication) and return the rendered table."""
    import subprocess

    reason = available()
    if reason is not None:
        return f"Qt progress storm: skipped, {reason}"
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks._qt", *(["--smoke"] if smoke else [])],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(f"metric qt done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if child.returncode != 0:
        return f"Qt progress storm: failed ({child.returncode}): {child.stderr[-2000:]}"
    return child.stdout.rstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._qt", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a fraction of a second per system")
    args = parser.parse_args(argv)
    from ._tasker import ensure_src_on_path

    ensure_src_on_path()
    reason = available()
    if reason is not None:
        print(f"Qt progress storm: skipped, {reason}")
        return 0
    print(render(measure(args.smoke)))
    print(f"* {versions()}; {'smoke' if args.smoke else 'full'} run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
