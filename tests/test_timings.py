"""task.timings, write_trace() and python -m tasker.trace."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tasker import ExecutionContext, TaskManager, TaskTimings
from tasker.testing import run_until
from tasker.trace import TraceError, main, summarize


def _work(context: ExecutionContext, release: threading.Event) -> int:
    context.set_progress(0.5)
    context.flush()
    release.wait(10.0)
    return 1


def _fail(context: ExecutionContext) -> None:
    raise KeyError("boom")


def _pid(context: ExecutionContext) -> int:
    return os.getpid()


async def _sleeper(context: ExecutionContext) -> None:
    await asyncio.sleep(30)


def test_timings_of_a_thread_task(task_manager: TaskManager) -> None:
    release = threading.Event()
    task = task_manager.run_thread(_work, release)
    pending = task.timings
    assert isinstance(pending, TaskTimings)
    assert pending.created > 0
    run_until(lambda: task.get_progress() == 0.5 and task.timings.first_progress is not None)
    running = task.timings
    assert running.started is not None and running.started >= running.created
    assert running.finished is None and running.cancel_requested is None
    assert isinstance(running.worker, str) and running.worker.startswith("tasker-thread-")
    assert running.worker != threading.current_thread().name
    release.set()
    run_until(task.is_final)
    done = task.timings
    assert done.finished is not None and done.started is not None
    assert done.first_progress is not None
    assert done.started <= done.first_progress <= done.finished
    assert done.queue_wait == pytest.approx(done.started - done.created)
    assert done.run_time == pytest.approx(done.finished - done.started)
    assert done.paused_total == 0.0
    assert task.timings == done  # frozen once final
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.run_time = 0.0  # type: ignore[misc]


def test_timings_of_process_and_coroutine_tasks(task_manager: TaskManager) -> None:
    process = task_manager.run_process(_pid)
    coroutine = task_manager.add_coroutine(_sleeper)
    run_until(lambda: process.is_final() and coroutine.get_status() == "running", 30)
    assert process.timings.worker == process.result()  # the worker's pid
    assert coroutine.timings.worker is None
    coroutine.cancel()
    run_until(coroutine.is_final)
    timings = coroutine.timings
    assert timings.cancel_requested is not None and timings.finished is not None
    assert timings.started is not None
    assert timings.started <= timings.cancel_requested <= timings.finished


def test_a_task_cancelled_while_queued_has_only_a_queue_wait(task_manager: TaskManager) -> None:
    task_manager.configure(max_threads=1)
    release = threading.Event()
    try:
        first = task_manager.run_thread(_work, release)
        second = task_manager.run_thread(_work, release)
        run_until(lambda: first.get_status() == "running")
        second.cancel()
        run_until(second.is_final)
    finally:
        release.set()
    timings = second.timings
    assert timings.started is None and timings.run_time == 0.0
    assert timings.finished is not None
    assert timings.queue_wait == pytest.approx(timings.finished - timings.created)
    run_until(first.is_final)


def _trace_events(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    assert document["displayTimeUnit"] == "ms"
    events: list[dict[str, Any]] = document["traceEvents"]
    return events


def test_write_trace_one_track_per_worker(task_manager: TaskManager, tmp_path: Path) -> None:
    task_manager.configure(max_threads=2)
    release = threading.Event()
    release.set()
    threads = [task_manager.run_thread(_work, release, key=f"thread-{n}") for n in range(4)]
    processes = [task_manager.run_process(_pid, key=f"process-{n}") for n in range(3)]
    failing = task_manager.run_thread(_fail, key="failing")
    coroutine = task_manager.add_coroutine(_sleeper, key="sleeper")
    everything = [*threads, *processes, failing]
    run_until(lambda: all(t.is_final() for t in everything), 30)
    run_until(lambda: coroutine.get_status() == "running")
    path = tmp_path / "trace.json"
    written = task_manager.write_trace(path)
    assert written == len(everything) + 1  # the live coroutine too
    events = _trace_events(path)
    names = {
        e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
    }
    runs = [e for e in events if e.get("cat") == "task" and "args" in e]
    assert sorted(e["args"]["key"] for e in runs) == sorted(
        str(t.key) for t in [*everything, coroutine]
    )
    by_key = {e["args"]["key"]: e for e in runs}
    for task in processes:
        event = by_key[str(task.key)]
        assert event["ph"] == "X"
        assert names[event["tid"]] == f"worker process {task.result()}"
    for task in threads:
        event = by_key[str(task.key)]
        assert names[event["tid"]] == task.timings.worker
    assert by_key["failing"]["args"]["status"] == "failed"
    assert by_key["sleeper"]["ph"] == "b" and by_key["sleeper"]["args"]["status"] == "running"
    # Complete slices of one track never overlap (Perfetto would drop them).
    for tid in {e["tid"] for e in runs if e["ph"] == "X"}:
        slices = sorted(
            (e["ts"], e["ts"] + e["dur"]) for e in runs if e["ph"] == "X" and e["tid"] == tid
        )
        for (_, end), (start, _) in itertools.pairwise(slices):
            assert start >= end
    # The CLI reads it back.
    summaries = {s.kind: s for s in summarize(path)}
    assert summaries["thread"].count == 5 and summaries["thread"].failed == 1
    assert summaries["process"].count == 3
    assert summaries["coroutine"].count == 1
    coroutine.cancel()
    run_until(coroutine.is_final)


def test_write_trace_keeps_the_last_tasks(task_manager: TaskManager, tmp_path: Path) -> None:
    tasks = [task_manager.run_thread(_pid, key=f"t{n}") for n in range(5)]
    run_until(lambda: all(t.is_final() for t in tasks))
    path = tmp_path / "last.json"
    assert task_manager.write_trace(path, last=2) == 2
    keys = {e["args"]["key"] for e in _trace_events(path) if e.get("cat") == "task" and "args" in e}
    assert keys == {"t3", "t4"}
    assert task_manager.write_trace(path, last=0) == 0


def test_write_trace_bad_arguments(task_manager: TaskManager, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="last"):
        task_manager.write_trace(tmp_path / "x.json", last=-1)
    with pytest.raises(TypeError, match="last"):
        task_manager.write_trace(tmp_path / "x.json", last=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        task_manager.write_trace(None)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        task_manager.write_trace(tmp_path / "missing-dir" / "x.json")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_trace_cli_prints_a_summary(task_manager: TaskManager, tmp_path: Path) -> None:
    tasks = [task_manager.run_thread(_pid) for _ in range(3)]
    tasks.append(task_manager.run_thread(_fail))
    run_until(lambda: all(t.is_final() for t in tasks))
    path = tmp_path / "trace.json"
    task_manager.write_trace(path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "tasker.trace", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    header, row = out.splitlines()
    assert header.split()[:2] == ["kind", "count"]
    assert "p50" in header and "p99" in header and "cancelled" in header and "failed" in header
    cells = row.split()
    assert cells[0] == "thread" and cells[1] == "4" and cells[-1] == "1" and cells[-2] == "0"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("not json", "not JSON"),
        ('{"foo": 1}', "no traceEvents"),
        ('{"traceEvents": [{"ph": "X", "cat": "other"}]}', "no tasker tasks"),
    ],
)
def test_trace_cli_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TraceError, match=message):
        summarize(path)
    assert main([str(path)]) == 2
    assert message in capsys.readouterr().err
