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

Event credit (``_flow.py``): a TASK frame starts with the task's event window.
The task's backend counts the bytes of the events it sent and the bytes the
parent last granted (delivered). When the next event does not fit, the
sending thread says BLOCKED once, with the grant it needs, and then reads the
channel itself until a GRANT arrives or its cancel byte is set (the parent
sends a GRANT when it sets the byte, to wake it). Only one thread reads the
channel at a time (``_reading``, under ``_cond``); frames other than GRANTs
it receives are kept, copied out of the reading buffer, for the main loop.
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

from .. import _runtime
from .._context import ExecutionContext, ProgressReport
from .._errors import SerializationError
from . import _channel as ch
from ._flags import FdArg, attach_flags
from ._logging import install as install_logging
from ._pickling import describe_type, dump_exception, dumps, loads

if TYPE_CHECKING:
    from gi.repository import Gio

__all__ = ["WorkerOptions", "main"]


class WorkerOptions:
    """Settings a worker gets from the pool (pickled with the ``Process`` object)."""

    __slots__ = (
        "close_fds",
        "flag_stride",
        "init_call",
        "log_level",
        "nice",
        "pause_offset",
        "update_rate",
    )

    def __init__(
        self,
        *,
        init_call: bytes | None,
        update_rate: float,
        nice: int,
        log_level: int,
        close_fds: tuple[int, ...] = (),
        flag_stride: int = 2,
        pause_offset: int = -1,
    ) -> None:
        # The pickled (initializer, initargs): by value where needed (see _pickling),
        # which multiprocessing's own pickling of this object would not do.
        self.init_call = init_call
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
    _runtime.in_worker_process = True


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
        # Guards _reading (one thread reads the channel at a time); senders
        # waiting for credit wait on it, and the reader notifies it after
        # each receive (a GRANT raises a backend's ``granted``).
        self._cond = threading.Condition(threading.Lock())
        self._reading = False
        self._backends: dict[int, TaskBackend] = {}  # by tag: tasks that may wait for credit
        rate = options.update_rate
        self.sender = ProgressSender(self, 1.0 / rate if rate > 0 else 0.0)

    def send(self, kind: int, tag: int, segments: list[Any], aux: int = 0) -> None:
        """Write one frame to the parent."""
        with self._send_lock:
            ch.send_frame(self.sock, kind, tag, segments, aux)

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
        init_call = self.options.init_call
        if init_call is not None:
            try:
                initializer, initargs = loads(init_call)
                initializer(*initargs)
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
        with self._cond:
            # A thread of a finished task may still be reading (it stops at its next frame).
            while self._reading:
                self._cond.wait()
        while not frames:
            if not self._feed():
                return None  # the parent closed the channel
        return frames.pop(0)

    def _feed(self, keep: bool = False) -> bool:
        """Receive once; apply GRANT frames. ``keep``: copy what stays out of the reading buffer.

        False once the channel is closed.
        """
        reader = self._reader
        frames = reader.frames
        if keep and frames:
            # Small segments are views of the reading buffer, which this receive reuses.
            frames[:] = [_detached(frame) for frame in frames]
        try:
            open_ = reader.feed()
        except OSError:
            open_ = False
        if frames and (keep or any(frame[0] == ch.GRANT for frame in frames)):
            kept = []
            for frame in frames:
                if frame[0] == ch.GRANT:
                    backend = self._backends.get(frame[1])
                    if backend is not None:
                        granted = ch.COUNT.unpack_from(frame[3][0])[0]
                        if granted > backend.granted:
                            backend.granted = granted
                        backend.asked = -1
                elif keep:
                    kept.append(_detached(frame))
                else:
                    kept.append(frame)
            frames[:] = kept
        return open_

    def send_event(self, backend: TaskBackend, size: int, segments: list[Any], aux: int) -> None:
        """Send an EVENT frame of ``size`` credit bytes once ``backend``'s window has room.

        ``backend.sent`` changes only under the send lock, together with the
        send, so senders on several threads neither overshoot nor reorder;
        ``granted`` only grows, so reading it without ``_cond`` is safe. When
        the task is stopping, is over or the parent is gone, nothing is sent.
        """
        window = backend.window
        while True:
            with self._send_lock:
                unacked = backend.sent - backend.granted
                if unacked == 0 or unacked + size <= window:
                    backend.sent += size
                    ch.send_frame(self.sock, ch.EVENT, backend.tag, segments, aux)
                    return
            if not self._wait_credit(backend, size):
                return

    def _wait_credit(self, backend: TaskBackend, size: int) -> bool:
        """Wait until ``size`` more bytes may fit; False once they never will."""
        window = backend.window
        cond = self._cond
        with cond:
            while True:
                unacked = backend.sent - backend.granted
                if unacked == 0 or unacked + size <= window:
                    return True
                if backend.over or self.flags[backend.flag_index]:
                    return False
                need = min(backend.sent, backend.sent + size - window)
                if backend.asked < need:
                    backend.asked = need
                    self.send(ch.BLOCKED, backend.tag, [ch.COUNT.pack(need)])
                if self._reading:
                    cond.wait()
                    continue
                self._reading = True
                cond.release()
                try:
                    open_ = self._feed(keep=True)
                finally:
                    cond.acquire()
                    self._reading = False
                    cond.notify_all()
                if not open_:
                    return False

    def _run_task(self, tag: int, flag_index: int, segments: list[Any]) -> None:
        report = ProgressReport(self.sender.notify)
        try:
            window = ch.COUNT.unpack_from(segments[0])[0]
            fn, args, kwargs = loads(segments[1], segments[2:])
        except Exception as error:
            # Pickled by reference in the parent but not importable here (a
            # module the parent made at run time, or one not on sys.path).
            failure = SerializationError(
                "the task's function or arguments cannot be unpickled in the worker: "
                f"{type(error).__name__}: {error}"
            )
            failure.__cause__ = error
            self._send_error(tag, report, failure)
            return
        segments.clear()  # drop the pickles (and large argument buffers) early
        pause_index = self._pause_index(flag_index)
        backend = TaskBackend(self, tag, report, window, flag_index, pause_index)
        context = ExecutionContext(report, self.flags, flag_index, backend, pause_index=pause_index)
        self.sender.current = (tag, report)
        self._backends[tag] = backend
        try:
            result = fn(context, *args, **kwargs)
        except BaseException as error:
            self._task_over(backend)
            del fn, args, kwargs
            self._send_error(tag, report, error)
            return
        self._task_over(backend)
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

    def _task_over(self, backend: TaskBackend) -> None:
        self.sender.current = None
        with self._cond:
            backend.over = True  # a thread it started must not wait for credit any more
            self._backends.pop(backend.tag, None)
            self._cond.notify_all()

    def _send_error(self, tag: int, report: ProgressReport, error: BaseException) -> None:
        info, data = dump_exception(error)
        meta = pickle.dumps((report.progress, report.message, info), 5)
        self.send(ch.DONE_ERROR, tag, [meta, data])


