"""Task functions for the Dask contract tests (importable by the cluster's workers)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from tasker import ExecutionContext


def add(context: ExecutionContext, a: int, b: int) -> int:
    return a + b


def pid(context: ExecutionContext) -> int:
    return os.getpid()


def progress_until_cancelled(context: ExecutionContext, steps: int) -> int:
    """Report many progress values, then half, until cancelled; return how many were set."""
    for index in range(steps):
        context.set_progress(index / steps / 2)
        context.set_message(f"step {index}")
    context.set_progress(0.5)
    context.set_message("half")
    while not context.is_cancelled():
        time.sleep(0.005)
    return steps


def progress_then_finish(context: ExecutionContext, steps: int) -> str:
    for index in range(1, steps + 1):
        context.set_progress(index / steps)
        context.set_message(f"step {index}")
    return "done"


def many_events(context: ExecutionContext, count: int) -> int:
    for index in range(count):
        context.send_event("n", index)
    return count


def loop_until_cancelled(context: ExecutionContext) -> str:
    context.send_event("started", os.getpid())
    checks = 0
    while not context.is_cancelled():
        checks += 1
        time.sleep(0.002)
    context.send_event("saw-cancel", checks)
    return "returned"


def ignore_cancel(context: ExecutionContext, release: str) -> str:
    """Ignore cancellation until ``release`` exists (or 30 s pass)."""
    context.send_event("started", os.getpid())
    deadline = time.monotonic() + 30.0
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "late result"


def record_start_then_wait(context: ExecutionContext, log: str) -> None:
    """Append a line to ``log`` (one per run), then wait to be killed."""
    with open(log, "a") as stream:
        stream.write(f"{os.getpid()}\n")
    context.send_event("started", os.getpid())
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        time.sleep(0.01)


def fail(context: ExecutionContext, message: str) -> None:
    raise ValueError(message)


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code


def fail_custom(context: ExecutionContext) -> None:
    raise CustomError(7, "seven")


def unpicklable_result(context: ExecutionContext) -> Any:
    return threading.Lock()


def unpicklable_event(context: ExecutionContext) -> str:
    try:
        context.send_event("bad", threading.Lock())
    except TypeError as error:  # SerializationError is a TypeError
        return type(error).__name__ + ": " + str(error)
    return "sent"
