"""Functions that run inside worker processes.

Every pool pickles its functions by reference, so they live in this importable module.
Plain functions are for the peers (``concurrent.futures``, loky, pebble); the ``ctx_*``
functions take tasker's ``ExecutionContext`` as their first argument.  This module imports
neither GLib nor numpy at import time: workers must start fast and without PyGObject.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

clock = time.perf_counter  # CLOCK_MONOTONIC on Linux: comparable across processes

# --- the peers' progress / cancel channel --------------------------------------------------
# A peer has no progress or cancel API, so the natural equivalent is a multiprocessing.Event
# (cancel flag) and a multiprocessing.Queue (progress updates) handed to every worker by the
# pool's initializer.

_channel: tuple[Any, Any] | None = None


def install_channel(cancel: Any, updates: Any) -> None:
    """Pool initializer: keep the cancel event and the update queue for this worker."""
    global _channel
    _channel = (cancel, updates)


def _get_channel() -> tuple[Any, Any]:
    if _channel is None:
        raise RuntimeError("the pool was created without benchmarks._work.install_channel")
    return _channel


def _chunk() -> int:
    """A few microseconds of CPU work between two cancellation checks."""
    return sum(range(200))


# --- plain functions (peers) ---------------------------------------------------------------


def noop() -> None:
    return None


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def stuck(seconds: float) -> None:
    """Report that the task started, then sleep without ever checking a cancel flag."""
    _get_channel()[1].put(("started", os.getpid()))
    time.sleep(seconds)


def cooperative() -> str:
    """Report that the task started, then work until the cancel event is set."""
    cancel, updates = _get_channel()
    updates.put(("started", os.getpid()))
    is_set = cancel.is_set
    while not is_set():
        _chunk()
    return "stopped"


def crash_at(when: float, how: str) -> None:
    """Sleep until ``when`` (perf_counter clock), then die without cleanup."""
    _die_at(when, how)


def big_bytes(size: int) -> tuple[float, bytes]:
    data = b"\x5a" * size
    return clock(), data


def big_array(size: int) -> tuple[float, Any]:
    import numpy as np

    data = np.full(size // 8, 1.5, dtype=np.float64)
    return clock(), data


def storm(worker_id: int, deadline: float) -> tuple[float, int]:
    """Put a progress update on the queue as fast as possible, a message every 100th step."""
    updates = _get_channel()[1]
    put = updates.put
    steps = 0
    now = clock()
    while now < deadline:
        steps += 1
        put(("p", worker_id, steps))
        if steps % 100 == 0:
            put(("m", worker_id, f"step {steps}"))
        now = clock()
    put(("end", worker_id, now))
    return now, steps


def costs(n_check: int, n_update: int, reps: int) -> dict[str, float]:
    """Worker-side ns per call of the peers' natural equivalents of tasker's context calls."""
    cancel, updates = _get_channel()
    put = updates.put
    return _measure_costs(
        n_check,
        n_update,
        reps,
        check=cancel.is_set,
        progress=lambda n: _loop_put_progress(put, n),
        message=lambda n: _loop_put_message(put, n),
    )


def shared_flag_cost(n: int, reps: int) -> float:
    """ns per call of reading one byte of shared memory: the floor of any is_cancelled()."""
    import functools
    import mmap
    import operator

    shared = mmap.mmap(-1, mmap.PAGESIZE)
    view = memoryview(shared)
    try:
        check = functools.partial(operator.getitem, view, 0)
        samples = sorted((_loop_call(check, n) - _loop_empty(n)) / n for _ in range(reps))
        return max(samples[len(samples) // 2], 0.0)
    finally:
        view.release()
        shared.close()


# --- tasker functions (first argument: the ExecutionContext) --------------------------------


def ctx_noop(context: Any) -> None:
    return None


def ctx_sleep(context: Any, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def ctx_stuck(context: Any, seconds: float) -> None:
    context.send_event("started", os.getpid())
    context.flush()
    time.sleep(seconds)


def ctx_cooperative(context: Any) -> str:
    context.send_event("started", os.getpid())
    context.flush()
    is_cancelled = context.is_cancelled
    while not is_cancelled():
        _chunk()
    return "stopped"


def ctx_crash_at(context: Any, when: float, how: str) -> None:
    _die_at(when, how)


def ctx_big_bytes(context: Any, size: int) -> tuple[float, bytes]:
    return big_bytes(size)


def ctx_big_array(context: Any, size: int) -> tuple[float, Any]:
    return big_array(size)


def ctx_storm(context: Any, worker_id: int, deadline: float) -> tuple[float, int]:
    """tasker's storm: set_progress as fast as possible, set_message every 100th step."""
    set_progress = context.set_progress
    set_message = context.set_message
    start = now = clock()
    span = max(deadline - start, 1e-9)
    steps = 0
    while now < deadline:
        steps += 1
        set_progress((now - start) / span)
        if steps % 100 == 0:
            set_message(f"step {steps}")
        now = clock()
    set_progress(1.0)
    set_message("done")
    return now, steps


