"""The worker process: its main loop and the context backend its tasks see.

A worker runs one task at a time. Its main thread blocks on the channel for
the next frame, runs the function, and sends the outcome with the final
progress and message. Two daemon threads help:

* the progress sender, woken by ``ProgressReport.notify`` on the clean-to-dirty
  edge only, sends the latest progress and message and then sleeps for one
  update interval, so a function calling ``set_progress`` in a tight loop
  pays a few attribute stores per call and the channel carries at most
  ``update_rate`` progress messages a second (the last value is sent after
  the pause: the trailing edge is never lost);
* the parent watcher waits for the parent's end of the channel to hang up
  (``POLLRDHUP``/``POLLHUP``), which happens when the parent dies by any
  means, and then kills the worker's whole process group.

``is_cancelled()`` reads one byte of the shared flag region. Each worker
owns ``flag_stride`` bytes from ``flag_stride * slot``: the pool may send
tasks ahead while the current one runs, and each of them uses its own byte,
named in the TASK frame. A task whose byte is already set when its turn comes was
cancelled before it started: it is not run, and the worker says SKIPPED.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from .._context import ExecutionContext, ProgressReport
from .._errors import SerializationError
from . import _channel as ch
from ._flags import FdArg, attach_flags
from ._logging import install as install_logging
from ._pickling import describe_type, dump_exception, dumps, loads

if TYPE_CHECKING:
    from collections.abc import Callable

    from gi.repository import Gio

__all__ = ["WorkerOptions", "main"]


class WorkerOptions:
    """Settings a worker gets from the pool (pickled with the ``Process`` object)."""

    __slots__ = (
        "close_fds",
        "flag_stride",
        "initargs",
        "initializer",
        "log_level",
        "nice",
        "pause_offset",
        "update_rate",
    )

    def __init__(
        self,
        *,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        update_rate: float,
        nice: int,
        log_level: int,
        close_fds: tuple[int, ...] = (),
        flag_stride: int = 2,
        pause_offset: int = -1,
    ) -> None:
        self.initializer = initializer
        self.initargs = initargs
        self.update_rate = update_rate
        self.nice = nice
        self.log_level = log_level
        self.close_fds = close_fds
        self.flag_stride = flag_stride  # cancel flag bytes per worker slot
        # A task's pause byte is its cancel byte plus this (-1: no pause bytes).
        self.pause_offset = pause_offset


def main(
    sock: socket.socket, flags_fd: FdArg, flags_size: int, slot: int, options: WorkerOptions
) -> None:
    """Entry point of a worker process (the ``Process`` target)."""
    _become_worker(options)
    sock.set_inheritable(False)  # programs the task starts must not hold our channel
    flags = attach_flags(flags_fd.take(), flags_size)
    Worker(sock, flags, slot, options).run()


def _become_worker(options: WorkerOptions) -> None:
    # Our own process group: a kill of the group takes the function's own
    # child processes down with it, and Ctrl+C in a terminal (sent to the
    # foreground group) does not reach us. SIGINT is ignored as well for
    # the case where the group could not be changed.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if options.nice:
        with contextlib.suppress(OSError):
            os.nice(options.nice)
    for fd in options.close_fds:
        # Under fork we inherit the parent's ends of every channel; holding
        # them would hide the parent's death from our siblings and from us.
        with contextlib.suppress(OSError):
            os.close(fd)
    from .. import _manager

    _manager.in_worker_process = True


class Worker:
    """One worker's channel, progress sender and task loop."""

    def __init__(
        self, sock: socket.socket, flags: memoryview, slot: int, options: WorkerOptions
    ) -> None:
        self.sock = sock
        self.flags = flags
        self.slot = slot
        self.options = options
        # Held only while one frame is written: the main thread, the progress
        # sender and any thread that logs all write to the channel.
        self._send_lock = threading.Lock()
        self._reader = ch.FrameReader(sock)
        rate = options.update_rate
        self.sender = ProgressSender(self, 1.0 / rate if rate > 0 else 0.0)

    def send(self, kind: int, tag: int, segments: list[Any]) -> None:
        """Write one frame to the parent."""
        with self._send_lock:
            ch.send_frame(self.sock, kind, tag, segments)

    def send_progress(self, tag: int, report: ProgressReport) -> None:
        """Send ``report``'s latest values now."""
        report.dirty = False  # before reading: a concurrent update re-flags itself
        self.send(ch.PROGRESS, tag, [pickle.dumps((report.progress, report.message), 5)])

    def run(self) -> None:
        """Start the helper threads, run the initializer, then serve tasks until told to stop."""
        watch_args = (self.sock.fileno(),)
        threading.Thread(
            target=_watch_parent, args=watch_args, name="tasker-parent-watch", daemon=True
        ).start()
        threading.Thread(target=self.sender.run, name="tasker-progress", daemon=True).start()
        install_logging(self._send_log, self.options.log_level)
        initializer = self.options.initializer
        if initializer is not None:
            try:
                initializer(*self.options.initargs)
            except BaseException as error:
                meta, data = dump_exception(error)
                self.send(ch.INIT_FAILED, 0, [pickle.dumps(meta, 5), data])
                return
        self.send(ch.READY, 0, [])
        while True:
            frame = self._next_frame()
            if frame is None or frame[0] == ch.STOP:
                return
            if frame[0] == ch.TASK:
                _kind, tag, aux, segments = frame
                del frame
                flag_index = self.options.flag_stride * self.slot + aux
                if self.flags[flag_index] or not self._pause_gate(tag, flag_index):
                    self.send(ch.SKIPPED, tag, [])
                else:
                    self._run_task(tag, flag_index, segments)
                del segments

    def _pause_index(self, flag_index: int) -> int:
        offset = self.options.pause_offset
        return flag_index + offset if offset >= 0 else -1

    def _pause_gate(self, tag: int, flag_index: int) -> bool:
        """A task paused before it started waits here; False if it was cancelled meanwhile."""
        pause_index = self._pause_index(flag_index)
        if pause_index >= 0 and self.flags[pause_index]:
            wait_while_paused(self, tag, flag_index, pause_index)
        return not self.flags[flag_index]

    def _send_log(self, data: bytes) -> None:
        self.send(ch.LOG, 0, [data])

    def _next_frame(self) -> tuple[int, int, int, list[Any]] | None:
        frames = self._reader.frames
        while not frames:
            try:
                if not self._reader.feed():
                    return None  # the parent closed the channel
            except OSError:
                return None
        return frames.pop(0)

    def _run_task(self, tag: int, flag_index: int, segments: list[Any]) -> None:
        report = ProgressReport(self.sender.notify)
        try:
            fn, args, kwargs = loads(segments[0], segments[1:])
        except BaseException as error:
            self._send_error(tag, report, error)
            return
        segments.clear()  # drop the pickles (and large argument buffers) early
        pause_index = self._pause_index(flag_index)
        backend = TaskBackend(self, tag, report, flag_index, pause_index)
        context = ExecutionContext(report, self.flags, flag_index, backend, pause_index=pause_index)
        self.sender.current = (tag, report)
        try:
            result = fn(context, *args, **kwargs)
        except BaseException as error:
            self.sender.current = None
            del fn, args, kwargs
            self._send_error(tag, report, error)
            return
        self.sender.current = None
        del fn, args, kwargs
        try:
            data, buffers = dumps(result)
        except Exception as error:
            failure = SerializationError(
                f"the result of type {describe_type(result)} cannot be pickled: {error}"
            )
            failure.__cause__ = error
            self._send_error(tag, report, failure)
            return
        meta = pickle.dumps((report.progress, report.message, describe_type(result)), 5)
        self.send(ch.DONE_OK, tag, [meta, data, *buffers])

    def _send_error(self, tag: int, report: ProgressReport, error: BaseException) -> None:
        info, data = dump_exception(error)
        meta = pickle.dumps((report.progress, report.message, info), 5)
        self.send(ch.DONE_ERROR, tag, [meta, data])


