"""tasker.qt.TaskListModel following a real manager on a real Qt event loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

import pytest

from tasker import TaskManager, ThreadDispatcher

from ._work import fail, upper
from .conftest import Gate, qt_run_until


async def wait_forever(context: Any) -> None:
    context.set_message("waiting")
    await asyncio.Event().wait()


class ModelLog:
    """Records a model's row insertions, removals and dataChanged roles, and their threads."""

    def __init__(self, model: Any) -> None:
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.changed: list[tuple[int, list[int]]] = []
        self.threads: set[int] = set()
        model.rowsInserted.connect(lambda _p, first, last: self._log(self.inserted, first, last))
        model.rowsRemoved.connect(lambda _p, first, last: self._log(self.removed, first, last))
        model.dataChanged.connect(self._on_changed)

    def _log(self, into: list[tuple[int, int]], first: int, last: int) -> None:
        self.threads.add(threading.get_ident())
        into.append((first, last))

    def _on_changed(self, top: Any, bottom: Any, roles: list[int]) -> None:
        self.threads.add(threading.get_ident())
        assert top.row() == bottom.row()
        self.changed.append((top.row(), list(roles)))


def statuses(model: Any) -> dict[str, str]:
    from tasker.qt import TaskRole

    index = model.index
    return {
        model.data(index(row, 0), TaskRole.KEY): model.data(index(row, 0), TaskRole.STATUS)
        for row in range(model.rowCount())
    }


def test_rows_and_named_roles(qt_manager: TaskManager, gate: Gate, qtmodeltester: Any) -> None:
    from PySide6.QtCore import QAbstractListModel, Qt

    from tasker.qt import TaskListModel, TaskRole

    model = TaskListModel(qt_manager)
    qtmodeltester.check(model)
    assert isinstance(model, QAbstractListModel)
    assert model.rowCount() == 0
    task = qt_manager.run_thread(gate, 0.25, "quarter", key="k")
    qt_run_until(qt_manager, lambda: model.rowCount() == 1)
    index = model.index(0, 0)
    qt_run_until(qt_manager, lambda: model.data(index, TaskRole.PROGRESS) == 0.25)
    assert model.data(index, Qt.ItemDataRole.DisplayRole) == "k"
    assert model.data(index, Qt.ItemDataRole.ToolTipRole) == "quarter"
    assert {role: model.data(index, role) for role in TaskRole} == {
        TaskRole.KEY: "k",
        TaskRole.KIND: "thread",
        TaskRole.STATUS: "running",
        TaskRole.PROGRESS: 0.25,
        TaskRole.MESSAGE: "quarter",
        TaskRole.ERROR: "",
        TaskRole.CAN_CANCEL: True,
        TaskRole.FINISHED: False,
        TaskRole.TASK_ID: task.id,
        TaskRole.TASK: task,
        TaskRole.ETA: None,  # a rate needs updates over a second
        TaskRole.PAUSE: "",
        TaskRole.WEIGHT: 1.0,
        TaskRole.CANCEL_REASON: "",
    }
    names = {bytes(name.data()).decode() for name in model.roleNames().values()}
    assert {"key", "kind", "status", "progress", "message", "error", "canCancel", "eta"} <= names
    assert {"pauseState", "weight", "cancelReason"} <= names
    assert model.task(0) is task and model.tasks() == [task] and model.find("k") == 0
    assert model.find("nope") == -1 and model.task(5) is None
    assert model.data(model.index(7, 0), TaskRole.KEY) is None
    qtmodeltester.check(model)
    gate.open()
    qt_run_until(qt_manager, lambda: model.rowCount() == 0)
    qtmodeltester.check(model)


