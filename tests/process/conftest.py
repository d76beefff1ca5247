"""Fixtures for the process tests: managers with real worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasker import TaskManager
from tasker._dispatch._glib import GLibDispatcher


@pytest.fixture
def make_manager() -> Iterator[Callable[..., TaskManager]]:
    """Build ``TaskManager``s on the GLib main loop with given options; all shut down after."""
    managers: list[TaskManager] = []

    def make(**options: Any) -> TaskManager:
        options.setdefault("max_workers", 2)
        options.setdefault("cancel_grace", 0.5)
        manager = TaskManager(GLibDispatcher(), **options)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.shutdown(timeout=5.0)
