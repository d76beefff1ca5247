"""Issue 14 in tasker.gtk: TaskItem eta, pause-state and weight; TaskRow time left, pause."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from tasker import ExecutionContext, TaskManager  # noqa: E402
from tasker.gtk import TaskListModel, TaskListView, TaskRow  # noqa: E402
from tasker.gtk._widgets import eta_text, status_text  # noqa: E402
from tasker.testing import drain, run_until  # noqa: E402

pytestmark = pytest.mark.gtk


class Pausable:
    """Reports progress and calls checkpoint() until told to stop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.started = threading.Event()

    def __call__(self, context: ExecutionContext) -> None:
        self.started.set()
        while not self.stop.is_set() and not context.is_cancelled():
            context.checkpoint()
            self.stop.wait(0.005)


class Stepper:
    """Steps its progress each time the test sets ``go``."""

    def __init__(self, steps: int) -> None:
        self.go = threading.Event()
        self.steps = steps

    def __call__(self, context: ExecutionContext) -> None:
        for step in range(1, self.steps + 1):
            while not self.go.wait(0.01):
                if context.is_cancelled():
                    return
            self.go.clear()
            context.set_progress(step / self.steps)
            context.flush()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (-1.0, ""),
        (2.0, "a few seconds left"),
        (12.0, "about 10 s left"),
        (50.0, "about 50 s left"),
        (58.0, "about 1 min left"),
        (125.0, "about 2 min left"),
        (80 * 60.0, "about 80 min left"),
        (2 * 3600.0, "about 2 h left"),
        (2.5 * 3600.0, "about 2 h 30 min left"),
    ],
)
def test_eta_text(seconds: float | None, text: str) -> None:
    assert eta_text(seconds) == text


def test_status_text_of_pausing_and_paused_tasks() -> None:
    assert status_text("running", True, "pausing") == "Pausing…"
    assert status_text("running", True, "paused") == "Paused"
    assert status_text("pending", True, "paused") == "Paused"
    assert status_text("running", False, "paused") == "Cancelling…"
    assert status_text("completed", False, "") == "Done"


def test_item_follows_pause_state_weight_and_eta(task_manager: TaskManager) -> None:
    body = Pausable()
    task = task_manager.run_thread(body, weight=2.5)
    model = TaskListModel(task_manager)
    run_until(lambda: model.get_n_items() == 1 and body.started.is_set())
    item = model.get_item(0)
    assert item.weight == 2.5
    assert item.eta == -1.0  # no estimate yet
    notified: list[str] = []
    item.connect("notify::pause-state", lambda obj, pspec: notified.append(obj.pause_state))
    assert item.pause() is True
    assert item.pause_state in ("pausing", "paused")
    run_until(lambda: item.pause_state == "paused")
    assert task.get_pause_state() == "paused"
    assert item.resume() is True
    assert item.pause_state == ""
    assert notified[-1] == "" and "paused" in notified
    body.stop.set()
    run_until(task.is_final)


def test_item_eta_comes_from_the_task(task_manager: TaskManager) -> None:
    body = Stepper(8)
    task = task_manager.run_thread(body)
    model = TaskListModel(task_manager)
    run_until(lambda: model.get_n_items() == 1)
    item = model.get_item(0)
    while task.get_eta() is None:
        assert task.get_progress() < 0.75, "no ETA after most of the updates"
        drain(0.3)  # an ETA is about time: let some pass
        before = task.get_progress()
        body.go.set()
        run_until(lambda before=before: task.get_progress() > before)
    run_until(lambda: item.eta >= 0)
    eta = task.get_eta()
    assert eta is not None and abs(item.eta - eta) < 1.0
    task.cancel()
    run_until(lambda: model.get_n_items() == 0)


def test_row_pause_toggle_pauses_and_resumes(task_manager: TaskManager, window: Any) -> None:
    body = Pausable()
    task = task_manager.run_thread(body, key="export")
    view = TaskListView(manager=task_manager)
    window.set_child(view)
    window.present()
    run_until(lambda: any(r.item is not None and r.item.key == "export" for r in view.rows()))
    row = next(r for r in view.rows() if r.item is not None)
    assert isinstance(row, TaskRow)
    run_until(body.started.is_set)
    assert row.pause_button.get_sensitive() and not row.pause_button.get_active()
    assert row.pause_button.get_tooltip_text() == "Pause export"
    row.pause_button.set_active(True)  # what a click does
    run_until(lambda: task.get_pause_state() == "paused")
    run_until(lambda: row.status.get_text() == "Paused")
    assert row.pause_button.get_active()
    assert row.pause_button.get_icon_name() == "media-playback-start-symbolic"
    assert row.pause_button.get_tooltip_text() == "Resume export"
    row.pause_button.set_active(False)
    assert task.get_pause_state() is None
    run_until(lambda: row.status.get_text() == "Running")
    # A pause from elsewhere shows in the row too, without the row pausing again.
    task.pause()
    run_until(
        lambda: row.status.get_text() in ("Pausing…", "Paused") and row.pause_button.get_active()
    )
    task.resume()
    run_until(lambda: not row.pause_button.get_active())
    task.cancel()
    run_until(lambda: not row.pause_button.get_sensitive() or row.item is None)


def test_row_shows_time_left(task_manager: TaskManager, window: Any) -> None:
    body = Stepper(8)
    task = task_manager.run_thread(body, key="render")
    view = TaskListView(manager=task_manager)
    window.set_child(view)
    window.present()
    run_until(lambda: any(r.item is not None for r in view.rows()))
    row = next(r for r in view.rows() if r.item is not None)
    assert row.eta.get_text() == ""
    while task.get_eta() is None:
        assert task.get_progress() < 0.75, "no ETA after most of the updates"
        drain(0.3)
        before = task.get_progress()
        body.go.set()
        run_until(lambda before=before: task.get_progress() > before)
    run_until(lambda: row.eta.get_text().endswith(" left"))
    assert row.eta.get_text() == eta_text(row.item.eta if row.item is not None else None)
    task.cancel()
    run_until(task.is_final)