def test_model_follows_every_status_and_names_only_changed_roles(
    qapp: Any, gate: Gate, qtmodeltester: Any
) -> None:
    from tasker.qt import QtDispatcher, TaskListModel, TaskRole

    manager = TaskManager(QtDispatcher(), max_threads=1)  # a second thread task waits
    try:
        model = TaskListModel(manager, keep_finished=10)
        qtmodeltester.check(model)
        log = ModelLog(model)
        second_gate = Gate()
        done = manager.run_thread(gate, 0.5, key="done")
        fails = manager.run_thread(second_gate, key="fails", fail=True)
        dropped = manager.run_thread(gate, key="dropped")
        waits = manager.add_coroutine(wait_forever, key="waits")
        qt_run_until(
            manager,
            lambda: (
                statuses(model)
                == {"done": "running", "fails": "pending", "dropped": "pending", "waits": "running"}
            ),
        )
        dropped.cancel()
        waits.cancel()
        qt_run_until(
            manager, lambda: statuses(model)["dropped"] == "cancelled" == statuses(model)["waits"]
        )
        gate.open()
        qt_run_until(manager, lambda: statuses(model)["fails"] == "running")
        second_gate.open()
        qt_run_until(manager, lambda: not manager.has_tasks())
        qt_run_until(manager, lambda: statuses(model)["fails"] == "failed")
        assert statuses(model) == {
            "done": "completed",
            "fails": "failed",
            "dropped": "cancelled",
            "waits": "cancelled",
        }
        row = model.find("fails")
        assert model.data(model.index(row, 0), TaskRole.ERROR) == "ValueError: the gate was a trap"
        assert model.tasks() == [done, fails, dropped, waits]  # start order
        assert all(model.data(model.index(r, 0), TaskRole.FINISHED) for r in range(4))
        assert model.progress() == 1.0 and not model.busy()
        # dataChanged names the changed roles only, never the fixed ones.
        fixed = {TaskRole.KEY, TaskRole.KIND, TaskRole.TASK_ID, TaskRole.TASK}
        assert log.changed and all(roles and not fixed & set(roles) for _, roles in log.changed)
        assert log.removed == []  # kept as finished
        assert log.threads == {threading.get_ident()}
        qtmodeltester.check(model)
        model.clear_finished()
        assert model.rowCount() == 0 and log.removed
        model.close()
        model.close()  # twice is fine
    finally:
        manager.shutdown()


def test_keep_finished_keeps_the_newest_and_catches_quick_tasks(qt_manager: TaskManager) -> None:
    from tasker.qt import TaskListModel

    model = TaskListModel(qt_manager, keep_finished=2)
    tasks = [qt_manager.run_thread(upper, f"t{n}", key=f"t{n}") for n in range(4)]
    qt_run_until(qt_manager, lambda: all(t.is_final() for t in tasks))
    assert qt_manager.wait_until_settled(5.0)
    qt_run_until(qt_manager, lambda: model.tasks() == tasks[2:])


def test_process_tasks_and_failures(qt_manager: TaskManager) -> None:
    from tasker.qt import TaskListModel, TaskRole

    model = TaskListModel(qt_manager, keep_finished=5)
    qt_manager.run_process(upper, "ok", key="ok")
    qt_manager.run_process(fail, "bad input", key="bad")
    qt_run_until(qt_manager, lambda: not qt_manager.has_tasks(), timeout=30)
    qt_run_until(qt_manager, lambda: len(statuses(model)) == 2)
    assert statuses(model) == {"ok": "completed", "bad": "failed"}
    error = model.data(model.index(model.find("bad"), 0), TaskRole.ERROR)
    assert error == "ValueError: bad input"


def test_cancel_a_row(qt_manager: TaskManager, gate: Gate) -> None:
    from tasker.qt import TaskListModel, TaskRole

    model = TaskListModel(qt_manager, keep_finished=1)
    task = qt_manager.run_thread(gate, key="slow")
    qt_run_until(qt_manager, lambda: model.rowCount() == 1 and gate.entered.is_set())
    assert model.cancel(0) is True
    # The row no longer offers a cancel at once, before the task reacts.
    assert model.data(model.index(0, 0), TaskRole.CAN_CANCEL) is False
    qt_run_until(qt_manager, task.is_final)
    qt_run_until(qt_manager, lambda: statuses(model) == {"slow": "cancelled"})
    assert model.cancel(0) is False
    with pytest.raises(IndexError, match="row 3"):
        model.cancel(3)


def test_overall_progress_and_busy_signals(qt_manager: TaskManager, gate: Gate) -> None:
    from tasker.qt import TaskListModel

    model = TaskListModel(qt_manager)
    busy: list[bool] = []
    progress: list[float] = []
    model.busyChanged.connect(busy.append)
    model.progressChanged.connect(progress.append)
    qt_manager.run_thread(gate, 0.5)
    qt_run_until(qt_manager, lambda: model.progress() == 0.5)
    assert model.busy()
    gate.open()
    qt_run_until(qt_manager, lambda: not model.busy())
    assert busy == [True, False]
    assert progress[0] < 1.0 and progress[-1] == 1.0


