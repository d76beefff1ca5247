"""TaskListWidget and TaskProgressBar on the offscreen platform, clicked through qtbot."""

from __future__ import annotations

import inspect
from typing import Any

from tasker import TaskManager

from ._work import fail
from .conftest import Gate, qt_run_until


def test_task_list_widget_rows_follow_the_model_and_cancel_works(
    qt_manager: TaskManager, qtbot: Any, gate: Gate
) -> None:
    from PySide6.QtCore import Qt

    from tasker.qt import TaskListWidget

    def deaf(context: Any) -> None:
        """Reports, then waits for the gate without looking at its cancel flag."""
        context.set_progress(0.4)
        context.set_message("crunching")
        gate.opened.wait(30)

    widget = TaskListWidget(manager=qt_manager, keep_finished=5)
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    assert widget.rows() == [] and widget.placeholder.isVisible()
    slow = qt_manager.run_thread(deaf, key="slow")
    qt_manager.run_thread(fail, "no such file", key="broken")
    qt_run_until(qt_manager, lambda: len(widget.rows()) == 2)
    qt_run_until(qt_manager, lambda: widget.row_for("broken").status.text() == "Failed")
    row = widget.row_for("slow")
    assert row is not None and not widget.placeholder.isVisible()
    qt_run_until(qt_manager, lambda: row.progress_bar.value() == 400)
    assert row.message.text() == "crunching" and row.status.text() == "Running"
    assert row.title.text() == "slow  ·  thread"
    broken = widget.row_for("broken")
    assert broken.message.text() == "ValueError: no such file"
    assert not broken.cancel_button.isEnabled()
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert not row.cancel_button.isEnabled()  # at once, before the task stops
    assert row.status.text() == "Cancelling…"  # until the task notices
    gate.open()
    qt_run_until(qt_manager, slow.is_final)
    qt_run_until(qt_manager, lambda: row.status.text() == "Cancelled")
    widget.model.clear_finished()
    assert widget.rows() == [] and widget.placeholder.isVisible()
    # Gone from sight at once, even while only nested processEvents() run.
    assert not row.isVisible() and not broken.isVisible()


def test_task_progress_bar_shows_overall_progress_and_idles(
    qt_manager: TaskManager, qtbot: Any, gate: Gate
) -> None:
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from tasker.qt import TaskProgressBar

    window = QWidget()
    qtbot.addWidget(window)
    bar = TaskProgressBar(qt_manager, idle_text="Nothing to do", hide_when_idle=True)
    QVBoxLayout(window).addWidget(bar)
    window.show()
    assert bar.label.text() == "Nothing to do" and not bar.isVisible()
    qt_manager.run_thread(gate, 0.5, "halfway")
    qt_run_until(qt_manager, lambda: bar.progress_bar.value() == 500)
    assert bar.isVisible() and bar.label.text() == "halfway"
    assert bar.progress_bar.format() == "50 %"
    gate.open()
    qt_run_until(qt_manager, lambda: not bar.isVisible())
    assert bar.progress_bar.value() == 0
    bar.close_manager()
    assert bar.manager is None


def test_widgets_follow_task_mgr_by_default(qtbot: Any) -> None:
    import tasker
    from tasker.qt import TaskListWidget, TaskProgressBar

    bar = TaskProgressBar()
    widget = TaskListWidget()
    qtbot.addWidget(bar)
    qtbot.addWidget(widget)
    assert bar.manager is tasker.task_mgr and widget.model.manager is tasker.task_mgr
    widget.model.close()
    bar.close_manager()


def test_the_public_surface_of_tasker_qt_is_pinned_and_documented() -> None:
    import tasker.qt

    assert set(tasker.qt.__all__) == {
        "BROKEN_PYSIDE6",
        "QtDispatcher",
        "TaskListModel",
        "TaskListWidget",
        "TaskProgressBar",
        "TaskRole",
        "WrongThreadError",
        "shutdown_qt_managers",
    }
    for name in tasker.qt.__all__:
        obj = getattr(tasker.qt, name)
        if name == "BROKEN_PYSIDE6":
            assert "6.12.0" in obj
            continue
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_a_row_pauses_and_resumes_its_task(qt_manager: TaskManager, qtbot: Any, gate: Gate) -> None:
    from PySide6.QtCore import Qt

    from tasker.qt import TaskListWidget

    def pausable(context: Any) -> None:
        """Checks for a pause between small steps until the gate opens."""
        context.set_message("working")
        while not gate.opened.wait(0.005):
            context.checkpoint()
            if context.is_cancelled():
                return

    widget = TaskListWidget(manager=qt_manager)
    qtbot.addWidget(widget)
    widget.show()
    task = qt_manager.run_thread(pausable, key="job")
    qt_run_until(qt_manager, lambda: widget.row_for("job") is not None)
    row = widget.row_for("job")
    qt_run_until(qt_manager, lambda: row.status.text() == "Running")
    qtbot.mouseClick(row.pause_button, Qt.MouseButton.LeftButton)
    qt_run_until(qt_manager, lambda: row.status.text() == "Paused")
    assert row.pause_button.isChecked() and row.pause_button.text() == "Resume"
    assert task.is_paused()
    qtbot.mouseClick(row.pause_button, Qt.MouseButton.LeftButton)
    qt_run_until(qt_manager, lambda: row.status.text() == "Running")
    assert not task.is_paused() and row.pause_button.text() == "Pause"
    gate.open()
    qt_run_until(qt_manager, lambda: widget.rows() == [])
