"""Dask rows: tasker's run_process on a 2-worker Dask LocalCluster vs tasker's local pool.

Both columns run the same tasks through the same public API
(``TaskManager.run_process`` on the GLib main loop); only the manager's
``process_backend`` differs. Printed as its own table after the main one
(``python -m benchmarks --only dask``), with the ratio Dask / local.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

WORKERS = 2


# -- task functions (module level: workers import them) --------------------------------


def noop(context: Any) -> None:
    return None


def report_times(context: Any, count: int, gap: float) -> None:
    """Set the message to the wall-clock time ``count`` times, ``gap`` s apart."""
    for _ in range(count):
        context.set_message(repr(time.time()))
        context.flush()
        time.sleep(gap)


def until_cancelled(context: Any) -> None:
    context.send_event("started", None)
    while not context.is_cancelled():
        time.sleep(0.0005)


def wait_to_be_killed(context: Any) -> None:
    context.send_event("pid", os.getpid())
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        time.sleep(0.01)


def burn(context: Any, seconds: float) -> int:
    """Pure-Python CPU work for about ``seconds`` (measured once per call)."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


# -- measurement --------------------------------------------------------------------------


class _System:
    def __init__(self, name: str) -> None:
        from tasker import TaskManager
        from tasker._dispatch._glib import GLibDispatcher

        self.name = name
        started = time.perf_counter()
        if name == "dask":
            from tasker.dask import DaskBackend

            self.backend: Any = DaskBackend(n_workers=WORKERS)
            self.manager = TaskManager(
                GLibDispatcher(), process_backend=self.backend, cancel_grace=1.0
            )
        else:
            self.manager = TaskManager(GLibDispatcher(), max_workers=WORKERS, cancel_grace=1.0)
        self.run(noop)
        self.cold = time.perf_counter() - started
        for _ in range(2 * WORKERS):  # every worker warm
            self.run(noop)

    def wait(self, predicate: Callable[[], object], timeout: float = 60.0) -> None:
        from tasker.testing import run_until

        run_until(predicate, timeout)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        task = self.manager.run_process(fn, *args)
        self.wait(task.is_final)
        return task.result()

    def close(self) -> None:
        self.manager.shutdown(timeout=10.0)


def _round_trip(system: _System, samples: int) -> float:
    times = []
    for _ in range(samples):
        done: list[float] = []
        start = time.perf_counter()
        system.manager.run_process(
            noop, when_done=lambda t, done=done: done.append(time.perf_counter())
        )
        system.wait(lambda done=done: done)
        times.append(done[0] - start)
    return statistics.median(times) * 1000


def _throughput(system: _System, count: int) -> float:
    done: list[int] = []
    start = time.perf_counter()
    for _ in range(count):
        system.manager.run_process(noop, when_done=lambda t: done.append(1))
    system.wait(lambda: len(done) >= count, 120.0)
    return count / (time.perf_counter() - start)


def _progress_latency(system: _System, count: int) -> float:
    lags: list[float] = []
    seen: set[str] = set()

    def on_updated(sender: object, tasks: list[Any], progress: float) -> None:
        arrived = time.time()
        for task in tasks:
            message = task.get_message()
            if message and message not in seen:
                seen.add(message)
                lags.append(arrived - float(message))

    system.manager.tasks_updated.connect(on_updated)
    try:
        # 120 ms apart: every report is past the update interval, so none is coalesced away.
        task = system.manager.run_process(report_times, count, 0.12)
        system.wait(task.is_final)
    finally:
        system.manager.tasks_updated.disconnect(on_updated)
    return statistics.median(lags) * 1000


def _cancel_latency(system: _System, samples: int) -> float:
    times = []
    for _ in range(samples):
        marks: dict[str, float] = {}

        def on_event(task: Any, name: str, data: Any, marks: dict[str, float] = marks) -> None:
            marks["cancel"] = time.perf_counter()
            task.cancel()

        task = system.manager.run_process(
            until_cancelled,
            when_event=on_event,
            when_done=lambda t, marks=marks: marks.setdefault("done", time.perf_counter()),
        )
        system.wait(lambda marks=marks: "done" in marks)
        assert task.get_status() == "cancelled"
        times.append(marks["done"] - marks["cancel"])
    return statistics.median(times) * 1000


