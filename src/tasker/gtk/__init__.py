"""GTK integration: a task list model and ready widgets (needs PyGObject).

``TaskItem`` and ``TaskListModel`` need only GObject and Gio, so GTK 3
applications can use them too. ``TaskProgressBar`` and ``TaskListView``
are GTK 4 widgets; importing them loads GTK 4 (on first use of the name,
so ``from tasker.gtk import TaskListModel`` does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import gi  # noqa: F401 - only to say what to install when it is missing
except ModuleNotFoundError as error:  # pragma: no branch - depends on the machine
    raise ModuleNotFoundError(
        "tasker.gtk needs PyGObject, which is not installed: "
        'pip install "tasker-gtk[gtk]". Building PyGObject needs the system packages '
        "libgirepository-2.0-dev (Debian 13; libgirepository1.0-dev on Debian 12), "
        "libcairo2-dev, pkg-config, gcc and python3-dev, and GTK 4 needs gir1.2-gtk-4.0 "
        "(Fedora: gobject-introspection-devel cairo-gobject-devel gtk4; "
        "Arch: gobject-introspection cairo gtk4). See the README's Installation section.",
        name="gi",
    ) from error

from . import _owner  # noqa: F401 - registers Gtk.Widget / GObject owners (owner=)
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
