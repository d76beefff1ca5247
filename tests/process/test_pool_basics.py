"""The pool's basic life: lazy start, reuse, queueing, arguments, progress, context."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tasker import TaskStatus
from tasker._process import default_start_method
from tasker._process._pool import LISTENER_NAME
from tasker.testing import run_until

from . import _work as work
from ._util import SLOW, Events, finish, settle

ROOT = Path(__file__).resolve().parents[2]


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LISTENER_NAME]


def test_nothing_starts_before_the_first_run_process(make_manager):
    before = set(threading.enumerate())
    manager = make_manager()
    manager.run_thread(lambda context: None)  # other backends do not start the pool
    settle(manager)
    assert manager._process_pool is None
    assert not [t for t in set(threading.enumerate()) - before if t.name == LISTENER_NAME]
    task = finish(manager.run_process(work.add, 1, 2))
    assert task.result() == 3
    assert len(listener_threads()) >= 1


def test_default_start_method_is_forkserver_on_linux():
    expected = "forkserver" if sys.platform.startswith("linux") else "spawn"
    assert default_start_method() == expected


def test_seed_examples_run_as_written(tmp_path):
    # The README's CPU example and when_done example, verbatim (bar the import),
    # at module level of a script, without a main guard: workers never import
    # the script (its functions travel by value), so nothing starts twice.
    script = tmp_path / "seed_app.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from tasker import task_mgr

            # A regular function, not async.
            def my_cpu_task(context, iterations):
                context.set_total(iterations)
                context.set_message("Calculating...")
                for i in range(iterations):
                    # ... perform heavy calculation ...
                    time.sleep(0.1) # Simulate work
                    context.set_progress(i + 1)
                return "Final Result"

            # Start the task
            task_mgr.run_process(my_cpu_task, 50, key="calculator")

            def on_task_finished(task):
                if task.get_status() == 'completed':
                    print(f"Task finished with result: {task.result()}")
                elif task.get_status() == 'failed':
                    print(f"Task failed: {task._task_exception}")

            task_mgr.run_process(my_cpu_task, 10, when_done=on_task_finished)

            if __name__ == "__main__":
                from gi.repository import GLib

                loop = GLib.MainLoop()

                def check():
                    if task_mgr.has_tasks():
                        return True
                    calculator = task_mgr.get_task("calculator")
                    print("calculator gone:", calculator is None)
                    loop.quit()
                    return False

                GLib.timeout_add(20, check)
                loop.run()
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Task finished with result: Final Result",
        "calculator gone: True",
    ]


def test_arguments_and_keyword_arguments(make_manager):
    manager = make_manager()
    task = finish(manager.run_process(work.echo_kwargs, 1, "two", [3], flag=True, name="x"))
    assert task.result() == ((1, "two", [3]), {"flag": True, "name": "x"})


def test_manager_keywords_are_not_passed_to_the_function(make_manager):
    manager = make_manager()
    events = Events()
    task = finish(
        manager.run_process(
            work.echo_kwargs, 1, key="k", when_event=events, timeout=30, cancel_grace=1, other=2
        )
    )
    assert task.result() == ((1,), {"other": 2})


def test_workers_are_reused(make_manager):
    manager = make_manager(max_workers=1)
    pids = {finish(manager.run_process(work.pid)).result() for _ in range(5)}
    assert len(pids) == 1
    assert pids != {os.getpid()}


def test_tasks_beyond_capacity_queue_in_order(make_manager, tmp_path):
    manager = make_manager(max_workers=1)
    release = tmp_path / "release"
    events = Events()
    blocker = manager.run_process(work.wait_for_path, str(release), when_event=events)
    events.wait("started")
    order: list[int] = []
    queued = [
        manager.run_process(work.identity, i, when_done=lambda t: order.append(t.result()))
        for i in range(6)
    ]
    assert all(t.get_status() == TaskStatus.PENDING for t in queued)
    release.touch()
    settle(manager)
    assert blocker.get_status() == TaskStatus.COMPLETED
    assert order == list(range(6))


def test_task_cancelled_while_queued_never_starts(make_manager, tmp_path):
    manager = make_manager(max_workers=1)
    release = tmp_path / "release"
    events = Events()
    blocker = manager.run_process(work.wait_for_path, str(release), when_event=events)
    events.wait("started")
    queued_events = Events()
    done: list[object] = []
    queued = manager.run_process(work.sleeper, 60, when_event=queued_events, when_done=done.append)
    after = manager.run_process(work.add, 2, 3)
    assert manager.cancel_task(queued.key)
    release.touch()
    settle(manager)
    assert queued.get_status() == TaskStatus.CANCELLED
    assert done == [queued]
    assert queued_events.items == []  # it never ran
    assert blocker.result() > 0
    assert after.result() == 5


def test_final_progress_and_message_arrive_before_when_done(make_manager):
    manager = make_manager()
    seen: list[tuple[float, str | None]] = []
    task = manager.run_process(
        work.cpu_task, 30, when_done=lambda t: seen.append((t.get_progress(), t.get_message()))
    )
    settle(manager)
    assert task.result() == "Final Result"
    assert seen == [(1.0, "Calculating...")]


def test_progress_is_visible_while_running(make_manager):
    manager = make_manager()
    task = manager.run_process(work.flush_and_wait)
    run_until(lambda: task.get_message() == "half way", SLOW)
    assert task.get_progress() == 0.5
    assert task.get_status() == TaskStatus.RUNNING
    task.cancel()
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED


def test_sub_contexts_in_a_worker(make_manager):
    manager = make_manager()
    task = finish(manager.run_process(work.multi_stage))
    assert task.result() == 0.75
    # A completed task reads 1.0; the last value its worker reported is kept in its report.
    assert task.get_progress() == 1.0
    assert task._report.progress == pytest.approx(0.75)
    assert task.get_message() == "stage two half done"


def test_context_cancellable_is_refused_in_a_process(make_manager):
    manager = make_manager()
    message = finish(manager.run_process(work.cancellable_attr)).result()
    assert "coroutine and thread tasks" in message


def test_worker_process_settings(make_manager):
    manager = make_manager(worker_nice=3)
    info = finish(manager.run_process(work.worker_info)).result()
    assert info["pid"] != os.getpid()
    assert info["pgid"] == info["pid"]  # its own process group
    assert info["sigint"] is True
    assert info["nice"] >= min(19, os.nice(0) + 3)
    assert info["in_worker"] is True


def test_workers_run_tasks_in_parallel(make_manager, tmp_path):
    manager = make_manager(max_workers=2)
    release = tmp_path / "release"
    first, second = Events(), Events()
    a = manager.run_process(work.wait_for_path, str(release), when_event=first)
    b = manager.run_process(work.wait_for_path, str(release), when_event=second)
    # Both announce their start before either may finish: they run at the same time.
    pid_a, pid_b = first.wait("started"), second.wait("started")
    assert pid_a != pid_b
    release.touch()
    settle(manager)
    assert {a.result(), b.result()} == {pid_a, pid_b}


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_explicit_start_methods(make_manager, method):
    manager = make_manager(start_method=method, max_workers=1)
    assert finish(manager.run_process(work.add, 20, 22)).result() == 42


def test_unknown_start_method_is_refused(make_manager):
    # Refused when the manager is made, so no task is left behind half-started.
    with pytest.raises(ValueError, match="teleport"):
        make_manager(start_method="teleport")


def test_initializer_runs_with_its_arguments(make_manager):
    manager = make_manager(initializer=work.init_set_global, initargs=("hello",))
    assert finish(manager.run_process(work.read_init_global)).result() == "hello"


def test_worker_can_start_its_own_processes(make_manager):
    manager = make_manager(max_workers=1)
    assert finish(manager.run_process(work.spawn_pool_in_worker)).result() == [1, 2]


def test_many_tasks_from_several_threads(make_manager):
    manager = make_manager(max_workers=2)
    tasks = []
    lock = threading.Lock()

    def submit(offset: int) -> None:
        for i in range(200):
            task = manager.run_process(work.add, offset, i)
            with lock:
                tasks.append((offset + i, task))

    threads = [threading.Thread(target=submit, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settle(manager)
    assert all(task.result() == expected for expected, task in tasks)
