"""tasker: background tasks for GTK applications.

Run coroutines, threads and worker processes in the background, report
their progress and get their results and errors back on the main thread.
The global ``task_mgr`` is created on first use; importing tasker starts
no thread and no process.
"""

from __future__ import annotations

import sys
from _thread import allocate_lock

# ``import tasker`` loads this module only: each public name is imported on
# first use (see __getattr__ below), so an application pays for the parts it
# uses, and a worker process, which imports ``tasker._process._worker``, does
# not load the manager and the dispatchers. Type checkers read the imports
# below (mypy and pyright take any ``TYPE_CHECKING`` name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._context import ExecutionContext
    from ._dispatch import (
        AsyncioDispatcher,
        CallableDispatcher,
        Dispatcher,
        InlineDispatcher,
        ThreadDispatcher,
    )
    from ._dispatch._glib import GLibDispatcher
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
    from ._group import Group
    from ._main_calls import DelayedCall
    from ._manager import TaskManager
    from ._owners import register_owner_type
    from ._scheduling import KeyPolicy
    from ._signal import TasksUpdatedSignal
    from ._task import CancelReason, Task, TaskKind, TaskStatus, TaskTimings

__all__ = [
    "AsyncioDispatcher",
    "CallableDispatcher",
    "CancelReason",
    "CancelledError",
    "DelayedCall",
    "Dispatcher",
    "ExecutionContext",
    "GLibDispatcher",
    "Group",
    "InlineDispatcher",
    "KeyPolicy",
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
    "TaskTimings",
    "TaskerError",
    "TasksUpdatedSignal",
    "ThreadDispatcher",
    "WorkerCrashedError",
    "register_owner_type",
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
            from ._manager import TaskManager

            with _manager_lock:
                if _global_manager is None:
                    _global_manager = TaskManager()
                manager = _global_manager
        return manager

    def __getattr__(self, name: str) -> Any:
        if name in _STARTERS and _importing_main_in_child():
            import functools

            return functools.partial(_ignored_start, name)
        return getattr(self._get(), name)

    def __iter__(self) -> Any:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"<tasker.task_mgr {'not yet created' if _global_manager is None else 'active'}>"


_STARTERS = frozenset({"add_coroutine", "run_thread", "run_process"})


def _importing_main_in_child() -> bool:
    """True in a tasker worker process, or while a multiprocessing child imports ``__main__``."""
    from ._runtime import importing_main_in_child

    return importing_main_in_child()


def _ignored_start(method: str, func: Any, /, *args: Any, **kwargs: Any) -> Task[Any]:
    import logging

    logging.getLogger("tasker").debug(
        "task_mgr.%s(%r) ignored: called while a worker process imports the main module",
        method,
        func,
    )
    return task_mgr._ignored_task(kwargs.get("key"))


_manager_lock = allocate_lock()
_global_manager: TaskManager | None = None

#: The global ``TaskManager``, created on first use. Call ``task_mgr.configure(...)``
#: before starting the first task to change its options.
task_mgr: TaskManager = _GlobalTaskManager()  # type: ignore[assignment]


#: Where each lazily imported public name lives.
_LAZY = {
    "ExecutionContext": "_context",
    "DelayedCall": "_main_calls",
    "AsyncioDispatcher": "_dispatch",
    "CallableDispatcher": "_dispatch",
    "Dispatcher": "_dispatch",
    "InlineDispatcher": "_dispatch",
    "ThreadDispatcher": "_dispatch",
    "GLibDispatcher": "_dispatch._glib",  # needs PyGObject
    "CancelledError": "_errors",
    "ManagerShutdownError": "_errors",
    "RemoteTraceback": "_errors",
    "SerializationError": "_errors",
    "TaskerError": "_errors",
    "TaskError": "_errors",
    "TaskNotFinishedError": "_errors",
    "TaskTimeoutError": "_errors",
    "WorkerCrashedError": "_errors",
    "TaskManager": "_manager",
    "TasksUpdatedSignal": "_signal",  # needs blinker
    "Task": "_task",
    "TaskKind": "_task",
    "TaskStatus": "_task",
    "TaskTimings": "_task",
    # issue 13: policies, groups, owners, cancel reasons
    "CancelReason": "_task",
    "Group": "_group",
    "KeyPolicy": "_scheduling",
    "register_owner_type": "_owners",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tasker' has no attribute {name!r}")
    __import__(f"{__name__}.{module}")
    value = getattr(sys.modules[f"{__name__}.{module}"], name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
