"""GTK integration: a task list model and ready widgets (needs PyGObject).

``TaskItem`` and ``TaskListModel`` need only GObject and Gio, so GTK 3
applications can use them too. ``TaskProgressBar`` and ``TaskListView``
are GTK 4 widgets; importing them loads GTK 4 (on first use of the name,
so ``from tasker.gtk import TaskListModel`` does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._mainloop import main_loop_manager, shutdown_async
from ._model import TaskItem, TaskListModel, WrongThreadError

if TYPE_CHECKING:
    from ._widgets import TaskListView, TaskProgressBar, TaskRow

__all__ = [
    "TaskItem",
    "TaskListModel",
    "TaskListView",
    "TaskProgressBar",
    "TaskRow",
    "WrongThreadError",
    "main_loop_manager",
    "shutdown_async",
]


def __getattr__(name: str) -> Any:
    # The widgets need GTK 4; load it only when they are asked for.
    if name in ("TaskProgressBar", "TaskListView", "TaskRow"):
        from . import _widgets

        return getattr(_widgets, name)
    raise AttributeError(f"module 'tasker.gtk' has no attribute {name!r}")
