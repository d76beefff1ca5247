"""Functions the process tests run in worker processes (they must be importable there)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tasker import ExecutionContext


def add(context: ExecutionContext, a: int, b: int) -> int:
    """The smallest useful task."""
    return a + b


def identity(context: ExecutionContext, value: Any) -> Any:
    """Return the argument unchanged (round trips)."""
    return value


def echo_kwargs(context: ExecutionContext, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Return what the function received."""
    return args, kwargs


def pid(context: ExecutionContext) -> int:
    """The worker's pid."""
    return os.getpid()


def worker_info(context: ExecutionContext) -> dict[str, Any]:
    """Facts about the worker process the tests check."""
    return {
        "pid": os.getpid(),
        "pgid": os.getpgrp(),
        "sigint": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        "nice": os.nice(0),
        "in_worker": sys.modules["tasker._runtime"].in_worker_process,
        "root_level": logging.getLogger().level,
    }


def cpu_task(context: ExecutionContext, iterations: int) -> str:
    """The seed README's CPU example, with a shorter sleep."""
    context.set_total(iterations)
    context.set_message("Calculating...")
    for i in range(iterations):
        time.sleep(0.001)
        context.set_progress(i + 1)
    return "Final Result"


def cooperative(context: ExecutionContext, started_event: bool = True) -> str:
    """Loop until cancelled; announce the start with an event."""
    if started_event:
        context.send_event("started", os.getpid())
    while not context.is_cancelled():
        time.sleep(0.001)
    context.set_message("stopped")
    return "stopped cleanly"


def raise_when_cancelled(context: ExecutionContext) -> None:
    """Raise once asked to stop."""
    context.send_event("started", os.getpid())
    while not context.is_cancelled():
        time.sleep(0.001)
    raise RuntimeError("saw the cancel flag")


def sleeper(context: ExecutionContext, seconds: float = 60.0) -> str:
    """Never checks the flag: must be killed."""
    context.send_event("started", os.getpid())
    time.sleep(seconds)
    return "woke up"


def sleeper_with_child(context: ExecutionContext) -> int:
    """Start a grandchild process, report its pid, then hang."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    context.send_event("child", child.pid)
    time.sleep(60)
    return child.pid


def exit_hard(context: ExecutionContext, code: int) -> None:
    """Leave without cleanup, like a C extension calling exit()."""
    context.send_event("before-exit", code)
    os._exit(code)


def kill_self(context: ExecutionContext) -> None:
    """Die by SIGKILL (as the OOM killer would do it)."""
    context.send_event("before-kill", os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)


def segfault(context: ExecutionContext) -> None:
    """Dereference NULL."""
    context.send_event("before-segv", os.getpid())
    ctypes.string_at(0)


def exhaust_memory(context: ExecutionContext, limit_mb: int) -> None:
    """Allocate past an address-space limit until the process dies (or MemoryError)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))
    hog = []
    while True:
        hog.append(bytearray(16 * 2**20))


def fail(context: ExecutionContext, message: str) -> None:
    """Raise a plain, picklable exception."""
    raise ValueError(message)


class CustomError(Exception):
    """A picklable exception of our own with extra state."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, code)
        self.code = code


def fail_custom(context: ExecutionContext) -> None:
    """Raise an exception type defined in this module."""
    raise CustomError("custom failure", 42)


class UnpicklableError(Exception):
    """An exception that cannot be pickled (holds a lock)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        import threading

        self.lock = threading.Lock()


def fail_unpicklable(context: ExecutionContext) -> None:
    """Raise an exception that does not survive pickling."""
    raise UnpicklableError("cannot travel")


class BadReduceError(Exception):
    """Pickles, but its constructor rejects the pickled arguments when unpickled."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def fail_unloadable(context: ExecutionContext) -> None:
    """Raise an exception that pickles but fails to unpickle."""
    raise BadReduceError("x", "y")


class ParentCannotLoad:
    """Pickles fine, unpickles fine in the worker, fails in the parent."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_refuse_in_parent, (os.getpid(),))


def _refuse_in_parent(origin_pid: int) -> ParentCannotLoad:
    if os.getpid() != origin_pid and not _in_worker():
        raise RuntimeError("refusing to unpickle in the parent")
    return ParentCannotLoad()


def _in_worker() -> bool:
    return bool(sys.modules["tasker._runtime"].in_worker_process)


def return_parent_unloadable(context: ExecutionContext) -> ParentCannotLoad:
    """A result the parent cannot unpickle."""
    return ParentCannotLoad()


def event_parent_unloadable(context: ExecutionContext) -> str:
    """An event payload the parent cannot unpickle."""
    context.send_event("bad", ParentCannotLoad())
    return "sent"


def return_unpicklable(context: ExecutionContext) -> Any:
    """A result that cannot be pickled (a generator)."""
    return (i for i in range(3))


def event_unpicklable(context: ExecutionContext) -> str:
    """Send an unpicklable payload and report what send_event raised."""
    import threading

    try:
        context.send_event("bad", threading.Lock())
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "no error"


def event_unpicklable_uncaught(context: ExecutionContext) -> None:
    """Send an unpicklable payload and let the error fail the task."""
    context.send_event("bad", (i for i in range(3)))


def events(context: ExecutionContext, count: int) -> int:
    """Send ``count`` numbered events."""
    for i in range(count):
        context.send_event("n", i)
    return count


def big_bytes(context: ExecutionContext, size: int) -> bytes:
    """A large bytes result."""
    return b"\x5a" * size


