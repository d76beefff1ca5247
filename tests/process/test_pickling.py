"""Serialization: function, arguments, results, events and exceptions across the boundary."""

from __future__ import annotations

import threading

import pytest

from tasker import (
    RemoteTraceback,
    SerializationError,
    TaskError,
    TaskStatus,
)
from tasker._process import _pickling

from . import _work as work
from ._util import Events, finish, settle


def _failed(task):
    assert task.get_status() == TaskStatus.FAILED, task.get_status()
    return task.exception()


# ---------------------------------------------------------------- exceptions


def test_exception_keeps_its_type_and_carries_the_remote_traceback(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.fail, "bad input")))
    assert type(error) is ValueError
    assert str(error) == "bad input"
    cause = error.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in fail" in cause.traceback_text
    assert "raise ValueError(message)" in cause.traceback_text
    assert "ValueError: bad input" in cause.traceback_text


def test_custom_exception_type_and_state_survive(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.fail_custom)))
    assert type(error) is work.CustomError
    assert error.code == 42
    assert error.args == ("custom failure", 42)


def test_unpicklable_exception_becomes_task_error(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.fail_unpicklable)))
    assert type(error) is TaskError
    assert error.type_name == "tests.process._work.UnpicklableError"
    assert error.message == "cannot travel"
    assert "UnpicklableError: cannot travel" in error.traceback_text
    assert isinstance(error.__cause__, RemoteTraceback)


def test_exception_that_cannot_be_rebuilt_becomes_task_error(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.fail_unloadable)))
    assert type(error) is TaskError
    assert error.type_name.endswith("BadReduceError")
    assert error.message == "x/y"


def test_system_exit_in_a_task_fails_it_and_the_worker_lives(make_manager):
    manager = make_manager(max_workers=1)
    pid = finish(manager.run_process(work.pid)).result()
    error = _failed(finish(manager.run_process(_exit_via_sys_exit)))
    assert isinstance(error, SystemExit)
    assert finish(manager.run_process(work.pid)).result() == pid


def _exit_via_sys_exit(context):
    raise SystemExit(4)


# ------------------------------------------------- function and arguments


def test_unpicklable_argument_fails_the_task_naming_it(make_manager):
    manager = make_manager()
    done: list[object] = []
    gen = (i for i in range(3))
    task = manager.run_process(work.echo_kwargs, 1, gen, when_done=done.append)
    settle(manager)
    error = _failed(task)
    assert isinstance(error, SerializationError)
    assert str(error).startswith("argument 2 of type generator cannot be pickled")
    assert done == [task]


def test_unpicklable_keyword_argument_fails_the_task_naming_it(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.echo_kwargs, lock=threading.Lock())))
    assert isinstance(error, SerializationError)
    assert "keyword argument 'lock' of type _thread.lock cannot be pickled" in str(error)


def test_function_the_worker_cannot_find_fails_with_serialization_error(make_manager):
    # Picklable by reference here, but the module is unknown in the worker.
    import sys
    import types

    module = types.ModuleType("tasker_test_ghost_module")
    exec("def ghost(context):\n    return 1\n", module.__dict__)
    sys.modules["tasker_test_ghost_module"] = module
    try:
        manager = make_manager()
        error = _failed(finish(manager.run_process(module.ghost)))
    finally:
        del sys.modules["tasker_test_ghost_module"]
    assert isinstance(error, SerializationError)
    assert str(error) == (
        "the task's function or arguments cannot be unpickled in the worker: "
        "ModuleNotFoundError: No module named 'tasker_test_ghost_module'"
    )
    assert isinstance(error.__cause__, RemoteTraceback)


def test_pickling_error_does_not_affect_other_tasks(make_manager):
    manager = make_manager()
    bad = manager.run_process(work.identity, threading.Lock())
    good = manager.run_process(work.identity, "fine")
    settle(manager)
    assert isinstance(_failed(bad), SerializationError)
    assert good.result() == "fine"


# ------------------------------------------------------------------ results


def test_unpicklable_result_fails_with_serialization_error(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.return_unpicklable)))
    assert isinstance(error, SerializationError)
    assert "result of type generator cannot be pickled" in str(error)


def test_result_the_parent_cannot_unpickle_becomes_task_error(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.return_parent_unloadable)))
    assert isinstance(error, TaskError)
    assert "tests.process._work.ParentCannotLoad" in error.message
    assert "could not be unpickled in the parent" in error.message
    assert "refusing to unpickle in the parent" in error.message


