"""Group: a concurrency limit, a priority, and a handle on a batch of tasks (``group=``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._scheduling import Lane

if TYPE_CHECKING:
    from ._manager import TaskManager
    from ._signal import TasksUpdatedSignal
    from ._task import Task

__all__ = ["Group"]


class Group:
    """Tasks started with ``group=`` this group: at most ``max_concurrency`` of them run at once.

    Waiting tasks of a higher ``priority`` start first (higher number =
    sooner), FIFO within a priority. ``max_concurrency`` can be changed at
    run time. A group is also a handle on its tasks: ``tasks``, ``cancel()``,
    ``get_progress()``, ``is_idle()``, ``wait_until_settled()``,
    ``await group.settled()`` and the ``idle`` signal. A group belongs to the
    manager of its first task.
    """

    def __init__(self, name: str, *, max_concurrency: int | None = None, priority: int = 0) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a group name must be a str, not {type(name).__name__}")
        _check_limit(max_concurrency)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, not {priority!r}")
        self._name = name
        self._max_concurrency = max_concurrency
        self._lane = Lane(priority, max_concurrency)
        self._manager: TaskManager | None = None
        # Guarded by the manager lock once bound: live tasks (until their
        # when_done has run) and how many have finished since it was last idle.
        self._live: dict[int, Task[Any]] = {}
        self._done_since_idle = 0
        self._waiters: list[Callable[[], object]] = []
        self._idle: TasksUpdatedSignal | None = None
        self._signal_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<Group {self._name!r} max_concurrency={self._max_concurrency} "
            f"priority={self.priority} live={len(self._live)}>"
        )

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def priority(self) -> int:
        """Waiting tasks of a higher priority start first."""
        return self._lane.priority

    @property
    def max_concurrency(self) -> int | None:
        """How many of the group's tasks may run at once (None: only the pools limit them)."""
        return self._max_concurrency

    @max_concurrency.setter
    def max_concurrency(self, value: int | None) -> None:
        _check_limit(value)
        manager = self._manager
        if manager is None:
            self._max_concurrency = value
            self._lane.limit = Lane(0, value).limit
            return
        manager._set_group_limit(self, value)

    @property
    def idle(self) -> TasksUpdatedSignal:
        """A blinker signal sent on the main thread, ``handler(sender=group)``, when the
        group's last live task has finished (after its ``when_done``)."""
        signal = self._idle
        if signal is None:
            from ._signal import TasksUpdatedSignal

            with self._signal_lock:
                if self._idle is None:
                    self._idle = TasksUpdatedSignal("idle: handler(sender=group)")
                signal = self._idle
        return signal

    @property
    def tasks(self) -> list[Task[Any]]:
        """A snapshot of the group's live tasks, oldest first."""
        manager = self._manager
        if manager is None:
            return []
        with manager._lock:
            return list(self._live.values())

    def is_idle(self) -> bool:
        """True when the group has no live task."""
        return not self._live

    def cancel(self) -> int:
        """Cancel every live task of the group; return how many were asked to stop."""
        manager = self._manager
        if manager is None:
            return 0
        return manager._cancel_group(self)

    def get_progress(self) -> float:
        """Progress over the group's tasks since it was last idle (1.0 when idle).

        Finished tasks count as done, as in ``TaskManager.get_overall_progress()``.
        """
        manager = self._manager
        if manager is None:
            return 1.0
        with manager._lock:
            tasks = self._live.values()
            done = self._done_since_idle
            count = done + len(tasks)
            if count == 0:
                return 1.0
            total = done + sum(1.0 if t._status.is_final else t._report.progress for t in tasks)
        return min(1.0, total / count)

    def wait_until_settled(self, timeout: float | None = None) -> bool:
        """Wait until every task of the group has finished and its ``when_done`` has run.

        On the main thread it keeps the main loop turning meanwhile. Returns
        False if ``timeout`` seconds pass first.
        """
        manager = self._manager
        if manager is None or self.is_idle():
            return True
        return manager._delivery.wait_for(self.is_idle, timeout)

    async def settled(self) -> None:
        """Return (in any asyncio loop) once the group is idle."""
        import asyncio

        manager = self._manager
        if manager is None or self.is_idle():
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        def on_idle() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(wake)

        with manager._lock:
            if not self._live:
                return
            self._waiters.append(on_idle)
        await future


def _check_limit(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_concurrency must be a positive int or None, not {value!r}")
    if value < 1:
        raise ValueError(f"max_concurrency must be a positive int or None, not {value!r}")
