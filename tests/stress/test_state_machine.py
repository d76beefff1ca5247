"""A stateful property test: random task traffic on a real manager and GLib main loop.

Hypothesis drives one ``TaskManager`` (GLib dispatcher, two worker processes,
four worker threads) through random sequences of starting coroutine, thread
and process tasks (with colliding keys from a small pool), cancelling them by
key or handle, killing their workers, letting them fail, crash or time out,
and shutting the manager down. Every callback is recorded with its thread.

Invariants, checked after every step and at the end:

* every callback (``when_done``, ``when_event``, ``tasks_updated``) runs on
  the main thread;
* ``when_done`` runs at most once per task, and is its last callback (the
  manager's ``task_done`` signal follows it, once);
* a ``tasks_updated`` emission lists only tasks whose ``when_done`` has not
  run, with an overall progress in [0, 1];
* once settled: each task has exactly one final status, matching what its
  function did (or ``cancelled`` when it was asked to stop; strictly
  ``cancelled`` when ``cancel()`` returned True); its events arrived once and
  in order; the last ``tasks_updated`` shows no tasks and progress 1.0;
* no step waits forever: every wait is bounded, and a ``TimeoutError`` from
  ``run_until`` fails the test.

After shutdown no tasker thread and no child process is left.

``make test`` runs a small number of examples; the ``soak`` variant (``make
soak``) runs many more, longer ones.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
)

from tasker import (
    GLibDispatcher,
    ManagerShutdownError,
    RemoteTraceback,
    Task,
    TaskManager,
    TaskStatus,
    TaskTimeoutError,
    WorkerCrashedError,
)
from tasker.testing import drain, run_until

from . import _work
from ._probe import descendant_pids, tasker_threads, wait_for

SOAK = os.environ.get("TASKER_SOAK") == "1"

#: Upper bound of any single wait in a step: past it the manager counts as deadlocked.
STEP_TIMEOUT = 30.0
CANCEL_GRACE = 0.3
#: A stubborn process task ignores its cancel flag this long (the pool kills it first).
STUBBORN_SECONDS = 20.0

KEYS: list[Hashable | None] = [None, None, "a", "b", ("tuple", 1), 0]
KINDS = ["coroutine", "thread", "process"]
#: Plans every kind can run, and the ones only a process can (they kill the worker).
PLANS = ["quick", "fail", "events", "chatty", "chatty_timeout"]
PROCESS_PLANS = ["crash_exit", "crash_kill", "stubborn", "stubborn_timeout"]
#: Plans that only end when asked to stop; settle() cancels them (the *_timeout ones time out).
LONG_PLANS = {"chatty", "stubborn"}


@dataclass
class Record:
    """One started task: what it was asked to do and every callback it got."""

    number: int
    kind: str
    plan: str
    key: Hashable | None
    argument: Any = None
    timeout: float | None = None
    task: Task[Any] | None = None
    log: list[tuple[Any, ...]] = field(default_factory=list)
    stop_requested: bool = False  # cancel(), cancel_task(), key replacement or shutdown
    cancel_won: bool = False  # a cancel() call returned True
    killed: bool = False  # we SIGKILLed its worker while it ran
    pid: int | None = None  # a chatty task's worker pid ("started" event)

    @property
    def done(self) -> bool:
        return any(entry[0] == "done" for entry in self.log)

    @property
    def label(self) -> str:
        return f"#{self.number}"

    def events(self) -> list[tuple[str, Any]]:
        return [(entry[1], entry[2]) for entry in self.log if entry[0] == "event"]


class ManagerMachine(RuleBasedStateMachine):
    """Random task traffic against one manager; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.manager = TaskManager(
            GLibDispatcher(), max_workers=2, max_threads=4, cancel_grace=CANCEL_GRACE
        )
        self.main_thread = threading.get_ident()
        self.descendants_before = descendant_pids()
        self.records: list[Record] = []
        self.by_id: dict[int, Record] = {}
        self.owner: dict[Hashable, Record] = {}
        self.violations: list[str] = []
        self.updates: list[tuple[int, float]] = []
        self.shut_down = False
        self.manager.tasks_updated.connect(self.on_updated)
        self.manager.task_done.connect(self.on_task_done)

    # ------------------------------------------------------------ callbacks
    # Assertions inside callbacks would be swallowed (and logged) by the
    # manager, so callbacks only record violations; invariants assert them.

    def _check_thread(self, what: str) -> None:
        if threading.get_ident() != self.main_thread:
            self.violations.append(f"{what} ran on {threading.current_thread().name}")

    def on_updated(self, sender: object, tasks: list[Task[Any]], progress: float) -> None:
        self._check_thread("tasks_updated")
        if not 0.0 <= progress <= 1.0:
            self.violations.append(f"tasks_updated progress {progress!r}")
        for task in tasks:
            record = self.by_id.get(task.id)
            if record is None:
                self.violations.append(f"tasks_updated lists unknown task {task!r}")
            elif record.done:
                self.violations.append(f"tasks_updated lists {task!r} after its when_done")
        self.updates.append((len(tasks), progress))

    def on_event(self, record: Record, task: Task[Any], name: str, data: Any) -> None:
        self._check_thread("when_event")
        if task is not record.task:
            self.violations.append(f"when_event of {record.label} got {task!r}")
        if record.done:
            self.violations.append(f"event {name!r} of {record.label} after its when_done")
        if name == "started" and isinstance(data, int):
            record.pid = data
        record.log.append(("event", name, data))

    def on_task_done(self, sender: object, task: Task[Any]) -> None:
        self._check_thread("task_done")
        record = self.by_id.get(task.id)
        if record is None:
            self.violations.append(f"task_done for unknown task {task!r}")
            return
        if not record.log or record.log[-1][0] != "done":
            self.violations.append(f"task_done of {record.label} not right after its when_done")
        record.log.append(("task_done",))

    def on_done(self, record: Record, task: Task[Any]) -> None:
        self._check_thread("when_done")
        if task is not record.task:
            self.violations.append(f"when_done of {record.label} got {task!r}")
        if record.done:
            self.violations.append(f"second when_done for {record.label}")
        if not task.is_final():
            self.violations.append(f"when_done of {record.label} while {task.get_status()}")
        record.log.append(("done", task.get_status(), task.get_message(), task.get_progress()))

    # --------------------------------------------------------------- rules

    def _start(self, kind: str, plan: str, key: Hashable | None, timeout: float | None) -> None:
        record = Record(len(self.records), kind, plan, key, timeout=timeout)
        label = record.label
        if plan == "quick":
            name, args = "quick", (label, {"n": record.number, "label": label})
        elif plan == "fail":
            name, args = "fail", (label,)
        elif plan == "events":
            record.argument = 3 + record.number % 8
            name, args = "events", (label, record.argument)
        elif plan.startswith("chatty"):
            name, args = "chatty", (label,)
        elif plan.startswith("crash"):
            record.argument = record.number % 4
            name, args = "crash", (label, record.argument, plan.removeprefix("crash_"))
        else:
            name, args = "stubborn", (label, STUBBORN_SECONDS)
        if self.shut_down:
            with pytest.raises(ManagerShutdownError):
                self._call(kind, name, args, {"key": key})
            assert self.manager.get_task(key) is None if key is not None else True
            return
        options: dict[str, Any] = {
            "key": key,
            "when_done": lambda task: self.on_done(record, task),
            "when_event": lambda task, n, d: self.on_event(record, task, n, d),
            "timeout": timeout,
        }
        previous = self.owner.get(key) if key is not None else None
        task = self._call(kind, name, args, options)
        record.task = task
        self.records.append(record)
        self.by_id[task.id] = record
        if key is not None:
            self.owner[key] = record
            if previous is not None and not previous.done:
                previous.stop_requested = True  # replaced: "newest wins"
            assert self.manager.get_task(key) in (task, None)  # None: it finished already

    def _call(
        self, kind: str, name: str, args: tuple[Any, ...], options: dict[str, Any]
    ) -> Task[Any]:
        if kind == "coroutine":
            return self.manager.add_coroutine(getattr(_work, f"async_{name}"), *args, **options)
        if kind == "thread":
            return self.manager.run_thread(getattr(_work, name), *args, **options)
        return self.manager.run_process(getattr(_work, name), *args, **options)

    @rule(
        kind=st.sampled_from(KINDS),
        plan=st.sampled_from(PLANS),
        key=st.sampled_from(KEYS),
    )
    def start(self, kind: str, plan: str, key: Hashable | None) -> None:
        timeout = 0.05 + 0.05 * (len(self.records) % 4) if plan == "chatty_timeout" else None
        self._start(kind, plan, key, timeout)

    @rule(plan=st.sampled_from(PROCESS_PLANS), key=st.sampled_from(KEYS))
    def start_process_fault(self, plan: str, key: Hashable | None) -> None:
        timeout = 0.1 if plan == "stubborn_timeout" else None
        self._start("process", plan, key, timeout)

    @rule(key=st.sampled_from(KEYS[2:]))
    def cancel_by_key(self, key: Hashable) -> None:
        owner = self.manager.get_task(key)
        cancelled = self.manager.cancel_task(key)
        if owner is None:
            assert not cancelled
            return
        record = self.by_id[owner.id]
        record.stop_requested = True
        if cancelled:
            record.cancel_won = True

    # Rules draw their choice first and unconditionally, as an index: whether
    # a draw happens must not depend on timing, or Hypothesis sees the same
    # prefix of choices behave differently and fails with FlakyStrategyDefinition.
    @rule(choice=st.integers(min_value=0, max_value=1 << 16))
    def cancel_a_task(self, choice: int) -> None:
        if not self.records:
            return
        record = self.records[choice % len(self.records)]
        assert record.task is not None
        final_before = record.task.is_final()
        record.stop_requested = True
        won = record.task.cancel()
        if won:
            assert not final_before
            record.cancel_won = True
        assert record.task.cancel() is False  # a second cancel never wins

    @rule(choice=st.integers(min_value=0, max_value=1 << 16))
    def kill_a_worker(self, choice: int) -> None:
        # Only a chatty process task without a timeout that nobody asked to
        # stop is certain to still be running in the worker whose pid it sent.
        def candidates() -> list[Record]:
            return [
                r
                for r in self.records
                if r.kind == "process"
                and r.plan == "chatty"
                and not r.stop_requested
                and not r.killed
            ]

        if self.shut_down:
            return
        if not any(r.pid for r in candidates()):
            self._start("process", "chatty", None, None)  # a victim
        try:  # give it a moment to report its pid
            run_until(lambda: any(r.pid for r in candidates()), 5.0)
        except TimeoutError:
            return  # queued behind busy workers
        victims = [r for r in candidates() if r.pid]
        record = victims[choice % len(victims)]
        event("killed a worker")
        assert record.pid is not None and record.task is not None
        assert not record.task.is_final(), record
        record.killed = True
        os.kill(record.pid, signal.SIGKILL)

    @rule()
    def pump(self) -> None:
        """Let the main loop run for a moment, as an application would between user actions."""
        drain(0.02)

    @rule()
    def settle(self) -> None:
        """Cancel the tasks that only end when asked, and wait until everything is delivered."""
        if self.shut_down:
            return
        for record in self.records:
            assert record.task is not None
            if record.plan in LONG_PLANS and not record.task.is_final():
                record.stop_requested = True
                if record.task.cancel():
                    record.cancel_won = True
        run_until(lambda: all(r.done for r in self.records), STEP_TIMEOUT)
        if self.records:
            run_until(lambda: self.updates and self.updates[-1] == (0, 1.0), STEP_TIMEOUT)
        assert not self.manager.has_tasks()
        assert len(self.manager) == 0
        assert self.manager.get_overall_progress() == 1.0
        assert self.manager.wait_until_settled(0)
        for record in self.records:
            self.check_outcome(record)

    @rule()
    def shutdown(self) -> None:
        if self.shut_down or len(self.records) < 6:
            return  # let most runs get going first
        self.do_shutdown()
        assert self.manager.cancel_task("a") is False
        assert self.manager.wait_until_settled(0)

    def do_shutdown(self) -> None:
        for record in self.records:
            if not record.done:
                record.stop_requested = True
        self.shut_down = True
        self.manager.shutdown(timeout=5.0)
        # shutdown() delivers the last when_done callbacks on this (the main) thread.
        run_until(lambda: all(r.done for r in self.records), STEP_TIMEOUT)
        for record in self.records:
            self.check_outcome(record)
        if self.records:
            run_until(lambda: self.updates and self.updates[-1] == (0, 1.0), STEP_TIMEOUT)
        assert not self.manager.has_tasks()

    # ----------------------------------------------------------- invariants

    @invariant()
    def callbacks_are_sound(self) -> None:
        assert not self.violations, self.violations

    @invariant()
    def delivered_tasks_are_gone(self) -> None:
        live = {task.id for task in self.manager}
        for record in self.records:
            assert record.task is not None
            if record.done:
                assert record.task.id not in live, record
                assert record.task.is_final()

    def teardown(self) -> None:
        try:
            if not self.shut_down:
                if len(self.records) % 2:
                    self.settle()  # half the runs end idle, half shut down with live tasks
                self.do_shutdown()
            assert not self.violations, self.violations
        finally:
            self.manager.shutdown(timeout=5.0)
        assert wait_for(lambda: not tasker_threads(), 10), tasker_threads()
        assert wait_for(lambda: descendant_pids() <= self.descendants_before, 10), (
            descendant_pids() - self.descendants_before
        )

    # -------------------------------------------------------------- outcome

    def check_outcome(self, record: Record) -> None:
        """Exactly one final status, consistent with the plan; events once and in order."""
        task = record.task
        assert task is not None
        dones = [entry for entry in record.log if entry[0] == "done"]
        assert len(dones) == 1, record
        # when_done is the task's last callback; the task_done signal follows it, once.
        assert [entry[0] for entry in record.log[-2:]] == ["done", "task_done"], record
        status = task.get_status()
        assert dones[0][1] == status, record
        assert status.is_final, record
        events = record.events()
        event(f"{record.kind} {record.plan} -> {status}")
        if status is TaskStatus.CANCELLED:
            assert record.stop_requested, record
            with pytest.raises(Exception, match="cancelled"):
                task.result()
        else:
            assert not record.cancel_won, record  # cancel() said True: must end cancelled
            self.check_natural_outcome(record, status, events)
        self.check_events(record, status, events)

    def check_natural_outcome(
        self, record: Record, status: TaskStatus, events: list[tuple[str, Any]]
    ) -> None:
        task = record.task
        assert task is not None
        plan = record.plan
        error = task.exception() if status is TaskStatus.FAILED else None
        if record.killed:
            assert isinstance(error, WorkerCrashedError), record
            assert error.signal == signal.SIGKILL, (error, record)
        elif plan == "quick":
            assert status is TaskStatus.COMPLETED, (record, error)
            assert task.result() == {"n": record.number, "label": record.label}
            _, _, message, progress = next(e for e in record.log if e[0] == "done")
            assert (message, progress) == (f"done {record.label}", 1.0), record
        elif plan == "fail":
            assert type(error) is ValueError, (record, error)
            assert str(error) == record.label
            if record.kind == "process":
                assert isinstance(error.__cause__, RemoteTraceback)
        elif plan == "events":
            assert status is TaskStatus.COMPLETED, (record, error)
            assert task.result() == record.argument
        elif plan in ("chatty_timeout", "stubborn_timeout"):
            assert isinstance(error, TaskTimeoutError), (record, error)
        elif plan.startswith("crash"):
            assert isinstance(error, WorkerCrashedError), (record, error)
            if plan == "crash_exit":
                assert error.exitcode == 7, error
            else:
                assert error.signal == signal.SIGKILL, error
        elif plan == "stubborn":
            assert status is TaskStatus.COMPLETED and task.result() == "woke", (record, error)
        else:  # a plain chatty task only ends when asked to stop
            raise AssertionError(f"{record} ended {status} without being stopped: {error!r}")

    def check_events(
        self, record: Record, status: TaskStatus, events: list[tuple[str, Any]]
    ) -> None:
        plan = record.plan
        if plan in ("quick", "fail"):
            assert events == [], record
        elif plan == "events" or plan.startswith("crash"):
            ticks = [("tick", i) for i in range(record.argument)]
            if status is TaskStatus.CANCELLED:
                assert events == ticks[: len(events)], record
            else:
                # Completed, or crashed: what the worker sent before dying still arrives.
                assert events == ticks, record
        elif plan.startswith("stubborn"):
            assert [name for name, _ in events] in ([], ["started"]), record
        else:  # chatty: started, tick 0..n-1, then "end" n if it saw its cancel flag
            if not events:
                return
            assert events[0][0] == "started", record
            rest = events[1:]
            if rest and rest[-1][0] == "end":
                assert rest[-1][1] == len(rest) - 1, record
                rest = rest[:-1]
                assert not record.killed, record
            assert rest == [("tick", i) for i in range(len(rest))], record


ManagerMachine.TestCase.settings = settings(
    max_examples=100 if SOAK else 30,
    stateful_step_count=30 if SOAK else 20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestManagerMachine = ManagerMachine.TestCase


class SoakManagerMachine(ManagerMachine):
    """The same machine, many more and longer runs."""


SoakManagerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("TASKER_SOAK_EXAMPLES", "150")),
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.soak
@pytest.mark.timeout(3600)
class TestManagerMachineSoak(SoakManagerMachine.TestCase):  # type: ignore[name-defined,misc]
    pass
