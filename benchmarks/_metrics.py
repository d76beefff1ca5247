"""The nine metrics of issue 5, each measured for every system in one run."""

from __future__ import annotations

import gc
import statistics
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gi.repository import GLib

from . import _coldstart, _events, _lean, _origin, _peers, _scheduling, _tasker, _work
from ._harness import (
    BenchmarkError,
    CallbackCounter,
    LatenessProbe,
    Loop,
    Outcome,
    Sink,
    Stats,
    gc_quiet,
    now,
)
from ._report import Cell

Cells = dict[str, dict[str, Cell]]  # row key -> system -> cell
MS = 1000.0


@dataclass(frozen=True)
class Sizes:
    """Sample counts; ``smoke`` keeps every metric but makes the whole run take seconds."""

    pingpongs: int
    round_trips: int
    warm_trips: int
    throughput_tasks: int
    throughput_reps: int
    cost_checks: int
    cost_updates: int
    cost_reps: int
    coop_cancels: int
    stuck_wait: float
    stuck_samples: int
    crashes: int
    storm_seconds: float
    catchup_cap: float
    large_bytes: int
    large_reps: int
    cold_runs: int
    grace: float = 0.1

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            pingpongs=1000,
            round_trips=500,
            warm_trips=50,
            throughput_tasks=5000,
            throughput_reps=3,
            cost_checks=1_000_000,
            cost_updates=30_000,
            cost_reps=3,
            coop_cancels=20,
            stuck_wait=2.0,
            stuck_samples=5,
            crashes=5,
            storm_seconds=3.0,
            catchup_cap=8.0,
            large_bytes=100_000_000,
            large_reps=3,
            cold_runs=5,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            pingpongs=50,
            round_trips=20,
            warm_trips=5,
            throughput_tasks=200,
            throughput_reps=1,
            cost_checks=20_000,
            cost_updates=2_000,
            cost_reps=1,
            coop_cancels=2,
            stuck_wait=0.3,
            stuck_samples=1,
            crashes=1,
            storm_seconds=0.25,
            catchup_cap=0.3,
            large_bytes=10_000_000,
            large_reps=1,
            cold_runs=1,
        )


@dataclass
class Bench:
    """Everything one run shares: the main loop, sizes, which systems run, and the notes."""

    sizes: Sizes
    systems: tuple[str, ...]
    loop: Loop = field(default_factory=Loop)
    tasker_reason: str | None = None
    verbose: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _, self.tasker_reason = _tasker.load()

    # -- running one system, turning any failure into a cell --------------------------------

    def unavailable(self, system: str) -> str | None:
        if system == "tasker":
            return self.tasker_reason
        return _peers.available(system)

    def each(
        self, rows: Cells, systems: tuple[str, ...], measure: Callable[[str], dict[str, Cell]]
    ) -> None:
        """Run ``measure(system)`` for each system; its cells go into ``rows``."""
        for system in systems:
            if system not in self.systems:
                continue
            reason = self.unavailable(system)
            if reason is not None:
                for cells in rows.values():
                    cells[system] = Cell.note(reason)
                continue
            gc_quiet()
            try:
                figures = measure(system)
            except Exception as exc:
                if self.verbose:
                    traceback.print_exc()
                message = f"error: {type(exc).__name__}: {exc}"
                for cells in rows.values():
                    cells[system] = Cell.note(message)
                continue
            for key, cell in figures.items():
                rows[key][system] = cell

    @contextmanager
    def runner(self, system: str, workers: int, sink: Sink | None = None) -> Iterator[Any]:
        """A fresh, warm pool (or tasker manager) for one benchmark, closed afterwards."""
        made: Any
        if system == "tasker":
            made = _tasker.TaskerRunner(workers)
        else:
            made = _peers.PoolRunner(system, workers, sink)
        try:
            made.warm(self.loop)
            yield made
        finally:
            made.close()

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        if not self.loop.run_until(predicate, timeout):
            raise BenchmarkError(f"timed out after {timeout:g} s waiting for {what}")

    def run_one(self, runner: Any, work: str, *args: Any, timeout: float = 10.0) -> Outcome:
        """Submit one task and run the main loop until its outcome arrives."""
        box: list[Outcome] = []
        runner.submit(work, *args, on_done=box.append)
        self.wait(lambda: bool(box), timeout, f"a {work} task")
        return box[0]

    def run_many(
        self, runner: Any, work: str, n: int, timeout: float
    ) -> tuple[float, list[Outcome], list[float]]:
        """Submit ``n`` tasks at once; (start time, outcomes, per-submit costs in seconds)."""
        done: list[Outcome] = []
        costs: list[float] = []
        t0 = now()
        for _ in range(n):
            s = now()
            runner.submit(work, on_done=done.append)
            costs.append(now() - s)
        self.wait(lambda: len(done) >= n, timeout, f"{n} {work} tasks")
        return t0, done, costs


