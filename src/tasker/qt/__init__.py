"""Qt integration (PySide6): a dispatcher, a task list model and ready widgets.

Install with ``pip install 'tasker-gtk[qt]'``. ``QtDispatcher`` and
``TaskListModel`` need only QtCore; ``TaskListWidget`` and
``TaskProgressBar`` are QtWidgets widgets, loaded on first use of the name.
Importing ``tasker.qt`` also makes a ``QObject`` usable as ``owner=``: its
tasks are cancelled, and their callbacks dropped, when Qt destroys it.

PySide6 6.12.0 is excluded by the ``qt`` extra: its shiboken aborts CPython
3.11 (``Fatal Python error: bool_dealloc``) when a queued ``Signal(object)``
is emitted many thousands of times while events are processed, a storm
tasker's own tests reproduce. Importing ``tasker.qt`` with 6.12.0 warns.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

try:
    import PySide6
except ImportError as exc:  # pragma: no cover - exercised without PySide6 only
    raise ImportError(
        "tasker.qt needs PySide6: pip install 'tasker-gtk[qt]' (any PySide6 from 6.6 except 6.12.0)"
    ) from exc

from . import _owner  # noqa: F401 - registers QObject owners (owner=): destroyed ends them
from ._dispatcher import QtDispatcher, shutdown_qt_managers
from ._model import TaskListModel, TaskRole, WrongThreadError

if TYPE_CHECKING:
    from ._widgets import TaskListWidget, TaskProgressBar

__all__ = [
    "BROKEN_PYSIDE6",
    "QtDispatcher",
    "TaskListModel",
    "TaskListWidget",
    "TaskProgressBar",
    "TaskRole",
    "WrongThreadError",
    "shutdown_qt_managers",
]

#: PySide6 releases known to crash under tasker's signal storm test.
BROKEN_PYSIDE6 = frozenset({"6.12.0"})

if PySide6.__version__ in BROKEN_PYSIDE6:
    warnings.warn(
        f"PySide6 {PySide6.__version__} aborts the interpreter under queued Signal(object) "
        "storms (a shiboken reference-count bug); install another release, e.g. "
        "pip install 'PySide6-Essentials!=6.12.0'",
        RuntimeWarning,
        stacklevel=2,
    )


def __getattr__(name: str) -> Any:
    # The widgets need QtWidgets (and QtGui); load them only when asked for.
    if name in ("TaskListWidget", "TaskProgressBar"):
        from . import _widgets

        return getattr(_widgets, name)
    raise AttributeError(f"module 'tasker.qt' has no attribute {name!r}")
