"""The seam between the manager and what runs its tasks: ``TaskHost`` and the backend protocols.

A backend runs tasks and reports back through the host (the ``TaskManager``);
the host never reaches into a backend beyond these few calls. The local
worker-process pool (``_process.ProcessPool``) satisfies ``ExecutionBackend``;
``tasker.dask.DaskBackend`` satisfies ``ProcessBackend`` and is what
``TaskManager(process_backend=...)`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._task import Task

__all__ = ["ExecutionBackend", "ProcessBackend", "TaskHost", "check_process_backend"]


class TaskHost(Protocol):
    """What a backend may call on the manager; every method is safe from any thread.

    Only these calls change a task's status, so a task reaches exactly one
    final status whatever the backend's races. Progress and messages go to
    ``task._report.set(progress, message)`` (latest wins, coalesced by the host).
    """

    def _mark_running(self, task: Task[Any]) -> bool:
        """Move ``task`` to running; False means it is final or stopping: do not run it."""
        ...

    def _finish(
        self,
        task: Task[Any],
        *,
        result: Any = None,
        error: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        """Give ``task`` its final status from the raw outcome and its stop reason (idempotent)."""
        ...

    def _mark_timed_out(self, task: Task[Any]) -> bool:
        """Record that ``task`` ran past its timeout; False if it is stopping already."""
        ...

    def _deliver_event(
        self,
        task: Task[Any],
        name: str,
        data: Any,
        size: int | None = None,
        coalesce: bool = False,
    ) -> None:
        """Queue an event for ``when_event``, in order, before the task's ``when_done``.

        ``size``: bytes of the task's event credit the backend spent already
        (see ``_flow.py``); None: the host counts and spends them, never waiting.
        ``coalesce``: the event replaces the task's undelivered one of that name.
        """
        ...


@runtime_checkable
class ExecutionBackend(Protocol):
    """What the manager calls on a backend that runs ``run_process`` tasks."""

    def submit(
        self,
        task: Task[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        cancel_grace: float,
    ) -> None:
        """Start ``fn(context, *args, **kwargs)`` for ``task``, or queue it; never blocks long.

        A call that cannot be sent (unpicklable data, backend closed) finishes
        the task through the host instead of raising.
        """
        ...

    def cancel(self, task: Task[Any]) -> None:
        """Stop ``task``, whose stop reason the host has set already.

        Cooperative first; ``cancel_grace`` seconds later the backend ends the
        task by force (however it can) and the host hears ``_finish``.
        """
        ...

    def shutdown(self, timeout: float) -> None:
        """Stop everything this backend started, within about ``timeout`` seconds (idempotent)."""
        ...


@runtime_checkable
class ProcessBackend(ExecutionBackend, Protocol):
    """A backend made by the user and handed to ``TaskManager(process_backend=...)``.

    The manager calls ``attach`` once, before the first ``submit``, with itself
    as the host and its ``update_rate`` (progress reports per second per task).
    """

    def attach(self, host: TaskHost, *, update_rate: float) -> None:
        """Bind this backend to the manager that will submit to it (once only)."""
        ...


def check_process_backend(backend: object) -> None:
    """Raise ``TypeError`` unless ``backend`` has the methods of ``ProcessBackend``."""
    missing = [
        name
        for name in ("attach", "submit", "cancel", "shutdown")
        if not callable(getattr(backend, name, None))
    ]
    if missing:
        raise TypeError(
            f"process_backend must implement attach/submit/cancel/shutdown "
            f"(e.g. tasker.dask.DaskBackend); {type(backend).__name__} lacks {', '.join(missing)}"
        )
