"""Task timelines as Chrome trace-event JSON (``TaskManager.write_trace``).

The manager keeps a short record of each finished task (``record``: one tuple,
made under its lock in ``_finish``, so finishing a task stays cheap) in a
bounded deque. ``build_trace`` turns records into the Chrome trace-event
format that Perfetto (ui.perfetto.dev) and chrome://tracing open:

* one track (a "thread" of the trace) per worker: each worker process (by
  pid), each worker thread (by name); a task's run is a complete ("X") slice
  there, with its pauses nested inside;
* coroutine tasks, which overlap on their one loop, and queue waits, which
  overlap by nature, are async slices ("b"/"e", one row each) on the
  "coroutines" and "waiting" tracks;
* a cancel request is an instant event; a task that never started is an
  instant event on the "waiting" track at its end.

Every task has exactly one event in category ``"task"`` whose ``args`` hold
its summary (kind, status, queue wait, run time...): ``python -m
tasker.trace`` reads those.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task

__all__ = ["TRACE_HISTORY", "build_trace", "record", "write_json"]

#: Finished tasks the manager remembers for ``write_trace``.
TRACE_HISTORY = 10_000

# Record fields (a plain tuple: made for every finished task, it must be cheap).
_ID, _KEY, _KIND, _STATUS, _CREATED, _STARTED, _CANCEL, _FINISHED = range(8)
_PAUSED_PENDING, _PAUSED_RUN, _PAUSES, _WORKER, _WEIGHT, _BEGAN = range(8, 14)

Record = tuple[Any, ...]


def record(task: Task[Any]) -> Record:
    """A snapshot of what the trace needs from ``task`` (final or live)."""
    return (
        task.id,
        task.key,
        task.kind.value,
        task._status.value,
        task._created,
        task._started,
        task._cancel_requested,
        task._finished,
        task._paused_pending,
        task._paused_run,
        tuple(task._pauses) if task._pauses else (),
        task._worker,
        task.weight,
        task._pause_began,
    )


def build_trace(records: Sequence[Record], pid: int | None = None) -> dict[str, Any]:
    """Return the Chrome trace-event document (a JSON-ready dict) for ``records``."""
    pid = os.getpid() if pid is None else pid
    now = time.monotonic()
    origin = min((r[_CREATED] for r in records), default=now)

    def us(t: float) -> float:
        return round((t - origin) * 1e6, 3)

    tracks: dict[tuple[str, Any], int] = {}

    def track(kind: str, name: Any) -> int:
        tid = tracks.get((kind, name))
        if tid is None:
            tid = tracks[(kind, name)] = len(tracks) + 1
        return tid

    waiting = track("waiting", None)
    coroutines = track("coroutine", None)
    events: list[dict[str, Any]] = []
    slices: dict[int, list[dict[str, Any]]] = {}  # complete slices per track, to un-overlap
    for rec in sorted(records, key=lambda r: r[_CREATED]):
        task_id, key, kind, status = rec[_ID], rec[_KEY], rec[_KIND], rec[_STATUS]
        created, started, finished = rec[_CREATED], rec[_STARTED], rec[_FINISHED]
        end = finished if finished is not None else now
        pending_paused, run_paused = rec[_PAUSED_PENDING], rec[_PAUSED_RUN]
        pauses = list(rec[_PAUSES])
        began = rec[_BEGAN]
        if began is not None:
            pauses.append((began, end))
            if started is None or began < started:
                pending_paused += end - began
            else:
                run_paused += end - began
        queue_end = started if started is not None else end
        queue_wait = max(0.0, queue_end - created - pending_paused)
        run_time = 0.0 if started is None else max(0.0, end - started - run_paused)
        name = str(key)
        args = {
            "task_id": task_id,
            "key": name,
            "kind": kind,
            "status": status,
            "queue_wait": queue_wait,
            "run_time": run_time,
            "paused_total": pending_paused + run_paused,
            "worker": rec[_WORKER],
            "weight": rec[_WEIGHT],
        }
        if queue_end > created:
            events.append(
                _async("b", f"{name} waiting", "queue", task_id, us(created), pid, waiting)
            )
            for a, b in pauses:
                if started is None or a < started:
                    events += _pair("paused", "queue", task_id, us(a), us(b), pid, waiting)
            events.append(
                _async("e", f"{name} waiting", "queue", task_id, us(queue_end), pid, waiting)
            )
        if started is None:
            tid = waiting
            events.append(_event(name, "task", "i", us(end), pid, tid, s="t", args=args))
        elif kind == "coroutine":
            tid = coroutines
            events.append(_event(name, "task", "b", us(started), pid, tid, id=task_id, args=args))
            for a, b in pauses:
                if a >= started:
                    events += _pair("paused", "task", task_id, us(a), us(b), pid, tid)
            events.append(_event(name, "task", "e", us(end), pid, tid, id=task_id))
        else:
            tid = track(kind, rec[_WORKER])
            run = _event(
                name, "task", "X", us(started), pid, tid, dur=_dur(started, end), args=args
            )
            slices.setdefault(tid, []).append(run)
            events.append(run)
            for a, b in pauses:
                if a >= started:
                    events.append(_event("paused", "pause", "X", us(a), pid, tid, dur=_dur(a, b)))
        cancel = rec[_CANCEL]
        if cancel is not None:
            events.append(
                _event(
                    "cancel requested",
                    "cancel",
                    "i",
                    us(cancel),
                    pid,
                    tid,
                    s="t",
                    args={"task_id": task_id},
                )
            )
    for runs in slices.values():
        _unoverlap(runs)
    meta: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "tasker"}}
    ]
    for (kind, name), tid in tracks.items():
        label = {
            "waiting": "waiting (queued or paused before the start)",
            "coroutine": "coroutines",
            "process": f"worker process {name}",
            "thread": str(name),
        }[kind]
        meta.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}
        )
        meta.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ms",
        "otherData": {"producer": "tasker", "tasks": len(records)},
    }


def _event(name: str, cat: str, phase: str, ts: float, pid: int, tid: int, **more: Any) -> Any:
    return {"name": name, "cat": cat, "ph": phase, "ts": ts, "pid": pid, "tid": tid, **more}


def _async(phase: str, name: str, cat: str, task_id: int, ts: float, pid: int, tid: int) -> Any:
    return _event(name, cat, phase, ts, pid, tid, id=task_id)


def _pair(name: str, cat: str, task_id: int, a: float, b: float, pid: int, tid: int) -> list[Any]:
    """A nested async slice: its begin and end events."""
    return [
        _async("b", name, cat, task_id, a, pid, tid),
        _async("e", name, cat, task_id, b, pid, tid),
    ]


def _dur(a: float, b: float) -> float:
    return round(max(0.0, b - a) * 1e6, 3)


def _unoverlap(runs: list[dict[str, Any]]) -> None:
    """Complete slices of one track must not overlap (Perfetto drops those that do).

    A worker's next task may be marked running a few microseconds before the
    previous one is marked finished; the later slice starts where the earlier ends.
    """
    runs.sort(key=lambda e: e["ts"])
    last_end = float("-inf")
    for run in runs:
        if run["ts"] < last_end:
            shift = last_end - run["ts"]
            run["ts"] = last_end
            run["dur"] = max(0.0, run["dur"] - shift)
        last_end = run["ts"] + run["dur"]


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` through a temporary file, so a reader never sees half."""
    path = os.fspath(path)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(document, file, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with _suppress():
            os.unlink(temporary)
        raise


def _suppress() -> Any:
    import contextlib

    return contextlib.suppress(OSError)
