"""TaskListModel and hidden tasks (``visible=False``)."""

from __future__ import annotations

import threading

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from tasker import ExecutionContext, TaskManager  # noqa: E402
from tasker.gtk import TaskListModel  # noqa: E402
from tasker.testing import run_until  # noqa: E402

pytestmark = pytest.mark.gtk


def wait_gate(context: ExecutionContext, gate: threading.Event, progress: float = 0.0) -> None:
    context.set_progress(progress)
    while not gate.wait(0.01):
        if context.is_cancelled():
            return


def keys(model: TaskListModel) -> list[str]:
    return [item.key for item in model.items()]


def test_hidden_tasks_are_left_out_unless_asked_for(task_manager: TaskManager) -> None:
    gate = threading.Event()
    plain = TaskListModel(task_manager)
    everything = TaskListModel(task_manager, show_hidden=True, keep_finished=5)
    task_manager.run_thread(wait_gate, gate, 0.5, key="shown")
    hidden = task_manager.run_thread(wait_gate, gate, key="hidden", visible=False)  # at 0.0
    run_until(lambda: keys(everything) == ["shown", "hidden"])
    run_until(lambda: hidden.get_status() == "running" and keys(plain) == ["shown"])
    # The hidden task's 0.0 never drags the overall progress down.
    run_until(lambda: plain.props.progress == pytest.approx(0.5))
    assert everything.props.progress == pytest.approx(0.5)
    # Created while a hidden task runs: the same view.
    late = TaskListModel(task_manager)
    late_all = TaskListModel(task_manager, show_hidden=True)
    assert keys(late) == ["shown"] and keys(late_all) == ["shown", "hidden"]
    gate.set()
    assert task_manager.wait_until_settled(10)
    assert keys(plain) == [] and keys(late_all) == []
    # keep_finished shows the finished hidden task too, in the model that shows hidden ones.
    assert sorted(keys(everything)) == ["hidden", "shown"]


def test_a_hidden_task_that_ends_between_updates_stays_out(task_manager: TaskManager) -> None:
    kept = TaskListModel(task_manager, keep_finished=5)
    task_manager.run_thread(lambda context: None, key="quick-hidden", visible=False)
    task_manager.run_thread(lambda context: None, key="quick-shown")
    assert task_manager.wait_until_settled(10)
    assert keys(kept) == ["quick-shown"]


def test_show_hidden_must_be_a_bool(task_manager: TaskManager) -> None:
    with pytest.raises(TypeError, match="show_hidden"):
        TaskListModel(task_manager, show_hidden=1)  # type: ignore[arg-type]
