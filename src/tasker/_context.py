"""The execution context handed to every background function as its first argument."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from gi.repository import Gio

__all__ = ["MAX_MESSAGE_LENGTH", "ExecutionContext", "ProgressReport", "Stage"]

#: Messages longer than this are cut, so a runaway string cannot flood the UI.
MAX_MESSAGE_LENGTH = 4096


class ProgressReport:
    """The latest progress and message of one task, written by its worker side.

    Writers store values and call ``notify`` only on the clean-to-dirty edge,
    so reporting costs a few attribute stores. The reader clears ``dirty``
    *before* reading the values, which makes the unlocked handshake safe: a
    write that lands after the read sees ``dirty`` false and notifies again.
    """

    __slots__ = ("dirty", "message", "notify", "progress", "task")

    def __init__(self, notify: Any) -> None:
        self.progress = 0.0
        self.message: str | None = None
        self.dirty = False
        self.notify = notify
        # The task it belongs to, in the manager's process (None in a worker):
        # the update tick feeds the task's rate estimator from it.
        self.task: Any = None

    def set(self, progress: float | None, message: str | None) -> None:
        """Store values that arrived from elsewhere (a worker process) and flag them."""
        if progress is not None:
            self.progress = progress
        self.message = message
        if not self.dirty:
            self.dirty = True
            self.notify()


class ContextBackend(Protocol):
    """What a context needs from the backend it runs on (local or worker process)."""

    def send_event(self, name: str, data: Any, coalesce: bool) -> None: ...

    async def send_event_async(self, name: str, data: Any, coalesce: bool) -> None: ...

    def flush(self) -> None: ...

    def cancellable(self) -> Gio.Cancellable: ...

    def wait_while_paused(self) -> None:
        """Report the task paused and block until it is resumed or cancelled."""

    async def async_wait_while_paused(self) -> None:
        """The same for a coroutine: awaits instead of blocking the loop."""


class ExecutionContext:
    """Reports progress, messages and events of a task, and tells it when to stop.

    Every background function receives one as its first argument; coroutine,
    thread and process tasks get the same interface. ``sub_context`` maps a
    stage of the work into a slice of this context's progress range.
    """

    __slots__ = (
        "_backend",
        "_base",
        "_cursor",
        "_flag_index",
        "_flags",
        "_pause_index",
        "_report",
        "_span",
        "_total",
    )

    def __init__(
        self,
        report: ProgressReport,
        flags: Sequence[int],
        flag_index: int,
        backend: ContextBackend,
        *,
        base: float = 0.0,
        span: float = 1.0,
        total: float = 1.0,
        pause_index: int = -1,
    ) -> None:
        self._report = report
        self._flags = flags
        self._flag_index = flag_index
        # The byte of ``flags`` that says "pause at the next checkpoint" (-1: none).
        self._pause_index = pause_index
        self._backend = backend
        self._base = base
        self._span = span
        self._total = _check_total(total)
        self._cursor = 0.0  # where the next stage() starts, a fraction of this range

    def set_total(self, total: float) -> None:
        """Set the value of ``set_progress`` that means done (default 1.0)."""
        self._total = _check_total(total)

    def set_progress(self, value: float) -> None:
        """Report progress as a value between 0 and the total.

        Values outside that range are clamped; NaN raises ``ValueError``.
        """
        fraction = value / self._total
        if not 0.0 <= fraction <= 1.0:
            if fraction != fraction:
                raise ValueError("progress must be a number, not NaN")
            fraction = 0.0 if fraction < 0.0 else 1.0
        report = self._report
        report.progress = self._base + self._span * fraction
        if not report.dirty:
            report.dirty = True
            report.notify()

    def set_message(self, text: str | None) -> None:
        """Set the task's status text; ``None`` clears it. Long texts are cut."""
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"message must be a str or None, not {type(text).__name__}")
            if len(text) > MAX_MESSAGE_LENGTH:
                text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
        report = self._report
        report.message = text
        if not report.dirty:
            report.dirty = True
            report.notify()

    def is_cancelled(self) -> bool:
        """Return True once the task has been asked to stop (cancel, replacement or timeout)."""
        return self._flags[self._flag_index] != 0

    def sub_context(
        self, base_progress: float, progress_range: float, total: float = 1.0
    ) -> ExecutionContext:
        """Return a context whose progress 0..total maps onto ``[base, base + range]`` of this one.

        ``base_progress`` and ``progress_range`` are fractions of this context's
        own range; sub-contexts nest to any depth.
        """
        for name, number in (("base_progress", base_progress), ("progress_range", progress_range)):
            if not math.isfinite(number) or not 0.0 <= number <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {number!r}")
        if base_progress + progress_range > 1.0 + 1e-9:
            raise ValueError(
                f"base_progress + progress_range must not exceed 1 "
                f"({base_progress!r} + {progress_range!r})"
            )
        return ExecutionContext(
            self._report,
            self._flags,
            self._flag_index,
            self._backend,
            base=self._base + self._span * base_progress,
            span=self._span * progress_range,
            total=total,
            pause_index=self._pause_index,
        )

    def stage(self, share: float, total: float = 1.0) -> Stage:
        """Return a context manager for the next ``share`` of this context's range.

        ``with context.stage(0.8) as part:`` gives ``part``, a context whose
        progress 0..``total`` maps onto the slice that starts where the
        previous stage of this context ended. When the block exits (normally,
        by an error or by cancellation) the whole slice counts as done.
        Stages of one context may not add up to more than 1.
        """
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise TypeError(f"share must be a number, not {type(share).__name__}")
        if not math.isfinite(share) or not 0.0 < share <= 1.0:
            raise ValueError(f"share must be above 0 and at most 1, not {share!r}")
        _check_total(total)
        return Stage(self, float(share), total)

    def checkpoint(self) -> None:
        """Pause here if a pause was requested; return at once otherwise.

        A paused task blocks in this call until it is resumed or cancelled
        (then ``is_cancelled()`` is true). Costs a byte read when no pause
        is requested. Coroutines use ``await context.acheckpoint()``.
        """
        index = self._pause_index
        if index >= 0 and self._flags[index]:
            self._backend.wait_while_paused()

    async def acheckpoint(self) -> None:
        """``checkpoint()`` for coroutines: awaits while paused, without blocking the loop."""
        index = self._pause_index
        if index >= 0 and self._flags[index]:
            await self._backend.async_wait_while_paused()

    def send_event(self, name: str, data: Any = None, *, coalesce: bool = False) -> None:
        """Send a custom event to the task's ``when_event`` callback on the main thread.

        Events are delivered in order, before ``when_done``. In thread and
        process tasks this waits while the task's undelivered events exceed
        its ``event_buffer`` (and returns at once, sending nothing, when the
        task is asked to stop); in a coroutine it never waits (see
        ``send_event_async``). With ``coalesce=True`` an undelivered earlier
        coalescing event of the same name is dropped: only the latest counts.
        """
        if name.__class__ is not str or (coalesce is not False and coalesce is not True):
            _check_event(name, coalesce)  # raises (a str subclass passes)
        self._backend.send_event(name, data, coalesce)

    async def send_event_async(
        self, name: str, data: Any = None, *, coalesce: bool = False
    ) -> None:
        """Like ``send_event``, but a coroutine awaits room in the ``event_buffer`` without
        blocking its loop. In thread and process tasks it is ``send_event``."""
        _check_event(name, coalesce)
        await self._backend.send_event_async(name, data, coalesce)

    def flush(self) -> None:
        """Push the latest progress and message now instead of at the next update tick."""
        self._backend.flush()

    @property
    def cancellable(self) -> Gio.Cancellable:
        """A ``Gio.Cancellable`` cancelled together with the task (coroutine and thread tasks)."""
        return self._backend.cancellable()