class TaskBackend:
    """The ``ExecutionContext`` backend of a task running in this worker."""

    __slots__ = ("_flag_index", "_pause_index", "_report", "_tag", "_worker")

    def __init__(
        self, worker: Worker, tag: int, report: ProgressReport, flag_index: int, pause_index: int
    ) -> None:
        self._worker = worker
        self._tag = tag
        self._report = report
        self._flag_index = flag_index
        self._pause_index = pause_index

    def send_event(self, name: str, data: Any) -> None:
        """Pickle ``data`` now and send it; ``SerializationError`` if it cannot be pickled."""
        try:
            payload, buffers = dumps(data)
        except Exception as error:
            raise SerializationError(
                f"the payload of event {name!r}, of type {describe_type(data)}, "
                f"cannot be pickled: {error}"
            ) from error
        self._worker.send(
            ch.EVENT, self._tag, [name.encode("utf-8", "surrogatepass"), payload, *buffers]
        )

    def flush(self) -> None:
        """Send the latest progress and message now."""
        self._worker.send_progress(self._tag, self._report)

    def cancellable(self) -> Gio.Cancellable:
        """Process tasks have no ``Gio.Cancellable``: it cannot cross a process boundary."""
        raise RuntimeError(
            "context.cancellable exists only in coroutine and thread tasks; "
            "a process task checks context.is_cancelled()"
        )

    def wait_while_paused(self) -> None:
        """Tell the parent the task is paused; wait until its pause or cancel byte says go."""
        wait_while_paused(self._worker, self._tag, self._flag_index, self._pause_index)

    async def async_wait_while_paused(self) -> None:
        """The same for a coroutine the function runs in its own event loop."""
        import asyncio

        flags = self._worker.flags
        self._worker.send(ch.PAUSED, self._tag, [])
        while flags[self._pause_index] and not flags[self._flag_index]:
            await asyncio.sleep(_PAUSE_POLL)


