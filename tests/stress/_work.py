"""Task functions for the stress suite.

They live in an importable module because process tasks must be unpickled
(by module and name) in the worker processes. The plain functions serve as
thread and process tasks alike; the ``async_*`` ones are their coroutine
twins. Every long-running function polls ``context.is_cancelled()`` (or is
cancelled by asyncio) unless its name says it ignores cancellation.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

from tasker import ExecutionContext

#: A chatty task stops sending ticks after this many (it keeps waiting for the cancel).
MAX_TICKS = 25
#: How often a polling task looks at its cancel flag, in seconds.
POLL = 0.002


def _nap(seconds: float = POLL) -> None:
    # Worker-side polling interval; not a synchronisation point of any test.
    time.sleep(seconds)


# ------------------------------------------------------------------ quick ones


def quick(context: ExecutionContext, label: str, value: Any) -> Any:
    """Report a final message and progress, return ``value``."""
    context.set_message(f"done {label}")
    context.set_progress(1.0)
    return value


def fail(context: ExecutionContext, label: str) -> None:
    """Raise a plain, picklable exception."""
    context.set_progress(0.5)
    raise ValueError(label)


def events(context: ExecutionContext, label: str, count: int) -> int:
    """Send ``count`` numbered events, then return ``count``."""
    for i in range(count):
        context.send_event("tick", i)
    return count


def chatty(context: ExecutionContext, label: str) -> int:
    """Announce the start, tick until cancelled (at most MAX_TICKS ticks), say how many."""
    context.send_event("started", os.getpid())
    sent = 0
    while not context.is_cancelled():
        if sent < MAX_TICKS:
            context.send_event("tick", sent)
            context.set_progress(sent / MAX_TICKS)
            sent += 1
        _nap()
    context.send_event("end", sent)
    return sent


def crash(context: ExecutionContext, label: str, count: int, how: str) -> None:
    """Send ``count`` events, then die: ``exit`` (os._exit(7)) or ``kill`` (SIGKILL)."""
    for i in range(count):
        context.send_event("tick", i)
    if how == "exit":
        os._exit(7)
    os.kill(os.getpid(), signal.SIGKILL)
    _nap(60)


def stubborn(context: ExecutionContext, label: str, seconds: float) -> str:
    """Ignore cancellation for up to ``seconds``: the pool must kill the worker."""
    context.send_event("started", os.getpid())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _nap(0.01)
    return "woke"


# ------------------------------------------------------------- coroutine twins


async def async_quick(context: ExecutionContext, label: str, value: Any) -> Any:
    await asyncio.sleep(0)
    return quick(context, label, value)


async def async_fail(context: ExecutionContext, label: str) -> None:
    await asyncio.sleep(0)
    fail(context, label)


async def async_events(context: ExecutionContext, label: str, count: int) -> int:
    for i in range(count):
        context.send_event("tick", i)
        await asyncio.sleep(0)
    return count


async def async_chatty(context: ExecutionContext, label: str) -> int:
    context.send_event("started", os.getpid())
    sent = 0
    try:
        while True:
            if sent < MAX_TICKS:
                context.send_event("tick", sent)
                context.set_progress(sent / MAX_TICKS)
                sent += 1
            await asyncio.sleep(POLL)
    except asyncio.CancelledError:
        context.send_event("end", sent)
        raise


# -------------------------------------------------------------------- faults


def pid(context: ExecutionContext) -> int:
    """The worker's pid."""
    return os.getpid()


def add(context: ExecutionContext, a: int, b: int) -> int:
    """A follow-up task: proves the pool still serves."""
    return a + b


