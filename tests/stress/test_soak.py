"""Soak: tens of thousands of mixed tasks, random cancels, key collisions, crashes, timeouts.

One long-lived manager (as in a real application session) runs a random mix
of coroutine, thread and process tasks with a bounded number in flight. Each
``when_done`` is checked as it arrives (exactly once, on the main thread,
after all its events, with the outcome its function produced), and nothing
is kept per finished task, so the test's own memory stays flat.

Before and after (following a warm-up run, and after ``shutdown()``), the
parent's RSS, open descriptors, threads, descendant processes and /dev/shm
entries are compared:

* descriptors, threads, descendant processes and /dev/shm entries: exactly
  back to where they were (/dev/shm is machine-wide: only the names this
  process tree can create there count, see ``_probe.OUR_SHM_PREFIXES``);
* RSS: within ``RSS_TOLERANCE_MIB`` of the start, and the growth over the
  second half of the run (a leak grows with the task count) within
  ``RSS_HALF_TOLERANCE_MIB``.

``make soak`` runs 100,000 tasks (``TASKER_SOAK_TASKS`` changes it); ``make
test`` runs a 5,000-task version.
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tasker import (
    GLibDispatcher,
    Task,
    TaskManager,
    TaskStatus,
    TaskTimeoutError,
    WorkerCrashedError,
)
from tasker.testing import run_until

from . import _work
from ._probe import Snapshot, descendant_pids, new_shm_of_ours, our_shm, wait_for

RSS_TOLERANCE_MIB = 24.0
RSS_HALF_TOLERANCE_MIB = 8.0
STEP_TIMEOUT = 60.0
KEYS = [f"key-{i}" for i in range(8)]


@dataclass
class Entry:
    """What the soak knows about one live task (dropped once its when_done is checked)."""

    kind: str
    plan: str
    argument: Any
    events: int = 0
    stop_requested: bool = False
    cancel_won: bool = False


@dataclass
class Soak:
    """Starts the mix and checks each task's callbacks as they arrive."""

    manager: TaskManager
    rng: random.Random
    main: int = field(default_factory=threading.get_ident)
    live: dict[int, Entry] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)
    recent: deque[Task[Any]] = field(default_factory=lambda: deque(maxlen=64))
    problems: list[str] = field(default_factory=list)
    started: int = 0
    finished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    emissions: int = 0
    last_emission: tuple[int, float] = (0, 0.0)

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)

    # ------------------------------------------------------------ callbacks

    def on_updated(self, sender: object, tasks: list[Task[Any]], progress: float) -> None:
        if threading.get_ident() != self.main:
            self.problem("tasks_updated off the main thread")
        self.emissions += 1
        self.last_emission = (len(tasks), progress)

    def on_event(self, task: Task[Any], name: str, data: Any) -> None:
        entry = self.live.get(task.id)
        if entry is None:
            self.problem(f"event {name}={data!r} for {task!r} after its when_done")
            return
        if threading.get_ident() != self.main:
            self.problem(f"when_event of {task!r} off the main thread")
        if name == "started" and entry.plan == "timeout":
            return
        if name != "tick" or data != entry.events:
            self.problem(f"{task!r}: event {name}={data!r}, expected tick {entry.events}")
        entry.events += 1

    def on_done(self, task: Task[Any]) -> None:
        entry = self.live.pop(task.id, None)
        if entry is None:
            self.problem(f"second or unknown when_done for {task!r}")
            return
        self.finished += 1
        if threading.get_ident() != self.main:
            self.problem(f"when_done of {task!r} off the main thread")
        status = task.get_status()
        if self.owners.get(str(task.key)) == task.id:
            del self.owners[str(task.key)]
        outcome = f"{entry.kind} {entry.plan} {status}"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        try:
            self.check(task, entry, status)
        except AssertionError as error:
            self.problem(f"{task!r} ({outcome}): {error}")

    def check(self, task: Task[Any], entry: Entry, status: TaskStatus) -> None:
        assert status.is_final
        if entry.cancel_won:
            assert status is TaskStatus.CANCELLED, "cancel() returned True"
        if status is TaskStatus.CANCELLED:
            assert entry.stop_requested, "cancelled without being asked"
            if entry.plan == "events":
                assert entry.events <= entry.argument
            return
        plan = entry.plan
        error = task.exception() if status is TaskStatus.FAILED else None
        if plan == "quick":
            assert task.result() == entry.argument
        elif plan == "events":
            assert task.result() == entry.argument and entry.events == entry.argument
        elif plan == "fail":
            assert type(error) is ValueError, repr(error)
        elif plan == "crash":
            assert isinstance(error, WorkerCrashedError), repr(error)
            assert entry.events == entry.argument[0], "events sent before the crash"
        elif plan == "timeout":
            assert isinstance(error, TaskTimeoutError), repr(error)
        else:
            raise AssertionError(plan)

    # -------------------------------------------------------------- driving

    def start_one(self) -> None:
        rng = self.rng
        n = self.started
        kind = rng.choices(["thread", "coroutine", "process"], [40, 25, 35])[0]
        roll = rng.random()
        if kind == "process" and roll < 0.03:
            plan = "crash"
            argument: Any = (rng.randrange(3), rng.choice(["exit", "kill"]))
        elif kind == "process" and roll < 0.035:
            plan = "timeout"
            argument = None
        elif roll < 0.15:
            plan = "fail"
            argument = None
        elif roll < 0.45:
            plan = "events"
            argument = rng.randrange(1, 6)
        else:
            plan = "quick"
            argument = n
        key = rng.choice(KEYS) if rng.random() < 0.2 else None
        options: dict[str, Any] = {
            "key": key,
            "when_done": self.on_done,
            "when_event": self.on_event,
        }
        label = f"soak-{n}"
        if plan == "quick":
            args: tuple[Any, ...] = (label, n)
        elif plan == "events":
            args = (label, argument)
        elif plan == "fail":
            args = (label,)
        elif plan == "crash":
            args = (label, *argument)
        else:
            args = (label, 30.0)
            options["timeout"] = 0.05
            options["cancel_grace"] = 0.05
        name = {"timeout": "stubborn"}.get(plan, plan)
        if kind == "coroutine":
            task = self.manager.add_coroutine(getattr(_work, f"async_{name}"), *args, **options)
        elif kind == "thread":
            task = self.manager.run_thread(getattr(_work, name), *args, **options)
        else:
            task = self.manager.run_process(getattr(_work, name), *args, **options)
        self.started += 1
        self.live[task.id] = Entry(kind, plan, argument)
        if key is not None:
            previous = self.owners.get(key)
            if previous is not None and previous in self.live:
                self.live[previous].stop_requested = True  # replaced: newest wins
            self.owners[key] = task.id
        self.recent.append(task)

    def cancel_one(self) -> None:
        task = self.rng.choice(self.recent)
        entry = self.live.get(task.id)
        if entry is not None:
            entry.stop_requested = True
        if task.cancel():
            assert entry is not None, f"cancel() won for {task!r} after its when_done"
            entry.cancel_won = True

    def run(self, total: int, in_flight: int = 160, checkpoint: int | None = None) -> int | None:
        """Start ``total`` tasks; returns the RSS (KiB) at ``checkpoint`` tasks, if given."""
        rss_at_checkpoint = None
        while self.started < total:
            while len(self.live) < in_flight and self.started < total:
                self.start_one()
                if self.rng.random() < 0.12:
                    self.cancel_one()
                if checkpoint is not None and self.started == checkpoint:
                    rss_at_checkpoint = settled_rss(self)
            run_until(lambda: len(self.live) <= in_flight // 2, STEP_TIMEOUT)
        run_until(lambda: not self.live, STEP_TIMEOUT)
        assert self.manager.wait_until_settled(STEP_TIMEOUT)
        return rss_at_checkpoint


def settled_rss(soak: Soak) -> int:
    run_until(lambda: not soak.live, STEP_TIMEOUT)
    gc.collect()
    return Snapshot.take().rss_kb


def new_manager() -> TaskManager:
    return TaskManager(GLibDispatcher(), max_workers=2, max_threads=8, cancel_grace=0.2)


def soak(total: int, out: Callable[[str], None] = print) -> None:
    # Warm-up: imports, GLib sources, the fork server code paths, allocator arenas.
    warm = new_manager()
    Soak(warm, random.Random(1)).run(300)
    warm.shutdown(timeout=10.0)
    gc.collect()
    assert wait_for(lambda: not [t for t in threading.enumerate() if "tasker" in t.name], 10)
    before = Snapshot.take()
    descendants_before = descendant_pids()

    manager = new_manager()
    runner = Soak(manager, random.Random(total))
    manager.tasks_updated.connect(runner.on_updated)
    started_at = time.monotonic()
    rss_half = runner.run(total, checkpoint=total // 2)
    elapsed = time.monotonic() - started_at
    during = Snapshot.take()
    assert not runner.problems, runner.problems
    assert runner.finished == runner.started == total
    run_until(lambda: runner.last_emission == (0, 1.0), STEP_TIMEOUT)
    manager.shutdown(timeout=10.0)
    del manager, runner.manager
    gc.collect()
    assert wait_for(lambda: threading.active_count() == before.threads, 10)
    assert wait_for(lambda: descendant_pids() <= descendants_before, 10)
    after = Snapshot.take()

    crashes = sum(v for k, v in runner.outcomes.items() if k.startswith("process crash failed"))
    out(
        f"\nsoak: {total} tasks in {elapsed:.1f} s ({total / elapsed:.0f} tasks/s), "
        f"{runner.emissions} tasks_updated emissions, {crashes} worker crashes\n"
        f"  before: {before.describe()}\n"
        f"  busy:   {during.describe()}\n"
        f"  after:  {after.describe()}\n"
        f"  RSS growth {(after.rss_kb - before.rss_kb) / 1024:+.1f} MiB overall, "
        f"{(after.rss_kb - (rss_half or after.rss_kb)) / 1024:+.1f} MiB over the second half"
    )
    for outcome in sorted(runner.outcomes):
        out(f"  {runner.outcomes[outcome]:6d}  {outcome}")
    assert after.fds == before.fds, (before.describe(), after.describe())
    assert after.threads == before.threads
    foreign = (after.shm ^ before.shm) - our_shm(after.shm ^ before.shm)
    if foreign:
        out(f"  /dev/shm changed by other programs meanwhile (not counted): {sorted(foreign)}")
    assert new_shm_of_ours(before.shm, after.shm) == set(), after.shm ^ before.shm
    assert after.children <= before.children
    assert (after.rss_kb - before.rss_kb) / 1024 <= RSS_TOLERANCE_MIB, (
        f"RSS grew by {(after.rss_kb - before.rss_kb) / 1024:.1f} MiB "
        f"(tolerance {RSS_TOLERANCE_MIB} MiB)"
    )
    if rss_half is not None:
        assert (after.rss_kb - rss_half) / 1024 <= RSS_HALF_TOLERANCE_MIB, (
            f"RSS grew by {(after.rss_kb - rss_half) / 1024:.1f} MiB over the second half "
            f"(tolerance {RSS_HALF_TOLERANCE_MIB} MiB): a leak per task?"
        )


def test_mini_soak() -> None:
    """The `make test` version: a few thousand tasks."""
    soak(5000)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak(capsys: pytest.CaptureFixture[str]) -> None:
    def out(text: str) -> None:
        with capsys.disabled():  # the figures are the point of `make soak`: always show them
            print(text, flush=True)

    soak(int(os.environ.get("TASKER_SOAK_TASKS", "100000")), out)
