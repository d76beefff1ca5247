"""Concurrency from any thread: many threads start and cancel tasks while the main loop runs.

Every task a call returned must get exactly one ``when_done``, on the main
thread, after all its events; a ``cancel()`` that returned True must end in
``cancelled``. The main thread keeps the GLib main loop turning throughout.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tasker import GLibDispatcher, ManagerShutdownError, Task, TaskManager, TaskStatus
from tasker.testing import run_until

from . import _work

TIMEOUT = 120.0


@dataclass
class Ledger:
    """What the worker threads did and what the main thread received, per task id."""

    main: int = field(default_factory=threading.get_ident)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tasks: dict[int, tuple[Task[Any], str, Any]] = field(default_factory=dict)
    cancel_won: set[int] = field(default_factory=set)
    done: Counter[int] = field(default_factory=Counter)
    events: dict[int, list[Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def when_done(self, task: Task[Any]) -> None:
        if threading.get_ident() != self.main:
            self.problems.append(f"when_done of {task!r} on {threading.current_thread().name}")
        if not task.is_final():
            self.problems.append(f"when_done of {task!r} before it was final")
        self.done[task.id] += 1

    def when_event(self, task: Task[Any], name: str, data: Any) -> None:
        if threading.get_ident() != self.main:
            self.problems.append(f"when_event of {task!r} off the main thread")
        if self.done[task.id]:
            self.problems.append(f"event {data!r} of {task!r} after when_done")
        self.events.setdefault(task.id, []).append(data)

    def add(self, task: Task[Any], plan: str, argument: Any) -> None:
        with self.lock:
            self.tasks[task.id] = (task, plan, argument)

    def check(self) -> None:
        assert not self.problems, self.problems[:10]
        doubled = {i: n for i, n in self.done.items() if n != 1}
        assert not doubled, doubled
        missing = [t for i, (t, _, _) in self.tasks.items() if self.done[i] != 1]
        assert not missing, missing[:10]
        for task_id, (task, plan, argument) in self.tasks.items():
            status = task.get_status()
            assert status.is_final, task
            if task_id in self.cancel_won:
                assert status is TaskStatus.CANCELLED, task
            events = self.events.get(task_id, [])
            if plan == "events" and status is TaskStatus.COMPLETED:
                assert events == list(range(argument)), (task, events)
            else:
                assert events == list(range(len(events))), (task, events)
            if status is TaskStatus.COMPLETED:
                expected = argument if plan == "events" else {"value": argument}
                assert task.result() == expected, task


def start_one(manager: TaskManager, ledger: Ledger, rng: random.Random, n: int) -> Task[Any]:
    kind = rng.choice(["coroutine", "thread", "thread", "process"])
    plan = rng.choice(["quick", "events"])
    key = rng.choice([None, None, "shared-a", "shared-b", n % 7])
    options: dict[str, Any] = {
        "key": key,
        "when_done": ledger.when_done,
        "when_event": ledger.when_event,
    }
    argument: Any = rng.randrange(1, 6) if plan == "events" else n
    args = (f"t{n}", argument) if plan == "events" else (f"t{n}", {"value": n})
    if kind == "coroutine":
        function: Any = _work.async_events if plan == "events" else _work.async_quick
        task = manager.add_coroutine(function, *args, **options)
    else:
        function = _work.events if plan == "events" else _work.quick
        start = manager.run_thread if kind == "thread" else manager.run_process
        task = start(function, *args, **options)
    ledger.add(task, plan, argument)
    return task


def hammer(
    manager: TaskManager, ledger: Ledger, seed: int, operations: int, stop: threading.Event
) -> None:
    rng = random.Random(seed)
    mine: list[Task[Any]] = []
    for n in range(operations):
        if stop.is_set():
            return
        roll = rng.random()
        try:
            if roll < 0.55 or not mine:
                mine.append(start_one(manager, ledger, rng, seed * 100_000 + n))
            elif roll < 0.75:
                task = rng.choice(mine)
                if task.cancel():
                    with ledger.lock:
                        ledger.cancel_won.add(task.id)
            elif roll < 0.85:
                key = rng.choice(["shared-a", "shared-b", n % 7])
                owner = manager.get_task(key)
                if manager.cancel_task(key) and owner is not None and owner.is_cancelled():
                    pass  # which task the key meant is racy; exactly-once is checked at the end
            else:
                # Queries from any thread must not raise or deadlock.
                manager.has_tasks()
                len(manager)
                list(manager)
                assert 0.0 <= manager.get_overall_progress() <= 1.0
        except ManagerShutdownError:
            return


def run_threads(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    # The main thread runs the main loop while the others hammer the manager.
    run_until(lambda: not any(t.is_alive() for t in threads), TIMEOUT)


def test_many_threads_start_and_cancel_at_once() -> None:
    manager = TaskManager(GLibDispatcher(), max_workers=2, max_threads=6, cancel_grace=0.5)
    ledger = Ledger()
    stop = threading.Event()
    threads = [
        threading.Thread(target=hammer, args=(manager, ledger, seed, 250, stop), name=f"h{seed}")
        for seed in range(8)
    ]
    try:
        run_threads(threads)
        run_until(lambda: len(ledger.done) >= len(ledger.tasks), TIMEOUT)
        assert manager.wait_until_settled(TIMEOUT)
        ledger.check()
        assert not manager.has_tasks()
        assert len(ledger.tasks) > 1000
    finally:
        stop.set()
        manager.shutdown(timeout=5.0)


def start_until_shutdown(
    manager: TaskManager,
    ledger: Ledger,
    errors: list[BaseException],
    go: threading.Event,
    seed: int,
) -> None:
    """Start tasks as fast as possible until the manager refuses with ManagerShutdownError."""
    go.wait()
    starters = {
        "coroutine": manager.add_coroutine,
        "thread": manager.run_thread,
        "process": manager.run_process,
    }
    try:
        for n in range(1_000_000):
            kind = ("thread", "coroutine")[seed % 2] if n % 25 else "process"
            function: Any = _work.async_quick if kind == "coroutine" else _work.quick
            task = starters[kind](function, f"s{n}", {"value": n}, when_done=ledger.when_done)
            ledger.add(task, "quick", n)
    except ManagerShutdownError:
        pass
    except BaseException as error:  # anything else is a bug
        errors.append(error)


def test_shutdown_racing_starts_from_many_threads() -> None:
    """Starts racing shutdown(): each call raises ManagerShutdownError or its task ends once."""
    for round_ in range(12):
        manager = TaskManager(GLibDispatcher(), max_workers=1, max_threads=4, cancel_grace=0.3)
        ledger = Ledger()
        errors: list[BaseException] = []
        go = threading.Event()
        threads = [
            threading.Thread(target=start_until_shutdown, args=(manager, ledger, errors, go, seed))
            for seed in range(4)
        ]
        for thread in threads:
            thread.start()
        go.set()
        enough = 100 + 50 * round_
        run_until(lambda: len(ledger.tasks) > enough, TIMEOUT)  # noqa: B023 - called at once
        manager.shutdown(timeout=5.0)
        run_until(lambda: not any(t.is_alive() for t in threads), TIMEOUT)  # noqa: B023
        assert not errors, errors
        run_until(lambda: len(ledger.done) >= len(ledger.tasks), 30)  # noqa: B023
        ledger.check()


def test_replacing_running_coroutines_from_other_threads() -> None:
    """Cancels landing between a coroutine's start and its first step are not lost."""
    manager = TaskManager(GLibDispatcher())
    ledger = Ledger()

    def replace(seed: int) -> None:
        for n in range(1500):
            task = manager.add_coroutine(
                _work.async_quick,
                f"r{seed}-{n}",
                {"value": n},
                key=f"newest-{seed % 2}",
                when_done=ledger.when_done,
            )
            ledger.add(task, "quick", n)

    threads = [threading.Thread(target=replace, args=(seed,)) for seed in range(4)]
    try:
        run_threads(threads)
        run_until(lambda: len(ledger.done) >= len(ledger.tasks), 60)
        ledger.check()
        statuses = Counter(t.get_status().value for t, _, _ in ledger.tasks.values())
        assert statuses["cancelled"] > 0, statuses
    finally:
        manager.shutdown(timeout=5.0)


