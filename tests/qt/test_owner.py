"""``owner=`` with QObjects: a task whose owner Qt destroys is cancelled, its callbacks dropped."""

from __future__ import annotations

import threading
from typing import Any

from tasker import CancelReason, TaskManager, TaskStatus

from .conftest import qt_run_until


def wait_cancelled(context: Any) -> str:
    """Poll the cancel flag until the task is cancelled."""
    ticker = threading.Event()
    while not context.is_cancelled():
        ticker.wait(0.002)
    return "stopped"


def test_a_destroyed_qobject_owner_cancels_its_tasks(qt_manager: TaskManager, qtbot: Any) -> None:
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    import tasker.qt  # noqa: F401 - registers QObject owners

    window = QWidget()
    qtbot.addWidget(window)
    panel = QWidget(window)  # destroyed with its parent's deletion, or on its own
    QVBoxLayout(window).addWidget(panel)
    from tasker.qt import TaskListModel, TaskRole

    model = TaskListModel(qt_manager, keep_finished=5)
    called: list[str] = []
    owned = [
        qt_manager.run_thread(wait_cancelled, owner=panel, when_done=lambda t: called.append("a")),
        qt_manager.add_coroutine(_awaits, owner=panel, when_done=lambda t: called.append("b")),
    ]
    other = qt_manager.run_thread(wait_cancelled, when_done=lambda t: called.append("other"))
    qt_run_until(qt_manager, lambda: all(t.get_status() == "running" for t in owned))
    panel.deleteLater()  # what a view does when its panel closes
    # The event loop proper runs deferred deletions; nested processEvents() does not.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qt_run_until(qt_manager, lambda: all(t.is_final() for t in owned))
    assert [t.get_status() for t in owned] == [TaskStatus.CANCELLED] * 2
    assert {t.cancel_reason for t in owned} == {CancelReason.OWNER_GONE}
    assert not other.is_final()  # not owned: untouched
    other.cancel()
    qt_run_until(qt_manager, lambda: "other" in called)
    assert qt_manager.wait_until_settled(10)
    assert called == ["other"]  # the owned tasks' when_done were dropped
    qt_run_until(qt_manager, lambda: model.rowCount() == 3)
    reasons = [model.data(model.index(row, 0), TaskRole.CANCEL_REASON) for row in range(3)]
    assert reasons == ["owner_gone", "owner_gone", "user"]


def test_deleting_a_parent_ends_the_tasks_its_children_own(qt_manager: TaskManager) -> None:
    import shiboken6
    from PySide6.QtCore import QObject

    import tasker.qt  # noqa: F401 - registers QObject owners

    parent = QObject()
    child = QObject(parent)
    task = qt_manager.run_process(wait_cancelled, owner=child)
    qt_run_until(qt_manager, lambda: task.get_status() == "running", timeout=30)
    shiboken6.delete(parent)  # C++ deletes the child with it: its destroyed fires
    qt_run_until(qt_manager, task.is_final, timeout=30)
    assert task.get_status() is TaskStatus.CANCELLED
    assert task.cancel_reason is CancelReason.OWNER_GONE


async def _awaits(context: Any) -> None:
    import asyncio

    await asyncio.Event().wait()
