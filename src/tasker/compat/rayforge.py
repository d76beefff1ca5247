"""Rayforge's tasker API, names and units exactly, over tasker.

An application written against ``rayforge.shared.tasker`` moves to tasker by
changing its imports::

    from tasker.compat.rayforge import Task, TaskManager, task_mgr

Differences that remain, and how this module bridges the others, are listed
in ``docs/migrating-from-rayforge.md``. In short: times are milliseconds
here (``wait_until_settled``, ``schedule_delayed_on_main_thread``), a
cancelled task's status is spelled ``"canceled"`` and its ``result()``
raises ``asyncio.CancelledError``, and the worker initializer is called as
``initializer(shared_state, *initargs)``. Everything runs on a plain
``tasker.TaskManager``, reachable as ``.core`` (for ``tasker.gtk`` views, say).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .. import _checks, _manager
from .._context import ExecutionContext
from .._main_calls import DelayedCall
from .._task import Task as CoreTask
from .._task import TaskKind, TaskStatus
from ._init import call_with_shared_state

if TYPE_CHECKING:
    from .._signal import TasksUpdatedSignal

__all__ = [
    "CancelledError",
    "ExecutionContext",
    "Task",
    "TaskManager",
    "TaskManagerProxy",
    "task_mgr",
]

T = TypeVar("T")
P = ParamSpec("P")

#: What ``Task.result()`` raises for a cancelled task, as in Rayforge.
CancelledError = asyncio.CancelledError

#: Rayforge's status strings ("canceled" with one l).
_STATUS = {
    TaskStatus.PENDING: "pending",
    TaskStatus.RUNNING: "running",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "canceled",
}


class Task:
    """A tasker task seen through Rayforge's ``Task`` interface.

    ``get_status()`` spells the cancelled status ``"canceled"``; ``result()``
    of a cancelled task raises ``asyncio.CancelledError`` and of an
    unfinished one ``asyncio.InvalidStateError``. ``core`` is the tasker
    ``Task`` underneath.
    """

    __slots__ = ("__weakref__", "core")

    def __init__(self, core: CoreTask[Any]) -> None:
        self.core = core

    def __repr__(self) -> str:
        return f"<rayforge Task {self.core.key!r} {self.get_status()}>"

    @property
    def key(self) -> Hashable:
        """The task's key."""
        return self.core.key

    @property
    def id(self) -> int:
        """An id unique for the process lifetime."""
        return self.core.id

    @property
    def task_type(self) -> str:
        """``"process"`` for process tasks, else ``"asyncio"`` (as Rayforge reports threads)."""
        return "process" if self.core.kind is TaskKind.PROCESS else "asyncio"

    @property
    def _visible(self) -> bool:
        return self.core.visible

    @property
    def _task_exception(self) -> BaseException | None:
        return self.core._task_exception

    def get_status(self) -> str:
        """``pending``, ``running``, ``completed``, ``failed`` or ``canceled``."""
        return _STATUS[self.core.get_status()]

    def get_progress(self) -> float:
        """The latest progress, 0.0 to 1.0 (1.0 once completed)."""
        return self.core.get_progress()

    def get_message(self) -> str | None:
        """The latest status message, or None."""
        return self.core.get_message()

    def is_final(self) -> bool:
        """True once the task completed, failed or was canceled."""
        return self.core.is_final()

    def is_running(self) -> bool:
        """True while the task's function runs."""
        return self.core.get_status() is TaskStatus.RUNNING

    def is_cancelled(self) -> bool:
        """True if cancellation was requested (or the task ended canceled)."""
        return self.core.is_cancelled()

    def cancel(self) -> None:
        """Request cancellation."""
        self.core.cancel()

    def result(self) -> Any:
        """The return value, or raise: its exception, ``CancelledError``, ``InvalidStateError``."""
        status = self.core.get_status()
        if status is TaskStatus.CANCELLED:
            raise CancelledError("Task was cancelled.")
        if not status.is_final:
            raise asyncio.InvalidStateError(
                f"result is not available for task in state '{_STATUS[status]}'"
            )
        return self.core.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.core.__await__()


