"""TaskListModel: a manager's live tasks as a ``QAbstractListModel`` with named roles."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from .._labels import describe_error
from .._task import Task, TaskStatus

if TYPE_CHECKING:
    from .._manager import TaskManager

__all__ = ["TaskListModel", "TaskRole", "WrongThreadError"]

_Index = QModelIndex | QPersistentModelIndex


class WrongThreadError(RuntimeError):
    """Raised when a Qt-side tasker object is updated off the thread that created it.

    Qt models must only change on the GUI thread; an update elsewhere would
    race with the views. A manager whose dispatcher runs callbacks on another
    thread (not a ``QtDispatcher``) makes the model raise this; the manager
    logs it and the model stays unchanged.
    """


class TaskRole(IntEnum):
    """The model's data roles; ``roleNames()`` gives QML the names in brackets.

    ``KEY`` (key) the key as text, ``KIND`` (kind) coroutine/thread/process,
    ``STATUS`` (status) the status value, ``PROGRESS`` (progress) 0.0 to 1.0,
    ``MESSAGE`` (message), ``ERROR`` (error) "TypeName: message" of a failed
    task, ``CAN_CANCEL`` (canCancel) live and not yet asked to stop,
    ``FINISHED`` (finished), ``TASK_ID`` (taskId), ``TASK`` (task) the
    ``tasker.Task`` itself, ``ETA`` (eta) the estimated seconds left (None
    until the rate is known; rounded to 0.1 s), ``PAUSE`` (pauseState)
    ``""``, ``"pausing"`` or ``"paused"``, and ``WEIGHT`` (weight) the task's
    share of the overall progress, and ``CANCEL_REASON`` (cancelReason) a
    ``tasker.CancelReason`` value once the task was asked to cancel, else ``""``.
    """

    KEY = Qt.ItemDataRole.UserRole + 1
    KIND = Qt.ItemDataRole.UserRole + 2
    STATUS = Qt.ItemDataRole.UserRole + 3
    PROGRESS = Qt.ItemDataRole.UserRole + 4
    MESSAGE = Qt.ItemDataRole.UserRole + 5
    ERROR = Qt.ItemDataRole.UserRole + 6
    CAN_CANCEL = Qt.ItemDataRole.UserRole + 7
    FINISHED = Qt.ItemDataRole.UserRole + 8
    TASK_ID = Qt.ItemDataRole.UserRole + 9
    TASK = Qt.ItemDataRole.UserRole + 10
    ETA = Qt.ItemDataRole.UserRole + 11
    PAUSE = Qt.ItemDataRole.UserRole + 12
    WEIGHT = Qt.ItemDataRole.UserRole + 13
    CANCEL_REASON = Qt.ItemDataRole.UserRole + 14


_ROLE_NAMES = {
    TaskRole.KEY: b"key",
    TaskRole.KIND: b"kind",
    TaskRole.STATUS: b"status",
    TaskRole.PROGRESS: b"progress",
    TaskRole.MESSAGE: b"message",
    TaskRole.ERROR: b"error",
    TaskRole.CAN_CANCEL: b"canCancel",
    TaskRole.FINISHED: b"finished",
    TaskRole.TASK_ID: b"taskId",
    TaskRole.TASK: b"task",
    TaskRole.ETA: b"eta",
    TaskRole.PAUSE: b"pauseState",
    TaskRole.WEIGHT: b"weight",
    TaskRole.CANCEL_REASON: b"cancelReason",
}

#: The roles whose values a row snapshot holds, in snapshot order.
_SNAPSHOT_ROLES = (
    TaskRole.STATUS,
    TaskRole.PROGRESS,
    TaskRole.MESSAGE,
    TaskRole.ERROR,
    TaskRole.CAN_CANCEL,
    TaskRole.FINISHED,
    TaskRole.ETA,
    TaskRole.PAUSE,
    TaskRole.CANCEL_REASON,
)


def _clamp(value: float) -> float:
    if value != value:  # NaN
        return 0.0
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else float(value)


def _snapshot(
    task: Task[Any],
) -> tuple[str, float, str, str, bool, bool, float | None, str, str]:
    """The row's changing values, in ``_SNAPSHOT_ROLES`` order."""
    status = task.get_status()
    finished = status.is_final
    progress = 1.0 if status is TaskStatus.COMPLETED else _clamp(task.get_progress())
    error = describe_error(task.exception()) if status is TaskStatus.FAILED else ""
    can_cancel = not finished and not task.is_cancelled()
    eta = None if finished else task.get_eta()
    # Tenths of a second: a view shows whole seconds, and rows change less often.
    eta = None if eta is None else round(eta, 1)
    pause = "" if finished else task.get_pause_state() or ""
    message = task.get_message() or ""
    reason = task.cancel_reason
    cancel_reason = "" if reason is None else str(reason.value)
    return (
        str(status.value),
        progress,
        message,
        error,
        can_cancel,
        finished,
        eta,
        pause,
        cancel_reason,
    )