class TaskBackend:
    """The ``ExecutionContext`` backend of a task running in this worker."""

    __slots__ = (
        "_pause_index",
        "_report",
        "_worker",
        "asked",
        "flag_index",
        "granted",
        "over",
        "sent",
        "tag",
        "window",
    )

    def __init__(
        self,
        worker: Worker,
        tag: int,
        report: ProgressReport,
        window: int,
        flag_index: int,
        pause_index: int,
    ) -> None:
        self._worker = worker
        self.tag = tag
        self._report = report
        self.flag_index = flag_index
        self._pause_index = pause_index
        # Event credit: the bytes of events sent (changed under the send lock),
        # the parent's last grant, i.e. bytes delivered (only grows), the grant
        # asked for in the last BLOCKED frame (-1: ask again), all under _cond
        # otherwise. window 0: no bound.
        self.window = window
        self.sent = 0
        self.granted = 0
        self.asked = -1
        self.over = False

    def send_event(self, name: str, data: Any, coalesce: bool) -> None:
        """Pickle ``data`` now, wait for credit, send it; ``SerializationError`` if unpicklable."""
        try:
            payload, buffers = dumps(data)
        except Exception as error:
            raise SerializationError(
                f"the payload of event {name!r}, of type {describe_type(data)}, "
                f"cannot be pickled: {error}"
            ) from error
        segments = [name.encode("utf-8", "surrogatepass"), payload, *buffers]
        aux = 1 if coalesce else 0
        if not self.window:
            self._worker.send(ch.EVENT, self.tag, segments, aux)
            return
        size = len(payload)
        if buffers:
            for buffer in buffers:
                size += memoryview(buffer).nbytes
        self._worker.send_event(self, size, segments, aux)

    async def send_event_async(self, name: str, data: Any, coalesce: bool) -> None:
        """The task's own thread is the one to wait in a worker: the same as ``send_event``."""
        self.send_event(name, data, coalesce)

    def flush(self) -> None:
        """Send the latest progress and message now."""
        self._worker.send_progress(self.tag, self._report)

    def cancellable(self) -> Gio.Cancellable:
        """Process tasks have no ``Gio.Cancellable``: it cannot cross a process boundary."""
        raise RuntimeError(
            "context.cancellable exists only in coroutine and thread tasks; "
            "a process task checks context.is_cancelled()"
        )

    def wait_while_paused(self) -> None:
        """Tell the parent the task is paused; wait until its pause or cancel byte says go."""
        self._flush_before_pause()
        wait_while_paused(self._worker, self.tag, self.flag_index, self._pause_index)

    def _flush_before_pause(self) -> None:
        # A paused task shows what it last reported: that goes out before PAUSED.
        if self._report.dirty:
            self._worker.send_progress(self.tag, self._report)

    async def async_wait_while_paused(self) -> None:
        """The same for a coroutine the function runs in its own event loop."""
        import asyncio

        flags = self._worker.flags
        self._flush_before_pause()
        self._worker.send(ch.PAUSED, self.tag, [])
        while flags[self._pause_index] and not flags[self.flag_index]:
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


def _detached(frame: tuple[int, int, int, list[Any]]) -> tuple[int, int, int, list[Any]]:
    """``frame`` with its segments copied out of the reader's buffer."""
    segments = [bytes(s) if isinstance(s, memoryview) else s for s in frame[3]]
    return (frame[0], frame[1], frame[2], segments)


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
