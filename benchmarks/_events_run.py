"""``python -m benchmarks._events_run SCENARIO COUNT``: one event scenario in a fresh interpreter.

Run by ``_events.py`` with ``PYTHONPATH`` pointing at the tasker tree to measure (this
checkout, or tasker 0.1 extracted from git), so both run the same script side by side.
Prints one JSON object. A fresh interpreter per run: the peak RSS (``ru_maxrss``) is
the peak of this run only.

Worker processes import this module for its task functions: keep it cheap to import.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

MIB = 1 << 20


def preview_stream(context: Any, count: int, size: int) -> float:
    """Send ``count`` events of ``size`` bytes as fast as possible; seconds spent sending."""
    started = time.monotonic()
    for number in range(count):
        # A new buffer per frame, as a renderer makes them (and every page is touched).
        frame = number.to_bytes(8, "little") * (size // 8)
        context.send_event("frame", frame)
    return time.monotonic() - started


def coalesced_frames(context: Any, seconds: float, size: int) -> int:
    """Send timestamped frames as fast as possible for ``seconds``, latest-wins if available."""
    end = time.monotonic() + seconds
    count = 0
    payload = b"\x01" * size
    try:
        context.send_event("frame", (time.monotonic(), count, payload), coalesce=True)
        coalesce = True
    except TypeError:  # tasker 0.1 has no coalesce: every frame is queued
        coalesce = False
    while time.monotonic() < end:
        count += 1
        if coalesce:
            context.send_event("frame", (time.monotonic(), count, payload), coalesce=True)
        else:
            context.send_event("frame", (time.monotonic(), count, payload))
    return count


def small_events(context: Any, count: int) -> int:
    """Send ``count`` small events (an int each)."""
    send = context.send_event
    for number in range(count):
        send("n", number)
    return count


def quick(context: Any) -> int:
    """Warm a worker up."""
    return os.getpid()


def _rss_now() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(scenario: str, count: int) -> dict[str, Any]:
    import gi

    gi.require_version("GLib", "2.0")
    from gi.repository import GLib

    import tasker

    manager = tasker.TaskManager(tasker.GLibDispatcher(), max_workers=1)
    context = GLib.MainContext.default()

    def run(task: Any, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while not task.is_final() or manager.has_tasks():
            if time.monotonic() > deadline:
                raise TimeoutError(scenario)
            context.iteration(True)

    warm = manager.run_process(quick)
    run(warm)
    worker = warm.result()
    out: dict[str, Any] = {"tasker": tasker.__file__}
    if scenario == "rss":
        received = [0]

        def draw(task: Any, name: str, data: Any) -> None:
            received[0] += 1
            time.sleep(0.002)  # the UI drawing the frame

        base = _rss_now()
        started = time.monotonic()
        task = manager.run_process(preview_stream, count, MIB, when_event=draw)
        run(task)
        out.update(
            growth=_peak_rss() - base,
            base=base,
            sending=task.result(),
            total=time.monotonic() - started,
            received=received[0],
        )
    elif scenario == "coalesce":
        lags: list[float] = []
        last: list[int] = [0]

        def show(task: Any, name: str, data: Any) -> None:
            lags.append(time.monotonic() - data[0])  # CLOCK_MONOTONIC is machine-wide
            last[0] = data[1]
            time.sleep(0.002)

        task = manager.run_process(coalesced_frames, count / 1000, 64 * 1024, when_event=show)
        run(task)
        ordered = sorted(lags)
        out.update(
            max_lag=ordered[-1],
            p99_lag=ordered[int(0.99 * (len(ordered) - 1))],
            final_lag=lags[-1],
            sent=task.result() + 1,
            shown=len(lags),
            last_is_latest=last[0] == task.result(),
        )
    elif scenario == "small":
        seen = [0]

        def tally(task: Any, name: str, data: Any) -> None:
            seen[0] += 1

        started = time.monotonic()
        cpu_parent, cpu_worker = _cpu_self(), _cpu_of(worker)
        task = manager.run_process(small_events, count, when_event=tally)
        run(task)
        elapsed = time.monotonic() - started
        out.update(
            rate=seen[0] / elapsed,
            received=seen[0],
            # CPU per event: unlike the rate, barely moved by other load on the machine.
            parent_us=(_cpu_self() - cpu_parent) / count * 1e6,
            worker_us=(_cpu_of(worker) - cpu_worker) / count * 1e6,
        )
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    manager.shutdown()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