@pytest.mark.parametrize(
    "value",
    [None, 0, 1.5, "text", b"bytes", [1, (2, 3)], {"a": {1, 2}}, frozenset({1}), 10**30],
)
def test_results_round_trip(make_manager, value):
    manager = make_manager()
    assert finish(manager.run_process(work.identity, value)).result() == value


def test_results_round_trip_by_type(make_manager):
    manager = make_manager()
    values = [bytearray(b"ab"), memoryview(b"xyz"), (b"x" * 100_000, [bytearray(70_000)])]
    results = [finish(manager.run_process(work.identity, v)).result() for v in values]
    assert type(results[0]) is bytearray and results[0] == values[0]
    assert type(results[1]) is memoryview and results[1].tobytes() == b"xyz"
    assert results[1].readonly
    assert results[2] == values[2]
    assert type(results[2][0]) is bytes


# ------------------------------------------------------------------- events


def test_unpicklable_event_payload_raises_in_the_worker(make_manager):
    manager = make_manager()
    message = finish(manager.run_process(work.event_unpicklable)).result()
    assert message.startswith("SerializationError: the payload of event 'bad'")
    assert "of type _thread.lock" in message


def test_unpicklable_event_payload_not_caught_fails_the_task(make_manager):
    manager = make_manager()
    error = _failed(finish(manager.run_process(work.event_unpicklable_uncaught)))
    assert isinstance(error, SerializationError)
    assert "of type generator" in str(error)


def test_event_payload_the_parent_cannot_unpickle_fails_the_task(make_manager):
    manager = make_manager()
    events = Events()
    error = _failed(finish(manager.run_process(work.event_parent_unloadable, when_event=events)))
    assert isinstance(error, TaskError)
    assert "payload of event 'bad'" in error.message
    assert events.items == []


# -------------------------------------------------------------- initializer


def test_failing_initializer_fails_the_queued_tasks(make_manager):
    manager = make_manager(initializer=work.init_fail, initargs=("no config",))
    tasks = [manager.run_process(work.add, i, i) for i in range(3)]
    settle(manager)
    for task in tasks:
        error = _failed(task)
        assert isinstance(error, OSError)
        assert str(error) == "initializer failed: no config"
        assert "init_fail" in error.__cause__.traceback_text
    # No worker is left running or being restarted in a loop.
    pool = manager._process_pool
    with pool._lock:
        assert not pool._workers or not any(w.ready for w in pool._workers.values())
        assert pool._init_failed


def test_later_submit_retries_the_initializer(make_manager, tmp_path):
    marker = tmp_path / "broken"
    marker.touch()
    manager = make_manager(initializer=work.init_fail_once, initargs=(str(marker),))
    first = finish(manager.run_process(work.add, 1, 1))
    assert isinstance(_failed(first), OSError)
    marker.unlink()
    second = finish(manager.run_process(work.add, 2, 2))
    assert second.result() == 4


# ------------------------------------------------------------ unit level


def test_dump_call_names_the_first_bad_piece():
    with pytest.raises(SerializationError, match=r"^argument 3 of type generator"):
        _pickling.dump_call(work.add, (1, 2, (x for x in [])), {})


def test_large_values_travel_out_of_band():
    import numpy

    payload = {
        "bytes": b"a" * _pickling.OOB_THRESHOLD,
        "bytearray": bytearray(_pickling.OOB_THRESHOLD),
        "array": numpy.ones(100_000),
        "small": b"tiny",
    }
    data, buffers = _pickling.dumps(payload)
    assert len(buffers) == 3
    assert len(data) < 1000
    loaded = _pickling.loads(data, [bytearray(b) for b in buffers])
    assert loaded["bytes"] == payload["bytes"] and type(loaded["bytes"]) is bytes
    assert type(loaded["bytearray"]) is bytearray
    assert (loaded["array"] == payload["array"]).all()
    assert loaded["small"] == b"tiny"


def test_received_bytearray_buffer_is_the_result_itself():
    data, buffers = _pickling.dumps(bytearray(b"z" * _pickling.OOB_THRESHOLD))
    received = bytearray(buffers[0])
    assert _pickling.loads(data, [received]) is received


def test_strided_memoryview_is_copied_once():
    view = memoryview(bytearray(range(10)))[::2]
    data, buffers = _pickling.dumps(view)
    assert _pickling.loads(data, buffers).tobytes() == bytes(range(0, 10, 2))
