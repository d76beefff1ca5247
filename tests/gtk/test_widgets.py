"""TaskProgressBar and TaskListView in a real window under the virtual display."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from tasker import TaskManager, ThreadDispatcher  # noqa: E402
from tasker.gtk import (  # noqa: E402
    TaskListModel,
    TaskListView,
    TaskProgressBar,
    TaskRow,
    WrongThreadError,
)
from tasker.testing import run_until  # noqa: E402

from .conftest import Gate  # noqa: E402

pytestmark = pytest.mark.gtk


def show(window: Any, *widgets: Any) -> None:
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
    for widget in widgets:
        box.append(widget)
    window.set_child(box)
    window.present()
    run_until(lambda: all(widget.get_mapped() for widget in widgets))


def rows_by_key(view: TaskListView) -> dict[str, TaskRow]:
    return {row.item.key: row for row in view.rows() if row.item is not None}


def test_progress_bar_shows_overall_progress_and_the_newest_message(
    task_manager: TaskManager, window: Any
) -> None:
    bar = TaskProgressBar(task_manager, idle_text="Nothing to do")
    show(window, bar)
    assert bar.label.get_text() == "Nothing to do"
    assert bar.label.has_css_class("dim-label") and bar.progress_bar.get_fraction() == 0.0
    first, second = Gate(), Gate()
    task_manager.run_thread(first, 0.5, "older message")
    run_until(lambda: bar.label.get_text() == "older message")
    assert bar.progress_bar.get_fraction() == 0.5
    assert bar.progress_bar.get_text() == "50 %"
    assert not bar.label.has_css_class("dim-label")
    task_manager.run_thread(second, 0.0, "newest message")
    run_until(lambda: bar.label.get_text() == "newest message")
    assert bar.progress_bar.get_fraction() == 0.25
    assert bar.progress_bar.get_text() == "2 tasks · 25 %"
    first.open()
    second.open()
    run_until(lambda: bar.label.get_text() == "Nothing to do")
    assert bar.progress_bar.get_fraction() == 0.0 and bar.label.has_css_class("dim-label")
    assert Gtk.test_accessible_has_property(bar.progress_bar, Gtk.AccessibleProperty.LABEL)


def test_progress_bar_can_hide_while_idle(task_manager: TaskManager, gate: Gate) -> None:
    bar = TaskProgressBar(task_manager, hide_when_idle=True)
    assert not bar.get_visible()
    task_manager.run_thread(gate, 0.1, "working")
    run_until(bar.get_visible)
    gate.open()
    run_until(lambda: not bar.get_visible())


def test_list_view_rows_show_their_task_and_cancel_the_right_one(
    task_manager: TaskManager, window: Any
) -> None:
    view = TaskListView(manager=task_manager)
    show(window, view)
    assert view.placeholder.get_mapped()
    gates = {key: Gate() for key in ("first", "second", "third")}
    tasks = {
        key: task_manager.run_thread(g, 0.4, f"{key} at work", key=key) for key, g in gates.items()
    }
    run_until(
        lambda: (
            len(rows_by_key(view)) == 3
            and all(row.progress_bar.get_fraction() == 0.4 for row in rows_by_key(view).values())
        )
    )
    assert not view.placeholder.get_mapped()
    rows = rows_by_key(view)
    second = rows["second"]
    assert second.title.get_text() == "second" and second.kind.get_text() == "thread"
    assert second.message.get_text() == "second at work"
    assert second.status.get_text() == "Running"
    assert second.cancel_button.get_sensitive()
    assert second.cancel_button.get_tooltip_text() == "Cancel second"
    for widget in (second.cancel_button, second.progress_bar, second):
        assert Gtk.test_accessible_has_property(widget, Gtk.AccessibleProperty.LABEL)

    second.cancel_button.emit("clicked")

    assert tasks["second"].is_cancelled()
    assert not tasks["first"].is_cancelled() and not tasks["third"].is_cancelled()
    run_until(lambda: tasks["second"].is_final())
    for key in ("first", "third"):
        gates[key].open()
    run_until(lambda: not task_manager.has_tasks())
    assert tasks["second"].get_status() == "cancelled"
    assert {key: task.get_status() for key, task in tasks.items() if key != "second"} == {
        "first": "completed",
        "third": "completed",
    }
    run_until(lambda: view.placeholder.get_mapped())


def test_a_row_waiting_for_a_worker_says_so(window: Any) -> None:
    from tasker import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), max_threads=1)
    try:
        view = TaskListView(manager=manager)
        show(window, view)
        busy, waiting = Gate(), Gate()
        manager.run_thread(busy, 0.1, "busy at work", key="busy")
        queued = manager.run_thread(waiting, key="queued")
        run_until(lambda: set(rows_by_key(view)) == {"busy", "queued"} and busy.entered.is_set())
        row = rows_by_key(view)["queued"]
        assert queued.get_status() == "pending"
        assert row.message.get_text() == "Waiting for a worker"
        busy.open()
        run_until(lambda: waiting.entered.is_set())
        run_until(lambda: row.status.get_text() == "Running")
        assert row.message.get_text() == ""
        waiting.open()
        assert manager.wait_until_settled(10)
    finally:
        manager.shutdown()


def test_rows_show_final_states_errors_and_cancelling(
    task_manager: TaskManager, window: Any
) -> None:
    model = TaskListModel(task_manager, keep_finished=5)
    view = TaskListView(model)
    show(window, view)
    stubborn_started = threading.Event()
    release = threading.Event()

    def stubborn(context: Any) -> None:
        context.set_message("not listening")
        stubborn_started.set()
        release.wait(10)  # ignores cancellation until the test lets go

    def broken(context: Any) -> None:
        raise KeyError("missing")

    slow = task_manager.run_thread(stubborn, key="stubborn")
    task_manager.run_thread(broken, key="broken")
    run_until(lambda: "stubborn" in rows_by_key(view) and stubborn_started.is_set())
    rows_by_key(view)["stubborn"].cancel_button.emit("clicked")
    run_until(lambda: rows_by_key(view)["stubborn"].status.get_text() == "Cancelling…")
    row = rows_by_key(view)["stubborn"]
    assert not row.cancel_button.get_sensitive()
    assert row.status.has_css_class("warning")
    release.set()
    run_until(lambda: slow.is_final() and not task_manager.has_tasks())
    run_until(lambda: rows_by_key(view)["stubborn"].status.get_text() == "Cancelled")
    failed = rows_by_key(view)["broken"]
    assert failed.status.get_text() == "Failed" and failed.status.has_css_class("error")
    assert failed.message.get_text() == "KeyError: 'missing'"
    assert failed.message.has_css_class("error")
    assert not failed.cancel_button.get_sensitive()


def test_widgets_work_together_on_one_model(
    task_manager: TaskManager, window: Any, gate: Gate
) -> None:
    model = TaskListModel(task_manager)
    view = TaskListView(model)
    bar = TaskProgressBar(task_manager)
    show(window, view, bar)
    task_manager.run_thread(gate, 0.75, "shared")
    run_until(lambda: bar.progress_bar.get_fraction() == 0.75 and len(view.rows()) == 1)
    assert view.model is model
    gate.open()
    run_until(lambda: not task_manager.has_tasks() and bar.label.get_text() == "Idle")


def test_widget_updates_off_the_main_thread_are_refused(
    tasker_errors: pytest.LogCaptureFixture,
) -> None:
    dispatcher = ThreadDispatcher()  # callbacks on its own thread, not the main loop
    manager = TaskManager(dispatcher)
    try:
        bar = TaskProgressBar(manager)
        idle = threading.Event()
        manager.tasks_updated.connect(lambda sender, tasks, progress: tasks or idle.set())
        manager.run_thread(lambda context: context.set_message("from elsewhere"))
        assert idle.wait(10)
        manager.shutdown()
        dispatcher.close()  # joins the dispatch thread: the idle emission has finished
        assert bar.label.get_text() == "Idle"
        refused = [
            record
            for record in tasker_errors.records
            if record.exc_info and isinstance(record.exc_info[1], WrongThreadError)
        ]
        assert refused
    finally:
        manager.shutdown()
        dispatcher.close()


def test_every_widget_update_runs_on_the_main_thread(
    task_manager: TaskManager, window: Any, gate: Gate
) -> None:
    view = TaskListView(manager=task_manager)
    bar = TaskProgressBar(task_manager)
    show(window, view, bar)
    threads: set[int] = set()
    for widget in (bar.label, bar.progress_bar):
        widget.connect("notify", lambda *args: threads.add(threading.get_ident()))
    view.model.connect("items-changed", lambda *args: threads.add(threading.get_ident()))
    for n in range(4):
        task_manager.run_thread(gate, n / 4, f"message {n}")
    run_until(lambda: len(view.rows()) == 4)
    for row in view.rows():
        row.progress_bar.connect("notify", lambda *args: threads.add(threading.get_ident()))
    gate.open()
    run_until(lambda: not task_manager.has_tasks())
    assert threads == {threading.get_ident()}