def kill_self(context: ExecutionContext) -> None:
    context.send_event("before", os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
    _nap(60)


def segfault(context: ExecutionContext) -> None:
    """A real segmentation fault: read address 0."""
    context.send_event("before", os.getpid())
    ctypes.string_at(0)


def exit_hard(context: ExecutionContext, code: int) -> None:
    context.send_event("before", os.getpid())
    os._exit(code)


def log_then_die(context: ExecutionContext, text: str) -> None:
    """Log a warning, then exit without any cleanup."""
    import logging

    logging.getLogger("tests.stress").warning(text)
    os._exit(1)


def raise_memory_error(context: ExecutionContext) -> None:
    raise MemoryError("simulated out of memory")


def exhaust_address_space(context: ExecutionContext, headroom_mb: int) -> int:
    """Cap the address space a little above what the worker uses, then allocate past it.

    The cap stays in force afterwards: the worker must keep serving small tasks.
    """
    import resource

    with open("/proc/self/status") as status:
        vm_size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (vm_size_kb * 1024) + headroom_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    hog = []
    for _ in range(10_000):
        hog.append(bytearray(8 * 2**20))  # MemoryError long before the loop ends
    return len(hog)


def fail_first_time(marker: str) -> None:
    """A worker initializer that raises once (while ``marker`` does not exist yet)."""
    if not os.path.exists(marker):
        with open(marker, "w") as file:
            file.write(str(os.getpid()))
        raise RuntimeError("initializer failed on purpose")


def always_fail_initializer(counter: str) -> None:
    """A worker initializer that always raises; appends a line per call to ``counter``."""
    with open(counter, "a") as file:
        file.write(f"{os.getpid()}\n")
    raise LookupError("this initializer never works")


class ParentCannotLoad:
    """Pickles in the worker; unpickling it in the parent raises."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_refuse_outside_worker, ())


def _refuse_outside_worker() -> ParentCannotLoad:
    if not sys.modules["tasker._runtime"].in_worker_process:
        raise RuntimeError("refusing to be unpickled in the parent")
    return ParentCannotLoad()


class ParentCannotLoadError(Exception):
    """An exception that round-trips in the worker but cannot be unpickled in the parent."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_refuse_error_outside_worker, (str(self),))


def _refuse_error_outside_worker(message: str) -> ParentCannotLoadError:
    if not sys.modules["tasker._runtime"].in_worker_process:
        raise RuntimeError("refusing to unpickle the exception in the parent")
    return ParentCannotLoadError(message)


def return_parent_unloadable(context: ExecutionContext) -> ParentCannotLoad:
    return ParentCannotLoad()


def raise_parent_unloadable(context: ExecutionContext) -> None:
    raise ParentCannotLoadError("cannot come home")


def many_events(context: ExecutionContext, count: int, size: int) -> int:
    """Send ``count`` events of ``size`` bytes each as fast as possible."""
    payload = b"x" * size
    for i in range(count):
        context.send_event("n", (i, payload))
        if i % 500 == 0:
            context.set_progress(i / count)
    return count


# --------------------------------------------------------------- bad input


def report(context: ExecutionContext, calls: list[tuple[str, Any]]) -> list[Any]:
    """Apply ``calls`` to the context; report each outcome (value or exception type name)."""
    outcomes: list[Any] = []
    for method, argument in calls:
        try:
            if method == "set_progress":
                context.set_progress(argument)
                outcomes.append(("ok", context._report.progress))
            elif method == "set_total":
                context.set_total(argument)
                outcomes.append(("ok", None))
            elif method == "set_message":
                context.set_message(argument)
                outcomes.append(("ok", context._report.message))
            elif method == "send_event":
                context.send_event(argument, None)
                outcomes.append(("ok", None))
            elif method == "sub_context":
                context.sub_context(*argument)
                outcomes.append(("ok", None))
            else:
                raise AssertionError(method)
        except Exception as error:
            outcomes.append((type(error).__name__, str(error)))
    return outcomes


def final_progress(context: ExecutionContext, total: float, value: float, text: str) -> str:
    """Leave the given progress and message behind, for the parent to read."""
    context.set_total(total)
    context.set_progress(value)
    context.set_message(text)
    return "ok"


def big_event(context: ExecutionContext, size: int) -> str:
    """Send one event with a long name and a ``size``-byte payload; return its SHA-256."""
    import hashlib

    data = os.urandom(size)
    context.send_event("x" * 10_000, data)
    return hashlib.sha256(data).hexdigest()


def chatty_then_stop(context: ExecutionContext, label: str, count: int) -> int:
    """Report progress and a message ``count`` times, then finish."""
    context.set_total(count)
    for i in range(count):
        context.set_progress(i)
        context.set_message(f"ticked {i}")
        _nap(0.001)
    context.set_progress(count)
    context.set_message(f"ticked {count}")
    return count


# ------------------------------------------------------------ busy workers


def busy(context: ExecutionContext, seconds: float) -> str:
    """Non-cooperative CPU work: never looks at the cancel flag."""
    context.send_event("busy", os.getpid())
    deadline = time.monotonic() + seconds
    x = 0
    while time.monotonic() < deadline:
        x += 1
    return "finished"


def busy_with_child(context: ExecutionContext, seconds: float) -> str:
    """Start a child process of our own (a grandchild of the application), then be busy."""
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context.send_event("grandchild", child.pid)
    return busy(context, seconds)


def thread_gate(context: ExecutionContext, gate: threading.Event, seconds: float) -> str:
    """A thread task that waits for ``gate`` or its cancellation."""
    deadline = time.monotonic() + seconds
    while not gate.is_set() and not context.is_cancelled() and time.monotonic() < deadline:
        gate.wait(POLL)
    return "gate"


async def async_ignore_cancel(context: ExecutionContext) -> None:
    """A coroutine that swallows every cancellation (a bug in user code tasker must survive)."""
    context.send_event("started", os.getpid())
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            continue
