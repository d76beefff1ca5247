"""The worker side of ``DaskBackend``: runs one tasker task inside a Dask worker.

``run_task`` is what the backend submits to Dask. It gives the user's
function a tasker ``ExecutionContext`` and talks to the parent only by
``Worker.log_event`` messages on the backend's topic (see ``_backend`` for
why): ``start``, coalesced ``progress``, reliable in-order ``event`` and a
final ``end``, which also carries a small outcome (a large one travels as
Dask's own task result). It never raises for the user's errors: it returns
them pickled, so their type and traceback survive as in tasker's local pool.

One reporter thread per worker process sends the latest progress of every
running task at most ``update_rate`` times a second and, every 10 ms,
refreshes each task's local cancel flag from the worker's own state (a
task whose Dask future was cancelled is in state ``cancelled`` there), so
``is_cancelled()`` is a byte read and never a scheduler round trip.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from typing import TYPE_CHECKING, Any

from .._context import ExecutionContext, ProgressReport
from .._errors import SerializationError
from .._process._pickling import describe_type, dump_exception

if TYPE_CHECKING:
    from distributed import Worker
    from gi.repository import Gio

__all__ = ["run_task"]

# Message types (the "t" field); short because every progress report carries one.
START = "s"
PROGRESS = "p"
EVENT = "e"
END = "x"
#: An outcome up to this many bytes travels in the end message instead of as the task result.
INLINE_LIMIT = 16 * 1024
INLINE = "inline"
#: Seconds between refreshes of the running tasks' cancel flags from the worker's state.
CANCEL_REFRESH = 0.01


def run_task(key: str, topic: str, update_rate: float, blob: bytes) -> tuple[Any, ...]:
    """Run the pickled ``(fn, args, kwargs)`` in ``blob`` as tasker task ``key``.

    The outcome is ``("ok", pickled result)``, ``("error", meta, pickled
    exception)`` or ``("skipped",)`` when the task was cancelled before it
    started. A small outcome rides in the ``end`` message, which saves the
    parent a fetch from this worker, and ``("inline",)`` is returned; a large
    one is returned, to travel as Dask's task result.
    """
    from distributed import get_worker

    worker = get_worker()
    run = _Run(worker, key, topic)
    worker.log_event(topic, {"t": START, "k": key, "w": worker.address, "pid": os.getpid()})
    reporter = _reporter(worker, 1.0 / update_rate)
    if run.refresh_cancelled():
        return run.end(("skipped",))
    try:
        fn, args, kwargs = pickle.loads(blob)
    except BaseException as error:
        return run.end(_error(error))
    del blob
    context = ExecutionContext(run.report, run.flag, 0, _ContextBackend(run))
    reporter.add(run)
    try:
        result = fn(context, *args, **kwargs)
    except BaseException as error:
        reporter.remove(run)
        return run.end(_error(error))
    reporter.remove(run)
    del fn, args, kwargs
    try:
        data = pickle.dumps(result, protocol=5)
    except Exception as error:
        failure = SerializationError(
            f"the result of type {describe_type(result)} cannot be pickled: {error}"
        )
        failure.__cause__ = error
        return run.end(_error(failure))
    return run.end(("ok", data))


def _error(error: BaseException) -> tuple[Any, ...]:
    meta, data = dump_exception(error)
    return ("error", list(meta), data)


class _Run:
    """One running task: its report, cancel flag and event sequence."""

    __slots__ = ("events", "flag", "key", "report", "sent_at", "topic", "worker")

    def __init__(self, worker: Worker, key: str, topic: str) -> None:
        self.worker = worker
        self.key = key
        self.topic = topic
        self.report = ProgressReport(_nothing)  # the reporter polls; no wake-up needed
        self.flag = bytearray(1)
        self.events = 0
        self.sent_at = 0.0  # when the reporter last sent this task's progress

    def refresh_cancelled(self) -> bool:
        """Set the flag if the worker no longer runs this key for the scheduler."""
        if not self.flag[0]:
            state = self.worker.state.tasks.get(self.key)
            if state is None or state.state in ("cancelled", "released", "forgotten"):
                self.flag[0] = 1
        return bool(self.flag[0])

    def send(self, message: dict[str, Any]) -> None:
        message["k"] = self.key
        self.worker.log_event(self.topic, message)

    def send_progress(self) -> None:
        report = self.report
        report.dirty = False  # cleared before reading: a later write flags it again
        self.send({"t": PROGRESS, "p": report.progress, "m": report.message})

    def end(self, outcome: tuple[Any, ...]) -> tuple[Any, ...]:
        """Send the end marker (with ``outcome`` if small); return what the task returns."""
        # The last progress and the number of events sent: the parent checks
        # that it has every event before the task's outcome.
        report = self.report
        message = {"t": END, "p": report.progress, "m": report.message, "n": self.events}
        if sum(len(part) for part in outcome[1:]) <= INLINE_LIMIT:
            message["o"] = outcome
            outcome = (INLINE,)
        self.send(message)
        return outcome


def _nothing() -> None:
    pass


class _ContextBackend:
    """``ExecutionContext`` backend of a task on a Dask worker."""

    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run = run

    def send_event(self, name: str, data: Any, coalesce: bool = False) -> None:
        """Pickle ``data`` now and send it; ``SerializationError`` if it cannot be pickled.

        Dask's pub/sub has no flow control of ours: the event buffer is not
        enforced here (the parent still coalesces ``coalesce`` events).
        """
        try:
            payload = pickle.dumps(data, protocol=5)
        except Exception as error:
            raise SerializationError(
                f"the payload of event {name!r}, of type {describe_type(data)}, "
                f"cannot be pickled: {error}"
            ) from error
        run = self._run
        run.events += 1
        if coalesce:
            run.send({"t": EVENT, "n": name, "d": payload, "c": True})
        else:
            run.send({"t": EVENT, "n": name, "d": payload})

    async def send_event_async(self, name: str, data: Any, coalesce: bool = False) -> None:
        """The same as ``send_event`` (it never waits on Dask)."""
        self.send_event(name, data, coalesce)

    def flush(self) -> None:
        """Send the latest progress and message now."""
        self._run.send_progress()

    def wait_while_paused(self) -> None:
        """Never called: pausing is not offered on Dask, so ``checkpoint()`` returns at once."""

    async def async_wait_while_paused(self) -> None:
        """Never called, as ``wait_while_paused``."""

    def cancellable(self) -> Gio.Cancellable:
        """Process tasks have no ``Gio.Cancellable``: it cannot cross a process boundary."""
        raise RuntimeError(
            "context.cancellable exists only in coroutine and thread tasks; "
            "a Dask task checks context.is_cancelled()"
        )


class _Reporter:
    """Sends progress and refreshes cancel flags of this worker's running tasks, per interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._runs: list[_Run] = []
        self._changed = threading.Condition()
        thread = threading.Thread(target=self._loop, name="tasker-dask-reporter", daemon=True)
        thread.start()

    def add(self, run: _Run) -> None:
        with self._changed:
            self._runs.append(run)
            self._changed.notify()

    def remove(self, run: _Run) -> None:
        with self._changed:
            self._runs.remove(run)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._runs:
                    self._changed.wait()
                runs = list(self._runs)
            now = time.monotonic()
            for run in runs:
                try:
                    run.refresh_cancelled()
                    # Progress at most once per interval per task (the rate limit).
                    if run.report.dirty and now - run.sent_at >= self.interval:
                        run.sent_at = now
                        run.send_progress()
                except Exception:  # the worker is closing: nothing left to report to
                    pass
            # The cancel flags are refreshed more often than progress is sent:
            # reading the worker's own task state costs next to nothing.
            time.sleep(min(self.interval, CANCEL_REFRESH))


_reporter_lock = threading.Lock()
_reporter_instance: _Reporter | None = None


def _reporter(worker: Worker, interval: float) -> _Reporter:
    global _reporter_instance
    with _reporter_lock:
        if _reporter_instance is None:
            _reporter_instance = _Reporter(interval)
        else:
            _reporter_instance.interval = min(_reporter_instance.interval, interval)
        return _reporter_instance
