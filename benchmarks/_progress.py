"""Progress rows (issue 14): worker-side set_progress cost, ETA accuracy, freeze latency.

Printed as their own table (``python -m benchmarks --only progress``), each
row side by side with real peers from one run, with the ratio peer / tasker:

* ``set_progress`` in a worker process: tasker's ``context.set_progress``
  (rate and ETA are computed on the main thread, so workers pay nothing for
  them) against ``tqdm.update`` and rich's ``Progress.advance`` in the same
  worker, writing to memory.
* The ETA on a steady 10 s process task, 2 s in: tasker's ``task.get_eta()``
  against tqdm (EMA, smoothing 0.3) and rich (speed over a 30 s window), both
  fed the very same coalesced updates on the main thread at the same moments.
  Also the largest jump between two consecutive ETA readings (beyond the time
  that passed) from the first ETA until 3 s in.
* Freezing: from ``task.pause(freeze=True)`` until the worker uses no CPU
  (read from /proc: its main thread stopped, none of its threads running),
  against ``psutil.Process.suspend`` of a plain spinning process at the same
  niceness.
"""

from __future__ import annotations

import io
import itertools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

STEADY_SECONDS = 10.0
READ_AT = 2.0


# -- task functions (module level: workers import them) --------------------------------


def _bare_loop(n: int) -> float:
    """Seconds the loop itself takes (subtracted: the rows are the cost of the call)."""
    start = time.perf_counter()
    for _i in range(n):
        pass
    return time.perf_counter() - start


def _per_call(timed: Callable[[], float], n: int, reps: int) -> float:
    """ns per call: the best of ``reps`` timed loops minus the best bare loop.

    Best of many short runs: on a shared machine noise only adds time.
    """
    best = min(timed() for _ in range(reps))
    bare = min(_bare_loop(n) for _ in range(reps))
    return max(0.0, best - bare) / n * 1e9


def cost_tasker(context: Any, n: int, reps: int = 1) -> float:
    """ns per ``context.set_progress`` call."""
    context.set_total(float(n))
    set_progress = context.set_progress

    def timed() -> float:
        start = time.perf_counter()
        for i in range(n):
            set_progress(i)
        return time.perf_counter() - start

    return _per_call(timed, n, reps)


def cost_tqdm(context: Any, n: int, reps: int = 1) -> float:
    """ns per ``tqdm.update(1)`` (default mininterval, writing to memory)."""
    from tqdm import tqdm

    def timed() -> float:
        bar = tqdm(total=n, file=io.StringIO())
        update = bar.update
        start = time.perf_counter()
        for _ in range(n):
            update(1)
        took = time.perf_counter() - start
        bar.close()
        return took

    return _per_call(timed, n, reps)


def cost_rich(context: Any, n: int, reps: int = 1) -> float:
    """ns per ``Progress.advance(task, 1)`` (no auto refresh, writing to memory)."""
    from rich.console import Console
    from rich.progress import Progress

    def timed() -> float:
        progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
        task = progress.add_task("work", total=n)
        advance = progress.advance
        start = time.perf_counter()
        for _ in range(n):
            advance(task, 1)
        return time.perf_counter() - start

    return _per_call(timed, n, reps)


def steady(context: Any, seconds: float) -> None:
    """Progress grows linearly with time over ``seconds``; reports every few ms."""
    start = time.monotonic()
    context.send_event("started", start)
    while not context.is_cancelled():
        done = (time.monotonic() - start) / seconds
        if done >= 1.0:
            break
        context.set_progress(done)
        time.sleep(0.005)


def spin(context: Any) -> None:
    """Burn CPU until cancelled, never checking for a pause."""
    context.send_event("started", os.getpid())
    count = 0
    while not context.is_cancelled():
        count += 1


def spin_plain() -> None:
    """A plain process burning CPU (the psutil peer), at tasker's default worker niceness."""
    os.nice(5)
    count = 0
    while True:
        count += 1


# -- /proc ------------------------------------------------------------------------------


