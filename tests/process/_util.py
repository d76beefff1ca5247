"""Helpers shared by the process tests (importable, unlike conftest)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from tasker import Task, TaskManager
from tasker.testing import run_until

#: Generous limit for anything that involves starting a worker process.
SLOW = 30.0


def finish(task: Task[Any], timeout: float = SLOW) -> Task[Any]:
    """Run the main loop until ``task`` is final (its when_done has been queued)."""
    run_until(task.is_final, timeout)
    return task


def settle(manager: TaskManager, timeout: float = SLOW) -> None:
    """Run the main loop until every task's when_done has run."""
    run_until(lambda: not manager.has_tasks(), timeout)


class Events:
    """A when_event recorder that also lets a test wait for a named event."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.threads: set[str] = set()

    def __call__(self, task: Task[Any], name: str, data: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.items.append((name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.items]

    def first(self, name: str) -> Any:
        return next(data for n, data in self.items if n == name)

    def wait(self, name: str, timeout: float = SLOW) -> Any:
        run_until(lambda: name in self.names(), timeout)
        return self.first(name)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    """Wait (running the main loop) until every pid has exited."""
    run_until(lambda: all(process_gone(pid) for pid in pids), timeout)


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    path = f"/proc/{pid}/task/{pid}/children"
    try:
        with open(path) as file:
            return [int(p) for p in file.read().split()]
    except FileNotFoundError:
        return []


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid``."""
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children_of(stack.pop()):
            if not process_gone(child):
                found.append(child)
                stack.append(child)
    return found


def when_all(callbacks: list[Callable[[], bool]]) -> Callable[[], bool]:
    """A predicate that holds when every given predicate does."""
    return lambda: all(check() for check in callbacks)