class TaskManager:
    """Rayforge's ``TaskManager`` over a ``tasker.TaskManager`` (``core``).

    ``main_thread_scheduler(fn, *args)`` says where callbacks run (``None``:
    tasker's default, the GLib main loop when PyGObject is installed).
    ``worker_initializer(shared_state, *worker_initargs)`` runs in every
    worker process; without ``shared_state`` one is made as Rayforge makes it
    (a dict from a spawn-context ``multiprocessing.Manager()``), only when an
    initializer is given. Other keyword arguments are tasker's manager options
    (``max_workers=``, ``cancel_grace=``, ...).
    """

    def __init__(
        self,
        main_thread_scheduler: Callable[..., Any] | None = None,
        worker_initializer: Callable[..., None] | None = None,
        worker_initargs: tuple[Any, ...] = (),
        shared_state: Any = None,
        **options: Any,
    ) -> None:
        _check_options(options)
        if worker_initializer is not None and not callable(worker_initializer):
            raise TypeError(
                f"worker_initializer must be callable, not {type(worker_initializer).__name__}"
            )
        if not isinstance(worker_initargs, tuple | list):
            raise TypeError(
                f"worker_initargs must be a tuple, not {type(worker_initargs).__name__}"
            )
        self._state_manager: Any = None
        self._started_tracker = False
        if worker_initializer is not None and shared_state is None:
            import multiprocessing

            # As Rayforge does it. It starts the multiprocessing manager process
            # now (and the resource tracker, if none runs), which shutdown() stops.
            tracker_ran = _tracker_running()
            self._state_manager = multiprocessing.get_context("spawn").Manager()
            self._started_tracker = not tracker_ran and _tracker_running()
            shared_state = self._state_manager.dict()
        self._shared_state = shared_state
        if worker_initializer is not None:
            options["initializer"] = call_with_shared_state
            options["initargs"] = (worker_initializer, shared_state, *worker_initargs)
        #: The tasker ``TaskManager`` that does the work.
        self.core = _manager.TaskManager(main_thread_scheduler, **options)
        # Rayforge sends its own Task objects to tasks_updated handlers.
        from .._signal import TasksUpdatedSignal

        self.tasks_updated: TasksUpdatedSignal = TasksUpdatedSignal(
            "tasks_updated: handler(sender, tasks=[live Tasks], progress=float)"
        )
        self.core.tasks_updated.connect(self._forward_update)
        # The Task wrapper of each core task the application still holds, so it
        # sees the same object in every callback (weak: nothing is kept alive).
        self._wrappers: weakref.WeakValueDictionary[int, Task] = weakref.WeakValueDictionary()
        self._wrap_lock = threading.Lock()

    @property
    def shared_state(self) -> Any:
        """The object handed to the worker initializer (None without one)."""
        return self._shared_state

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop coroutine tasks run on (started on first access)."""
        return self.core.loop

    # ------------------------------------------------------------ starting tasks

    def add_coroutine(
        self,
        coro: Callable[..., Awaitable[Any]],
        *args: Any,
        key: Hashable | None = None,
        when_done: Callable[[Task], object] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``await coro(context, *args, **kwargs)`` on the manager's asyncio loop."""
        callbacks = self._callbacks(when_done, kwargs)
        return self._wrap(self.core.add_coroutine(coro, *args, key=key, **callbacks, **kwargs))

    def run_thread(
        self,
        func: Callable[..., Any],
        *args: Any,
        key: Hashable | None = None,
        when_done: Callable[[Task], object] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``func(context, *args, **kwargs)`` on a worker thread."""
        callbacks = self._callbacks(when_done, kwargs)
        return self._wrap(self.core.run_thread(func, *args, key=key, **callbacks, **kwargs))

    def run_process(
        self,
        func: Callable[..., Any],
        *args: Any,
        key: Hashable | None = None,
        when_done: Callable[[Task], object] | None = None,
        when_event: Callable[[Task, str, Any], object] | None = None,
        visible: bool = True,
        **kwargs: Any,
    ) -> Task:
        """Run ``func(context, *args, **kwargs)`` in a worker process.

        ``visible=False`` keeps the task out of ``tasks_updated`` and views.
        """
        kwargs["when_event"] = when_event
        callbacks = self._callbacks(when_done, kwargs)
        return self._wrap(
            self.core.run_process(func, *args, key=key, visible=visible, **callbacks, **kwargs)
        )

    def _callbacks(
        self, when_done: Callable[[Task], object] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Wrap the callbacks so they receive Rayforge ``Task`` objects.

        Takes ``when_event`` out of ``kwargs`` (the rest goes to the function).
        """
        callbacks: dict[str, Any] = {}
        if when_done is not None:
            callbacks["when_done"] = lambda core: when_done(self._wrap(core))
        when_event = kwargs.pop("when_event", None)
        if when_event is not None:
            callbacks["when_event"] = lambda core, name, data: when_event(
                self._wrap(core), name, data
            )
        return callbacks

    def _wrap(self, core: CoreTask[Any]) -> Task:
        with self._wrap_lock:
            task = self._wrappers.get(core.id)
            if task is None:
                task = self._wrappers[core.id] = Task(core)
            return task

    def _forward_update(
        self, sender: object, *, tasks: list[CoreTask[Any]], progress: float
    ) -> None:
        if self.tasks_updated.receivers:
            wrapped = [self._wrap(task) for task in tasks]
            self.tasks_updated.send(self, tasks=wrapped, progress=progress)

    # ---------------------------------------------------------------- queries

    def cancel_task(self, key: Hashable) -> bool:
        """Cancel the live task with ``key``; True if there was one."""
        return self.core.cancel_task(key)

    def cancel_task_by_id(self, task_id: int) -> bool:
        """Cancel the live task with this id (hidden ones too); True if there was one."""
        for task in self.core:
            if task.id == task_id:
                return task.cancel()
        return False

    def cancel_all(self) -> int:
        """Cancel every live task; how many were cancelled."""
        return self.core.cancel_all()

    def get_task(self, key: Hashable) -> Task | None:
        """The live task with ``key``, or None."""
        task = self.core.get_task(key)
        return None if task is None else self._wrap(task)

    def __iter__(self) -> Iterator[Task]:
        """The live tasks."""
        return iter([self._wrap(task) for task in self.core])

    def __len__(self) -> int:
        """The number of live tasks."""
        return len(self.core)

    def has_tasks(self) -> bool:
        """True while any task is live."""
        return self.core.has_tasks()

    def get_overall_progress(self) -> float:
        """The progress of the visible work since the manager was last idle."""
        return self.core.get_overall_progress()

    def wait_until_settled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` **milliseconds** until no task is live; False on timeout."""
        _check_ms(timeout, "timeout")
        return self.core.wait_until_settled(timeout / 1000.0)

    # ---------------------------------------------------------- the main thread

    def schedule_on_main_thread(
        self, callback: Callable[P, object], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Run ``callback(*args, **kwargs)`` on the main thread, soon."""
        self.core.schedule_on_main_thread(callback, *args, **kwargs)

    def schedule_delayed_on_main_thread(
        self, delay_ms: float, callback: Callable[P, object], *args: P.args, **kwargs: P.kwargs
    ) -> DelayedCall:
        """Run ``callback`` on the main thread after ``delay_ms`` **milliseconds**.

        Returns a handle whose ``cancel()`` prevents the call.
        """
        _check_ms(delay_ms, "delay_ms")
        return self.core.schedule_delayed_on_main_thread(
            delay_ms / 1000.0, callback, *args, **kwargs
        )

    async def run_on_main_thread(
        self, callback: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``callback`` on the main thread and return its result (await it)."""
        return await self.core.run_on_main_thread(callback, *args, **kwargs)

    def call_on_main_thread(
        self, callback: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> T:
        """Run ``callback`` on the main thread and wait for its result (``timeout`` in seconds)."""
        return self.core.call_on_main_thread(callback, *args, timeout=timeout, **kwargs)

    async def run_in_executor(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on tasker's worker threads; await its result."""
        return await self.core.run_in_executor(func, *args)

    # ---------------------------------------------------------------- lifetime

    def restart_worker_pool(self) -> None:
        """New and waiting process tasks go to fresh workers; running ones finish first."""
        self.core.restart_worker_pool()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every task, stop workers and threads (``timeout`` in seconds, as in tasker)."""
        self.core.shutdown(timeout)
        manager, self._state_manager = self._state_manager, None
        if manager is not None:
            manager.shutdown()
            from .._process._pool import stop_unused_helpers

            # No child process left behind: the tracker goes once nothing needs it.
            stop_unused_helpers(frozenset({"tracker"}) if self._started_tracker else frozenset())


class TaskManagerProxy:
    """Creates the real ``TaskManager`` on first use; ``initialize(**kwargs)`` configures it."""

    def __init__(self) -> None:
        self._instance: TaskManager | None = None
        self._lock = threading.Lock()
        self._init_kwargs: dict[str, Any] = {}

    def initialize(self, **kwargs: Any) -> None:
        """Give the ``TaskManager`` arguments; only before first use (else ``RuntimeError``)."""
        with self._lock:
            if self._instance is not None:
                raise RuntimeError("TaskManager has already been initialized.")
            _check_options({k: v for k, v in kwargs.items() if k not in _MANAGER_ARGS})
            self._init_kwargs = kwargs

    def restart_worker_pool(self) -> None:
        """Restart the workers of the manager, if it exists (else nothing to do)."""
        if self._instance is not None:
            self._instance.restart_worker_pool()

    def _get_instance(self) -> TaskManager:
        instance = self._instance
        if instance is None:
            with self._lock:
                if self._instance is None:
                    self._instance = TaskManager(**self._init_kwargs)
                instance = self._instance
        return instance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_instance(), name)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._get_instance())

    def __len__(self) -> int:
        return len(self._get_instance())

    def __repr__(self) -> str:
        state = "not yet created" if self._instance is None else "active"
        return f"<tasker.compat.rayforge.task_mgr {state}>"


_MANAGER_ARGS = frozenset(
    {"main_thread_scheduler", "worker_initializer", "worker_initargs", "shared_state"}
)


def _tracker_running() -> bool:
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    return getattr(tracker, "_pid", None) is not None


def _check_options(options: dict[str, Any]) -> None:
    """tasker's manager options are welcome; its initializer ones clash with Rayforge's."""
    for name in ("initializer", "initargs"):
        if name in options:
            raise TypeError(f"use worker_{name}= (Rayforge's name), not {name}=")
    unknown = set(options) - _checks.OPTIONS
    if unknown:
        raise TypeError(f"unknown TaskManager argument(s): {', '.join(sorted(unknown))}")


def _check_ms(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of milliseconds, not {value!r}")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be 0 or more milliseconds, not {value!r}")


#: The global manager, created on first use; ``task_mgr.initialize(...)`` first configures it.
task_mgr: TaskManager = TaskManagerProxy()  # type: ignore[assignment]
