"""Coroutine and thread tasks: how they run, on tasker's asyncio loop and thread pool.

These tasks share the application's memory, so their ``ExecutionContext``
talks to the manager directly (``_LocalBackend``); process tasks go through
``_process`` or another ``ExecutionBackend`` instead. ``LocalTasks`` reports
through the manager's host calls (``_mark_running``, ``_finish``,
``_mark_timed_out``), which alone change a task's status.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._context import ExecutionContext
from ._flow import send_async, send_now, send_waiting
from ._task import Task, TaskKind

if TYPE_CHECKING:
    from gi.repository import Gio

    from ._manager import TaskManager

__all__ = ["LocalTasks"]

logger = logging.getLogger("tasker")


class LocalTasks:
    """Runs the manager's coroutine tasks (on its loop) and thread tasks (on its pool)."""

    def __init__(self, manager: TaskManager) -> None:
        self._manager = manager
        self._async_tasks: dict[int, Any] = {}  # touched on the coroutine loop's thread only

    def context(self, task: Task[Any]) -> ExecutionContext:
        return ExecutionContext(
            task._report, task._cancel_flag, 0, _LocalBackend(self._manager, task), pause_index=1
        )

    def cancellable(self, task: Task[Any]) -> Gio.Cancellable:
        from gi.repository import Gio

        with self._manager._lock:
            cancellable = task._cancellable
            if cancellable is None:
                cancellable = task._cancellable = Gio.Cancellable()
            stopping = task._stop_reason is not None
        if stopping:
            cancellable.cancel()
        return cancellable

    # coroutine tasks: these run on the manager's asyncio loop thread

    def start_coroutine(
        self,
        task: Task[Any],
        coro_fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        restart = functools.partial(
            self._manager._loop().call_soon, self.start_coroutine, task, coro_fn, args, kwargs
        )
        if not self._manager._mark_running(task, None, restart):
            return
        import asyncio

        try:
            awaitable = coro_fn(self.context(task), *args, **kwargs)
        except BaseException as error:
            self._manager._finish(task, error=error)
            return
        loop = asyncio.get_running_loop()
        handle = loop.create_task(self._run_coroutine(task, awaitable))
        handle.add_done_callback(functools.partial(self._coroutine_ended, task, awaitable))
        self._async_tasks[task.id] = handle
        if task.timeout is not None:
            loop.call_later(task.timeout, self._check_timeout, task)

    async def _run_coroutine(self, task: Task[Any], awaitable: Awaitable[Any]) -> None:
        import asyncio

        try:
            result = await awaitable
        except asyncio.CancelledError:
            self._manager._finish(task, cancelled=True)
        except BaseException as error:
            self._manager._finish(task, error=error)
        else:
            self._manager._finish(task, result=result)

    def _coroutine_ended(self, task: Task[Any], awaitable: Awaitable[Any], handle: Any) -> None:
        self._async_tasks.pop(task.id, None)
        if handle.cancelled():
            # Cancelled before its first step, so _run_coroutine's handlers never
            # ran: finish the task here and close the coroutine that never started.
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
            self._manager._finish(task, cancelled=True)

    def cancel_coroutine(self, task: Task[Any]) -> None:
        handle = self._async_tasks.get(task.id)
        if handle is not None:
            handle.cancel()

    def _check_timeout(self, task: Task[Any]) -> None:
        """On the loop thread: time a coroutine or thread task out, unless it was paused.

        Paused time does not count: then the check comes back when the
        unpaused time could be up.
        """
        if task._status.is_final or task.timeout is None:
            return
        left = task.timeout - task._active_run_time(time.monotonic())
        if left > 0.001:
            self._manager._loop().call_later(left, self._check_timeout, task)
        elif self._manager._mark_timed_out(task) and task.kind is TaskKind.COROUTINE:
            self.cancel_coroutine(task)

    # thread tasks: this runs on a pool thread

    def run_thread_task(
        self,
        task: Task[Any],
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        restart = functools.partial(
            self._manager._threads().submit,
            functools.partial(self.run_thread_task, task, func, args, kwargs),
        )
        if not self._manager._mark_running(task, threading.current_thread().name, restart):
            return
        if task.timeout is not None:
            self._manager._loop().call_later(task.timeout, self._check_timeout, task)
        try:
            result = func(self.context(task), *args, **kwargs)
        except BaseException as error:
            finished = self._manager._finish(task, error=error)
            outcome = f"exception {error!r}"
        else:
            finished = self._manager._finish(task, result=result)
            outcome = f"result of type {type(result).__name__}"
        if not finished:
            # shutdown() gave up waiting and finished it as cancelled.
            logger.warning(
                "thread task %r returned after shutdown had ended it as cancelled; "
                "its %s is discarded",
                task.key,
                outcome,
            )


class _LocalBackend:
    """Context backend for coroutine and thread tasks, which share our memory."""

    __slots__ = ("_manager", "_task")

    def __init__(self, manager: TaskManager, task: Task[Any]) -> None:
        self._manager = manager
        self._task = task

    def send_event(self, name: str, data: Any, coalesce: bool) -> None:
        task = self._task
        if task.kind is TaskKind.THREAD:
            send_waiting(self._manager, task, name, data, coalesce)
        else:
            send_now(self._manager, task, name, data, coalesce)

    async def send_event_async(self, name: str, data: Any, coalesce: bool) -> None:
        task = self._task
        if task.kind is TaskKind.THREAD:
            send_waiting(self._manager, task, name, data, coalesce)
        else:
            await send_async(self._manager, task, name, data, coalesce)

    def flush(self) -> None:
        self._manager._delivery.mark_dirty(self._task._report, urgent=True)

    def cancellable(self) -> Gio.Cancellable:
        return self._manager._local.cancellable(self._task)

    def wait_while_paused(self) -> None:
        self._manager._pausing.wait_while_paused(self._task)

    async def async_wait_while_paused(self) -> None:
        await self._manager._pausing.async_wait_while_paused(self._task)