def _threads_stopped(pid: int) -> bool:
    """True once the process's main thread is stopped (T) and none of its threads runs (R).

    Threads blocked in a system call (a worker's helper threads) use no CPU
    whether or not they have entered the stopped state yet.
    """
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            if state == "R" or (int(tid) == pid and state != "T"):
                return False
    except FileNotFoundError:
        return False
    return True


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _until_frozen(pid: int, t0: float) -> float:
    """Seconds from ``t0`` until ``pid`` is stopped; checks its CPU time stands still."""
    while not _threads_stopped(pid):
        if time.perf_counter() - t0 > 5.0:
            raise TimeoutError(f"process {pid} did not stop")
    took = time.perf_counter() - t0
    before = _cpu_ticks(pid)
    time.sleep(0.05)
    if _cpu_ticks(pid) != before:
        raise RuntimeError(f"process {pid} shows state T but still uses CPU")
    return took


# -- measurement --------------------------------------------------------------------------


def _manager() -> Any:
    from tasker import TaskManager
    from tasker._dispatch._glib import GLibDispatcher

    return TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=1.0)


def _wait(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    from tasker.testing import run_until

    run_until(predicate, timeout)


def _run(manager: Any, fn: Callable[..., Any], *args: Any) -> Any:
    task = manager.run_process(fn, *args)
    _wait(task.is_final)
    return task.result()


def set_progress_costs(smoke: bool) -> dict[str, float]:
    # Short runs, the best of many: on a shared machine noise only adds time.
    n = 50_000 if smoke else 100_000
    reps = 3 if smoke else 25
    manager = _manager()
    try:
        out = {}
        for name, fn in (("tasker", cost_tasker), ("tqdm", cost_tqdm), ("rich", cost_rich)):
            _run(manager, fn, 1000)  # warm: imports, the worker's caches
            out[name] = _run(manager, fn, n, reps)
        return out
    finally:
        manager.shutdown(timeout=10.0)


def eta_errors(smoke: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Median ETA error (%) at READ_AT s, and the largest jump (s), for tasker, tqdm, rich."""
    runs = 1 if smoke else 3
    errors: dict[str, list[float]] = {"tasker": [], "tqdm": [], "rich": []}
    jumps: dict[str, list[float]] = {"tasker": [], "tqdm": [], "rich": []}
    manager = _manager()
    try:
        _run(manager, cost_tasker, 10)  # a warm worker
        for _ in range(runs):
            error, jump = _one_steady_run(manager)
            for name in errors:
                errors[name].append(error[name])
                jumps[name].append(jump[name])
    finally:
        manager.shutdown(timeout=10.0)
    return (
        {k: statistics.median(v) for k, v in errors.items()},
        {k: statistics.median(v) for k, v in jumps.items()},
    )


def _one_steady_run(manager: Any) -> tuple[dict[str, float], dict[str, float]]:
    from rich.console import Console
    from rich.progress import Progress
    from tqdm import tqdm

    started: list[float] = []
    task = manager.run_process(steady, STEADY_SECONDS, when_event=lambda t, n, d: started.append(d))
    bar = tqdm(total=1000.0, file=io.StringIO(), mininterval=0, miniters=0)
    rich_progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    rich_task = rich_progress.add_task("steady", total=1000.0)
    readings: dict[str, list[tuple[float, float]]] = {"tasker": [], "tqdm": [], "rich": []}

    def estimates() -> dict[str, float | None]:
        rate = bar.format_dict["rate"]
        return {
            "tasker": task.get_eta(),
            "tqdm": (bar.total - bar.n) / rate if rate else None,
            "rich": rich_progress.tasks[0].time_remaining,
        }

    def on_updated(sender: object, tasks: list[Any], progress: float) -> None:
        if task not in tasks or not started:
            return
        value = task.get_progress() * 1000.0
        # The peers get the same coalesced values as tasker, at the same moments.
        bar.update(value - bar.n)
        rich_progress.update(rich_task, completed=value)
        now = time.monotonic()
        if now - started[0] <= READ_AT + 1.0:
            for name, eta in estimates().items():
                if eta is not None:
                    readings[name].append((now, eta))

    error: dict[str, float] = {}
    manager.tasks_updated.connect(on_updated)
    try:
        _wait(lambda: bool(started))
        _wait(lambda: time.monotonic() - started[0] >= READ_AT)
        left = STEADY_SECONDS - (time.monotonic() - started[0])
        for name, eta in estimates().items():
            error[name] = float("nan") if eta is None else abs(eta - left) / left * 100
        _wait(lambda: time.monotonic() - started[0] >= READ_AT + 1.0)
    finally:
        manager.tasks_updated.disconnect(on_updated)
        task.cancel()
        _wait(task.is_final)
        bar.close()
    jump: dict[str, float] = {}
    for name, points in readings.items():
        worst = float("nan") if len(points) < 2 else 0.0
        for (t1, e1), (t2, e2) in itertools.pairwise(points):
            worst = max(worst, abs((e1 - e2) - (t2 - t1)))
        jump[name] = worst
    return error, jump


def freeze_latency(smoke: bool) -> dict[str, float]:
    import multiprocessing

    import psutil

    samples = 3 if smoke else 15
    tasker_times: list[float] = []
    manager = _manager()
    try:
        for _ in range(samples):
            pids: list[int] = []
            task = manager.run_process(spin, when_event=lambda t, n, d, p=pids: p.append(d))
            _wait(lambda p=pids: bool(p))
            time.sleep(0.1)  # spinning for a while
            t0 = time.perf_counter()
            task.pause(freeze=True)
            tasker_times.append(_until_frozen(pids[0], t0))
            task.cancel()  # continues it; it sees the flag and returns
            _wait(task.is_final)
    finally:
        manager.shutdown(timeout=10.0)
    peer_times: list[float] = []
    context = multiprocessing.get_context("forkserver")
    for _ in range(samples):
        process = context.Process(target=spin_plain, daemon=True)
        process.start()
        assert process.pid is not None
        time.sleep(0.1)
        t0 = time.perf_counter()
        psutil.Process(process.pid).suspend()
        peer_times.append(_until_frozen(process.pid, t0))
        process.kill()
        process.join()
    return {
        "tasker": statistics.median(tasker_times) * 1000,
        "psutil": statistics.median(peer_times) * 1000,
    }


ROWS = (
    ("cost", "set_progress() in a worker process", "ns", "≤ 100", lambda v: v <= 100),
    ("eta", f"ETA error, steady {STEADY_SECONDS:g} s task, {READ_AT:g} s in", "%", "≤ 10", None),
    ("jump", "ETA jump between readings, max (to 3 s)", "s", "", None),
    ("freeze", "pause(freeze=True) → worker uses no CPU", "ms", "≤ 50", lambda v: v <= 50),
)


def run(smoke: bool) -> str:
    """Measure every row and return the table."""
    results: dict[str, dict[str, float | str]] = {}
    for key, fn in (("cost", set_progress_costs), ("freeze", freeze_latency)):
        try:
            results[key] = dict(fn(smoke))
        except Exception as exc:
            results[key] = {"tasker": f"error: {type(exc).__name__}: {exc}"}
    try:
        errors, jumps = eta_errors(smoke)
        results["eta"], results["jump"] = dict(errors), dict(jumps)
    except Exception as exc:
        results["eta"] = {"tasker": f"error: {type(exc).__name__}: {exc}"}
        results["jump"] = {}
    return render(results)


def render(results: dict[str, dict[str, float | str]]) -> str:
    """Plain-text table: tasker, each peer, peer ÷ tasker, the target and whether it holds."""
    lines = ["progress (issue 14)                              tasker   peers (peer ÷ tasker)"]
    for key, title, unit, target, check in ROWS:
        cells = results.get(key, {})
        ours = cells.get("tasker")
        if key == "eta" and isinstance(ours, float):
            check = lambda v: v <= 10.0  # noqa: E731
        peers = []
        for name, value in cells.items():
            if name == "tasker":
                continue
            if isinstance(value, float) and isinstance(ours, float) and ours:
                peers.append(f"{name} {value:.3g} {unit} ({value / ours:.2g}x)")
            else:
                peers.append(f"{name} {value}")
        shown = f"{ours:.3g} {unit}" if isinstance(ours, float) else str(ours)
        holds = ""
        if target and isinstance(ours, float) and check is not None:
            holds = f"  target {target}: {'yes' if check(ours) else 'NO'}"
        lines.append(f"{title:<48} {shown:>9}   {'; '.join(peers)}{holds}")
    return "\n".join(lines)
