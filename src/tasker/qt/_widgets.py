"""QtWidgets: an overall progress bar and a task list with a progress bar and cancel per row."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .._labels import eta_text, placeholder_message, status_text
from .._task import Task
from ._model import TaskListModel, TaskRole, check_thread

if TYPE_CHECKING:
    from .._manager import TaskManager

__all__ = ["TaskListWidget", "TaskProgressBar", "TaskRowWidget", "eta_text", "status_text"]

#: Progress bars count in thousandths: QProgressBar takes ints.
_STEPS = 1000


class TaskProgressBar(QWidget):
    """The manager's overall progress and its newest message, in one row.

    Follows ``manager`` (``None``: the global ``tasker.task_mgr``) through
    ``tasks_updated``. When nothing runs it shows ``idle_text`` and an empty
    bar, or hides itself if ``hide_when_idle`` is true. The parts are
    ``label`` and ``progress_bar``. Create and use it on the GUI thread.
    """

    def __init__(
        self,
        manager: TaskManager | None = None,
        *,
        idle_text: str = "Idle",
        hide_when_idle: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if manager is None:
            from .. import task_mgr

            manager = task_mgr
        self._owner = threading.get_ident()
        self._manager: TaskManager | None = manager
        self._idle_text = idle_text
        self._hide_when_idle = hide_when_idle
        self.label = QLabel()
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _STEPS)
        self.progress_bar.setMinimumWidth(220)
        self.progress_bar.setAccessibleName("Overall progress")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.label)
        layout.addWidget(self.progress_bar)
        manager.tasks_updated.connect(self._on_tasks_updated, weak=True)
        self._show(list(manager), manager.get_overall_progress())

    @property
    def manager(self) -> TaskManager | None:
        """The manager shown; None after ``close_manager()``."""
        return self._manager

    def close_manager(self) -> None:
        """Stop following the manager (it is held weakly anyway)."""
        check_thread(self._owner, "TaskProgressBar.close_manager")
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.tasks_updated.disconnect(self._on_tasks_updated)

    def _on_tasks_updated(
        self, sender: object, *, tasks: Sequence[Task[Any]], progress: float, **_: object
    ) -> None:
        check_thread(self._owner, "TaskProgressBar update")
        self._show(tasks, progress)

    def _show(self, tasks: Sequence[Task[Any]], progress: float) -> None:
        live = [task for task in tasks if not task.is_final()]
        if not live:
            self.label.setText(self._idle_text)
            self.label.setEnabled(False)  # the style's dimmed look
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("")
            self.progress_bar.setAccessibleDescription(self._idle_text)
            if self._hide_when_idle:
                self.setVisible(False)
            return
        message = next((m for t in reversed(live) if (m := t.get_message())), None)
        text = message or "Working…"
        self.label.setText(text)
        self.label.setEnabled(True)
        self.progress_bar.setValue(round(progress * _STEPS))
        percent = f"{progress * 100:.0f} %"
        count = len(live)
        text_format = percent if count == 1 else f"{count} tasks · {percent}"
        manager = self._manager
        left = eta_text(manager.get_overall_eta()) if manager is not None else ""
        self.progress_bar.setFormat(f"{text_format} · {left}" if left else text_format)
        self.progress_bar.setAccessibleDescription(text)
        if self._hide_when_idle:
            self.setVisible(True)


class TaskRowWidget(QFrame):
    """One row of ``TaskListWidget``: a task's key, progress, status, pause and cancel.

    Key and kind, the time left, the message (or the error), a progress bar,
    the status, a pause/resume toggle and a cancel button.

    The toggle pauses cooperatively (``Task.pause``): the task pauses at its next
    ``context.checkpoint()``, showing "Pausing…" until then.
    """

    def __init__(self, list_widget: TaskListWidget) -> None:
        super().__init__()
        self._list = list_widget
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.message = QLabel()
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long key is cut and a long message wraps: neither may push the cancel
        # button out of sight.
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(60)
        self.message.setWordWrap(True)
        self.eta = QLabel()
        self.eta.setEnabled(False)  # the style's dimmed look
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _STEPS)
        self.progress_bar.setMaximumWidth(130)
        self.status = QLabel()
        self.status.setMinimumWidth(90)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.message)
        state = QVBoxLayout()
        state.setSpacing(2)
        state.addWidget(self.status)
        state.addWidget(self.eta)
        layout = QHBoxLayout(self)
        layout.addLayout(text, 1)
        layout.addWidget(self.progress_bar)
        layout.addLayout(state)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.cancel_button)
        self.key = ""

    def show_row(self, model: TaskListModel, index: QModelIndex | QPersistentModelIndex) -> None:
        """Copy the model's values at ``index`` into the row's widgets."""
        self.key = str(model.data(index, TaskRole.KEY))
        status = str(model.data(index, TaskRole.STATUS))
        can_cancel = bool(model.data(index, TaskRole.CAN_CANCEL))
        error = str(model.data(index, TaskRole.ERROR))
        message = str(model.data(index, TaskRole.MESSAGE))
        progress = float(model.data(index, TaskRole.PROGRESS))
        kind = str(model.data(index, TaskRole.KIND))
        eta = model.data(index, TaskRole.ETA)
        pause_state = str(model.data(index, TaskRole.PAUSE) or "")
        cancel_reason = str(model.data(index, TaskRole.CANCEL_REASON) or "")
        label = status_text(status, can_cancel, pause_state, cancel_reason)
        self.title.setText(f"{self.key}  ·  {kind}")
        self.eta.setText("" if pause_state else eta_text(eta))
        self.message.setText(
            error or message or placeholder_message(status, kind) or f"{kind} task"
        )
        # Errors in red; everything else in the style's own text colour.
        self.message.setStyleSheet("color: #c01c28;" if error else "")
        self.message.setToolTip(error or message)
        self.progress_bar.setValue(round(progress * _STEPS))
        self.status.setText(label)
        self.pause_button.setEnabled(can_cancel)
        self.pause_button.setChecked(bool(pause_state))
        self.pause_button.setText("Resume" if pause_state else "Pause")
        self.pause_button.setAccessibleName(f"{'Resume' if pause_state else 'Pause'} {self.key}")
        self.cancel_button.setEnabled(can_cancel)
        self.cancel_button.setAccessibleName(f"Cancel {self.key}")
        self.setAccessibleName(f"{self.key}: {label}, {round(progress * 100)} percent")

    def _on_cancel_clicked(self) -> None:
        self._list._cancel_row(self)

    def _on_pause_clicked(self, checked: bool) -> None:
        self._list._pause_row(self, checked)


class TaskListWidget(QWidget):
    """A scrollable list of tasks, one ``TaskRowWidget`` per task, a placeholder when empty.

    Shows ``model`` if given, else a new ``TaskListModel`` of ``manager``
    (``None``: the global ``tasker.task_mgr``) with ``keep_finished``. Each
    row has a progress bar and a cancel button that cancels that row's task.
    """

    def __init__(
        self,
        model: TaskListModel | None = None,
        *,
        manager: TaskManager | None = None,
        keep_finished: int = 0,
        placeholder: str = "No tasks",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._owner = threading.get_ident()
        if model is None:
            model = TaskListModel(manager, keep_finished=keep_finished, parent=self)
        self._model = model
        self._rows: list[TaskRowWidget] = []
        self._column = QVBoxLayout()
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.setSpacing(4)
        content = QWidget()
        outer = QVBoxLayout(content)
        outer.addLayout(self._column)
        outer.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        self.placeholder = QLabel(placeholder)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setEnabled(False)
        self._stack = QStackedWidget()
        self._stack.addWidget(scroll)
        self._stack.addWidget(self.placeholder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)
        self.setAccessibleName("Background tasks")
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rowsRemoved.connect(self._on_rows_removed)
        model.dataChanged.connect(self._on_data_changed)
        model.modelReset.connect(self._rebuild)
        self._rebuild()

    @property
    def model(self) -> TaskListModel:
        """The ``TaskListModel`` shown."""
        return self._model

    def rows(self) -> list[TaskRowWidget]:
        """The row widgets, in model order."""
        return list(self._rows)

    def row_for(self, key: object) -> TaskRowWidget | None:
        """The row of the newest task with ``key``, or None."""
        position = self._model.find(key)
        return self._rows[position] if position >= 0 else None

    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        for position in range(first, last + 1):
            row = TaskRowWidget(self)
            self._rows.insert(position, row)
            self._column.insertWidget(position, row)
            row.show_row(self._model, self._model.index(position, 0))
        self._update_placeholder()

    def _on_rows_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        for row in self._rows[first : last + 1]:
            self._forget(row)
        del self._rows[first : last + 1]
        self._update_placeholder()

    def _on_data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: list[int]) -> None:
        for position in range(top.row(), bottom.row() + 1):
            if 0 <= position < len(self._rows):
                self._rows[position].show_row(self._model, self._model.index(position, 0))

    def _rebuild(self) -> None:
        for row in self._rows:
            self._forget(row)
        self._rows = []
        count = self._model.rowCount()
        if count:
            self._on_rows_inserted(QModelIndex(), 0, count - 1)
        self._update_placeholder()

    def _forget(self, row: TaskRowWidget) -> None:
        # Hidden and unparented now, so Python frees it with its last reference.
        # Not deleteLater(): nested processEvents() calls (QtDispatcher.run_until)
        # never run deferred deletes, and PySide6 crashed deleting such a row later.
        self._column.removeWidget(row)
        row.hide()
        row.setParent(None)

    def _update_placeholder(self) -> None:
        self._stack.setCurrentIndex(0 if self._rows else 1)

    def _cancel_row(self, row: TaskRowWidget) -> None:
        check_thread(self._owner, "TaskListWidget cancel")
        if row in self._rows:
            self._model.cancel(self._rows.index(row))

    def _pause_row(self, row: TaskRowWidget, pause: bool) -> None:
        check_thread(self._owner, "TaskListWidget pause")
        if row in self._rows:
            position = self._rows.index(row)
            if pause:
                self._model.pause(position)
            else:
                self._model.resume(position)
