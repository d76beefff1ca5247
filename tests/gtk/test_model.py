"""TaskListModel and TaskItem following a real manager on the GLib main loop."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
import threading
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._display import load_gtk

Gtk = load_gtk()

from gi.repository import Gio, GObject  # noqa: E402

import tasker  # noqa: E402
from tasker import TaskManager, ThreadDispatcher  # noqa: E402
from tasker.gtk import TaskItem, TaskListModel, WrongThreadError  # noqa: E402
from tasker.gtk._model import _diff_runs  # noqa: E402
from tasker.testing import run_until  # noqa: E402

from .conftest import Gate  # noqa: E402

pytestmark = pytest.mark.gtk

PROCESSES = importlib.util.find_spec("tasker._process") is not None


class ModelLog:
    """Records what a model emits: items-changed runs, and per-key status sequences."""

    def __init__(self, model: TaskListModel) -> None:
        self.changes: list[tuple[int, int, int]] = []
        self.statuses: dict[str, list[str]] = {}
        self.notifies: dict[str, list[str]] = {}
        self.threads: set[int] = set()
        self._watched: set[int] = set()
        model.connect("items-changed", self._on_items_changed)
        for item in model:
            self._watch(item)

    def _on_items_changed(
        self, model: TaskListModel, position: int, removed: int, added: int
    ) -> None:
        self.threads.add(threading.get_ident())
        self.changes.append((position, removed, added))
        for index in range(position, position + added):
            self._watch(model.get_item(index))

    def _watch(self, item: TaskItem) -> None:
        if id(item) in self._watched:
            return
        self._watched.add(id(item))
        self.statuses.setdefault(item.key, []).append(item.status)
        item.connect("notify", self._on_notify)

    def _on_notify(self, item: TaskItem, pspec: GObject.ParamSpec) -> None:
        self.threads.add(threading.get_ident())
        self.notifies.setdefault(item.key, []).append(pspec.name)
        if pspec.name == "status":
            self.statuses[item.key].append(item.status)


def statuses(model: TaskListModel) -> dict[str, str]:
    return {item.key: item.status for item in model}


async def wait_forever(context: Any) -> None:
    context.set_message("waiting")
    await asyncio.Event().wait()


def test_model_is_a_gio_list_model_of_task_items(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager)
    assert isinstance(model, Gio.ListModel)
    assert model.get_item_type() == TaskItem.__gtype__
    assert model.get_n_items() == 0 and model.get_item(0) is None
    task = task_manager.run_thread(gate, 0.25, "quarter", key="k")
    run_until(lambda: model.get_n_items() == 1)
    item = model.get_item(0)
    assert isinstance(item, TaskItem)
    assert item.task is task
    assert model[0] is item and len(model) == 1 and list(model) == [item]
    assert model.find("k") is item and model.find("nope") is None
    run_until(lambda: item.progress == 0.25)
    assert (item.key, item.kind, item.message, item.task_id) == ("k", "thread", "quarter", task.id)
    assert item.get_property("task-id") == task.id
    gate.open()
    run_until(lambda: model.get_n_items() == 0)


def test_model_follows_every_status_of_thread_and_coroutine_tasks(
    one_thread_manager: TaskManager, gate: Gate
) -> None:
    manager = one_thread_manager
    model = TaskListModel(manager, keep_finished=10)
    log = ModelLog(model)
    second_gate = Gate()
    done = manager.run_thread(gate, 0.5, key="done")
    fails = manager.run_thread(second_gate, key="fails", fail=True)  # waits: one thread only
    dropped = manager.run_thread(gate, key="dropped")
    waits = manager.add_coroutine(wait_forever, key="waits")
    run_until(
        lambda: (
            statuses(model)
            == {"done": "running", "fails": "pending", "dropped": "pending", "waits": "running"}
        )
    )
    dropped.cancel()  # cancelled while still queued
    waits.cancel()  # cancelled while awaiting
    run_until(lambda: statuses(model)["dropped"] == "cancelled" == statuses(model)["waits"])
    gate.open()
    run_until(lambda: statuses(model)["fails"] == "running")
    second_gate.open()
    run_until(lambda: not manager.has_tasks())
    assert statuses(model) == {
        "done": "completed",
        "fails": "failed",
        "dropped": "cancelled",
        "waits": "cancelled",
    }
    assert log.statuses["fails"] == ["pending", "running", "failed"]
    assert log.statuses["dropped"] == ["pending", "cancelled"]
    assert log.statuses["done"][-2:] == ["running", "completed"]
    assert log.statuses["waits"][-2:] == ["running", "cancelled"]
    items = {item.key: item for item in model}
    assert items["fails"].error == "ValueError: the gate was a trap"
    assert items["done"].progress == 1.0 and items["done"].error == ""
    assert all(item.finished and not item.can_cancel for item in model)
    assert [item.task for item in model] == [done, fails, dropped, waits]  # start order
    assert log.threads == {threading.get_ident()}


@pytest.mark.skipif(not PROCESSES, reason="the worker-process pool is not installed")
def test_model_follows_process_tasks(task_manager: TaskManager) -> None:
    from tasker.demo import _work

    model = TaskListModel(task_manager, keep_finished=10)
    log = ModelLog(model)
    task_manager.run_process(_work.render_fractal, 40, 12, rows_per_event=4, key="render")
    task_manager.run_process(_work.parse_settings, "a = 1\nbroken\n", key="parse")
    task_manager.run_process(_work.crash_worker, 7, key="crash")
    stubborn = task_manager.run_process(
        _work.stubborn_render, 30.0, key="stubborn", cancel_grace=0.2
    )
    run_until(lambda: stubborn.get_progress() > 0, timeout=30)
    stubborn.cancel()
    run_until(lambda: not task_manager.has_tasks(), timeout=30)
    final = {item.key: (item.status, item.error.split(":")[0]) for item in model}
    assert final == {
        "render": ("completed", ""),
        "parse": ("failed", "ValueError"),
        "crash": ("failed", "WorkerCrashedError"),
        "stubborn": ("cancelled", ""),
    }
    assert log.statuses["stubborn"][-2:] == ["running", "cancelled"]
    assert log.threads == {threading.get_ident()}


def test_properties_notify_only_when_their_value_changes(
    task_manager: TaskManager, gate: Gate
) -> None:
    model = TaskListModel(task_manager)
    message_gate = threading.Event()
    reported = threading.Event()

    def steady(context: Any) -> None:
        context.set_progress(0.5)
        context.set_message("half")
        for _ in range(50):  # the same values again and again: nothing to notify
            context.set_progress(0.5)
            context.set_message("half")
        context.flush()
        reported.set()
        message_gate.wait(10)
        context.set_message("three quarters")
        context.set_progress(0.5)
        context.flush()
        gate.opened.wait(10)

    task_manager.run_thread(steady, key="steady")
    run_until(lambda: model.find("steady") is not None and model.find("steady").message == "half")
    item = model.find("steady")
    names: list[str] = []
    item.connect("notify", lambda _item, pspec: names.append(pspec.name))
    # Other tasks come and go: each makes the manager emit tasks_updated again.
    for n in range(3):
        other = task_manager.run_thread(lambda context: None, key=f"other-{n}")
        # It leaves the live list in a drain, which emits tasks_updated.
        run_until(lambda other=other: other.is_final() and other not in list(task_manager))
    assert names == []
    message_gate.set()
    run_until(lambda: item.message == "three quarters")
    assert names == ["message"]
    gate.open()
    run_until(lambda: not task_manager.has_tasks())


def test_a_burst_of_new_tasks_is_one_items_changed(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager)
    log = ModelLog(model)
    tasks = [task_manager.run_thread(gate, key=f"t{n}") for n in range(20)]
    run_until(lambda: model.get_n_items() == 20)
    assert log.changes == [(0, 0, 20)]

    # Let all twenty finish while the main loop is not running, then let it run.
    gate.open()

    async def all_final() -> None:
        await asyncio.wait_for(asyncio.gather(*tasks), 30)

    asyncio.run(all_final())
    updates: list[int] = []
    task_manager.tasks_updated.connect(lambda sender, tasks, progress: updates.append(len(tasks)))
    run_until(lambda: model.get_n_items() == 0)
    removals = log.changes[1:]
    assert sum(removed for _, removed, _ in removals) == 20
    assert all(added == 0 for _, _, added in removals)
    # One run per update at most (in practice a single (0, 20, 0)).
    assert 1 <= len(removals) <= len(updates)


def test_removals_in_the_middle_are_separate_runs(task_manager: TaskManager) -> None:
    gates = [Gate() for _ in range(6)]
    model = TaskListModel(task_manager)
    tasks = [task_manager.run_thread(g, key=f"t{n}") for n, g in enumerate(gates)]
    # Status changes re-announce items (for filters), so start from a settled list.
    run_until(lambda: model.get_n_items() == 6 and all(i.status == "running" for i in model))
    log = ModelLog(model)
    for n in (1, 2, 4):
        gates[n].open()

    async def some_final() -> None:
        await asyncio.wait_for(asyncio.gather(tasks[1], tasks[2], tasks[4]), 30)

    asyncio.run(some_final())
    run_until(lambda: model.get_n_items() == 3)
    assert [item.key for item in model] == ["t0", "t3", "t5"]
    assert log.changes == [(1, 2, 0), (2, 1, 0)]
    for g in gates:
        g.open()
    run_until(lambda: not task_manager.has_tasks())


@given(
    st.sets(st.integers(0, 40)).map(sorted),
    st.sets(st.integers(0, 40)).map(sorted),
)
def test_diff_runs_turn_old_into_new_with_maximal_runs(old: list[int], new: list[int]) -> None:
    current = list(old)
    runs = _diff_runs(old, new)
    for position, removed, added in runs:
        current[position : position + removed] = new[position : position + added]
    assert current == new
    # Runs are separated by at least one unchanged item: none could be merged.
    for (p1, _, a1), (p2, _, _) in itertools.pairwise(runs):
        assert p2 > p1 + a1


def run_gated(manager: TaskManager, model: TaskListModel, key: str) -> None:
    """Run one thread task that the model sees running, then let it finish."""
    gate = Gate()
    manager.run_thread(gate, key=key)
    run_until(lambda: model.find(key) is not None)
    gate.open()
    run_until(lambda: not manager.has_tasks())


def test_keep_finished_keeps_the_newest_finished_items(task_manager: TaskManager) -> None:
    model = TaskListModel(task_manager, keep_finished=2)
    for n in range(4):
        run_gated(task_manager, model, f"task-{n}")
    assert [item.key for item in model] == ["task-2", "task-3"]
    assert all(item.status == "completed" and item.finished for item in model)
    model.clear_finished()
    assert model.get_n_items() == 0
    run_gated(task_manager, model, "after-clear")
    assert [item.key for item in model] == ["after-clear"]


def test_finished_timeout_drops_kept_items(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager, keep_finished=5, finished_timeout=0.05)
    task_manager.run_thread(gate, key="short-lived")
    run_until(lambda: model.get_n_items() == 1)
    gate.open()
    run_until(lambda: model.find("short-lived") is not None and model.find("short-lived").finished)
    run_until(lambda: model.get_n_items() == 0)


def test_updates_off_the_main_thread_are_refused(tasker_errors: pytest.LogCaptureFixture) -> None:
    # A manager whose callbacks run on a private thread, not the GLib main loop.
    dispatcher = ThreadDispatcher()  # callbacks on its own thread, not the main loop
    manager = TaskManager(dispatcher)
    try:
        model = TaskListModel(manager)
        changes: list[object] = []
        model.connect("items-changed", lambda *args: changes.append(args))
        idle = threading.Event()
        manager.tasks_updated.connect(lambda sender, tasks, progress: tasks or idle.set())
        manager.run_thread(lambda context: None)
        assert idle.wait(10)
        manager.shutdown()
        dispatcher.close()  # joins the dispatch thread: the idle emission has finished
        assert changes == [] and model.get_n_items() == 0
        assert any(
            record.exc_info and isinstance(record.exc_info[1], WrongThreadError)
            for record in tasker_errors.records
        )
        raised: list[BaseException] = []

        def refresh_elsewhere() -> None:
            try:
                model.refresh()
            except Exception as error:
                raised.append(error)

        thread = threading.Thread(target=refresh_elsewhere)
        thread.start()
        thread.join()
        assert len(raised) == 1 and isinstance(raised[0], WrongThreadError)
    finally:
        manager.shutdown()
        dispatcher.close()


def test_a_dropped_model_stops_receiving_updates(task_manager: TaskManager) -> None:
    before = len(task_manager.tasks_updated.receivers)
    model = TaskListModel(task_manager)
    assert len(task_manager.tasks_updated.receivers) == before + 1
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    task_manager.run_thread(lambda context: None)
    run_until(lambda: not task_manager.has_tasks())
    assert len(task_manager.tasks_updated.receivers) == before


def test_close_disconnects_and_empties(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager)
    task_manager.run_thread(gate)
    run_until(lambda: model.get_n_items() == 1)
    log = ModelLog(model)
    model.close()
    assert log.changes == [(0, 1, 0)] and model.get_n_items() == 0 and model.manager is None
    model.close()  # twice is fine
    task_manager.run_thread(gate)
    gate.open()
    run_until(lambda: not task_manager.has_tasks())
    assert model.get_n_items() == 0


def test_overall_progress_and_busy_properties(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager)
    bar = Gtk.ProgressBar()
    model.bind_property("progress", bar, "fraction", GObject.BindingFlags.SYNC_CREATE)
    assert model.busy is False and bar.get_fraction() == 1.0
    task_manager.run_thread(gate, 0.5)
    task_manager.run_thread(gate, 0.0)
    run_until(lambda: model.busy and bar.get_fraction() == 0.25)
    gate.open()
    run_until(lambda: not model.busy and bar.get_fraction() == 1.0)


def test_gtk_expressions_filter_the_model(task_manager: TaskManager, gate: Gate) -> None:
    model = TaskListModel(task_manager)
    expression = Gtk.PropertyExpression.new(TaskItem, None, "status")
    only_running = Gtk.StringFilter.new(expression)
    only_running.set_match_mode(Gtk.StringFilterMatchMode.EXACT)
    only_running.set_search("running")
    filtered = Gtk.FilterListModel.new(model, only_running)
    keep_running = task_manager.run_thread(gate, key="runs")
    task_manager.run_thread(lambda context: None, key="quick")
    run_until(lambda: filtered.get_n_items() == 1)
    assert filtered.get_item(0).task is keep_running
    gate.open()
    run_until(lambda: filtered.get_n_items() == 0 and not task_manager.has_tasks())


def test_the_default_manager_is_the_global_one() -> None:
    model = TaskListModel()
    try:
        assert model.manager is tasker.task_mgr
    finally:
        model.close()


def test_bad_options_are_rejected(task_manager: TaskManager) -> None:
    with pytest.raises(ValueError):
        TaskListModel(task_manager, keep_finished=-1)
    with pytest.raises(TypeError):
        TaskListModel(task_manager, keep_finished=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TaskListModel(task_manager, finished_timeout=0)


def test_tasks_finished_between_updates_are_kept_when_asked(task_manager: TaskManager) -> None:
    model = TaskListModel(task_manager, keep_finished=5)
    live_only = TaskListModel(task_manager)
    log = ModelLog(model)

    def fails_at_once(context: Any) -> None:
        raise OSError("no such file")

    # All three finish before the main loop runs: no tasks_updated ever lists them.
    tasks = [
        task_manager.run_thread(lambda context: 42, key="instant"),
        task_manager.run_thread(fails_at_once, key="fails-at-once"),
    ]

    async def all_final() -> None:
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)

    asyncio.run(all_final())
    run_until(lambda: not task_manager.has_tasks())
    assert statuses(model) == {"instant": "completed", "fails-at-once": "failed"}
    assert model.find("fails-at-once").error == "OSError: no such file"
    assert log.changes == [(0, 0, 2)]
    assert live_only.get_n_items() == 0
