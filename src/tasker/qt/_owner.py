"""``owner=`` for QObjects: an owner goes away on its ``destroyed`` signal.

Registered with ``tasker.register_owner_type`` when ``tasker.qt`` is
imported. Qt emits ``destroyed`` from the object's destructor, whoever
deletes it: ``deleteLater()``, a parent's deletion, a window closed with
``WA_DeleteOnClose``, or Python freeing an object it owns.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from .._owners import register_owner_type

__all__ = ["watch_qobject"]


def watch_qobject(owner: QObject, gone: Callable[[], None]) -> None:
    """Call ``gone()`` when Qt destroys ``owner``."""
    # The slot holds only ``gone``, never the object; Qt may emit on any thread.
    owner.destroyed.connect(lambda *_: gone())


register_owner_type(QObject, watch_qobject)
