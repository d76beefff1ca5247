"""The parent side of the worker-process pool.

Design (see also ``docs/architecture.md``):

* Workers are started on demand, up to ``max_workers``, the first time a
  task has no idle worker; they then stay. Each worker has its own stream
  socket pair; there is no manager process and no shared queue.
* A task is pickled in the submitting thread. If a worker is idle the same
  thread sends it at once; otherwise it waits in a FIFO queue in this
  process, and the listener thread sends it the moment a worker reports a
  result (or becomes ready), so a queued task can be cancelled without ever
  starting.
* Prefetch: a worker whose last task took under ``PREFETCH_LIMIT`` also gets
  queued tasks while it runs the current one, so tiny tasks run back to back
  instead of waiting a round trip each: up to ``PREFETCH_DEPTH`` of them, as
  many as fit in ``PREFETCH_LIMIT`` by the duration of its last task, and only
  one while the queue holds fewer tasks than there are workers. They are sent
  once per read of the worker's results, in one system call, so the listener
  pays one send for a batch and the worker runs on while the listener waits
  for the GIL. A task sent ahead is still ``pending``: it is marked running
  when its predecessor's result arrives (the worker starts it right after
  sending that result). It has its own cancel flag byte; cancelled before its
  turn, it ends cancelled at once and the worker skips it. If the worker dies
  first, they go back to the head of the queue, in order. Long tasks are never
  prefetched behind, so no task waits behind a long one while another worker
  is free (except after a task that took longer than all its predecessors,
  once).
* One listener thread, ``tasker-process-listener``, waits with a persistent
  selector on every worker channel, every process sentinel and a wake-up
  pipe. Its select timeout is the nearest deadline (a task timeout, a kill
  after the cancel grace, or the shutdown deadline), so it never polls.
* A worker's exit is seen from its sentinel at once: what it sent before
  dying is drained and delivered, its task fails with ``WorkerCrashedError``
  and a replacement is started.

Locking: ``_lock`` guards the pool's bookkeeping (queue, idle list, worker
table, deadlines, the flags region writes) and is held only for that; host
methods, sends and process starts happen outside it. Each worker has a
``send_lock`` held while one frame is written to it (and while its socket is
closed, so no thread writes to a reused descriptor).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import pickle
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import ManagerShutdownError, SerializationError, TaskError, WorkerCrashedError
from . import _channel as ch
from ._flags import CancelFlags, FdArg
from ._launch import worker_process_class
from ._logging import handle_forwarded
from ._pickling import by_value, describe_type, dump_call, dumps_inband, load_exception, loads
from ._worker import WorkerOptions
from ._worker import main as worker_main

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    from .._task import Task

__all__ = ["ProcessPool"]

logger = logging.getLogger("tasker")

LISTENER_NAME = "tasker-process-listener"
#: Preloaded in the fork server: what every worker imports to start (the worker
#: loop, the process-wide flags it sets, the process class it is unpickled as).
_WORKER_MODULES = ("tasker._process._worker", "tasker._runtime", "tasker._process._launch")
#: ... and this one when the parent has needed it or starts workers ahead of
#: need, so that a task travelling by value does not make its worker import it.
_BY_VALUE_MODULE = "cloudpickle"
#: Socket buffer size asked for on both ends of a channel: fewer system calls for large data.
_SOCKET_BUFFER = 1 << 20

#: A worker gets tasks in advance only while its tasks take less than this, and
#: only as many as fit in this time by the duration of its last task.
PREFETCH_LIMIT = 0.002
#: At most this many tasks are sent ahead to one worker. Several let the worker
#: run on while the listener waits for the GIL (the main thread may hold it for
#: a drain slice), and let the listener send them in one system call.
PREFETCH_DEPTH = 16
#: ... and only a task this small: a send to a busy worker must never block, or
#: the listener and a worker sending a large event could wait for each other.
PREFETCH_MAX_BYTES = 64 * 1024
#: ... and only while the tasks ahead of one worker take this much at most (the
#: socket buffers take 1 MiB, so such a send never blocks).
PREFETCH_MAX_TOTAL = 256 * 1024
#: Cancel flag bytes per worker slot: the running task and those sent ahead.
FLAG_STRIDE = PREFETCH_DEPTH + 1

#: The longest single wait of the listener (far deadlines are re-checked this often).
_MAX_WAIT = 3600.0

# Job states.
_QUEUED = 0  # in the queue
_IN_WORKER = 1  # assigned to a worker (being sent, or running there)
_DROPPED = 2  # cancelled while queued; skipped when it reaches the head of the queue
_OVER = 3  # finished or forgotten
_HELD = 4  # paused while queued: out of the queue until resumed


# Pools whose listener runs, and the multiprocessing helper processes (fork
# server, resource tracker) a tasker pool started: the last pool to shut down
# stops those, when no other process of this program may still need them.
_registry_lock = threading.Lock()
_live_pools: set[int] = set()
_started_helpers: set[str] = set()


class _Job:
    """One submitted task on its way through the pool."""

    __slots__ = (
        "failure",
        "finished",
        "flag",
        "frozen",
        "grace",
        "kill_at",
        "killed",
        "segments",
        "size",
        "started_at",
        "state",
        "tag",
        "task",
        "timeout",
        "timeout_at",
        "unsent",
        "worker",
    )

    def __init__(
        self, task: Task[Any], segments: list[Any], timeout: float | None, grace: float
    ) -> None:
        self.task = task
        self.tag = task.id & 0xFFFFFFFF
        self.segments: list[Any] | None = segments
        size = 0
        for segment in segments:  # a plain loop: this runs for every task submitted
            size += len(segment) if segment.__class__ is bytes else memoryview(segment).nbytes
        self.size = size
        self.unsent = False  # its send failed: the worker died before it could see it
        self.timeout = timeout
        self.grace = grace
        self.state = _QUEUED
        self.worker: _Worker | None = None
        self.timeout_at: float | None = None
        self.kill_at: float | None = None
        self.killed = False
        self.flag = 0  # index of its cancel flag byte, once assigned to a worker
        self.frozen = False  # its worker's process group is stopped (pause(freeze=True))
        self.started_at = 0.0  # when it was marked running
        # The host was told already (a prefetched task cancelled before its turn).
        self.finished = False
        # An error found while the task ran (an event payload the parent could
        # not unpickle); it replaces the task's outcome.
        self.failure: BaseException | None = None


class _Worker:
    """The parent's record of one worker process."""

    __slots__ = (
        "ahead",
        "ahead_bytes",
        "alive",
        "depth",
        "exiting",
        "flip",
        "init_failed",
        "job",
        "pid",
        "process",
        "reader",
        "ready",
        "registered",
        "retiring",
        "send_lock",
        "sentinel",
        "slot",
        "sock",
    )

    def __init__(self, slot: int, process: BaseProcess, sock: socket.socket) -> None:
        self.slot = slot
        self.process = process
        self.pid: int = process.pid or 0
        self.sentinel: int = process.sentinel
        self.sock: socket.socket | None = sock
        self.reader = ch.FrameReader(sock)
        self.send_lock = threading.Lock()
        self.ready = False
        self.alive = True
        self.exiting = False  # its sentinel fired: no new work, whatever it still says
        self.registered = True  # channel registered with the selector
        self.init_failed = False
        # restart() retired it: it finishes what it was given, takes nothing new, then stops.
        self.retiring = False
        self.job: _Job | None = None  # the task it runs (or is being sent)
        # Tasks sent in advance, not started yet, in the order the worker runs them.
        self.ahead: deque[_Job] = deque()
        self.ahead_bytes = 0  # their pickled size
        self.flip = 0  # which of its FLAG_STRIDE flag bytes the last task sent uses
        self.depth = 0  # how many tasks it may have ahead (0: its last task was not quick)

    @property
    def next_job(self) -> _Job | None:
        """The task it runs next (the first sent ahead), or None."""
        return self.ahead[0] if self.ahead else None


