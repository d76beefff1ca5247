"""owner= with GTK widgets and GObjects; cancel reasons in TaskItem and TaskRow."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from gi.repository import GObject  # noqa: E402

from tasker import CancelReason, Group, TaskManager  # noqa: E402
from tasker.gtk import TaskItem, TaskListModel, TaskListView  # noqa: E402
from tasker.gtk._widgets import status_text  # noqa: E402
from tasker.testing import run_until  # noqa: E402

from .conftest import Gate  # noqa: E402

pytestmark = pytest.mark.gtk


def test_a_destroyed_window_cancels_its_tasks_and_drops_their_callbacks(
    task_manager: TaskManager,
) -> None:
    panel = Gtk.Window(title="panel")
    done: list[object] = []
    events: list[object] = []
    sent = threading.Event()
    release = threading.Event()

    def render(context: Any) -> str:
        context.send_event("tile", 1)
        sent.set()
        while not release.wait(0.005):
            if context.is_cancelled():
                return "stopped"
        return "rendered"

    task = task_manager.run_thread(
        render,
        owner=panel,
        when_done=done.append,
        when_event=lambda t, name, data: events.append(data),
    )
    assert sent.wait(10)
    # GTK 4 emits "destroy" when the window is disposed: once GTK's own
    # reference (destroy()) and ours are gone. Its queued event never arrives.
    panel.destroy()
    del panel
    gc.collect()
    run_until(task.is_final)
    assert task.get_status() == "cancelled"
    assert task.cancel_reason is CancelReason.OWNER_GONE
    assert task_manager.wait_until_settled(10)
    assert done == [] and events == []


def test_a_finalized_gobject_cancels_its_tasks(task_manager: TaskManager, gate: Gate) -> None:
    owner = GObject.Object()
    task = task_manager.run_thread(gate, owner=owner)
    assert gate.entered.wait(10)
    del owner
    gc.collect()
    run_until(task.is_final)
    assert task.cancel_reason is CancelReason.OWNER_GONE


def test_run_dispose_counts_as_destroyed(task_manager: TaskManager, gate: Gate) -> None:
    box = Gtk.Box()
    task = task_manager.run_thread(gate, owner=box)
    assert gate.entered.wait(10)
    box.run_dispose()  # still referenced, but disposed: "destroy" has been emitted
    run_until(task.is_final)
    assert task.cancel_reason is CancelReason.OWNER_GONE


def test_a_live_widget_owner_changes_nothing(task_manager: TaskManager) -> None:
    label = Gtk.Label()
    done: list[object] = []
    task = task_manager.run_thread(lambda ctx: 5, owner=label, when_done=done.append)
    assert task_manager.wait_until_settled(10)
    assert done == [task] and task.result() == 5


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        ("", "Cancelled"),
        ("user", "Cancelled"),
        ("replaced", "Replaced"),
        ("superseded", "Superseded"),
        ("owner_gone", "Owner gone"),
        ("group", "Group stopped"),
        ("shutdown", "Shut down"),
        ("from-the-future", "Cancelled"),
    ],
)
def test_status_text_says_why_a_task_was_cancelled(reason: str, text: str) -> None:
    assert status_text("cancelled", False, cancel_reason=reason) == text
    assert status_text("running", False, cancel_reason=reason) == "Cancelling…"


def test_task_item_and_row_show_the_cancel_reason(task_manager: TaskManager, window: Any) -> None:
    model = TaskListModel(task_manager, keep_finished=10)
    view = TaskListView(model)
    window.set_child(view)
    window.present()
    first, second = Gate(), Gate()
    old = task_manager.run_thread(first, key="preview")
    assert first.entered.wait(10)
    new = task_manager.run_thread(second, key="preview")
    group = Group("batch")
    grouped = task_manager.run_thread(Gate(), group=group)
    group.cancel()
    second.open()
    assert task_manager.wait_until_settled(10)

    def row_text(task: Any) -> str | None:
        for row in view.rows():
            if row.item is not None and row.item.task is task:
                return str(row.status.get_text())
        return None

    run_until(lambda: row_text(old) == "Replaced" and row_text(grouped) == "Group stopped")
    assert row_text(new) == "Done"
    item = TaskItem(old)
    assert item.cancel_reason == "replaced"
    assert item.get_property("cancel-reason") == "replaced"
    assert TaskItem(new).cancel_reason == ""
