"""Two-phase pause and resume of tasks (``task.pause()``, ``context.checkpoint()``).

The pause state lives on the task (``Task._pause_state``) and changes only
here, under the manager's lock, next to the status (which pausing never
changes: a paused task stays ``pending`` or ``running``)::

    None --pause()--> "pausing" --checkpoint()--> "paused" --resume()--> None
    None --pause() of a pending task, or freeze=True--> "paused"

* A pause request sets the task's pause byte (``Task._cancel_flag[1]``; for a
  process task its copy in the pool's shared flag region), so
  ``checkpoint()`` costs one byte read while no pause is asked for. The
  function's next ``checkpoint()`` reports "paused" and blocks until the byte
  is cleared (resume) or the cancel byte is set (cancel, timeout, shutdown).
* A paused pending task does not start: a coroutine or thread task that
  reaches its start while paused is held (``Task._held``: how to start it
  again) until resumed; the process pool keeps a paused queued task out of
  its queue (see ``ProcessPool.pause``).
* ``freeze=True`` stops a running process task's worker process group with
  SIGSTOP at once and ``resume()`` sends SIGCONT; cancelling a frozen task
  continues it first, so the usual cancel grace and kill apply.
* Paused time is left out of ``task.timings``, timeouts and the ETA clock
  (``Task._end_pause_locked``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ._task import TaskKind, TaskStatus

if TYPE_CHECKING:
    from ._manager import TaskManager
    from ._task import Task

__all__ = ["PauseControl"]

#: How often a paused coroutine looks whether it was resumed (it also wakes on cancel).
_ASYNC_POLL = 0.02


class PauseControl:
    """The manager's pause and resume bookkeeping (uses the manager's lock)."""

    def __init__(self, manager: TaskManager) -> None:
        self._manager = manager
        self._lock = manager._lock

    def pause(self, task: Task[Any], freeze: bool) -> bool:
        """See ``Task.pause``."""
        if not isinstance(freeze, bool):
            raise TypeError(f"freeze must be True or False, not {freeze!r}")
        if freeze and task.kind is not TaskKind.PROCESS:
            raise ValueError(
                f"freeze=True stops a worker process; task {task.key!r} is a {task.kind.value} "
                "task: pause it without freeze and call context.checkpoint() in it"
            )
        backend = self._backend(task)
        if task.kind is TaskKind.PROCESS and backend is None:
            raise RuntimeError(
                f"task {task.key!r} runs on {type(self._manager._process_backend).__name__}, "
                "which cannot pause tasks"
            )
        with self._lock:
            if task._status.is_final or task._stop_reason is not None or task._pause_state:
                return False
            task._cancel_flag[1] = 1
            if task._resumed is None:
                task._resumed = threading.Event()
            else:
                task._resumed.clear()
            pending = task._status is TaskStatus.PENDING
            if pending or freeze:
                # A pending task is paused as it is; a frozen one stops at once.
                task._pause_state = "paused"
                task._pause_began = time.monotonic()
                task._frozen = freeze and not pending
            else:
                task._pause_state = "pausing"
        if backend is not None:
            backend.pause(task, freeze and not pending)
        self._manager._delivery.post(None)
        return True

    def can_pause(self, task: Task[Any]) -> bool:
        """False for a process task whose backend cannot pause (``tasker.dask``)."""
        return task.kind is not TaskKind.PROCESS or self._backend(task) is not None

    def _backend(self, task: Task[Any]) -> Any:
        """The backend that pauses a process task (it has ``pause``/``resume``), or None."""
        if task.kind is not TaskKind.PROCESS:
            return None
        backend = self._manager._process_backend
        if backend is None:  # submitted before any backend was chosen: cannot happen
            return None
        if callable(getattr(backend, "pause", None)) and callable(getattr(backend, "resume", None)):
            return backend
        return None

    def resume(self, task: Task[Any]) -> bool:
        """See ``Task.resume``."""
        with self._lock:
            if task._pause_state is None or task._status.is_final:
                return False
            task._pause_state = None
            task._cancel_flag[1] = 0
            task._end_pause_locked(time.monotonic())
            held, task._held = task._held, None
            task._frozen = False
            event = task._resumed
        if event is not None:
            event.set()
        backend = self._backend(task)
        if backend is not None:
            backend.resume(task)
        if held is not None:
            held()  # a pending task that reached its start while paused: start it now
        self._manager._delivery.post(None)
        return True

    def hold_locked(self, task: Task[Any], restart: Any) -> bool:
        """At the start of a task (lock held): True if it is paused and must wait.

        ``restart`` starts it again (None for a process task, which the pool
        held back already: one that reached a worker anyway pauses at its
        first checkpoint, so it is "pausing" from now on).
        """
        if task._pause_state is None:
            return False
        if restart is not None:
            task._held = restart
            return True
        task._end_pause_locked(time.monotonic())
        task._pause_state = "pausing"
        return False

    def mark_paused(self, task: Task[Any]) -> None:
        """The task's function reached a checkpoint with a pause requested: it is paused now."""
        with self._lock:
            if task._pause_state != "pausing" or task._status.is_final:
                return
            task._pause_state = "paused"
            task._pause_began = time.monotonic()
        self._manager._delivery.post(None)

    def finished_locked(self, task: Task[Any]) -> threading.Event | None:
        """The task just became final (lock held): end its pause; the event to set after."""
        if task._pause_state is None:
            return None
        task._end_pause_locked(task._finished or time.monotonic())
        task._pause_state = None
        task._held = None
        task._frozen = False
        return task._resumed

    def wait_while_paused(self, task: Task[Any]) -> None:
        """A thread task's ``checkpoint()`` with a pause requested: report it and block."""
        self.mark_paused(task)
        flags = task._cancel_flag
        event = task._resumed
        while flags[1] and not flags[0]:
            if event is None:
                return
            # Set by resume(), cancel and timeouts; the timeout is a safety net only.
            event.wait(1.0)

    async def async_wait_while_paused(self, task: Task[Any]) -> None:
        """A coroutine's ``acheckpoint()`` with a pause requested: report it and wait.

        It wakes on resume within ``_ASYNC_POLL`` seconds; a cancel interrupts
        the sleep at once (asyncio cancellation), a timeout within the poll.
        """
        import asyncio

        self.mark_paused(task)
        flags = task._cancel_flag
        while flags[1] and not flags[0]:
            await asyncio.sleep(_ASYNC_POLL)