def _rows(*keys: str) -> Cells:
    return {key: {} for key in keys}


def _ok(outcome: Outcome, what: str) -> Outcome:
    if not outcome.ok:
        raise BenchmarkError(f"{what} failed: {outcome.error!r}")
    return outcome


def _extra(runner: Any, **options: Any) -> dict[str, Any]:
    """Per-task options that only tasker's run_process takes."""
    return options if runner.name == "tasker" else {}


def _submit(runner: Any, work: str, *args: Any, on_done: Any, **options: Any) -> Any:
    return runner.submit(work, *args, on_done=on_done, **_extra(runner, **options))


POOLS = ("tasker", *_peers.POOL_PEERS)


# --- 1 + 2: floor and warm round trip ------------------------------------------------------


def pipe_floor(bench: Bench) -> Cells:
    rows = _rows("floor.raw", "floor.glib", "rt.median", "rt.p95")
    ctx = _peers._FORKSERVER
    here, there = ctx.Pipe()
    child = ctx.Process(target=_work.echo_server, args=(there,), daemon=True)
    child.start()
    try:
        n = bench.sizes.pingpongs
        raw: list[float] = []
        for i in range(n + n // 10):
            t0 = now()
            here.send(i)
            here.recv()
            if i >= n // 10:
                raw.append(now() - t0)
        got: list[float] = []

        def on_readable(fd: int, condition: Any) -> bool:
            here.recv()
            got.append(now())
            return GLib.SOURCE_CONTINUE

        watch = GLib.unix_fd_add_full(
            GLib.PRIORITY_DEFAULT, here.fileno(), GLib.IOCondition.IN, on_readable
        )
        watched: list[float] = []
        try:
            for i in range(n + n // 10):
                before = len(got)
                t0 = now()
                here.send(i)
                bench.wait(lambda before=before: len(got) > before, 5, "the pipe")  # type: ignore[misc]
                if i >= n // 10:
                    watched.append(got[-1] - t0)
        finally:
            GLib.source_remove(watch)
        here.send(None)
        here.recv()
    finally:
        child.join(timeout=5)
    raw_stats, glib_stats = Stats.of(raw), Stats.of(watched)
    rows["floor.raw"]["floor"] = Cell.number(raw_stats.median * MS)
    rows["floor.glib"]["floor"] = Cell.number(glib_stats.median * MS)
    rows["rt.median"]["floor"] = Cell.number(glib_stats.median * MS)
    rows["rt.p95"]["floor"] = Cell.number(glib_stats.p95 * MS)
    return rows


def round_trip(bench: Bench) -> Cells:
    rows = _rows("rt.median", "rt.p95")
    sizes = bench.sizes

    def measure(system: str) -> dict[str, Cell]:
        samples: list[float] = []
        with bench.runner(system, 2) as runner:
            for i in range(sizes.warm_trips + sizes.round_trips):
                t0 = now()
                outcome = _ok(bench.run_one(runner, "noop"), "tiny task")
                if i >= sizes.warm_trips:
                    samples.append(outcome.t - t0)
        stats = Stats.of(samples)
        return {"rt.median": Cell.number(stats.median * MS), "rt.p95": Cell.number(stats.p95 * MS)}

    bench.each(rows, POOLS, measure)
    return rows


# --- 3: throughput --------------------------------------------------------------------------


def throughput(bench: Bench) -> Cells:
    rows = _rows("tp.rate", "tp.submit", "tp.growth")
    n = bench.sizes.throughput_tasks

    def measure(system: str) -> dict[str, Cell]:
        rates: list[float] = []
        submit_costs: list[float] = []
        growths: list[float] = []
        with bench.runner(system, 2) as runner:
            for _ in range(bench.sizes.throughput_reps):
                gc_quiet()
                t0, done, costs = bench.run_many(runner, "noop", n, 120)
                for outcome in done:
                    _ok(outcome, "tiny task")
                rates.append(n / (max(o.t for o in done) - t0))
                tenth = max(1, n // 10)
                submit_costs.append(statistics.fmean(costs))
                growths.append(statistics.fmean(costs[-tenth:]) / statistics.fmean(costs[:tenth]))
        return {
            "tp.rate": Cell.number(statistics.median(rates)),
            "tp.submit": Cell.number(statistics.median(submit_costs) * 1e6),
            "tp.growth": Cell.number(statistics.median(growths)),
        }

    bench.each(rows, POOLS, measure)
    return rows


# --- 4: worker-side costs -------------------------------------------------------------------


def worker_costs(bench: Bench) -> Cells:
    keys = ("is_cancelled", "set_progress", "set_message")
    rows = _rows(*(f"cost.{k}" for k in keys), "cost.callbacks")
    sizes = bench.sizes
    args = (sizes.cost_checks, sizes.cost_updates, sizes.cost_reps)
    floor = _work.shared_flag_cost(sizes.cost_checks, max(sizes.cost_reps, 3))
    rows["cost.is_cancelled"]["floor"] = Cell.number(floor)

    def measure(system: str) -> dict[str, Cell]:
        box: list[Outcome] = []
        counter = CallbackCounter()
        sink = Sink()
        with counter.active(), bench.runner(system, 1, sink) as runner:
            t0 = now()
            if system == "tasker":
                runner.submit_fn(_work.ctx_costs, *args, on_done=box.append)
                bench.wait(lambda: bool(box), 120, "the cost loop")
                callbacks = counter.count_between(t0, box[0].t)
            else:
                runner.submit_fn(_work.costs, *args, on_done=box.append)
                bench.wait(lambda: bool(box), 120, "the cost loop")
                expected = int(_ok(box[0], "cost loop").value["updates"])
                bench.wait(lambda: sink.updates >= expected, 120, "every update")
                callbacks = sink.callbacks + 1  # every update, and the result
        result: dict[str, float] = _ok(box[0], "cost loop").value
        cells = {f"cost.{k}": Cell.number(result[k]) for k in keys}
        calls = int(result["updates"])
        cells["cost.callbacks"] = Cell(float(callbacks), f"{callbacks:,} / {calls:,} calls")
        return cells

    bench.each(rows, POOLS, measure)
    return rows


# --- 5: cancelling --------------------------------------------------------------------------


def cancelling(bench: Bench) -> Cells:
    rows = _rows("cancel.coop", "cancel.stuck")
    sizes = bench.sizes

    def measure(system: str) -> dict[str, Cell]:
        latencies: list[float] = []
        statuses: set[str] = set()
        with bench.runner(system, 2) as runner:
            for _ in range(sizes.coop_cancels):
                took, outcome = cooperative_cancel(bench, runner)
                latencies.append(took)
                statuses.add("cancelled" if outcome.cancelled else "returned")
        coop = statistics.median(latencies) * MS
        cells = {"cancel.coop": Cell(coop, fmt_with(coop, "/".join(sorted(statuses))))}
        cells["cancel.stuck"] = stuck_cancel(bench, system)
        return cells

    bench.each(rows, POOLS, measure)
    return rows


def cooperative_cancel(bench: Bench, runner: Any) -> tuple[float, Outcome]:
    """Start a task that polls its cancel flag; cancel it; time until its outcome arrives."""
    box: list[Outcome] = []
    before = runner.started
    handle = runner.submit("cooperative", on_done=box.append)
    bench.wait(lambda: runner.started > before, 10, "the task to start")
    t0 = now()
    runner.cancel_cooperatively(handle)
    bench.wait(lambda: bool(box), 10, "the cancelled task")
    runner.reset_cancel()
    return box[0].t - t0, box[0]


def fmt_with(value: float, note: str) -> str:
    from ._report import fmt

    return f"{fmt(value)} ({note})" if note else fmt(value)


def stuck_cancel(bench: Bench, system: str) -> Cell:
    """Both slots stuck in time.sleep(60); cancel both; when does a follow-up task finish?

    The median of ``stuck_samples`` rounds; a peer that cannot free the slot within
    ``stuck_wait`` is reported as never after its first round.
    """
    runner: Any = _tasker.TaskerRunner(2) if system == "tasker" else _peers.PoolRunner(system, 2)
    killed = False
    try:
        runner.warm(bench.loop)
        samples: list[float] = []
        for _ in range(bench.sizes.stuck_samples):
            took = one_stuck_round(bench, runner)
            if took is None:
                if system != "tasker":
                    runner.kill()
                    killed = True
                return Cell.note(f"> {bench.sizes.stuck_wait:g} s / never")
            samples.append(took)
        return Cell.number(statistics.median(samples) * MS)
    finally:
        if not killed:
            runner.close()


def one_stuck_round(bench: Bench, runner: Any) -> float | None:
    stuck_done: list[Outcome] = []
    before = runner.started
    handles = [
        _submit(runner, "stuck", 60.0, on_done=stuck_done.append, cancel_grace=bench.sizes.grace)
        for _ in range(2)
    ]
    bench.wait(lambda: runner.started >= before + 2, 10, "both stuck tasks to start")
    t0 = now()
    for handle in handles:
        runner.cancel(handle)
    follow: list[Outcome] = []
    runner.submit("noop", on_done=follow.append)
    if not bench.loop.run_until(lambda: bool(follow), bench.sizes.stuck_wait):
        return None
    _ok(follow[0], "follow-up task")
    # both cancelled tasks must be final before the next round
    bench.wait(lambda: len(stuck_done) >= 2, 10, "the cancelled tasks' outcomes")
    return follow[0].t - t0


# --- 6: crashes -----------------------------------------------------------------------------


def crashes(bench: Bench) -> Cells:
    rows = _rows("crash.exit", "crash.kill", "crash.next", "crash.pool")

    def measure(system: str) -> dict[str, Cell]:
        notice: dict[str, list[float]] = {"exit": [], "sigkill": []}
        following: list[float] = []
        states: list[str] = []
        runner: Any = None
        try:
            for how in ("exit", "sigkill"):
                for _ in range(bench.sizes.crashes):
                    if runner is None:
                        runner = (
                            _tasker.TaskerRunner(2)
                            if system == "tasker"
                            else _peers.PoolRunner(system, 2)
                        )
                    runner.warm(bench.loop)
                    state, took, after = one_crash(bench, runner, how)
                    notice[how].append(took)
                    states.append(state)
                    if after is not None:
                        following.append(after)
                    if state.startswith("broken"):
                        runner.close()
                        runner = None
        finally:
            if runner is not None:
                runner.close()
        cells = {
            "crash.exit": Cell.number(statistics.median(notice["exit"]) * MS),
            "crash.kill": Cell.number(statistics.median(notice["sigkill"]) * MS),
            "crash.next": (
                Cell.number(statistics.median(following) * MS)
                if following
                else Cell.note("pool broken")
            ),
        }
        worst = sorted(set(states), key=lambda s: (not s.startswith("yes"), s))[-1]
        cells["crash.pool"] = Cell.flag(worst == "yes", worst)
        return cells

    bench.each(rows, POOLS, measure)
    return rows


def one_crash(bench: Bench, runner: Any, how: str) -> tuple[str, float, float | None]:
    """A bystander task runs while another worker dies; returns (pool state, notice, next)."""
    bystander: list[Outcome] = []
    crashed: list[Outcome] = []
    following: list[Outcome] = []
    runner.submit("sleep", 0.2, on_done=bystander.append)
    at = now() + 0.03
    runner.submit("crash_at", at, how, on_done=crashed.append)
    bench.wait(lambda: bool(crashed), 10, "the crash to be noticed")
    if crashed[0].ok:
        raise BenchmarkError("the crashing task reported success")
    took = crashed[0].t - at
    recovery: str | None = "same pool"
    try:
        runner.submit("noop", on_done=following.append)
    except Exception as exc:
        recovery = runner.rebuild()
        if recovery is None:
            bench.loop.run_until(lambda: bool(bystander), 2)
            return f"broken ({type(exc).__name__})", took, None
        runner.submit("noop", on_done=following.append)
    bench.wait(lambda: bool(following), 10, "the task after the crash")
    after = following[0].t - at if following[0].ok else None
    bench.wait(lambda: bool(bystander), 10, "the bystander")
    parts = []
    if recovery != "same pool":
        parts.append(str(recovery))
    if not bystander[0].ok:
        parts.append(f"bystander lost ({type(bystander[0].error).__name__})")
    if after is None:
        parts.append(f"next task failed ({type(following[0].error).__name__})")
    return ("yes" if not parts else "; ".join(parts)), took, after


# --- 7: main-loop responsiveness ------------------------------------------------------------


@dataclass
class StormResult:
    lateness: Stats
    callbacks: int
    per_second: float
    catchup: float | None  # seconds; None when it did not catch up within the cap
    estimate: float | None = None  # estimated catch-up when it did not


STORM_WORKERS = 4


def storm(bench: Bench) -> Cells:
    rows = _rows("storm.p50", "storm.p99", "storm.max", "storm.cbps", "storm.catchup")
    idle = idle_lateness(bench, max(bench.sizes.storm_seconds / 2, 0.3))
    rows["storm.p50"]["floor"] = Cell.number(idle.median * MS)
    rows["storm.p99"]["floor"] = Cell.number(idle.p99 * MS)
    rows["storm.max"]["floor"] = Cell.number(idle.max * MS)

    def measure(system: str) -> dict[str, Cell]:
        if system == "tasker":
            result = storm_tasker(bench)
        elif system == "gnome-thread":
            result = storm_threads(bench)
        else:
            result = storm_pool(bench, system)
        cap = bench.sizes.catchup_cap
        if result.catchup is not None:
            catchup = Cell.number(result.catchup * MS)
        elif result.estimate is not None:
            catchup = Cell(result.estimate * MS, f"> {cap:g} s (est. {result.estimate:.1f} s)")
        else:
            catchup = Cell.note(f"> {cap:g} s")
        return {
            "storm.p50": Cell.number(result.lateness.median * MS),
            "storm.p99": Cell.number(result.lateness.p99 * MS),
            "storm.max": Cell.number(result.lateness.max * MS),
            "storm.cbps": Cell(
                result.per_second, f"{result.per_second:,.0f} ({result.callbacks:,})"
            ),
            "storm.catchup": catchup,
        }

    bench.each(rows, ("tasker", *_peers.PEERS), measure)
    return rows


def idle_lateness(bench: Bench, seconds: float) -> Stats:
    probe = LatenessProbe()
    probe.start()
    try:
        start = now()
        bench.loop.run_for(seconds)
        return Stats.of(probe.lateness(start + 0.05, now()))
    finally:
        probe.stop()


def _estimate(total: int, at_end: int, processed: int, t_end: float, t_now: float) -> float | None:
    """Seconds from the last worker's end until all ``total`` updates would have been shown."""
    rate = (processed - at_end) / max(t_now - t_end, 1e-9)
    if rate <= 0:
        return None
    return (t_now - t_end) + (total - processed) / rate


def storm_tasker(bench: Bench) -> StormResult:
    sizes = bench.sizes
    probe = LatenessProbe()
    probe.start()
    counter = CallbackCounter()
    try:
        with counter.active(), bench.runner("tasker", STORM_WORKERS) as runner:
            bench.loop.run_for(0.05)
            done: list[Outcome] = []
            t_start = now()
            deadline = t_start + sizes.storm_seconds
            dispatches0, fires0 = bench.loop.dispatches, probe.fires
            for worker_id in range(STORM_WORKERS):
                runner.submit_fn(_work.ctx_storm, worker_id, deadline, on_done=done.append)
            bench.wait(
                lambda: len(done) >= STORM_WORKERS,
                sizes.storm_seconds + sizes.catchup_cap,
                "the storm tasks",
            )
            for outcome in done:
                _ok(outcome, "storm task")
            t_caught = max(o.t for o in done)
            t_end = max(o.value[0] for o in done)
            dispatched = (bench.loop.dispatches - dispatches0) - (probe.fires - fires0)
            callbacks = max(counter.count_between(t_start, t_caught), dispatched)
    finally:
        probe.stop()
    return StormResult(
        lateness=Stats.of(probe.lateness(t_start, t_end)),
        callbacks=callbacks,
        per_second=callbacks / (t_caught - t_start),
        catchup=max(t_caught - t_end, 0.0),
    )


def storm_pool(bench: Bench, system: str) -> StormResult:
    sizes = bench.sizes
    sink = Sink(workers=STORM_WORKERS)
    runner = _peers.PoolRunner(system, STORM_WORKERS, sink)
    probe = LatenessProbe()
    caught = False
    try:
        runner.warm(bench.loop)
        probe.start()
        bench.loop.run_for(0.05)
        done: list[Outcome] = []
        t_start = now()
        deadline = t_start + sizes.storm_seconds
        for worker_id in range(STORM_WORKERS):
            runner.submit_fn(_work.storm, worker_id, deadline, on_done=done.append)
        bench.wait(lambda: len(done) >= STORM_WORKERS, sizes.storm_seconds + 30, "storm tasks")
        for outcome in done:
            _ok(outcome, "storm task")
        t_end = max(o.value[0] for o in done)
        total = sum(steps + steps // 100 for _, steps in (o.value for o in done))
        at_end = sink.updates
        caught = bench.loop.run_until(
            lambda: sink.all_ended, max(t_end + sizes.catchup_cap - now(), 0.0)
        )
        t_now = max(sink.ends.values()) if caught else now()
        callbacks = sink.callbacks + len(done)
        processed = sink.updates
    finally:
        probe.stop()
        if caught:
            runner.close()
        else:
            sink.closed = True
            runner.kill()
            runner.channel.close()
        bench.loop.drain(30)
    lateness = Stats.of(probe.lateness(t_start, t_end))
    return StormResult(
        lateness=lateness,
        callbacks=callbacks,
        per_second=callbacks / (t_now - t_start),
        catchup=max(t_now - t_end, 0.0) if caught else None,
        estimate=None if caught else _estimate(total, at_end, processed, t_end, t_now),
    )


def storm_threads(bench: Bench) -> StormResult:
    sizes = bench.sizes
    sink = Sink(workers=STORM_WORKERS)
    helper = _peers.GnomeHelperStorm(sink)
    probe = LatenessProbe()
    probe.start()
    try:
        bench.loop.run_for(0.05)
        t_start = now()
        deadline = t_start + sizes.storm_seconds
        helper.start(STORM_WORKERS, deadline)
        bench.loop.run_until(lambda: len(helper.results) >= STORM_WORKERS, sizes.storm_seconds + 30)
        helper.join()
        t_end = max(t for t, _ in helper.results.values())
        total = sum(steps + steps // 100 for _, steps in helper.results.values())
        at_end = sink.updates
        caught = bench.loop.run_until(
            lambda: sink.all_ended, max(t_end + sizes.catchup_cap - now(), 0.0)
        )
        t_now = max(sink.ends.values()) if caught else now()
        callbacks = sink.callbacks
        processed = sink.updates
    finally:
        probe.stop()
        sink.closed = True
        bench.loop.drain(60)
    return StormResult(
        lateness=Stats.of(probe.lateness(t_start, t_end)),
        callbacks=callbacks,
        per_second=callbacks / (t_now - t_start),
        catchup=max(t_now - t_end, 0.0) if caught else None,
        estimate=None if caught else _estimate(total, at_end, processed, t_end, t_now),
    )


# --- 8: large results -----------------------------------------------------------------------


def large_data(bench: Bench) -> Cells:
    rows = _rows("large.bytes", "large.numpy")
    size, reps = bench.sizes.large_bytes, bench.sizes.large_reps
    floor = pipe_bulk(size, reps)
    rows["large.bytes"]["floor"] = Cell.number(floor)
    rows["large.numpy"]["floor"] = Cell.number(floor)

    def measure(system: str) -> dict[str, Cell]:
        cells: dict[str, Cell] = {}
        with bench.runner(system, 2) as runner:
            for key, work in (("large.bytes", "big_bytes"), ("large.numpy", "big_array")):
                rates: list[float] = []
                for _ in range(reps):
                    outcome = _ok(bench.run_one(runner, work, size, timeout=120), "large result")
                    t_ready, data = outcome.value
                    got = data.nbytes if hasattr(data, "nbytes") else len(data)
                    if got < size - 8:
                        raise BenchmarkError(f"short result: {got} bytes")
                    rates.append(size / 1e6 / (outcome.t - t_ready))
                    del data, outcome
                    gc.collect()
                cells[key] = Cell.number(statistics.median(rates))
        return cells

    bench.each(rows, POOLS, measure)
    return rows


def pipe_bulk(size: int, reps: int) -> float:
    """MB/s of bytes built in one process and received as bytes in another over a Pipe."""
    ctx = _peers._FORKSERVER
    here, there = ctx.Pipe()
    child = ctx.Process(target=_work.bulk_sender, args=(there, size, reps), daemon=True)
    child.start()
    rates: list[float] = []
    try:
        for _ in range(reps):
            t_ready = here.recv()
            data = here.recv_bytes()
            rates.append(len(data) / 1e6 / (now() - t_ready))
            del data
            here.send(True)
    finally:
        child.join(timeout=10)
    return statistics.median(rates)


# --- 9: cold start --------------------------------------------------------------------------


def cold_start(bench: Bench) -> Cells:
    rows = _rows("cold.import", "cold.clean", "cold.first")
    runs = bench.sizes.cold_runs

    def measure(system: str) -> dict[str, Cell]:
        imports = [_coldstart.import_time(system) for _ in range(runs)]
        seconds = statistics.median(i.seconds for i in imports)
        threads = max(i.threads for i in imports)
        children = max(i.children for i in imports)
        clean = threads == 0 and children == 0
        firsts = [_coldstart.first_task(system) for _ in range(runs)]
        return {
            "cold.import": Cell.number(seconds * MS),
            "cold.clean": Cell.flag(
                clean, "yes" if clean else f"no: +{threads} threads, +{children} processes"
            ),
            "cold.first": Cell.number(statistics.median(firsts) * MS),
        }

    bench.each(rows, POOLS, measure)
    return rows


METRICS: dict[str, Callable[[Bench], Cells]] = {
    "1": pipe_floor,
    "2": round_trip,
    "3": throughput,
    "4": worker_costs,
    "5": cancelling,
    "6": crashes,
    "7": storm,
    "8": large_data,
    "9": cold_start,
    "10": _origin.origin,
    "11": _lean.lean,
    "12": _events.events,
    "13": _scheduling.policies,
}
"""Metric number (as in issue 5) -> benchmark; each returns row key -> system -> cell."""
