"""Shared fixtures: the ``task_manager`` fixture comes from ``tasker.testing``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

pytest_plugins = ["tasker.testing"]


class Recorder:
    """Collects ``when_done``, ``when_event`` and ``tasks_updated`` calls and their threads."""

    def __init__(self) -> None:
        self.done: list[object] = []
        self.events: list[tuple[object, str, object]] = []
        self.updates: list[tuple[list[object], float]] = []
        self.threads: set[str] = set()

    def when_done(self, task: object) -> None:
        self.threads.add(threading.current_thread().name)
        self.done.append(task)

    def when_event(self, task: object, name: str, data: object) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append((task, name, data))

    def on_updated(self, sender: object, tasks: list[object], progress: float) -> None:
        self.threads.add(threading.current_thread().name)
        self.updates.append((tasks, progress))


@pytest.fixture
def recorder() -> Recorder:
    """A fresh callback recorder."""
    return Recorder()


@pytest.fixture
def tasker_errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture what tasker logs at ERROR (exceptions swallowed from callbacks)."""
    with caplog.at_level(logging.ERROR, logger="tasker"):
        yield caplog
