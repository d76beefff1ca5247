"""tasker: background tasks for GTK applications.

Run coroutines, threads and worker processes in the background, report
their progress and get their results and errors back on the main thread.
The global ``task_mgr`` is created on first use; importing tasker starts
no thread and no process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import ExecutionContext
from ._dispatch import (
    AsyncioDispatcher,
    CallableDispatcher,
    Dispatcher,
    InlineDispatcher,
    ThreadDispatcher,
)
from ._errors import (
    CancelledError,
    ManagerShutdownError,
    RemoteTraceback,
    SerializationError,
    TaskerError,
    TaskError,
    TaskNotFinishedError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from ._manager import TaskManager
from ._task import Task, TaskKind, TaskStatus

if TYPE_CHECKING:
    from ._dispatch._glib import GLibDispatcher
    from ._signal import TasksUpdatedSignal

__all__ = [
    "AsyncioDispatcher",
    "CallableDispatcher",
    "CancelledError",
    "Dispatcher",
    "ExecutionContext",
    "GLibDispatcher",
    "InlineDispatcher",
    "ManagerShutdownError",
    "RemoteTraceback",
    "SerializationError",
    "Task",
    "TaskError",
    "TaskKind",
    "TaskManager",
    "TaskNotFinishedError",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskerError",
    "TasksUpdatedSignal",
    "ThreadDispatcher",
    "WorkerCrashedError",
    "task_mgr",
]

__version__ = "0.1.0"


class _GlobalTaskManager:
    """The global manager: forwards to a ``TaskManager`` created on first use."""

    __slots__ = ()

    def _get(self) -> TaskManager:
        global _global_manager
        manager = _global_manager
        if manager is None:
            with _manager_lock:
                if _global_manager is None:
                    _global_manager = TaskManager()
                manager = _global_manager
        return manager

    def __getattr__(self, name: str) -> Any:
        if name in _STARTERS and _importing_main_in_child():
            return functools.partial(_ignored_start, name)
        return getattr(self._get(), name)

    def __iter__(self) -> Any:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"<tasker.task_mgr {'not yet created' if _global_manager is None else 'active'}>"


import functools  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import threading as _threading  # noqa: E402

_STARTERS = frozenset({"add_coroutine", "run_thread", "run_process"})


def _importing_main_in_child() -> bool:
    """True in a tasker worker process, or while a multiprocessing child imports ``__main__``.

    Worker processes import the application's modules to find the task
    functions in them; a script that starts tasks at module level (as the
    quick start does) must not start them again inside every worker.
    """
    from ._manager import in_worker_process

    if in_worker_process:
        return True
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is None:
        return False
    current = mp_process.current_process()
    return bool(getattr(current, "_inheriting", False))


def _ignored_start(method: str, func: Any, /, *args: Any, **kwargs: Any) -> Task[Any]:
    logging.getLogger("tasker").debug(
        "task_mgr.%s(%r) ignored: called while a worker process imports the main module",
        method,
        func,
    )
    return task_mgr._ignored_task(kwargs.get("key"))


_manager_lock = _threading.Lock()
_global_manager: TaskManager | None = None

#: The global ``TaskManager``, created on first use. Call ``task_mgr.configure(...)``
#: before starting the first task to change its options.
task_mgr: TaskManager = _GlobalTaskManager()  # type: ignore[assignment]


def __getattr__(name: str) -> Any:
    # GLibDispatcher needs PyGObject, TasksUpdatedSignal blinker: import them when asked for.
    if name == "GLibDispatcher":
        from ._dispatch._glib import GLibDispatcher

        return GLibDispatcher
    if name == "TasksUpdatedSignal":
        from ._signal import TasksUpdatedSignal

        return TasksUpdatedSignal
    raise AttributeError(f"module 'tasker' has no attribute {name!r}")