class _Row:
    __slots__ = ("key", "kind", "task", "values")

    def __init__(self, task: Task[Any]) -> None:
        self.task = task
        self.key = str(task.key)
        self.kind = str(task.kind.value)
        self.values = _snapshot(task)


class TaskListModel(QAbstractListModel):
    """A list model of a manager's live tasks, one row per task, in start order.

    ``manager=None`` follows the global ``tasker.task_mgr``. Rows change only
    when the manager emits ``tasks_updated`` (on the GUI thread through a
    ``QtDispatcher``, coalesced): ``dataChanged`` names only the roles whose
    value changed, and rows are inserted and removed in contiguous runs.
    Data roles are ``TaskRole`` (``roleNames()`` for QML); ``DisplayRole``
    is the key, ``ToolTipRole`` the error or message.

    ``keep_finished`` keeps up to that many finished tasks in the list,
    showing their final status, until newer ones push them out. The manager
    holds the model weakly; ``close()`` disconnects at once and empties it.
    The signals ``progressChanged(float)`` and ``busyChanged(bool)`` follow
    the manager's overall progress and whether it has live tasks.
    """

    progressChanged = Signal(float)
    busyChanged = Signal(bool)

    def __init__(
        self,
        manager: TaskManager | None = None,
        *,
        keep_finished: int = 0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if isinstance(keep_finished, bool) or not isinstance(keep_finished, int):
            raise TypeError(f"keep_finished must be an int, not {type(keep_finished).__name__}")
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be 0 or more, not {keep_finished}")
        if manager is None:
            from .. import task_mgr

            manager = task_mgr
        self._manager: TaskManager | None = manager
        self._owner = threading.get_ident()
        self._keep = keep_finished
        self._rows: list[_Row] = []
        self._by_id: dict[int, _Row] = {}
        self._retained: dict[int, None] = {}  # finished rows still shown, oldest first
        self._progress = 1.0
        self._busy = False
        # Weak: blinker drops the receiver when the model is garbage-collected.
        manager.tasks_updated.connect(self._on_tasks_updated, weak=True)
        if keep_finished:
            # Catches tasks that start and finish between two tasks_updated.
            manager.task_done.connect(self._on_task_done, weak=True)
        self._apply(list(manager), manager.get_overall_progress())

    # ------------------------------------------------------- QAbstractListModel

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """The number of tasks shown (0 for any valid parent: this is a flat list)."""
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The value of ``role`` for the task at ``index`` (None when out of range)."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole or role == TaskRole.KEY:
            return row.key
        if role == TaskRole.KIND:
            return row.kind
        if role == TaskRole.TASK_ID:
            return row.task.id
        if role == TaskRole.TASK:
            return row.task
        if role == TaskRole.WEIGHT:
            return row.task.weight
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.values[3] or row.values[2] or None
        try:
            position = _SNAPSHOT_ROLES.index(role)
        except ValueError:
            return None
        return row.values[position]

    def roleNames(self) -> dict[int, QByteArray]:
        """Role -> name, so QML delegates can use ``model.status`` and friends."""
        names = dict(super().roleNames())
        names.update({int(role): QByteArray(name) for role, name in _ROLE_NAMES.items()})
        return names

    # ------------------------------------------------------------------- public

    @property
    def manager(self) -> TaskManager | None:
        """The manager this model follows; None once closed."""
        return self._manager

    def progress(self) -> float:
        """The manager's overall progress (1.0 when idle), as of the last update."""
        return self._progress

    def busy(self) -> bool:
        """True while the manager has live tasks, as of the last update."""
        return self._busy

    def task(self, row: int) -> Task[Any] | None:
        """The task shown at ``row``, or None out of range."""
        return self._rows[row].task if 0 <= row < len(self._rows) else None

    def tasks(self) -> list[Task[Any]]:
        """A snapshot of the tasks shown, in row order."""
        return [row.task for row in self._rows]

    def find(self, key: object) -> int:
        """The row of the newest task whose key is ``key`` (or its text), or -1."""
        text = str(key)
        for position in range(len(self._rows) - 1, -1, -1):
            row = self._rows[position]
            if row.task.key == key or row.key == text:
                return position
        return -1

    def cancel(self, row: int) -> bool:
        """Cancel the task at ``row``; True if it was still live (see ``Task.cancel``).

        The row is refreshed at once, so a view shows it can no longer be
        cancelled even if the task reports nothing more.
        """
        check_thread(self._owner, "TaskListModel.cancel")
        cancelled = self._task_at(row).cancel()
        self._refresh_row(row)
        return cancelled

    def pause(self, row: int) -> bool:
        """Pause the task at ``row`` (see ``Task.pause``); True if it was live and not paused.

        The row shows "pausing" at once; "paused" once the task reaches a checkpoint.
        """
        check_thread(self._owner, "TaskListModel.pause")
        paused = self._task_at(row).pause()
        self._refresh_row(row)
        return paused

    def resume(self, row: int) -> bool:
        """Resume the task at ``row`` (see ``Task.resume``); True if it was paused or pausing."""
        check_thread(self._owner, "TaskListModel.resume")
        resumed = self._task_at(row).resume()
        self._refresh_row(row)
        return resumed

    def _task_at(self, row: int) -> Task[Any]:
        if not 0 <= row < len(self._rows):
            raise IndexError(f"row {row} is out of range (the model has {len(self._rows)})")
        return self._rows[row].task

    def refresh(self) -> None:
        """Re-read the manager's live tasks now instead of waiting for its next update."""
        check_thread(self._owner, "TaskListModel.refresh")
        if self._manager is not None:
            self._apply(list(self._manager), self._manager.get_overall_progress())

    def clear_finished(self) -> None:
        """Drop the finished rows kept by ``keep_finished`` now."""
        check_thread(self._owner, "TaskListModel.clear_finished")
        for task_id in self._retained:
            del self._by_id[task_id]
        self._retained.clear()
        self._rebuild()

    def close(self) -> None:
        """Stop following the manager and remove every row. Safe to call twice."""
        check_thread(self._owner, "TaskListModel.close")
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.tasks_updated.disconnect(self._on_tasks_updated)
            manager.task_done.disconnect(self._on_task_done)
        self._retained.clear()
        self._by_id.clear()
        self._rebuild()

    # ----------------------------------------------------------------- updates

    def _on_tasks_updated(
        self, sender: object, *, tasks: Sequence[Task[Any]], progress: float, **_: object
    ) -> None:
        # Raising here is the point: the manager logs it, and the model stays
        # untouched instead of racing with the views on the wrong thread.
        check_thread(self._owner, "TaskListModel update")
        if self._manager is not None:
            self._apply(tasks, progress)

    def _on_task_done(self, sender: object, *, task: Task[Any], **_: object) -> None:
        check_thread(self._owner, "TaskListModel update")
        if self._manager is None or task.id in self._by_id:
            return
        # Never seen live: keep it as finished. The rows themselves change at
        # the tasks_updated that ends this drain, batched with everything else.
        self._by_id[task.id] = _Row(task)
        self._retained[task.id] = None

    def _apply(self, tasks: Sequence[Task[Any]], progress: float) -> None:
        live: set[int] = set()
        for task in tasks:
            live.add(task.id)
            if task.id not in self._by_id:
                self._by_id[task.id] = _Row(task)
        for task_id in list(self._by_id):
            if task_id in live or task_id in self._retained:
                continue
            # The task left the live list, so its when_done has run: its status is final.
            if self._keep:
                self._retained[task_id] = None
            else:
                del self._by_id[task_id]
        while len(self._retained) > self._keep:
            oldest = next(iter(self._retained))
            del self._retained[oldest]
            del self._by_id[oldest]
        self._rebuild()
        for position in range(len(self._rows)):
            self._refresh_row(position)
        self._set_overall(progress, bool(tasks))

    def _refresh_row(self, position: int) -> None:
        row = self._rows[position]
        values = _snapshot(row.task)
        if values == row.values:
            return
        roles = [
            int(role)
            for role, old, new in zip(_SNAPSHOT_ROLES, row.values, values, strict=True)
            if old != new
        ]
        row.values = values
        index = self.index(position, 0)
        self.dataChanged.emit(index, index, roles)

    def _rebuild(self) -> None:
        """Bring the rows to the id order of ``_by_id``: removals, then insertions, in runs."""
        wanted = sorted(self._by_id)
        keep = set(wanted)
        rows = self._rows
        # Removals, back to front, so earlier positions stay valid.
        position = len(rows) - 1
        while position >= 0:
            if rows[position].task.id in keep:
                position -= 1
                continue
            end = position
            while position >= 0 and rows[position].task.id not in keep:
                position -= 1
            self.beginRemoveRows(QModelIndex(), position + 1, end)
            del rows[position + 1 : end + 1]
            self.endRemoveRows()
        # Insertions, front to back: the remaining rows are a subsequence of wanted.
        position = 0
        while position < len(wanted):
            if position < len(rows) and rows[position].task.id == wanted[position]:
                position += 1
                continue
            start = position
            new: list[_Row] = []
            while position < len(wanted) and (
                position - len(new) >= len(rows)
                or rows[position - len(new)].task.id != wanted[position]
            ):
                new.append(self._by_id[wanted[position]])
                position += 1
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            rows[start:start] = new
            self.endInsertRows()

    def _set_overall(self, progress: float, busy: bool) -> None:
        progress = _clamp(progress)
        if progress != self._progress:
            self._progress = progress
            self.progressChanged.emit(progress)
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)


def check_thread(owner: int, what: str) -> None:
    """Raise ``WrongThreadError`` unless the calling thread's id is ``owner``."""
    if threading.get_ident() != owner:
        raise WrongThreadError(
            f"{what} ran on thread {threading.current_thread().name!r}, not on the thread "
            "that created it; Qt models must only change on the GUI thread (give the "
            "TaskManager a tasker.qt.QtDispatcher)"
        )