def big_result(context: ExecutionContext, kind: str, size: int) -> Any:
    """A large result of the given kind."""
    if kind == "bytes":
        return bytes(size)
    if kind == "bytearray":
        return bytearray(size)
    if kind == "memoryview":
        return memoryview(bytearray(size))
    if kind == "numpy":
        import numpy

        return numpy.arange(size // 8, dtype=numpy.float64)
    raise ValueError(kind)


def big_event(context: ExecutionContext, size: int) -> int:
    """A large event payload (a bytes value in a dict)."""
    context.send_event("blob", {"data": b"\x01" * size, "size": size})
    return size


def checksum(context: ExecutionContext, data: Any) -> tuple[str, int]:
    """Type name and length of a (large) argument."""
    return type(data).__name__, len(memoryview(data).cast("B"))


def log_records(context: ExecutionContext) -> int:
    """Log at several levels, with and without an exception."""
    log = logging.getLogger("tasker.tests.worker")
    log.debug("debug %s", "hidden")
    log.info("info %s", "shown")
    log.warning("warning %d", 7)
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("with traceback")
    return os.getpid()


def progress_storm(context: ExecutionContext, count: int) -> int:
    """Report progress and messages as fast as possible."""
    context.set_total(count)
    for i in range(count):
        context.set_progress(i + 1)
        context.set_message(f"step {i + 1}")
    return count


def flush_and_wait(context: ExecutionContext) -> str:
    """Report progress, flush, and wait for cancellation."""
    context.set_progress(0.5)
    context.set_message("half way")
    context.flush()
    while not context.is_cancelled():
        time.sleep(0.001)
    return "done"


def multi_stage(context: ExecutionContext) -> float:
    """Use sub-contexts and end at a known progress."""
    first = context.sub_context(0.0, 0.5)
    first.set_total(10)
    first.set_progress(10)
    second = context.sub_context(0.5, 0.5)
    inner = second.sub_context(0.0, 0.5)
    inner.set_progress(1.0)
    context.set_message("stage two half done")
    return 0.75


def cancellable_attr(context: ExecutionContext) -> str:
    """Touch context.cancellable, which process tasks do not have."""
    try:
        context.cancellable  # noqa: B018
    except RuntimeError as error:
        return str(error)
    return "no error"


def measure(context: ExecutionContext, loops: int) -> dict[str, float]:
    """Nanoseconds per call of the context's hot methods, measured in the worker."""
    perf = time.perf_counter_ns
    results = {}
    for name, call in (
        ("is_cancelled", context.is_cancelled),
        ("set_progress", lambda: context.set_progress(0.5)),
        ("set_message", lambda: context.set_message("x")),
    ):
        if name == "set_progress":
            set_progress = context.set_progress
            start = perf()
            for _ in range(loops):
                set_progress(0.5)
            results[name] = (perf() - start) / loops
        elif name == "set_message":
            set_message = context.set_message
            start = perf()
            for _ in range(loops):
                set_message("x")
            results[name] = (perf() - start) / loops
        else:
            start = perf()
            for _ in range(loops):
                call()
            results[name] = (perf() - start) / loops
    start = perf()
    for _ in range(loops):
        pass
    results["empty_loop"] = (perf() - start) / loops
    return results


def init_set_global(value: str) -> None:
    """A worker initializer that records its argument."""
    os.environ["TASKER_TEST_INIT"] = value


def read_init_global(context: ExecutionContext) -> str | None:
    """What the initializer recorded."""
    return os.environ.get("TASKER_TEST_INIT")


def init_fail(reason: str) -> None:
    """A worker initializer that always fails."""
    raise OSError(f"initializer failed: {reason}")


def init_fail_once(marker: str) -> None:
    """Fails while the marker file exists."""
    if os.path.exists(marker):
        raise OSError("initializer failed because the marker exists")


def wait_for_path(context: ExecutionContext, path: str) -> int:
    """Announce the start, then wait (cooperatively) until ``path`` exists; return the pid."""
    context.send_event("started", os.getpid())
    while not os.path.exists(path):
        if context.is_cancelled():
            return -1
        time.sleep(0.002)
    return os.getpid()


def spawn_pool_in_worker(context: ExecutionContext) -> list[int]:
    """Start a multiprocessing pool inside a worker (workers are not daemonic)."""
    import multiprocessing

    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        return pool.map(abs, [-1, -2])


def sleeper_with_child_and_pid(context: ExecutionContext) -> int:
    """Like sleeper_with_child, announcing the worker's pid first."""
    context.send_event("worker", os.getpid())
    return sleeper_with_child(context)


def log_run(context: ExecutionContext, path: str, name: str) -> int:
    """Append ``name pid`` to ``path`` (one line per run, to count runs); return the pid."""
    with open(path, "a") as log:
        log.write(f"{name} {os.getpid()}\n")
    return os.getpid()


_rayforge_init: Any = None


def rayforge_init(shared_state: Any, tag: str) -> None:
    """A Rayforge-style worker initializer: ``initializer(shared_state, *initargs)``."""
    global _rayforge_init
    _rayforge_init = tag
    shared_state[f"worker:{os.getpid()}"] = tag


def rayforge_read_init(context: ExecutionContext) -> tuple[Any, int]:
    """What the Rayforge-style initializer left in this worker."""
    return _rayforge_init, os.getpid()


def getenv(context: ExecutionContext, name: str) -> str | None:
    """The worker's value of environment variable ``name``."""
    return os.environ.get(name)


def loaded_modules(context: ExecutionContext, prefix: str) -> list[str]:
    """The names of the worker's loaded modules that start with ``prefix``."""
    return sorted(name for name in sys.modules if name.startswith(prefix))


class LockHolder:
    """An object that cannot be pickled (it holds a lock), with a method to run."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    def method(self, context: ExecutionContext) -> int:
        """Never runs in a worker: its object cannot travel."""
        return 1
