"""Qt test set-up: PySide6 on the offscreen platform, and Qt-side fixtures.

Qt tests use pytest-qt's ``qapp`` / ``qtbot``. The offscreen platform needs
no display; it must be chosen before the first ``QApplication`` exists,
hence at import of this conftest. Without PySide6 every Qt test is skipped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6", reason="tasker.qt needs PySide6 (pip install 'tasker-gtk[qt]')")
pytest.importorskip("pytestqt", reason="the Qt tests use pytest-qt")

from tasker import TaskManager


@pytest.fixture
def qt_manager(qapp: Any) -> Iterator[TaskManager]:
    """A TaskManager delivering through a QtDispatcher, shut down after the test."""
    from tasker.qt import QtDispatcher

    manager = TaskManager(QtDispatcher(), max_workers=2, max_threads=2, cancel_grace=0.5)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=5.0)


def qt_run_until(manager: TaskManager, predicate: Any, timeout: float = 10.0) -> None:
    """Process Qt events through the manager's dispatcher until ``predicate()`` holds."""
    outcome = manager._get_dispatcher().run_until(lambda: bool(predicate()), timeout)
    if outcome is None:
        raise RuntimeError("run_until must be called on the GUI thread with a QApplication")
    if not outcome:
        raise TimeoutError(f"condition still false after {timeout:g} s: {predicate!r}")


class Gate:
    """A thread task body that reports, then waits for the test to open the gate.

    It returns early (the task ends cancelled) when the task is cancelled, so
    shutting the manager down never waits on a closed gate.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def open(self) -> None:
        self.opened.set()

    def __call__(
        self, context: Any, progress: float = 0.0, message: str | None = None, fail: bool = False
    ) -> str:
        context.set_progress(progress)
        context.set_message(message)
        self.entered.set()
        while not self.opened.wait(0.005):
            if context.is_cancelled():
                return "stopped"
        if fail:
            raise ValueError("the gate was a trap")
        return "passed"


@pytest.fixture
def gate() -> Gate:
    """A fresh ``Gate``."""
    return Gate()