class Stage:
    """What ``ExecutionContext.stage()`` returns: ``with`` it to get the stage's context.

    The slice is taken when the block is entered; on exit, however the
    block ends, progress moves to the slice's end.
    """

    __slots__ = ("_child", "_parent", "_share", "_total")

    def __init__(self, parent: ExecutionContext, share: float, total: float) -> None:
        self._parent = parent
        self._share = share
        self._total = total
        self._child: ExecutionContext | None = None

    def __enter__(self) -> ExecutionContext:
        parent = self._parent
        if self._child is not None:
            raise RuntimeError("a stage can be entered only once")
        start = parent._cursor
        if start + self._share > 1.0 + 1e-9:
            raise ValueError(
                f"this stage's share {self._share!r} does not fit: the stages of this "
                f"context already take {start!r} of its range"
            )
        parent._cursor = min(1.0, start + self._share)
        child = self._child = parent.sub_context(start, parent._cursor - start, self._total)
        return child

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        child = self._child
        if child is not None:
            # Done, failed or cancelled: the slice counts as done, so the next
            # stage starts from its end and the bar never jumps back.
            child.set_progress(child._total)


def _check_event(name: Any, coalesce: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"event name must be a str, not {type(name).__name__}")
    if coalesce is not True and coalesce is not False:
        raise TypeError(f"coalesce must be True or False, not {coalesce!r}")


def _check_total(total: float) -> float:
    if isinstance(total, bool) or not isinstance(total, int | float):
        raise TypeError(f"total must be a number, not {type(total).__name__}")
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"total must be a finite number above 0, not {total!r}")
    return float(total)