def ctx_costs(context: Any, n_check: int, n_update: int, reps: int) -> dict[str, float]:
    context.set_total(float(n_update))
    set_progress = context.set_progress
    set_message = context.set_message
    return _measure_costs(
        n_check,
        n_update,
        reps,
        check=context.is_cancelled,
        progress=lambda n: _loop_call_arg(set_progress, n),
        message=lambda n: _loop_call_text(set_message, n),
    )


# --- floor: raw pipes between two processes -------------------------------------------------


def echo_server(conn: Connection) -> None:
    """Send every message back until ``None`` arrives."""
    while True:
        message = conn.recv()
        conn.send(message)
        if message is None:
            return


def bulk_sender(conn: Connection, size: int, reps: int) -> None:
    """Build ``size`` bytes, send the ready time, then the bytes; wait for an ack each time."""
    for _ in range(reps):
        data = b"\x5a" * size
        conn.send(clock())
        conn.send_bytes(data)
        del data
        conn.recv()


# --- helpers --------------------------------------------------------------------------------


def _die_at(when: float, how: str) -> None:
    delay = when - clock()
    if delay > 0:
        time.sleep(delay)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(70)


def _loop_empty(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        pass
    return time.perf_counter_ns() - start


def _loop_empty_arg(n: int) -> int:
    start = time.perf_counter_ns()
    for _i in range(n):
        pass
    return time.perf_counter_ns() - start


def _loop_call(fn: Callable[[], object], n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return time.perf_counter_ns() - start


def _loop_call_arg(fn: Callable[[int], object], n: int) -> int:
    start = time.perf_counter_ns()
    for i in range(n):
        fn(i)
    return time.perf_counter_ns() - start


def _loop_call_text(fn: Callable[[str], object], n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn("x")
    return time.perf_counter_ns() - start


def _loop_put_progress(put: Callable[[object], object], n: int) -> int:
    start = time.perf_counter_ns()
    for i in range(n):
        put(("p", 0, i))
    return time.perf_counter_ns() - start


def _loop_put_message(put: Callable[[object], object], n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        put(("m", 0, "x"))
    return time.perf_counter_ns() - start


def _measure_costs(
    n_check: int,
    n_update: int,
    reps: int,
    *,
    check: Callable[[], object],
    progress: Callable[[int], int],
    message: Callable[[int], int],
) -> dict[str, float]:
    """Median over ``reps`` of (loop with calls - empty loop) / n, in ns per call."""

    def per_call(run: Callable[[int], int], empty: Callable[[int], int], n: int) -> float:
        samples = sorted((run(n) - empty(n)) / n for _ in range(reps))
        return max(samples[len(samples) // 2], 0.0)

    started = clock()
    result = {
        "is_cancelled": per_call(lambda n: _loop_call(check, n), _loop_empty, n_check),
        "set_progress": per_call(progress, _loop_empty_arg, n_update),
        "set_message": per_call(message, _loop_empty, n_update),
    }
    result["updates"] = float(2 * reps * n_update)
    result["seconds"] = clock() - started
    return result


PLAIN: dict[str, Callable[..., Any]] = {
    "noop": noop,
    "sleep": sleep,
    "stuck": stuck,
    "cooperative": cooperative,
    "crash_at": crash_at,
    "big_bytes": big_bytes,
    "big_array": big_array,
}
"""Work by name for the peers."""

WITH_CONTEXT: dict[str, Callable[..., Any]] = {
    "noop": ctx_noop,
    "sleep": ctx_sleep,
    "stuck": ctx_stuck,
    "cooperative": ctx_cooperative,
    "crash_at": ctx_crash_at,
    "big_bytes": ctx_big_bytes,
    "big_array": ctx_big_array,
}
"""The same work by name for tasker (first argument: the context)."""
