"""Metric 13 (issue 13): key policies and groups.

* A zoom slider moved 1,000 times in 2 s, each move asking for a render in a
  worker process: with ``policy="keep_latest", debounce=0.05`` against
  tasker's default ``replace`` (0.1's only behaviour) in the same run. Rows:
  renders started, renders killed halfway (started, then cancelled), and the
  time from the last move to its render's ``when_done``.
* The main-thread cost of a submit with a policy and a group, divided by the
  cost of a plain submit, interleaved in one manager.

Worker processes import this module for ``render``: keep its imports cheap.
"""

from __future__ import annotations

import time
from typing import Any

from ._report import Cell, fmt

Cells = dict[str, dict[str, Cell]]

MOVES = 1000
SECONDS = 2.0
RENDER = 0.03  # one render, in seconds
DEBOUNCE = 0.05
THREADS = 2  # the manager's worker threads, all held while submit costs are timed


def render(context: Any, zoom: float, seconds: float) -> float:
    """A cooperative stand-in for a fractal render: ``seconds`` of work, or less if cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if context.is_cancelled():
            return -1.0
        time.sleep(0.001)
    return zoom


def noop(context: Any) -> None:
    """The task of the submit-cost rows."""


def slider(manager: Any, loop: Any, **policy: Any) -> dict[str, float]:
    """Move the slider MOVES times over SECONDS; started, killed, last move → its when_done."""
    tasks: list[Any] = []
    done_at: dict[int, float] = {}

    def on_done(task: Any) -> None:
        done_at[task.id] = time.perf_counter()

    step = SECONDS / MOVES
    t0 = time.perf_counter()
    for move in range(MOVES):
        # Let the main loop run until this move is due, as a real slider would.
        due = t0 + move * step
        loop.run_until(lambda due=due: time.perf_counter() >= due, SECONDS + 5)
        tasks.append(
            manager.run_process(
                render, move / MOVES, RENDER, key="render", when_done=on_done, **policy
            )
        )
    last_move = time.perf_counter()
    last = tasks[-1]
    if not loop.run_until(lambda: last.id in done_at and not manager.has_tasks(), 30):
        raise RuntimeError("the slider's renders did not finish")
    started = [t for t in tasks if t.timings.started is not None]
    killed = [t for t in started if str(t.get_status()) == "cancelled"]
    return {
        "started": float(len(started)),
        "killed": float(len(killed)),
        "latency": (done_at[last.id] - last_move) * 1000,
        "last_ok": float(last.get_status() == "completed"),
    }


def blocked(context: Any, gate: Any) -> None:
    """Holds a worker thread until the gate opens (so submits measure only the submit)."""
    gate.wait(60)


def submit_cost(manager: Any, loop: Any, tasker: Any, count: int, reps: int) -> tuple[float, float]:
    """Best µs per submit over the reps: plain, and with a policy and a group (interleaved).

    Every worker thread is held meanwhile, so no task runs while the main
    thread submits: what is timed is the submit alone, queueing included (in
    the thread pool for plain tasks, in the scheduler for the others).
    """
    import threading

    from ._harness import gc_quiet  # here: workers import this module, and it loads GLib

    plain: list[float] = []
    scheduled: list[float] = []
    for rep in range(reps):
        group = tasker.Group(f"bench-{rep}", max_concurrency=4, priority=1)
        # Alternate which goes first, so a slow spell of the machine hits both alike.
        for kind in ("plain", "scheduled") if rep % 2 == 0 else ("scheduled", "plain"):
            gate = threading.Event()
            holders = [manager.run_thread(blocked, gate) for _ in range(THREADS)]
            running = lambda h=holders: all(t.get_status() == "running" for t in h)  # noqa: E731
            if not loop.run_until(running, 30):
                raise RuntimeError("the worker threads did not start")
            gc_quiet()  # both start from the same collector state
            started = time.perf_counter()
            if kind == "plain":
                for _ in range(count):
                    manager.run_thread(noop)
            else:
                for number in range(count):
                    manager.run_thread(noop, key=number, policy="enqueue", group=group)
            elapsed = time.perf_counter() - started
            gate.set()
            (plain if kind == "plain" else scheduled).append(elapsed / count * 1e6)
            if not loop.run_until(lambda: not manager.has_tasks(), 60):
                raise RuntimeError("submit-cost tasks did not finish")
    # The fastest rep of each: on a shared machine noise only ever adds time.
    return min(plain), min(scheduled)


def policies(bench: Any) -> Cells:
    """The rows of metric 13, tasker column only (the replace figures are in the cell text)."""
    rows: Cells = {
        "sched.started": {},
        "sched.killed": {},
        "sched.latency": {},
        "sched.submit": {},
    }
    if "tasker" not in bench.systems or bench.tasker_reason:
        return rows
    from ._tasker import load

    tasker, _ = load()
    smoke = bench.sizes.throughput_tasks < 1000
    manager = tasker.TaskManager(tasker.GLibDispatcher(), max_workers=2, max_threads=THREADS)
    try:
        warm = [manager.run_process(render, 0.0, 0.0) for _ in range(2)]
        bench.loop.run_until(lambda: all(t.is_final() for t in warm), 30)
        latest = slider(manager, bench.loop, policy="keep_latest", debounce=DEBOUNCE)
        replace = slider(manager, bench.loop)
        rows["sched.started"]["tasker"] = Cell(
            latest["started"], f"{latest['started']:.0f} (replace: {replace['started']:.0f})"
        )
        rows["sched.killed"]["tasker"] = Cell(
            latest["killed"], f"{latest['killed']:.0f} (replace: {replace['killed']:.0f})"
        )
        ok = latest["last_ok"] and replace["last_ok"]
        rows["sched.latency"]["tasker"] = Cell(
            latest["latency"],
            f"{fmt(latest['latency'])} (replace: {fmt(replace['latency'])})"
            + ("" if ok else " LAST RENDER NOT COMPLETED"),
        )
        count = 500 if smoke else 2000
        plain, scheduled = submit_cost(manager, bench.loop, tasker, count, 3 if smoke else 9)
        rows["sched.submit"]["tasker"] = Cell(
            scheduled / plain, f"{scheduled / plain:.2f}x ({fmt(scheduled)} vs {fmt(plain)} µs)"
        )
        bench.notes.append(
            f"13 slider: {MOVES} moves in {SECONDS:g} s, {RENDER * 1000:g} ms renders on 2 "
            f"workers; keep_latest + debounce {DEBOUNCE * 1000:g} ms vs replace. Submit cost: "
            f"run_thread with policy='enqueue' and a Group(max_concurrency=4) vs plain, "
            f"{count} each, interleaved, worker threads held (submit only), fastest of the reps"
        )
    finally:
        manager.shutdown(timeout=10)
    return rows