def _crash_latency(system: _System, samples: int) -> float:
    times = []
    for _ in range(samples):
        marks: dict[str, float] = {}

        def on_event(task: Any, name: str, pid: Any, marks: dict[str, float] = marks) -> None:
            marks["kill"] = time.perf_counter()
            os.kill(pid, signal.SIGKILL)

        task = system.manager.run_process(
            wait_to_be_killed,
            when_event=on_event,
            when_done=lambda t, marks=marks: marks.setdefault("done", time.perf_counter()),
        )
        system.wait(lambda marks=marks: "done" in marks)
        assert task.get_status() == "failed"
        times.append(marks["done"] - marks["kill"])
    return statistics.median(times) * 1000


def _batch(system: _System, tasks: int, seconds: float) -> float:
    start = time.perf_counter()
    handles = [system.manager.run_process(burn, seconds) for _ in range(tasks)]
    system.wait(lambda: all(t.is_final() for t in handles), 120.0)
    return time.perf_counter() - start


ROWS = (
    ("cold", "first task incl. pool / cluster start", "ms"),
    ("rt", "warm round trip (noop), median", "ms"),
    ("tp", "throughput, tiny tasks", "tasks/s"),
    ("progress", "progress latency (worker → tasks_updated), median", "ms"),
    ("cancel", "cancel latency (cancel → when_done), median", "ms"),
    ("batch", "8 x 250 ms CPU tasks on 2 workers, wall time", "ms"),
    ("crash", "worker SIGKILL → WorkerCrashedError on main thread, median", "ms"),
)


def measure(smoke: bool) -> dict[str, dict[str, float | str]]:
    """Row key -> system ("local", "dask") -> value (or an error note)."""
    samples = 10 if smoke else 50
    count = 100 if smoke else 1000
    out: dict[str, dict[str, float | str]] = {key: {} for key, _, _ in ROWS}
    for name in ("local", "dask"):
        try:
            system = _System(name)
        except Exception as exc:
            for cells in out.values():
                cells[name] = f"n/a ({type(exc).__name__}: {exc})"
            continue
        try:
            out["cold"][name] = system.cold * 1000
            out["rt"][name] = _round_trip(system, samples)
            out["tp"][name] = _throughput(system, count)
            out["progress"][name] = _progress_latency(system, 5 if smoke else 15)
            out["cancel"][name] = _cancel_latency(system, samples // 2)
            out["batch"][name] = _batch(system, 8, 0.05 if smoke else 0.25) * 1000
            # Last: Dask restarts a killed worker in the background, which would slow what follows.
            out["crash"][name] = _crash_latency(system, 2 if smoke else 5)
        except Exception as exc:
            for key in out:
                out[key].setdefault(name, f"error: {type(exc).__name__}: {exc}")
        finally:
            system.close()
    return out


def render(results: dict[str, dict[str, float | str]]) -> str:
    """A plain-text table: local pool, Dask LocalCluster, and Dask ÷ local."""

    def cell(value: float | str | None) -> str:
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"

    header = ("Dask rows (2 workers each)", "unit", "local pool", "Dask LocalCluster", "dask/local")
    lines = [header]
    for key, label, unit in ROWS:
        local = results[key].get("local")
        dask = results[key].get("dask")
        ratio = "-"
        if isinstance(local, float) and isinstance(dask, float) and local > 0:
            value = dask / local
            ratio = f"{value:.1f}x" if value >= 1 else f"{value:.2g}x"
        lines.append((label, unit, cell(local), cell(dask), ratio))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = []
    for index, row in enumerate(lines):
        text.append(
            "  ".join(
                value.ljust(widths[i]) if i < 2 else value.rjust(widths[i])
                for i, value in enumerate(row)
            )
        )
        if index == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


def available() -> str | None:
    """None when Dask distributed is importable, else why the rows are skipped."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "distributed is not installed (the dask extra)"
    return None


def run(smoke: bool) -> str:
    """Measure both systems and return the rendered table."""
    reason = available()
    if reason is not None:
        return f"Dask rows skipped: {reason}"
    started = time.perf_counter()
    table = render(measure(smoke))
    print(f"metric dask done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return table
