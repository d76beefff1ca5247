"""Pins the public surface, so the API changes only on purpose."""

from __future__ import annotations

import inspect

import tasker

EXPECTED_ALL = {
    "AsyncioDispatcher",
    "CallableDispatcher",
    "CancelReason",
    "CancelledError",
    "DelayedCall",
    "Dispatcher",
    "ExecutionContext",
    "GLibDispatcher",
    "Group",
    "InlineDispatcher",
    "KeyPolicy",
    "ManagerShutdownError",
    "RemoteTraceback",
    "SerializationError",
    "Task",
    "TaskError",
    "TaskKind",
    "TaskManager",
    "TaskNotFinishedError",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskTimings",
    "TaskerError",
    "TasksUpdatedSignal",
    "ThreadDispatcher",
    "WorkerCrashedError",
    "register_owner_type",
    "task_mgr",
}

MANAGER_KEYWORDS = [
    "key",
    "when_done",
    "when_event",
    "timeout",
    "cancel_grace",
    "policy",
    "debounce",
    "group",
    "owner",
]


def test_all_is_pinned() -> None:
    assert set(tasker.__all__) == EXPECTED_ALL
    for name in tasker.__all__:
        assert getattr(tasker, name) is not None


def test_every_public_name_has_a_docstring() -> None:
    for name in tasker.__all__:
        obj = getattr(tasker, name)
        if name == "task_mgr":
            continue
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_task_starting_signatures() -> None:
    for method in ("add_coroutine", "run_thread", "run_process"):
        params = inspect.signature(getattr(tasker.TaskManager, method)).parameters
        names = list(params)
        assert names[:2] == ["self", names[1]]
        assert params[names[1]].kind is inspect.Parameter.POSITIONAL_ONLY
        assert params["args"].kind is inspect.Parameter.VAR_POSITIONAL
        assert [n for n in names if n in MANAGER_KEYWORDS] == MANAGER_KEYWORDS
        for keyword in MANAGER_KEYWORDS:
            assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[keyword].default is None
        assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD


def test_manager_constructor_options() -> None:
    params = inspect.signature(tasker.TaskManager).parameters
    assert list(params) == [
        "scheduler",
        "max_workers",
        "max_threads",
        "start_method",
        "timeout",
        "cancel_grace",
        "initializer",
        "initargs",
        "update_rate",
        "loop",
        "worker_nice",
        "process_backend",
        "event_buffer",
        "prestart_workers",  # issue 11
    ]


def test_manager_methods() -> None:
    for name in (
        "cancel_task",
        "get_task",
        "has_tasks",
        "get_overall_progress",
        "wait_until_settled",
        "shutdown",
        "configure",
        "start_workers",  # issue 11
        "__iter__",
        "__len__",
    ):
        assert callable(getattr(tasker.TaskManager, name)), name


def test_task_methods() -> None:
    for name in (
        "get_status",
        "get_progress",
        "get_message",
        "result",
        "exception",
        "is_final",
        "is_cancelled",
        "cancel",
        "__await__",
    ):
        assert callable(getattr(tasker.Task, name)), name


def test_context_methods() -> None:
    for name in (
        "set_progress",
        "set_total",
        "set_message",
        "is_cancelled",
        "sub_context",
        "send_event",
        "flush",
    ):
        assert callable(getattr(tasker.ExecutionContext, name)), name
    assert isinstance(tasker.ExecutionContext.cancellable, property)
    params = inspect.signature(tasker.ExecutionContext.sub_context).parameters
    assert list(params) == ["self", "base_progress", "progress_range", "total"]


def test_event_buffer_surface() -> None:
    # Issue 12: the per-task event_buffer keyword, coalesce and send_event_async.
    for method in ("add_coroutine", "run_thread", "run_process"):
        params = inspect.signature(getattr(tasker.TaskManager, method)).parameters
        assert params["event_buffer"].kind is inspect.Parameter.KEYWORD_ONLY
    send = inspect.signature(tasker.ExecutionContext.send_event).parameters
    assert list(send) == ["self", "name", "data", "coalesce"]
    assert send["coalesce"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(tasker.ExecutionContext.send_event_async)
    send_async = inspect.signature(tasker.ExecutionContext.send_event_async).parameters
    assert list(send_async) == ["self", "name", "data", "coalesce"]


def test_status_values_compare_equal_to_strings() -> None:
    assert [s.value for s in tasker.TaskStatus] == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert tasker.TaskStatus.COMPLETED == "completed"


def test_import_starts_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import threading, multiprocessing, tasker; "
        "assert threading.active_count() == 1, threading.enumerate(); "
        "assert not multiprocessing.active_children(); "
        "assert tasker._global_manager is None; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


# ---- issue 14: progress, pause, timeline


def test_progress_and_pause_surface() -> None:
    for method in ("add_coroutine", "run_thread", "run_process"):
        params = inspect.signature(getattr(tasker.TaskManager, method)).parameters
        assert params["weight"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["weight"].default == 1.0
    for name in ("get_overall_eta", "pause_all", "resume_all", "write_trace"):
        assert callable(getattr(tasker.TaskManager, name)), name
    for name in ("get_rate", "get_eta", "pause", "resume", "is_paused", "get_pause_state"):
        assert callable(getattr(tasker.Task, name)), name
    assert isinstance(tasker.Task.timings, property)
    for name in ("stage", "checkpoint", "acheckpoint"):
        assert callable(getattr(tasker.ExecutionContext, name)), name
    assert list(inspect.signature(tasker.ExecutionContext.stage).parameters) == [
        "self",
        "share",
        "total",
    ]
    import dataclasses

    fields = [f.name for f in dataclasses.fields(tasker.TaskTimings)]
    assert fields == [
        "created",
        "started",
        "first_progress",
        "cancel_requested",
        "finished",
        "paused_total",
        "queue_wait",
        "run_time",
        "worker",
    ]
    from tasker import trace

    assert set(trace.__all__) == {
        "KindSummary",
        "TraceError",
        "format_summary",
        "main",
        "summarize",
    }


def test_origin_parity_surface() -> None:
    """Issue 10: what the origin app (Rayforge) calls, on every manager."""
    manager = tasker.TaskManager
    for name in (
        "schedule_on_main_thread",
        "run_on_main_thread",
        "call_on_main_thread",
        "schedule_delayed_on_main_thread",
        "run_in_executor",
        "cancel_all",
        "restart_worker_pool",
    ):
        assert callable(getattr(manager, name)), name
    assert isinstance(manager.loop, property)
    assert inspect.iscoroutinefunction(manager.run_on_main_thread)
    assert inspect.iscoroutinefunction(manager.run_in_executor)
    for method in ("add_coroutine", "run_thread", "run_process"):
        visible = inspect.signature(getattr(manager, method)).parameters["visible"]
        assert visible.kind is inspect.Parameter.KEYWORD_ONLY and visible.default is True
    timeout = inspect.signature(manager.call_on_main_thread).parameters["timeout"]
    assert timeout.kind is inspect.Parameter.KEYWORD_ONLY and timeout.default is None
    for name in ("cancel", "done", "cancelled"):
        assert callable(getattr(tasker.DelayedCall, name)), name
