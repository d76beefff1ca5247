"""The manager's ``task_done`` signal (a core hook TaskListModel relies on); needs no GTK."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tasker import Task, TaskManager
from tasker.testing import run_until


def test_task_done_follows_when_done_on_the_main_thread(task_manager: TaskManager) -> None:
    order: list[tuple[str, object, int]] = []

    def on_done(sender: object, task: Task[Any]) -> None:
        order.append(("task_done", task.key, threading.get_ident()))
        assert sender is task_manager
        assert task not in list(task_manager)  # already out of the live list

    def when_done(task: Task[Any]) -> None:
        order.append(("when_done", task.key, threading.get_ident()))

    task_manager.task_done.connect(on_done)  # strong by default, like tasks_updated
    task_manager.run_thread(lambda context: None, key="a", when_done=when_done)
    task_manager.run_thread(lambda context: None, key="b")
    run_until(lambda: not task_manager.has_tasks())
    main = threading.get_ident()
    assert sorted(order) == sorted(
        [("when_done", "a", main), ("task_done", "a", main), ("task_done", "b", main)]
    )
    assert order.index(("when_done", "a", main)) < order.index(("task_done", "a", main))


def test_a_failing_task_done_handler_is_logged_and_harmless(
    task_manager: TaskManager, tasker_errors: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    def broken(sender: object, task: Task[Any]) -> None:
        raise RuntimeError("handler bug")

    task_manager.task_done.connect(broken)
    task_manager.task_done.connect(lambda sender, task: seen.append(task.key))
    task_manager.run_thread(lambda context: None, key="x")
    run_until(lambda: not task_manager.has_tasks())
    assert seen == ["x"]
    assert any("handler bug" in str(r.exc_info[1]) for r in tasker_errors.records if r.exc_info)