def default_start_method() -> str:
    """forkserver on Linux (fork is unsafe once threads exist), spawn elsewhere."""
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


class ProcessPool:
    """A persistent pool of worker processes run for a host (the ``TaskManager``).

    Nothing is started until the first ``submit``. All methods may be called
    from any thread.
    """

    def __init__(
        self,
        host: Any,
        *,
        max_workers: int | None = None,
        start_method: str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        update_rate: float = 20.0,
        worker_nice: int = 5,
    ) -> None:
        method = start_method or default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start_method {method!r} is not available here; choose one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}")
        self._host = host
        self._method = method
        self._max_workers = max_workers or os.cpu_count() or 1
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._init_data: bytes | None = None  # the pickled (initializer, initargs)
        self._ahead = False  # start_workers() was called: preload what tasks may need
        self._update_rate = update_rate
        self._nice = worker_nice

        # Everything below is guarded by _lock (see the module docstring).
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}  # queued and in-worker jobs by task id
        self._queue: deque[_Job] = deque()  # may hold _DROPPED jobs
        self._queued = 0  # live jobs in _queue
        self._idle: list[_Worker] = []  # ready workers without a job; the last is the warmest
        self._workers: dict[int, _Worker] = {}  # by slot, started or ready
        # Twice max_workers slots: after restart() the new workers start at
        # once while retiring ones still hold their slots. At most max_workers
        # slots belong to workers that are not retiring.
        self._slots = 2 * self._max_workers
        self._free_slots = list(range(self._slots - 1, -1, -1))
        self._retiring = 0  # retiring workers still in _workers
        self._retiring_starting = 0  # ... of which not ready yet (also counted in _starting)
        self._to_spawn: list[int] = []  # slots the listener is to start workers in
        self._starting = 0  # slots reserved or workers started but not yet ready
        self._deadline_jobs: set[_Job] = set()  # jobs with a timeout_at or kill_at
        self._init_failed = False  # stop starting workers until the next submit
        self._closing = False
        self._shutdown_at: float | None = None  # when shutdown kills what is left
        self._failure: BaseException | None = None  # the listener broke: refuse new tasks
        self._listener: threading.Thread | None = None
        self._flags: CancelFlags | None = None
        #: A task's pause byte is its cancel byte plus this.
        self._pause_offset = FLAG_STRIDE * self._slots
        self._wake_r = -1
        self._wake_w = -1

        # Owned by the listener thread.
        self._selector: selectors.BaseSelector | None = None
        self._context: BaseContext | None = None

    # ------------------------------------------------------------ the contract

    def submit(
        self,
        task: Task[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        cancel_grace: float,
    ) -> None:
        """Pickle the call here, then run it on an idle worker at once or queue it."""
        try:
            data, buffers = dump_call(fn, args, kwargs)
        except SerializationError as error:
            self._host._finish(task, error=error)
            return
        # The TASK frame starts with the task's event window (0: no bound).
        window = ch.COUNT.pack(task._credit.window or 0)
        job = _Job(task, [window, data, *buffers], timeout, cancel_grace)
        worker = None
        wake = False
        with self._lock:
            if self._closing:
                refused = True
            else:
                refused = False
                if self._listener is None:
                    self._start_listener_locked()
                self._jobs[task.id] = job
                if self._idle:
                    worker = self._idle.pop()
                    self._assign_locked(worker, job)
                else:
                    self._queue.append(job)
                    self._queued += 1
                    self._init_failed = False  # a new submit may try again
                    wake = self._want_worker_locked()
        if refused:
            self._host._finish(task, error=self._failure or _shut_down())
        elif worker is not None:
            self._dispatch(worker, job)
        elif wake:
            self._wake()

    def start_workers(self, n: int | None = None) -> None:
        """Start workers now, up to ``n`` (``None``: ``max_workers``) in all; returns at once.

        Workers already running or starting count toward ``n``. Each new one
        starts in the listener thread and waits idle; a task submitted once
        it is ready is sent to it at once.
        """
        wake = False
        with self._lock:
            if self._closing:
                raise self._failure or _shut_down()
            self._ahead = True
            self._init_failed = False  # asked explicitly: try the initializer again
            target = self._max_workers if n is None else min(n, self._max_workers)
            # Workers alive, starting or about to be started, retiring ones aside.
            missing = target - (self._slots - len(self._free_slots) - self._retiring)
            while missing > 0 and self._free_slots:
                self._to_spawn.append(self._free_slots.pop())
                self._starting += 1
                missing -= 1
                wake = True
            if wake and self._listener is None:
                self._start_listener_locked()
        if wake:
            self._wake()

    def cancel(self, task: Task[Any]) -> None:
        """Drop a queued task, or flag a running one and schedule its kill after the grace.

        A task sent to a worker in advance but not started yet ends cancelled
        at once; the worker will see its flag and skip it.
        """
        wake = finish = False
        with self._lock:
            job = self._jobs.get(task.id)
            if job is None or job.finished:
                return
            if job.state == _QUEUED:
                job.state = _DROPPED
                self._queued -= 1
                del self._jobs[task.id]
                finish = True
            elif job.state == _HELD:
                job.state = _OVER
                del self._jobs[task.id]
                finish = True
            elif job.worker is not None and job in job.worker.ahead:
                flags = self._flags
                assert flags is not None
                flags[job.flag] = 1
                job.finished = finish = True
            else:
                wake = self._stop_job_locked(job)
                if job.frozen and job.worker is not None:
                    # A frozen worker cannot see its cancel flag: let it run again,
                    # so it stops by itself within the grace, or is killed after.
                    job.frozen = False
                    self._signal_group(job.worker, signal.SIGCONT)
        # A worker waiting for event credit is woken to see its flag (set above).
        task._credit.stopped()
        if finish:
            self._host._finish(task)
        elif wake:
            self._wake()

    def restart(self) -> None:
        """Retire every worker: queued and new tasks go to fresh workers started now.

        A retiring worker finishes the task it runs (and the small tasks sent
        to it ahead of time, which may have started already, so they are
        never taken back: that could run them twice), takes nothing new and
        is then sent STOP; an idle one is stopped at once. Nothing is lost:
        queued tasks stay queued for the new workers.
        """
        to_stop: list[_Worker] = []
        with self._lock:
            if self._closing or self._listener is None:
                return
            for worker in self._workers.values():
                if worker.retiring or worker.exiting:
                    continue
                worker.retiring = True
                self._retiring += 1
                if not worker.ready:
                    self._retiring_starting += 1
            to_stop, self._idle = self._idle, []
            # Fresh workers for what waits; new tasks start them as they come.
            wake = False
            while self._want_worker_locked():
                wake = True
        for worker in to_stop:
            self._send_stop(worker)
        if wake:
            self._wake()

    def pause(self, task: Task[Any], freeze: bool) -> None:
        """Pause a task (the host has set its state): hold it back if queued, else flag it.

        A queued task leaves the queue until ``resume``; one sent to a worker
        gets its pause byte set, which its next ``checkpoint()`` (or the
        worker, before it starts it) sees. ``freeze`` stops the running
        task's worker process group with SIGSTOP.
        """
        with self._lock:
            job = self._jobs.get(task.id)
            if job is None or job.finished:
                return
            if job.state == _QUEUED:
                job.state = _HELD
                self._queued -= 1
                self._queue.remove(job)
                return
            if job.state != _IN_WORKER or self._flags is None:
                return
            self._flags[job.flag + self._pause_offset] = 1
            worker = job.worker
            if freeze and worker is not None and worker.job is job and not job.frozen:
                job.frozen = True
                self._signal_group(worker, signal.SIGSTOP)

    def resume(self, task: Task[Any]) -> None:
        """Undo ``pause``: queue a held task again (first in line), clear its byte, SIGCONT."""
        worker = None
        wake = False
        with self._lock:
            job = self._jobs.get(task.id)
            if job is None or job.finished:
                return
            if job.state == _HELD:
                if self._closing:
                    return
                job.state = _QUEUED
                # First in line: it was queued before the tasks behind it now.
                self._queue.appendleft(job)
                self._queued += 1
                if self._idle:
                    worker = self._idle.pop()
                    head = self._next_job_locked()
                    assert head is not None  # the job just queued, at least
                    self._assign_locked(worker, head)
                    job = head
                else:
                    wake = self._want_worker_locked()
            elif job.state == _IN_WORKER and self._flags is not None:
                self._flags[job.flag + self._pause_offset] = 0
                if job.frozen and job.worker is not None:
                    job.frozen = False
                    self._signal_group(job.worker, signal.SIGCONT)
        if worker is not None:
            self._dispatch(worker, job)
        elif wake:
            self._wake()

    def _signal_group(self, worker: _Worker, signum: int) -> None:
        """Send ``signum`` to a worker's process group (pool lock held; signals do not block)."""
        if not worker.alive:
            return
        try:
            os.killpg(worker.pid, signum)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signum)

    def shutdown(self, timeout: float) -> None:
        """Stop every worker (kill those still busy after ``timeout`` s) and release everything.

        Idempotent. Queued tasks fail with ``ManagerShutdownError`` (a cancelled
        one ends cancelled). Afterwards no worker, thread or descriptor is left;
        a forkserver and resource tracker this pool started are stopped too.
        """
        idle: list[_Worker] = []
        dropped: list[_Job] = []
        with self._lock:
            if not self._closing:
                self._closing = True
                dropped = [job for job in self._queue if job.state == _QUEUED]
                dropped += [job for job in self._jobs.values() if job.state == _HELD]
                for job in dropped:
                    self._forget_locked(job)
                self._queue.clear()
                self._queued = 0
                self._starting -= len(self._to_spawn)
                self._free_slots.extend(self._to_spawn)
                self._to_spawn.clear()
                idle, self._idle = self._idle, []
                self._shutdown_at = time.monotonic() + max(0.0, timeout)
            listener = self._listener
        for job in dropped:
            self._host._finish(job.task, error=_shut_down())
        if listener is not None:
            for worker in idle:
                self._send_stop(worker)
            self._wake()
            if listener is threading.current_thread():
                return  # called from a log handler on the listener: it finishes by itself
            listener.join(max(0.0, timeout) + 5.0)
            if listener.is_alive():
                logger.error("tasker: the process listener did not stop; workers may be left")
                return
        self._release()

    # ------------------------------------------------------- bookkeeping helpers

    def _want_worker_locked(self) -> bool:
        """Reserve a slot for a new worker if queued work needs one; True: wake the listener."""
        if self._init_failed or self._closing or not self._free_slots:
            return False
        if self._slots - len(self._free_slots) - self._retiring >= self._max_workers:
            return False  # the pool is at its size, retiring workers aside
        if self._queued <= self._starting - self._retiring_starting:
            return False
        slot = self._free_slots.pop()
        self._to_spawn.append(slot)
        self._starting += 1
        return True

    def _assign_locked(self, worker: _Worker, job: _Job, *, ahead: bool = False) -> None:
        """Give ``job`` to ``worker``: as the task it runs next, or ``ahead`` of time."""
        if ahead:
            worker.ahead.append(job)
            worker.ahead_bytes += job.size
        else:
            worker.job = job
        job.worker = worker
        job.state = _IN_WORKER
        # Rotate through the worker's FLAG_STRIDE flag bytes: the task running
        # and those sent ahead (the last FLAG_STRIDE assigned, at most) never
        # share one. The byte may still be set from an earlier cancelled task:
        # reset it to this task's own flag.
        worker.flip = (worker.flip + 1) % FLAG_STRIDE
        job.flag = FLAG_STRIDE * worker.slot + worker.flip
        flags = self._flags
        assert flags is not None
        flags[job.flag] = job.task._cancel_flag[0]
        flags[job.flag + self._pause_offset] = job.task._cancel_flag[1]

    def _next_job_locked(self) -> _Job | None:
        queue = self._queue
        while queue:
            job = queue.popleft()
            if job.state == _QUEUED:
                self._queued -= 1
                return job
        return None

    def _peek_job_locked(self) -> _Job | None:
        queue = self._queue
        while queue:
            if queue[0].state == _QUEUED:
                return queue[0]
            queue.popleft()
        return None

    def _forget_locked(self, job: _Job) -> None:
        job.state = _OVER
        self._jobs.pop(job.task.id, None)
        self._deadline_jobs.discard(job)
        worker = job.worker
        if worker is not None:
            if worker.job is job:
                worker.job = None
            elif job in worker.ahead:
                worker.ahead.remove(job)
                worker.ahead_bytes -= job.size

    def _park_locked(self, worker: _Worker) -> bool:
        """Give a free worker its next job or make it idle; True: it is to be sent STOP."""
        if worker.exiting:
            return False
        if worker.retiring:
            return True
        job = self._next_job_locked()
        if job is not None:
            self._assign_locked(worker, job)
            return False
        if self._closing:
            return True
        self._idle.append(worker)
        return False

    def _stop_job_locked(self, job: _Job) -> bool:
        """Flag a running job to stop and schedule its kill; True if a deadline was added."""
        worker = job.worker
        if job.killed or job.kill_at is not None or worker is None or not worker.alive:
            return False
        flags = self._flags
        assert flags is not None
        flags[job.flag] = 1
        job.kill_at = time.monotonic() + job.grace
        self._deadline_jobs.add(job)
        return True

    # --------------------------------------------------------------- sending

    def _dispatch(self, worker: _Worker, job: _Job | None) -> None:
        """Send ``job`` (already assigned to ``worker``) unless it became final; then the next."""
        host = self._host
        while job is not None:
            # A job put back after its worker died unseen was marked running already.
            if job.started_at or host._mark_running(job.task, worker.pid):
                self._started(job)
                segments, job.segments = job.segments, None  # the pickles are not needed after this
                if not self._send(worker, ch.TASK, job.tag, segments or [], job.flag % FLAG_STRIDE):
                    # The worker is gone and never saw it: retry on the replacement.
                    job.segments, job.unsent = segments, True
                return
            # Final already (cancelled between queue and worker): the worker is free again.
            with self._lock:
                self._forget_locked(job)
                if not worker.alive:
                    return
                stop = self._park_locked(worker)
                job = worker.job
            if stop:
                self._send_stop(worker)

    def _started(self, job: _Job) -> None:
        """Note that ``job`` runs now (it was marked running): start its timeout clock."""
        job.started_at = time.monotonic()
        if job.timeout is not None:
            with self._lock:
                if job.state == _IN_WORKER and job.kill_at is None:
                    job.timeout_at = job.started_at + job.timeout
                    self._deadline_jobs.add(job)
            self._wake_unless_listener()

    def _send_ahead(self, worker: _Worker) -> None:
        """Send a quick worker queued tasks while it runs its current one, in one system call.

        It gets up to ``worker.depth`` of them, but only one while the queue
        holds fewer tasks than there are workers, so the others get their share.
        """
        frames: list[tuple[int, int, list[Any], int]] = []
        with self._lock:
            if worker.job is None or worker.exiting or worker.retiring or self._closing:
                return
            ahead = worker.ahead
            while len(ahead) < worker.depth:
                if ahead and self._queued < self._max_workers:
                    break
                job = self._peek_job_locked()
                if job is None or job.size > PREFETCH_MAX_BYTES:
                    break  # a large task waits until the worker is free to read it
                if ahead and worker.ahead_bytes + job.size > PREFETCH_MAX_TOTAL:
                    break
                self._next_job_locked()
                self._assign_locked(worker, job, ahead=True)
                # The segments are kept: they are sent again elsewhere if this worker dies.
                frames.append((ch.TASK, job.tag, job.segments or [], job.flag % FLAG_STRIDE))
        if frames:
            self._send_many(worker, frames)

    def _promote(self, worker: _Worker, job: _Job) -> None:
        """The task sent ahead runs now (the worker started it when it sent its last result)."""
        job.segments = None
        if job.finished:
            # Cancelled before its turn; the worker normally skips it. If it
            # started just before the flag was set, it gets the usual grace.
            with self._lock:
                if worker.job is job:
                    self._stop_job_locked(job)
            return
        if self._host._mark_running(job.task, worker.pid):
            self._started(job)
            return
        with self._lock:  # final meanwhile: our cancel() call is on its way; stop it anyway
            job.finished = True
            if worker.job is job:
                self._stop_job_locked(job)

    def _send(
        self, worker: _Worker, kind: int, tag: int, segments: list[Any], aux: int = 0
    ) -> bool:
        """Write one frame to ``worker``; False if it is gone (its sentinel tells the rest)."""
        with worker.send_lock:
            sock = worker.sock
            if sock is None:
                return False
            try:
                ch.send_frame(sock, kind, tag, segments, aux)
            except OSError:
                return False
            return True

    def _send_many(self, worker: _Worker, frames: list[tuple[int, int, list[Any], int]]) -> bool:
        """Write several frames to ``worker`` with one system call; False if it is gone."""
        with worker.send_lock:
            sock = worker.sock
            if sock is None:
                return False
            try:
                ch.send_frames(sock, frames)
            except OSError:
                return False
            return True

    def _send_stop(self, worker: _Worker) -> None:
        self._send(worker, ch.STOP, 0, [])

    def _wake(self) -> None:
        # A full pipe means a wake-up is pending anyway; a closed one, that we are done.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def _wake_unless_listener(self) -> None:
        if threading.current_thread() is not self._listener:
            self._wake()

    # ---------------------------------------------------------- the listener

    def _start_listener_locked(self) -> None:
        # Cancel bytes first, then as many pause bytes (see _pause_offset).
        self._flags = CancelFlags(2 * FLAG_STRIDE * self._slots)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._listener = threading.Thread(target=self._listen, name=LISTENER_NAME, daemon=True)
        with _registry_lock:
            _live_pools.add(id(self))
        self._listener.start()

    def _listen(self) -> None:
        selector = self._selector
        assert selector is not None
        failures = 0
        try:
            while True:
                try:
                    self._turn(selector)
                except Exception:
                    # A bug, not a worker's doing: log it and go on, unless it
                    # repeats at once, when nothing can be trusted any more.
                    logger.exception("tasker: error in the process listener")
                    failures += 1
                    if failures >= 10:
                        raise
                    continue
                failures = 0
                with self._lock:
                    if self._closing and not self._workers and not self._to_spawn:
                        return
        except Exception as error:
            self._break(error)
        finally:
            selector.close()

    def _turn(self, selector: selectors.BaseSelector) -> None:
        """One turn of the listener: start workers, wait for news or a deadline, handle it."""
        self._spawn_requested()
        for key, _events in selector.select(self._select_timeout()):
            if key.data is None:
                self._drain_wake_pipe()
            else:
                handler, worker = key.data
                try:
                    handler(worker)
                except Exception:
                    logger.exception("tasker: error in the process listener")
        self._expire_deadlines()

    def _break(self, error: Exception) -> None:
        """The listener cannot go on: kill the workers and fail every task, now and later."""
        failure = RuntimeError(f"the tasker process pool failed: {error!r}")
        failure.__cause__ = error
        with self._lock:
            self._closing = True
            self._failure = failure
            jobs = [job for job in self._jobs.values() if not job.finished]
            self._jobs.clear()
            self._queue.clear()
            self._queued = 0
            self._idle.clear()
            self._deadline_jobs.clear()
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            self._kill(worker)
            worker.alive = False
            with contextlib.suppress(Exception):
                worker.process.join(5.0)
                worker.process.close()
            with worker.send_lock:
                if worker.sock is not None:
                    worker.sock.close()
                    worker.sock = None
        for job in jobs:
            self._host._finish(job.task, error=failure)

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _select_timeout(self) -> float | None:
        with self._lock:
            deadlines = [
                at
                for job in self._deadline_jobs
                for at in (job.timeout_at, job.kill_at)
                if at is not None
            ]
            if self._shutdown_at is not None:
                deadlines.append(self._shutdown_at)
        if not deadlines:
            return None
        # Capped: epoll refuses timeouts beyond about 24 days (and inf).
        return min(_MAX_WAIT, max(0.0, min(deadlines) - time.monotonic()))

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        to_kill: list[_Worker] = []
        timed_out: list[_Job] = []
        with self._lock:
            for job in list(self._deadline_jobs):
                if job.kill_at is not None and job.kill_at <= now:
                    job.kill_at = None
                    job.killed = True
                    if job.worker is not None:
                        to_kill.append(job.worker)
                if job.timeout_at is not None and job.timeout_at <= now:
                    # Paused time does not count: if some was, look again later.
                    assert job.timeout is not None
                    left = job.timeout - job.task._active_run_time(now)
                    if left > 0.001:
                        job.timeout_at = now + left
                    else:
                        job.timeout_at = None
                        timed_out.append(job)
                if job.kill_at is None and job.timeout_at is None:
                    self._deadline_jobs.discard(job)
            if self._shutdown_at is not None and self._shutdown_at <= now:
                self._shutdown_at = None
                to_kill.extend(self._workers.values())
        for worker in to_kill:
            self._kill(worker)
        for job in timed_out:
            if self._host._mark_timed_out(job.task):
                with self._lock:
                    if job.state == _IN_WORKER:
                        self._stop_job_locked(job)
                job.task._credit.stopped()

    def _kill(self, worker: _Worker) -> None:
        """SIGKILL the worker's process group (its own children too); listener thread only."""
        if not worker.alive:
            return
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except OSError:
            # Not yet a group leader (still starting): the process alone.
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)

    # ---------------------------------------------------- starting workers

    def _spawn_requested(self) -> None:
        with self._lock:
            slots, self._to_spawn = self._to_spawn, []
        for slot in slots:
            try:
                worker = self._spawn(slot)
            except Exception as error:
                logger.exception("tasker: could not start a worker process")
                self._startup_failed(None, error)
                with self._lock:
                    self._starting -= 1
                    self._free_slots.append(slot)
                continue
            with self._lock:
                self._workers[slot] = worker
                closing = self._closing
            if closing:
                self._kill(worker)

    def _spawn(self, slot: int) -> _Worker:
        if self._context is None:
            self._make_context()  # sets the fork server's preload before it starts
        flags = self._flags
        selector = self._selector
        assert flags is not None and selector is not None
        parent_sock, child_sock = socket.socketpair()
        try:
            for sock in (parent_sock, child_sock):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
            close_fds: tuple[int, ...] = ()
            if self._method == "fork":
                with self._lock:
                    others = [w.sock.fileno() for w in self._workers.values() if w.sock]
                close_fds = (parent_sock.fileno(), self._wake_r, self._wake_w, *others)
            options = WorkerOptions(
                init_call=self._init_call(),
                update_rate=self._update_rate,
                nice=self._nice,
                log_level=logging.getLogger().getEffectiveLevel(),
                close_fds=close_fds,
                flag_stride=FLAG_STRIDE,
                pause_offset=self._pause_offset,
            )
            process = worker_process_class(self._method)(
                target=worker_main,
                args=(child_sock, FdArg(flags.fd), flags.size, slot, options),
                name=f"tasker-worker-{slot}",
                daemon=False,
            )
            process.start()
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        # We reap our workers ourselves; multiprocessing must not join them at exit.
        children = getattr(multiprocessing.process, "_children", None)
        if children is not None:
            children.discard(process)
        worker = _Worker(slot, process, parent_sock)
        selector.register(parent_sock, selectors.EVENT_READ, (self._on_readable, worker))
        selector.register(worker.sentinel, selectors.EVENT_READ, (self._on_exit, worker))
        return worker

    def _make_context(self) -> BaseContext:
        """The multiprocessing context; notes the helper processes tasker starts."""
        with _registry_lock:
            if self._method == "forkserver":
                from multiprocessing import forkserver

                server = getattr(forkserver, "_forkserver", None)
                if server is not None and getattr(server, "_forkserver_pid", 0) is None:
                    _started_helpers.add("forkserver")
                    # Never "__main__" (the default): workers do not import the
                    # application's main script, and the fork server must not
                    # either (a GTK application's would load GTK and open a
                    # display there, and hand both to every worker by fork).
                    preload = [
                        name
                        for name in getattr(server, "_preload_modules", [])
                        if name != "__main__"
                    ]
                    wanted = list(_WORKER_MODULES)
                    if self._ahead or _BY_VALUE_MODULE in sys.modules:
                        wanted.append(_BY_VALUE_MODULE)
                    for name in wanted:
                        if name not in preload:
                            preload.append(name)
                    server.set_forkserver_preload(preload)
            if self._method != "fork":
                from multiprocessing import resource_tracker

                tracker = getattr(resource_tracker, "_resource_tracker", None)
                if tracker is not None and getattr(tracker, "_pid", 0) is None:
                    _started_helpers.add("tracker")
        if self._ahead:
            # In the parent too, here in the listener thread: the first task
            # that travels by value then does not import it on the main thread.
            by_value()
        self._context = multiprocessing.get_context(self._method)
        return self._context

    def _init_call(self) -> bytes | None:
        """The pickled ``(initializer, initargs)`` workers run first (pickled once, by value
        where needed); ``SerializationError`` if it cannot be pickled."""
        if self._initializer is None:
            return None
        if self._init_data is None:
            try:
                self._init_data = dumps_inband((self._initializer, self._initargs))
            except Exception as unnamed:
                error: Exception = unnamed
                try:
                    dump_call(self._initializer, self._initargs, {})
                except SerializationError as named:  # names the piece, as for a task
                    error = named
                raise SerializationError(f"the worker initializer: {error}") from error
        return self._init_data

    # ------------------------------------------------------ worker messages

    def _on_readable(self, worker: _Worker) -> None:
        reader = worker.reader
        try:
            open_ = reader.feed()
        except OSError:
            open_ = False
        self._handle_frames(worker)
        if not open_ and worker.registered:
            # End of stream: the process is exiting; its sentinel follows.
            worker.registered = False
            if self._selector is not None and worker.sock is not None:
                self._selector.unregister(worker.sock)

    def _handle_frames(self, worker: _Worker) -> None:
        frames = worker.reader.frames
        if not frames:
            return
        refill = False
        try:
            for kind, tag, aux, segments in frames:
                if kind in _FREES_A_TURN:
                    refill = True
                try:
                    self._handle(worker, kind, tag, aux, segments)
                except Exception:
                    logger.exception("tasker: bad message from worker %d", worker.pid)
            if refill:
                # Once per read, not per result: the tasks it lets the worker
                # have ahead go out in one system call.
                self._send_ahead(worker)
        finally:
            frames.clear()

    def _handle(self, worker: _Worker, kind: int, tag: int, aux: int, segments: list[Any]) -> None:
        # Messages about a task come in order: its progress and events, then
        # its result; then those of the task sent ahead, which is the worker's
        # current job by then. A tag that does not match is late news.
        job = worker.job
        if kind == ch.PROGRESS:
            if job is not None and job.tag == tag and not job.finished:
                progress, message = pickle.loads(segments[0])
                job.task._report.set(progress, message)
        elif kind == ch.EVENT:
            if job is not None and job.tag == tag:
                self._on_event(job, aux, segments)
        elif kind == ch.BLOCKED:
            if job is not None and job.tag == tag:
                self._on_blocked(worker, job, segments)
        elif kind == ch.DONE_OK or kind == ch.DONE_ERROR or kind == ch.SKIPPED:
            if job is not None and job.tag == tag:
                self._on_done(worker, job, kind, segments)
        elif kind == ch.PAUSED:
            if job is not None and job.tag == tag and not job.finished:
                self._host._mark_paused(job.task)
        elif kind == ch.LOG:
            handle_forwarded(segments[0], worker.pid)
        elif kind == ch.READY:
            self._on_ready(worker)
        elif kind == ch.INIT_FAILED:
            self._on_init_failed(worker, segments)

    def _on_event(self, job: _Job, aux: int, segments: list[Any]) -> None:
        # The event's credit is what it took on the wire, counted as the worker did.
        # Segments are bytes-format memoryviews or bytearrays: len() is their size.
        size = len(segments[1])
        if len(segments) > 2:
            for segment in segments[2:]:
                size += len(segment)
        task = job.task
        credit = task._credit
        credit.spent += size  # the listener is the only writer for a process task: no lock
        if job.finished:
            credit.release(size)
            return
        name = bytes(segments[0]).decode("utf-8", "surrogatepass")
        try:
            data = loads(segments[1], segments[2:])
        except Exception as error:
            credit.release(size)
            if job.failure is None:
                job.failure = _unpickling_error(f"the payload of event {name!r}", error)
            return
        self._host._deliver_event(task, name, data, size, aux == 1)

    def _on_blocked(self, worker: _Worker, job: _Job, segments: list[Any]) -> None:
        """The worker waits for event credit: grant it once the drain has delivered enough."""
        need = ch.COUNT.unpack_from(segments[0])[0]
        flags = self._flags
        stopping = job.finished or flags is None or bool(flags[job.flag])
        grant = functools.partial(self._send_grant, worker, job.tag)
        job.task._credit.remote_blocked(need, grant, stopping)

    def _send_grant(self, worker: _Worker, tag: int, delivered: int) -> None:
        """Tell a worker waiting for credit how much of its task's events was delivered.

        Called by the drain on the main thread, the listener or a cancelling
        thread; a waiting worker reads its channel, so this small send never blocks.
        """
        self._send(worker, ch.GRANT, tag, [ch.COUNT.pack(delivered)])

    def _on_done(self, worker: _Worker, job: _Job, kind: int, segments: list[Any]) -> None:
        # SKIPPED: the worker found the task's flag set before starting it.
        # The host still needs the outcome unless it was told already.
        report = not job.finished
        result: Any = None
        error: BaseException | None = None
        if report and kind != ch.SKIPPED:
            meta = pickle.loads(segments[0])
            if kind == ch.DONE_OK:
                try:
                    result = loads(segments[1], segments[2:])
                except Exception as unpickling:
                    error = _unpickling_error(f"the result of type {meta[2]}", unpickling)
            else:
                error = load_exception(meta[2], segments[1])
            if job.failure is not None:
                result, error = None, job.failure
            progress, message = meta[0], meta[1]
            task_report = job.task._report
            if task_report.progress != progress or task_report.message != message:
                task_report.set(progress, message)
        elapsed = time.monotonic() - job.started_at
        with self._lock:
            if kind != ch.SKIPPED:
                worker.depth = _prefetch_depth(elapsed)
            self._forget_locked(job)
            ahead = worker.ahead.popleft() if worker.ahead else None
            stop = False
            if ahead is not None:
                worker.ahead_bytes -= ahead.size
                worker.job = ahead
            else:
                stop = self._park_locked(worker)
            head = worker.job
        # The worker gets its next task before the host hears about this one
        # (more are sent ahead once all the frames of this read are handled).
        if ahead is not None:
            self._promote(worker, ahead)
        elif head is not None:
            self._dispatch(worker, head)
        elif stop:
            self._send_stop(worker)
        job.task._credit.forget_remote()
        if report:
            self._host._finish(job.task, result=result, error=error)

    def _on_ready(self, worker: _Worker) -> None:
        with self._lock:
            if not worker.alive or worker.ready:
                return
            worker.ready = True
            self._starting -= 1
            if worker.retiring:
                self._retiring_starting -= 1
            stop = self._park_locked(worker)
            job = worker.job
        if job is not None:
            self._dispatch(worker, job)
        elif stop:
            self._send_stop(worker)

    def _on_init_failed(self, worker: _Worker, segments: list[Any]) -> None:
        meta = pickle.loads(segments[0])
        data = bytes(segments[1])
        worker.init_failed = True
        logger.error(
            "tasker: the worker initializer failed in process %d:\n%s", worker.pid, meta[2]
        )
        self._startup_failed(worker, lambda: load_exception(meta, data))

    def _startup_failed(
        self, worker: _Worker | None, error: BaseException | Callable[[], BaseException]
    ) -> None:
        """A worker could not start: fail the queued tasks unless a ready worker can run them.

        No new worker is started until the next ``submit``, so a broken
        initializer does not restart workers forever.
        """
        with self._lock:
            self._init_failed = True
            if any(w.ready and w.alive for w in self._workers.values()):
                return
            jobs = []
            while (job := self._next_job_locked()) is not None:
                self._forget_locked(job)
                jobs.append(job)
        for job in jobs:
            failure = error() if callable(error) else error
            self._host._finish(job.task, error=failure)

    # ---------------------------------------------------- worker exit

    def _on_exit(self, worker: _Worker) -> None:
        """The worker process ended: deliver what it sent, fail its task, replace it."""
        with self._lock:
            worker.exiting = True
            if worker in self._idle:
                self._idle.remove(worker)
        selector = self._selector
        assert selector is not None
        selector.unregister(worker.sentinel)
        sock = worker.sock
        if sock is not None:
            if worker.registered:
                worker.registered = False
                selector.unregister(sock)
            self._drain(worker, sock)
        # The group outlives its leader: take down what the function started.
        self._kill(worker)
        process = worker.process
        process.join()
        exitcode = process.exitcode
        process.close()
        with worker.send_lock:
            worker.sock = None
            if sock is not None:
                sock.close()
        with self._lock:
            worker.alive = False
            self._workers.pop(worker.slot, None)
            self._free_slots.append(worker.slot)
            if worker in self._idle:
                self._idle.remove(worker)
            was_ready = worker.ready
            if not was_ready:
                self._starting -= 1
            retired = worker.retiring
            if retired:
                self._retiring -= 1
                if not was_ready:
                    self._retiring_starting -= 1
            job = worker.job
            if job is not None:
                self._forget_locked(job)
                if job.unsent and not self._closing and not job.finished:
                    self._requeue_locked(job)
                    job = None
            refused = []
            # They never started (their predecessor's result did not arrive):
            # back to the head of the queue, in their order.
            for ahead in reversed(list(worker.ahead)):
                self._forget_locked(ahead)
                if self._closing:
                    if not ahead.finished:
                        refused.append(ahead)
                elif not ahead.finished:
                    self._requeue_locked(ahead)
            if (
                not retired
                and not self._closing
                and not self._init_failed
                and (was_ready or job is not None)
            ):
                # Keep the pool at its size: a replacement starts at the
                # listener's next turn (it calls _spawn_requested every loop).
                self._free_slots.remove(worker.slot)
                self._to_spawn.append(worker.slot)
                self._starting += 1
            else:
                while self._want_worker_locked():
                    pass  # one reservation per queued task that needs a worker
        for ahead in reversed(refused):
            self._host._finish(ahead.task, error=ManagerShutdownError("the process pool shut down"))
        if job is not None and not job.finished:
            error = job.failure or WorkerCrashedError(worker.pid, exitcode)
            self._host._finish(job.task, error=error)
        elif (
            job is None
            and not was_ready
            and not retired
            and not worker.init_failed
            and not self._closing
        ):
            failure = WorkerCrashedError(worker.pid, exitcode)
            failure.args = (f"worker process {worker.pid} {_how(exitcode)} while starting",)
            self._startup_failed(worker, failure)

    def _requeue_locked(self, job: _Job) -> None:
        """Put a job that never started back at the head of the queue."""
        job.state = _QUEUED
        job.worker = None
        job.unsent = False
        self._jobs[job.task.id] = job
        self._queue.appendleft(job)
        self._queued += 1

    def _drain(self, worker: _Worker, sock: socket.socket) -> None:
        # Events and logs the worker sent before it died are still in the socket.
        reader = worker.reader
        try:
            sock.setblocking(False)
            while reader.feed():
                self._handle_frames(worker)
        except OSError:
            pass  # BlockingIOError: all read (a grandchild may hold the other end open)
        self._handle_frames(worker)

    # ------------------------------------------------------------ cleanup

    def _release(self) -> None:
        """Close the flags region and wake-up pipe; stop helper processes we started."""
        with self._lock:
            flags, self._flags = self._flags, None
            fds = [fd for fd in (self._wake_r, self._wake_w) if fd >= 0]
            self._wake_r = self._wake_w = -1
        for fd in fds:
            os.close(fd)
        if flags is not None:
            flags.close()
        with _registry_lock:
            _live_pools.discard(id(self))
        stop_unused_helpers()


