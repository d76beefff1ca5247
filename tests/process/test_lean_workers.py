"""Workers never import the application's main script: what comes from it travels by value.

The scripts below run in fresh interpreters, since what matters is the
main module of the program (a file, standard input, a notebook-like
module), which a test inside pytest cannot be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tasker import ManagerShutdownError, SerializationError, TaskStatus

from . import _work as work
from ._util import SLOW, finish, settle

ROOT = Path(__file__).resolve().parents[2]


def _run_python(args: list[str], *, stdin: str | None = None, cwd: Path | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=SLOW * 2,
        env=env,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


#: Functions, a class and an exception defined in the main script, all but
#: one under the main guard. The module-level print shows how often the
#: script runs: once, in the parent.
MAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    from tasker import TaskManager, ThreadDispatcher

    print("script runs", flush=True)

    def at_module_level(context, n):
        return n + 1

    if __name__ == "__main__":
        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

        class Refused(Exception):
            pass

        def make_point(context, x):
            # Worker-side facts: the main script is not imported there.
            facts = (
                any(getattr(m, "__file__", None) == {path!r} for m in list(sys.modules.values())),
                "tasker._manager" in sys.modules,
            )
            return Point(x, x * 2), facts

        def refuse(context):
            raise Refused("no")

        scale = 10
        manager = TaskManager(ThreadDispatcher(), max_workers=1)
        results = {{}}
        manager.run_process(at_module_level, 1, when_done=lambda t: results.update(a=t.result()))
        manager.run_process(make_point, 3, when_done=lambda t: results.update(b=t.result()))
        manager.run_process(lambda context, n: n * scale, 4,
                            when_done=lambda t: results.update(c=t.result()))
        manager.run_process(refuse, when_done=lambda t: results.update(d=t.exception()))
        assert manager.wait_until_settled(timeout=60)
        point, facts = results["b"]
        print("module level", results["a"])
        print("point", type(point) is Point, point.x, point.y)
        print("worker facts", facts)
        print("lambda", results["c"])
        print("exception", type(results["d"]) is Refused, results["d"])
        manager.shutdown()
    """
)


