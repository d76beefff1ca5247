"""Words for task states, shared by the toolkit views (tasker.gtk, tasker.qt).

Plain functions of strings and numbers: no toolkit, so both the GTK and the
Qt rows read the same.
"""

from __future__ import annotations

import contextlib

from ._task import CancelReason, TaskStatus

__all__ = ["describe_error", "eta_text", "placeholder_message", "status_text"]

_STATUS_TEXT = {
    TaskStatus.PENDING: "Waiting",
    TaskStatus.RUNNING: "Running",
    TaskStatus.COMPLETED: "Done",
    TaskStatus.FAILED: "Failed",
    TaskStatus.CANCELLED: "Cancelled",
}


# What a cancelled task's row says, by its cancel reason (issue 13); user: "Cancelled".
_CANCEL_TEXT = {
    CancelReason.REPLACED: "Replaced",
    CancelReason.SUPERSEDED: "Superseded",
    CancelReason.OWNER_GONE: "Owner gone",
    CancelReason.GROUP: "Group stopped",
    CancelReason.SHUTDOWN: "Shut down",
}


def describe_error(error: BaseException | None) -> str:
    """Return ``"TypeName: message"`` for an exception, ``""`` for None."""
    if error is None:
        return ""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def status_text(
    status: str, can_cancel: bool = True, pause_state: str = "", cancel_reason: str = ""
) -> str:
    """A short human label for a status; a live task asked to stop reads "Cancelling…".

    A live task asked to pause reads "Pausing…" until it is "Paused". A
    cancelled task says why when it was not the user: "Replaced", "Superseded", ...
    """
    if status in (TaskStatus.PENDING, TaskStatus.RUNNING):
        if not can_cancel:
            return "Cancelling…"
        if pause_state == "paused":
            return "Paused"
        if pause_state == "pausing":
            return "Pausing…"
    if status == TaskStatus.CANCELLED and cancel_reason:
        with contextlib.suppress(ValueError):
            return _CANCEL_TEXT.get(CancelReason(cancel_reason), "Cancelled")
    try:
        return _STATUS_TEXT[TaskStatus(status)]
    except ValueError:
        return status


def placeholder_message(status: str, kind: str) -> str:
    """What a row says under its key while the task has reported no message."""
    if status == TaskStatus.PENDING:
        return "Waiting to start" if kind == "coroutine" else "Waiting for a worker"
    return ""  # the status label beside it already says "Running", "Done", ...


def eta_text(seconds: float | None) -> str:
    """Time left in words, as people say it: "about 2 min left"; ``""`` when unknown.

    Rounded more coarsely as the time grows, so the text does not flicker
    with every update: 5 s steps under a minute, minutes under 90 minutes,
    then hours and quarter hours.
    """
    if seconds is None or seconds < 0 or seconds != seconds:
        return ""
    if seconds < 5:
        return "a few seconds left"
    if seconds < 55:
        return f"about {max(5, round(seconds / 5) * 5)} s left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {max(1, minutes)} min left"
    hours, quarters = divmod(round(seconds / 900), 4)
    if quarters == 0:
        return f"about {hours} h left"
    return f"about {hours} h {quarters * 15} min left"
