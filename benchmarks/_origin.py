"""Metric 10 (issue 10): main-thread calls and worker-pool restarts.

* ``call_on_main_thread`` from a worker thread, against the helper GTK code
  writes by hand (``GLib.idle_add`` plus a ``threading.Event``): round trip.
* ``schedule_on_main_thread`` of many calls from a worker thread, against one
  ``GLib.idle_add`` per call: calls run per second, and main-loop wake-ups.
* ``restart_worker_pool()`` then a tiny task, against what a
  ``ProcessPoolExecutor`` user does (shut the pool down, make a new one, submit).
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from gi.repository import GLib

from . import _tasker, _work
from ._harness import BenchmarkError, Stats, now
from ._report import Cell

Cells = dict[str, dict[str, Cell]]

US = 1_000_000.0
MS = 1000.0
HELPER = "gnome-thread"  # the hand-written thread + GLib.idle_add helper column


def row_keys() -> tuple[str, ...]:
    return ("main.call", "main.schedule", "main.wakeups", "restart.next", "restart.busy")


#: How long the task running during a "busy" restart takes.
BUSY_SECONDS = 1.0


def origin(bench: Any) -> Cells:
    """The rows of metric 10."""
    rows: Cells = {key: {} for key in row_keys()}
    smoke = bench.sizes.throughput_tasks < 1000
    calls = 200 if smoke else 2000
    burst = 2000 if smoke else 20_000
    restarts = 3 if smoke else 10
    if "tasker" in bench.systems and bench.tasker_reason is None:
        _fill(rows, "tasker", lambda: _tasker_main(bench, calls, burst))
        _fill(rows, "tasker", lambda: _tasker_restart(bench, restarts))
    if HELPER in bench.systems:
        _fill(rows, HELPER, lambda: _helper_main(bench, calls, burst))
    if "stdlib" in bench.systems:
        _fill(rows, "stdlib", lambda: _stdlib_restart(restarts))
    return rows


def _fill(rows: Cells, system: str, measure: Any) -> None:
    try:
        for key, cell in measure().items():
            rows[key][system] = cell
    except Exception as exc:
        for key in rows:
            rows[key].setdefault(system, Cell.note(f"error: {type(exc).__name__}: {exc}"))


def _in_thread(bench: Any, body: Any) -> Any:
    """Run ``body()`` on a worker thread while this (main) thread runs the GLib loop."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, body()))
        except BaseException as error:
            box.append((False, error))
        GLib.idle_add(lambda: False)  # wake the loop: the predicate changed off its thread

    threading.Thread(target=run, name="bench-caller", daemon=True).start()
    bench.wait(lambda: bool(box), 120.0, "the calling thread")
    ok, value = box[0]
    if not ok:
        raise value
    return value


def _round_trips(call: Any, count: int) -> Stats:
    samples = []
    for _ in range(count):
        t0 = now()
        if call(sum, (1, 2)) != 3:
            raise BenchmarkError("wrong result from the main thread")
        samples.append(now() - t0)
    return Stats.of(samples)