def test_main_script_functions_classes_and_lambdas_travel_by_value(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(MAIN_SCRIPT.format(path=str(script)))
    assert _run_python([str(script)]).splitlines() == [
        "script runs",
        "module level 2",
        "point True 3 6",
        "worker facts (False, False)",
        "lambda 40",
        "exception True no",
    ]


STDIN_SCRIPT = textwrap.dedent(
    """
    from tasker import TaskManager, ThreadDispatcher

    def double(context, n):
        return 2 * n

    manager = TaskManager(ThreadDispatcher(), max_workers=1)
    task = manager.run_process(double, 21)
    assert manager.wait_until_settled(timeout=60)
    outcome = task.result() if task.get_status() == "completed" else task.exception()
    print(task.get_status(), outcome)
    manager.shutdown()
    """
)


def test_a_script_fed_on_standard_input_runs_process_tasks(tmp_path):
    # The main module is "<stdin>": there is no file a worker could import.
    out = _run_python(["-"], stdin=STDIN_SCRIPT, cwd=tmp_path)
    assert out.splitlines() == ["completed 42"]


NOTEBOOK_RUNNER = textwrap.dedent(
    """
    import sys, textwrap, types

    # What Jupyter's kernel does: the cells run in a fresh module named
    # __main__ that has no file.
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    cell_1 = '''
    from tasker import TaskManager, ThreadDispatcher
    manager = TaskManager(ThreadDispatcher(), max_workers=1)
    '''
    cell_2 = '''
    def shout(context, word):
        return word.upper() + "!"
    task = manager.run_process(shout, "cell")
    manager.wait_until_settled(timeout=60)
    print(task.result())
    manager.shutdown()
    '''
    for cell in (cell_1, cell_2):
        exec(compile(textwrap.dedent(cell), "<cell>", "exec"), main.__dict__)
    """
)


def test_a_notebook_like_main_module_runs_process_tasks(tmp_path):
    script = tmp_path / "kernel.py"
    script.write_text(NOTEBOOK_RUNNER)
    assert _run_python([str(script)]).splitlines() == ["CELL!"]


# ----------------------------------------------------- in this process (pytest)


def test_lambda_runs_in_a_worker(make_manager):
    manager = make_manager()
    assert finish(manager.run_process(lambda context, x: x * 2, 21)).result() == 42


def test_nested_function_with_a_closure_runs_in_a_worker(make_manager):
    offset = 100

    def add_offset(context, x):
        return x + offset

    manager = make_manager()
    assert finish(manager.run_process(add_offset, 1)).result() == 101


def test_large_arguments_of_a_by_value_function_stay_out_of_band():
    from tasker._process import _pickling

    big = bytearray(_pickling.OOB_THRESHOLD * 4)
    data, buffers = _pickling.dump_call(lambda context, b: len(b), (big,), {})
    assert len(buffers) == 1 and buffers[0].nbytes == len(big)
    assert len(data) < len(big)  # the buffer is not in the stream
    fn, args, _ = _pickling.loads(data, buffers)
    assert fn(None, *args) == len(big)


def test_closure_over_something_unpicklable_names_it(make_manager):
    lock = threading.Lock()

    def use_lock(context):
        with lock:
            return 1

    manager = make_manager()
    task = finish(manager.run_process(use_lock))
    assert task.get_status() == TaskStatus.FAILED
    error = task.exception()
    assert isinstance(error, SerializationError)
    message = str(error)
    assert "function 'test_closure_over_something_unpicklable_names_it.<locals>.use_lock'" in (
        message
    )
    assert "it is a closure over 'lock', a _thread.lock, which cannot be pickled" in message
    assert "pass what the task needs as arguments" in message


def test_method_of_an_unpicklable_object_names_it(make_manager):
    holder = work.LockHolder()
    manager = make_manager()
    error = finish(manager.run_process(holder.method)).exception()
    assert isinstance(error, SerializationError)
    assert "it is a method of a tests.process._work.LockHolder" in str(error)


def test_initializer_may_be_a_lambda(make_manager):
    manager = make_manager(
        max_workers=1, initializer=lambda name: os.environ.update(TASKER_INIT=name), initargs=("x",)
    )
    assert finish(manager.run_process(work.getenv, "TASKER_INIT")).result() == "x"


def test_unpicklable_initializer_fails_tasks_naming_it(make_manager):
    lock = threading.Lock()
    manager = make_manager(initializer=work.init_set_global, initargs=(lock,))
    error = finish(manager.run_process(work.add, 1, 1)).exception()
    assert isinstance(error, SerializationError)
    assert str(error).startswith("the worker initializer: argument 1 of type _thread.lock")


def test_worker_does_not_import_the_manager(make_manager):
    manager = make_manager()
    modules = finish(manager.run_process(work.loaded_modules, "tasker.")).result()
    assert "tasker._runtime" in modules
    assert "tasker._manager" not in modules
    assert "tasker._dispatch" not in modules


# ---------------------------------------------------------- start_workers


def _ready_pids(manager) -> set[int]:
    pool = manager._process_pool
    if pool is None:
        return set()
    with pool._lock:
        return {w.pid for w in pool._workers.values() if w.ready and w.alive}


def test_start_workers_starts_them_before_any_task(make_manager):
    from tasker.testing import run_until

    manager = make_manager(max_workers=2)
    manager.start_workers()
    run_until(lambda: len(_ready_pids(manager)) == 2, SLOW)
    pids = _ready_pids(manager)
    assert not manager.has_tasks()
    gate = [manager.run_process(work.pid) for _ in range(4)]
    settle(manager)
    assert {task.result() for task in gate} <= pids


def test_start_workers_counts_those_running_and_stops_at_max_workers(make_manager):
    from tasker.testing import run_until

    manager = make_manager(max_workers=2)
    manager.start_workers(1)
    run_until(lambda: len(_ready_pids(manager)) == 1, SLOW)
    manager.start_workers(1)  # one runs already: nothing to add
    manager.start_workers(5)  # capped at max_workers
    run_until(lambda: len(_ready_pids(manager)) == 2, SLOW)
    with manager._process_pool._lock:
        assert len(manager._process_pool._workers) == 2


def test_prestart_workers_starts_them_with_the_manager(make_manager):
    from tasker.testing import run_until

    manager = make_manager(max_workers=1, prestart_workers=True)
    run_until(lambda: len(_ready_pids(manager)) == 1, SLOW)
    (pid,) = _ready_pids(manager)
    assert finish(manager.run_process(work.pid)).result() == pid


def test_configure_prestart_workers_starts_them(make_manager):
    from tasker.testing import run_until

    manager = make_manager(max_workers=1)
    manager.configure(prestart_workers=True)
    run_until(lambda: len(_ready_pids(manager)) == 1, SLOW)
    with pytest.raises(RuntimeError, match="before the first task"):
        manager.configure(max_workers=2)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_start_workers_rejects_a_bad_count(make_manager, bad):
    manager = make_manager()
    with pytest.raises(ValueError, match="n must be a positive int or None"):
        manager.start_workers(bad)
    assert manager._process_pool is None  # nothing started


def test_prestart_workers_must_be_a_bool(make_manager):
    with pytest.raises(TypeError, match="prestart_workers must be True or False"):
        make_manager(prestart_workers="yes")


def test_start_workers_after_shutdown_raises(make_manager):
    manager = make_manager()
    manager.shutdown()
    with pytest.raises(ManagerShutdownError):
        manager.start_workers()


# ------------------------------------------- by-value pickles reused while exact

FACTOR = 2


def test_a_by_value_function_sees_its_globals_and_cells_as_they_are_at_submit(make_manager):
    global FACTOR
    offset = 1

    def scaled(context, x):
        return x * FACTOR + offset

    manager = make_manager(max_workers=1)
    try:
        assert finish(manager.run_process(scaled, 10)).result() == 21
        assert finish(manager.run_process(scaled, 10)).result() == 21  # from the cache
        FACTOR = 3  # a global rebound
        assert finish(manager.run_process(scaled, 10)).result() == 31
        offset = 5  # a closure cell rebound
        assert finish(manager.run_process(scaled, 10)).result() == 35
    finally:
        FACTOR = 2


def test_a_by_value_function_over_mutable_state_is_pickled_afresh(make_manager):
    items = [1]

    def total(context):
        return sum(items)

    manager = make_manager(max_workers=1)
    assert finish(manager.run_process(total)).result() == 1
    items.append(2)
    assert finish(manager.run_process(total)).result() == 3


def test_the_cache_pickles_again_only_when_something_captured_changed():
    import time as time_module

    from tasker._process import _fncache

    calls = []

    def pickle_by_value(fn):
        calls.append(fn)
        return b"pickled %d" % len(calls)

    def stable(context):
        return time_module.monotonic() * FACTOR

    first = _fncache.cached_by_value(stable, pickle_by_value)
    second = _fncache.cached_by_value(stable, pickle_by_value)
    assert first is not None and second is not None
    assert first.data == second.data == b"pickled 1"
    stable.__defaults__ = (1,)  # what it captures changed
    assert _fncache.cached_by_value(stable, pickle_by_value).data == b"pickled 2"
    items = []

    def over_a_list(context):
        return items

    assert _fncache.cached_by_value(over_a_list, pickle_by_value) is None  # never cached
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_other_start_methods_run_by_value_functions(make_manager, method):
    # spawn starts from a fresh interpreter like forkserver (its launch also
    # skips the main-module preparation); fork copies this process.
    manager = make_manager(max_workers=1, start_method=method)
    base = 40
    task = finish(
        manager.run_process(
            lambda context: (base + 2, sys.modules["tasker._runtime"].in_worker_process)
        )
    )
    assert task.result() == (42, True)