def test_updates_off_the_gui_thread_raise_and_change_nothing(qapp: Any, tasker_errors: Any) -> None:
    from tasker.qt import TaskListModel

    finished = threading.Event()
    dispatcher = ThreadDispatcher()
    manager = TaskManager(dispatcher)
    try:
        model = TaskListModel(manager)
        manager.run_thread(upper, "x", when_done=lambda t: finished.set())
        assert finished.wait(10)
        assert manager.wait_until_settled(10)
        assert model.rowCount() == 0
        assert "WrongThreadError" in tasker_errors.text
        assert "QtDispatcher" in tasker_errors.text
    finally:
        manager.shutdown()
        dispatcher.close()  # ours, not the manager's: it leaves it running


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_keep_finished_is_refused(qt_manager: TaskManager, bad: Any, error: type) -> None:
    from tasker.qt import TaskListModel

    with pytest.raises(error, match="keep_finished"):
        TaskListModel(qt_manager, keep_finished=bad)


def test_model_follows_task_mgr_by_default(qapp: Any) -> None:
    import tasker
    from tasker.qt import TaskListModel

    model = TaskListModel()
    assert model.manager is tasker.task_mgr
    model.close()
    assert model.manager is None


def test_the_manager_holds_the_model_weakly(qt_manager: TaskManager) -> None:
    from tasker.qt import TaskListModel

    model = TaskListModel(qt_manager)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    task = qt_manager.run_thread(upper, "still fine")
    qt_run_until(qt_manager, task.is_final)
    assert qt_manager.wait_until_settled(5.0)


def test_eta_role_once_the_rate_is_known(qt_manager: TaskManager, gate: Gate) -> None:
    from tasker.qt import TaskListModel, TaskRole
    from tasker.qt._widgets import eta_text

    def steady(context: Any) -> None:
        """Progress at a steady pace until the gate opens (or the task is cancelled)."""
        n = 0
        while not gate.opened.wait(0.02):
            n += 1
            context.set_progress(min(0.9, n / 1000))
            if context.is_cancelled():
                return

    model = TaskListModel(qt_manager)
    qt_manager.run_thread(steady, key="steady")
    qt_run_until(qt_manager, lambda: model.rowCount() == 1)
    assert model.data(model.index(0, 0), TaskRole.ETA) is None  # no rate yet
    # The estimator needs a few updates over a second of running time.
    qt_run_until(qt_manager, lambda: model.data(model.index(0, 0), TaskRole.ETA) is not None)
    eta = model.data(model.index(0, 0), TaskRole.ETA)
    assert eta > 0 and round(eta, 1) == eta
    names = {bytes(name.data()).decode() for name in model.roleNames().values()}
    assert "eta" in names
    gate.open()
    qt_run_until(qt_manager, lambda: model.rowCount() == 0)
    assert eta_text(eta).endswith(" left")


def test_pause_and_resume_a_row(qt_manager: TaskManager, gate: Gate) -> None:
    from tasker.qt import TaskListModel, TaskRole

    def pausable(context: Any) -> str:
        """Checks for a pause between small steps until the gate opens."""
        while not gate.opened.wait(0.005):
            context.checkpoint()
            if context.is_cancelled():
                return "stopped"
        return "done"

    model = TaskListModel(qt_manager, keep_finished=1)
    task = qt_manager.run_thread(pausable, key="p")
    qt_run_until(qt_manager, lambda: statuses(model) == {"p": "running"})
    index = model.index(0, 0)
    assert model.data(index, TaskRole.PAUSE) == "" and model.data(index, TaskRole.WEIGHT) == 1.0
    assert model.pause(0) is True
    assert model.data(index, TaskRole.PAUSE) in ("pausing", "paused")  # at once
    qt_run_until(qt_manager, lambda: model.data(index, TaskRole.PAUSE) == "paused")
    assert model.resume(0) is True
    qt_run_until(qt_manager, lambda: model.data(index, TaskRole.PAUSE) == "")
    gate.open()
    qt_run_until(qt_manager, task.is_final)
    assert task.result() == "done"
    with pytest.raises(IndexError, match="row 4"):
        model.pause(4)
