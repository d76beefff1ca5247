"""Large results, arguments and event payloads (100 MB) through the channel."""

from __future__ import annotations

import numpy

from tasker import TaskStatus

from . import _work as work
from ._util import Events, finish, settle

MB = 2**20
SIZE = 100 * MB


def test_100_mb_bytes_result(make_manager):
    manager = make_manager(max_workers=1)
    task = finish(manager.run_process(work.big_bytes, SIZE), 120)
    result = task.result()
    assert type(result) is bytes
    assert len(result) == SIZE
    assert result[:3] == b"ZZZ" and result[-1:] == b"Z"


def test_100_mb_numpy_result_is_not_copied_out_of_its_buffer(make_manager):
    manager = make_manager(max_workers=1)
    task = finish(manager.run_process(work.big_result, "numpy", SIZE), 120)
    array = task.result()
    assert array.dtype == numpy.float64
    assert array.nbytes == SIZE
    assert array[12345] == 12345.0
    # The array lives in the buffer the channel received it into.
    base = array
    while isinstance(base, numpy.ndarray):
        base = base.base
    assert isinstance(base, bytearray | memoryview)
    assert array.flags.writeable


def test_large_bytearray_and_memoryview_results(make_manager):
    manager = make_manager(max_workers=1)
    ba = finish(manager.run_process(work.big_result, "bytearray", 10 * MB), 60).result()
    assert type(ba) is bytearray and len(ba) == 10 * MB
    mv = finish(manager.run_process(work.big_result, "memoryview", 10 * MB), 60).result()
    assert type(mv) is memoryview and mv.nbytes == 10 * MB


def test_100_mb_arguments(make_manager):
    manager = make_manager(max_workers=1)
    data = b"\x07" * SIZE
    array = numpy.zeros(SIZE // 8)
    assert finish(manager.run_process(work.checksum, data), 120).result() == ("bytes", SIZE)
    assert finish(manager.run_process(work.checksum, array), 120).result() == ("ndarray", SIZE)


def test_100_mb_event_payload(make_manager):
    manager = make_manager(max_workers=1)
    events = Events()
    task = finish(manager.run_process(work.big_event, SIZE, when_event=events), 120)
    assert task.get_status() == TaskStatus.COMPLETED
    settle(manager)  # final is not delivered yet: the event reaches the main thread by when_done
    ((name, payload),) = events.items
    assert name == "blob"
    assert payload["size"] == SIZE
    assert type(payload["data"]) is bytes and len(payload["data"]) == SIZE


def test_many_medium_results_in_a_row(make_manager):
    # Exercises the reader's switch between its buffer and owned segments.
    manager = make_manager(max_workers=2)
    sizes = [0, 1, 60_000, 65_536, 65_537, 300_000, 1_000_000, 3]
    tasks = [manager.run_process(work.big_bytes, size) for size in sizes * 3]
    for task, size in zip(tasks, sizes * 3, strict=True):
        assert len(finish(task, 60).result()) == size
