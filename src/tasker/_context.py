"""The execution context handed to every background function as its first argument."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gi.repository import Gio

__all__ = ["MAX_MESSAGE_LENGTH", "ExecutionContext", "ProgressReport"]

#: Messages longer than this are cut, so a runaway string cannot flood the UI.
MAX_MESSAGE_LENGTH = 4096


class ProgressReport:
    """The latest progress and message of one task, written by its worker side.

    Writers store values and call ``notify`` only on the clean-to-dirty edge,
    so reporting costs a few attribute stores. The reader clears ``dirty``
    *before* reading the values, which makes the unlocked handshake safe: a
    write that lands after the read sees ``dirty`` false and notifies again.
    """

    __slots__ = ("dirty", "message", "notify", "progress")

    def __init__(self, notify: Any) -> None:
        self.progress = 0.0
        self.message: str | None = None
        self.dirty = False
        self.notify = notify

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

    def send_event(self, name: str, data: Any) -> None: ...

    def flush(self) -> None: ...

    def cancellable(self) -> Gio.Cancellable: ...


class ExecutionContext:
    """Reports progress, messages and events of a task, and tells it when to stop.

    Every background function receives one as its first argument; coroutine,
    thread and process tasks get the same interface. ``sub_context`` maps a
    stage of the work into a slice of this context's progress range.
    """

    __slots__ = ("_backend", "_base", "_flag_index", "_flags", "_report", "_span", "_total")

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
    ) -> None:
        self._report = report
        self._flags = flags
        self._flag_index = flag_index
        self._backend = backend
        self._base = base
        self._span = span
        self._total = _check_total(total)

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
        )

    def send_event(self, name: str, data: Any = None) -> None:
        """Send a custom event to the task's ``when_event`` callback on the main thread.

        Events are delivered in order, none dropped, before ``when_done``.
        """
        if not isinstance(name, str):
            raise TypeError(f"event name must be a str, not {type(name).__name__}")
        self._backend.send_event(name, data)

    def flush(self) -> None:
        """Push the latest progress and message now instead of at the next update tick."""
        self._backend.flush()

    @property
    def cancellable(self) -> Gio.Cancellable:
        """A ``Gio.Cancellable`` cancelled together with the task (coroutine and thread tasks)."""
        return self._backend.cancellable()


def _check_total(total: float) -> float:
    if isinstance(total, bool) or not isinstance(total, int | float):
        raise TypeError(f"total must be a number, not {type(total).__name__}")
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"total must be a finite number above 0, not {total!r}")
    return float(total)