#: How often a paused task looks at its bytes: resume takes at most this long.
#: A wait on a futex would be instant, but a byte in shared memory is all the
#: parent and the worker share; at this rate a paused worker costs ~0 CPU.
_PAUSE_POLL = 0.01


def wait_while_paused(worker: Worker, tag: int, flag_index: int, pause_index: int) -> None:
    """Report the task paused and sleep until it is resumed (pause byte 0) or cancelled."""
    flags = worker.flags
    worker.send(ch.PAUSED, tag, [])
    while flags[pause_index] and not flags[flag_index]:
        time.sleep(_PAUSE_POLL)


class ProgressSender:
    """Sends the running task's latest progress at most once per interval (trailing edge kept)."""

    def __init__(self, worker: Worker, interval: float) -> None:
        self._worker = worker
        self._interval = interval
        self._wake = threading.Event()
        # ProgressReport.notify: called by set_progress/set_message on the
        # clean-to-dirty edge only, so at most once per interval.
        self.notify = self._wake.set
        # (tag, report) of the running task; swapped as a whole, read without a lock.
        self.current: tuple[int, ProgressReport] | None = None

    def run(self) -> None:
        """Thread body: wait for a change, send it, pause for one interval."""
        wait, clear = self._wake.wait, self._wake.clear
        while True:
            wait()
            clear()
            current = self.current
            if current is None or not current[1].dirty:
                continue
            try:
                self._worker.send_progress(*current)
            except OSError:
                return  # the parent is gone; the watcher ends the process
            if self._interval:
                time.sleep(self._interval)  # the rate limit; a change meanwhile re-sets _wake


def _watch_parent(fd: int) -> None:
    # The parent's end of our channel hangs up when the parent process dies,
    # however it dies. Waiting for that costs nothing while the parent lives.
    rdhup = getattr(select, "POLLRDHUP", 0)
    poller = select.poll()
    poller.register(fd, rdhup)
    while True:
        for _fd, events in poller.poll():
            if events & select.POLLNVAL:
                return
            if events & (select.POLLHUP | select.POLLERR | rdhup):
                try:
                    if os.getpgrp() == os.getpid():  # never the parent's group
                        os.killpg(0, signal.SIGKILL)
                finally:
                    os._exit(1)