def stop_unused_helpers(started: frozenset[str] = frozenset()) -> None:
    """Stop the fork server and resource tracker tasker started, once nothing needs them.

    ``started`` adds helpers the caller started itself (``"tracker"``,
    ``"forkserver"``), e.g. ``tasker.compat.rayforge`` for its
    ``multiprocessing.Manager``.
    """
    with _registry_lock:
        _started_helpers.update(started)
        if _live_pools or multiprocessing.active_children():
            return  # another pool, or someone else's processes, may still use them
        helpers = set(_started_helpers)
        _started_helpers.clear()
    # Stopping waits for the helper to exit, which it does once no process
    # holds its descriptors any more: ours are all gone by now.
    if "forkserver" in helpers:
        from multiprocessing import forkserver

        server = getattr(forkserver, "_forkserver", None)
        if server is not None and hasattr(server, "_stop"):
            try:
                server._stop()
            except Exception:
                logger.debug("tasker: could not stop the fork server", exc_info=True)
    if "tracker" in helpers:
        from multiprocessing import resource_tracker

        tracker = getattr(resource_tracker, "_resource_tracker", None)
        if tracker is not None and hasattr(tracker, "_stop"):
            try:
                tracker._stop()
            except Exception:
                logger.debug("tasker: could not stop the resource tracker", exc_info=True)


#: Frames after which a worker may take more tasks ahead.
_FREES_A_TURN = frozenset({ch.DONE_OK, ch.DONE_ERROR, ch.SKIPPED})


def _prefetch_depth(elapsed: float) -> int:
    """How many tasks a worker whose last task took ``elapsed`` seconds may have ahead."""
    if elapsed >= PREFETCH_LIMIT:
        return 0
    return min(PREFETCH_DEPTH, max(1, int(PREFETCH_LIMIT / max(elapsed, 1e-9))))


def _shut_down() -> ManagerShutdownError:
    return ManagerShutdownError("the process pool is shut down")


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return "died" if exitcode is None else f"exited with code {exitcode}"


def _unpickling_error(what: str, error: Exception) -> TaskError:
    text = "".join(traceback.format_exception(error))
    failure = TaskError(
        describe_type(error), f"{what} could not be unpickled in the parent: {error}", text
    )
    failure.__cause__ = error
    return failure