def test_shutdown_from_another_thread_while_the_main_loop_runs() -> None:
    """Callbacks of the tasks shutdown() cancels still run on the main thread."""
    manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=0.3)
    ledger = Ledger()
    started: list[str] = []

    def note_start(task: Task[Any], name: str, data: Any) -> None:
        started.append(name)

    tasks = [
        manager.run_process(_work.chatty, "p", when_done=ledger.when_done, when_event=note_start),
        manager.run_thread(_work.chatty, "t", when_done=ledger.when_done, when_event=note_start),
        manager.add_coroutine(
            _work.async_chatty, "c", when_done=ledger.when_done, when_event=note_start
        ),
        manager.run_process(_work.stubborn, "s", 60.0, when_done=ledger.when_done),
        manager.run_process(_work.quick, "queued", 1, when_done=ledger.when_done),
    ]
    run_until(lambda: started.count("started") >= 3, TIMEOUT)
    finished = threading.Event()

    def stop() -> None:
        manager.shutdown(timeout=5.0)
        finished.set()

    stopper = threading.Thread(target=stop, name="stopper")
    stopper.start()
    run_until(finished.is_set, TIMEOUT)
    stopper.join(10)
    run_until(lambda: len(ledger.done) == len(tasks), TIMEOUT)
    assert not ledger.problems, ledger.problems  # every when_done ran on this thread
    assert set(ledger.done.values()) == {1}
    assert all(t.get_status() == "cancelled" for t in tasks), tasks
