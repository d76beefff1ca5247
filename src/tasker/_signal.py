"""The ``tasks_updated`` signal type (kept apart so ``import tasker`` does not load blinker)."""

from __future__ import annotations

from typing import Any

import blinker

__all__ = ["TasksUpdatedSignal"]


class TasksUpdatedSignal(blinker.Signal):
    """The ``tasks_updated`` signal: a ``blinker.Signal`` that keeps its handlers alive.

    ``connect`` holds a strong reference unless ``weak=True`` is passed, so a
    local closure connected inside a set-up function keeps receiving updates.
    """

    def connect(self, receiver: Any, sender: Any = blinker.ANY, weak: bool = False) -> Any:
        """Connect ``receiver(sender, tasks=[...], progress=float)``; strong by default."""
        return super().connect(receiver, sender, weak)
