"""Task functions of the process pause tests (importable in worker processes)."""

from __future__ import annotations

import os
import time

from tasker import ExecutionContext


def checkpoint_loop(context: ExecutionContext, stop_path: str) -> int:
    """Call checkpoint() until ``stop_path`` exists or the task is cancelled; report passes."""
    context.send_event("started", os.getpid())
    passes = 0
    while not os.path.exists(stop_path) and not context.is_cancelled():
        context.checkpoint()
        passes += 1
        context.set_message(str(passes))
        time.sleep(0.005)
    return passes


def spin(context: ExecutionContext, seconds: float) -> int:
    """Busy CPU loop that never calls checkpoint(); stops when cancelled or after ``seconds``
    of its own CPU time (frozen time does not count)."""
    context.send_event("started", os.getpid())
    spins = 0
    while not context.is_cancelled() and time.process_time() < seconds:
        spins += 1
    return spins


def pid(context: ExecutionContext) -> int:
    """The worker's pid."""
    return os.getpid()