def _burst(bench: Any, schedule: Any, count: int, reps: int = 3) -> tuple[float, int]:
    """Median of ``reps`` bursts of ``count`` calls from a thread: (calls/s, loop dispatches)."""
    results = sorted(_one_burst(bench, schedule, count) for _ in range(reps))
    return results[len(results) // 2]


def _one_burst(bench: Any, schedule: Any, count: int) -> tuple[float, int]:
    """Schedule ``count`` calls from a thread; (calls run per second, loop wake-ups used)."""
    ran = [0]

    def bump() -> None:
        ran[0] += 1

    wakeups = bench.loop.dispatches
    t0 = now()

    def producer() -> None:
        for _ in range(count):
            schedule(bump)

    threading.Thread(target=producer, name="bench-producer", daemon=True).start()
    bench.wait(lambda: ran[0] >= count, 120.0, f"{count} main-thread calls")
    return count / (now() - t0), bench.loop.dispatches - wakeups


def _tasker_main(bench: Any, calls: int, burst: int) -> dict[str, Cell]:
    tasker, _ = _tasker.load()
    manager = tasker.TaskManager(tasker.GLibDispatcher())
    try:
        stats = _in_thread(bench, lambda: _round_trips(manager.call_on_main_thread, calls))
        rate, wakeups = _burst(bench, manager.schedule_on_main_thread, burst)
    finally:
        manager.shutdown()
    return {
        "main.call": Cell.number(stats.median * US),
        "main.schedule": Cell.number(rate),
        "main.wakeups": Cell.number(wakeups),
    }


def _helper_call(fn: Any, *args: Any) -> Any:
    """The usual hand-written "run on the GTK thread and wait" helper."""
    done = threading.Event()
    box: list[Any] = []

    def once() -> bool:
        box.append(fn(*args))
        done.set()
        return GLib.SOURCE_REMOVE

    GLib.idle_add(once)
    done.wait()
    return box[0]


def _helper_schedule(fn: Any) -> None:
    GLib.idle_add(lambda: fn() and False)


def _helper_main(bench: Any, calls: int, burst: int) -> dict[str, Cell]:
    stats = _in_thread(bench, lambda: _round_trips(_helper_call, calls))
    rate, wakeups = _burst(bench, _helper_schedule, burst)
    return {
        "main.call": Cell.number(stats.median * US),
        "main.schedule": Cell.number(rate),
        "main.wakeups": Cell.number(wakeups),
    }


def _tasker_restart(bench: Any, rounds: int) -> dict[str, Cell]:
    tasker, _ = _tasker.load()
    manager = tasker.TaskManager(tasker.GLibDispatcher(), max_workers=2)
    samples = []
    try:
        first = manager.run_process(_work.ctx_noop)
        bench.wait(first.is_final, 60.0, "the first task")
        for _ in range(rounds):
            t0 = now()
            manager.restart_worker_pool()
            task = manager.run_process(_work.ctx_noop)
            bench.wait(task.is_final, 60.0, "a task after a restart")
            if task.get_status() != "completed":
                raise BenchmarkError(f"task after restart: {task.get_status()}")
            samples.append(now() - t0)
        # A long task runs: the restart does not wait for it, and it still completes.
        busy = manager.run_process(_work.ctx_sleep, BUSY_SECONDS)
        bench.wait(lambda: busy.get_status() == "running", 60.0, "the long task")
        t0 = now()
        manager.restart_worker_pool()
        task = manager.run_process(_work.ctx_noop)
        bench.wait(task.is_final, 60.0, "a task after a busy restart")
        busy_ms = (now() - t0) * MS
        bench.wait(busy.is_final, 60.0, "the long task to finish")
        if busy.get_status() != "completed":
            raise BenchmarkError(f"the long task ended {busy.get_status()}")
    finally:
        manager.shutdown()
    return {
        "restart.next": Cell.number(Stats.of(samples).median * MS),
        "restart.busy": Cell.number(busy_ms),
    }


def _stdlib_restart(rounds: int) -> dict[str, Cell]:
    from ._peers import _FORKSERVER

    def new_pool() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(2, mp_context=_FORKSERVER)

    pool = new_pool()
    pool.submit(_work.noop).result(60)
    samples = []
    try:
        for _ in range(rounds):
            t0 = now()
            pool.shutdown(wait=True)  # what a restart is with the stdlib pool
            pool = new_pool()
            pool.submit(_work.noop).result(60)
            samples.append(now() - t0)
        # shutdown(wait=False) would return at once, but the old pool's running
        # task would then be the only thing its result can wait for; nothing
        # lost means waiting for it, as shutdown(wait=True) does.
        busy = pool.submit(_work.sleep, BUSY_SECONDS)
        t0 = now()
        pool.shutdown(wait=True)
        pool = new_pool()
        pool.submit(_work.noop).result(60)
        busy_ms = (now() - t0) * MS
        busy.result(60)
    finally:
        pool.shutdown(wait=True)
    return {
        "restart.next": Cell.number(Stats.of(samples).median * MS),
        "restart.busy": Cell.number(busy_ms),
    }
