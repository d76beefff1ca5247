"""What the demo's buttons start: the same tasks in the GTK and the Qt window.

``DemoActions`` is a mixin of both windows. Each window supplies the parts it
draws with (``fractal``, ``model``, ``add_log``); the tasks, their keys and how
their endings are logged are written once, here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Protocol

from .. import Task, TaskStatus, task_mgr
from .._labels import describe_error
from . import _work

__all__ = [
    "BROKEN_SETTINGS",
    "DOWNLOAD_BYTES",
    "DOWNLOAD_RATE",
    "FRACTAL_SIZE",
    "HASH_MEGABYTES",
    "PROCESSES_AVAILABLE",
    "DemoActions",
]

#: Whether this tasker build has the worker-process pool behind ``run_process``.
PROCESSES_AVAILABLE = importlib.util.find_spec("tasker._process") is not None

FRACTAL_SIZE = (420, 280)
DOWNLOAD_BYTES = 24 * 1024 * 1024
DOWNLOAD_RATE = 6 * 1024 * 1024
HASH_MEGABYTES = 1536
BROKEN_SETTINGS = "theme = dark\nunits = mm\nlaser power 80 %\nspeed = 1200\n"


class _Fractal(Protocol):
    def clear(self, caption: str) -> None: ...

    def add_rows(self, first: int, count: int, rgb: bytes) -> None: ...


class _Model(Protocol):
    def refresh(self) -> None: ...


def _run_cpu() -> Callable[..., Task[Any]]:
    """``run_process``, or ``run_thread`` in a build without the process pool."""
    return task_mgr.run_process if PROCESSES_AVAILABLE else task_mgr.run_thread


class DemoActions:
    """The demo window's actions; the window class provides the attributes below."""

    server_url: str
    render_count: int
    render_task: Task[Any] | None
    fractal: _Fractal
    model: _Model

    def add_log(self, line: str) -> None:
        """Append a line to the activity log (each window shows it its own way)."""
        raise NotImplementedError

    def start_download(self) -> Task[Any]:
        """A real I/O coroutine: download from the local server with asyncio streams."""
        url = f"{self.server_url}/data?size={DOWNLOAD_BYTES}&rate={DOWNLOAD_RATE}"
        return task_mgr.add_coroutine(
            _work.download,
            url,
            key="download",
            when_done=self.log_done(
                "download",
                lambda r: (
                    f"{r['bytes'] / 2**20:.0f} MiB in {r['seconds']:.1f} s, "
                    f"sha256 {r['sha256'][:12]}…"
                ),
            ),
        )

    def start_render(self) -> Task[Any]:
        """Render the next fractal view in a process; the same key replaces a running render."""
        self.render_count += 1
        number = self.render_count
        previous = self.render_task
        replacing = previous is not None and not previous.is_final()
        self.fractal.clear(
            f"Render #{number}" + (f" replaced render #{number - 1}" if replacing else "")
        )
        task = task_mgr.run_process(
            _work.render_fractal,
            *FRACTAL_SIZE,
            number - 1,
            key="fractal",
            when_event=self._on_fractal_event,
            when_done=self.log_done(
                f"fractal #{number}",
                lambda r: f"{r['rows']} rows in {r['seconds']:.1f} s (pid {r['pid']})",
            ),
        )
        self.render_task = task
        return task

    def _on_fractal_event(self, task: Task[Any], name: str, data: Any) -> None:
        # A replaced render's last rows can still arrive: draw only the current one.
        if name == "rows" and task is self.render_task:
            first, count, rgb = data
            self.fractal.add_rows(first, count, rgb)

    def start_hash(self) -> Task[Any]:
        """A thread task: hashing releases the GIL, so threads are the right tool."""
        return task_mgr.run_thread(
            _work.hash_data,
            HASH_MEGABYTES,
            key="hash",
            when_done=self.log_done("hash", lambda r: f"blake2b {r[:16]}…"),
        )

    def start_pipeline(self) -> Task[Any]:
        """A multi-stage task whose stages report through ``sub_context``."""
        return _run_cpu()(
            _work.import_pipeline,
            12,
            key="import",
            when_done=self.log_done("import", lambda r: f"{r['records']} records"),
        )

    def start_failing(self) -> Task[Any]:
        """A task that raises: its row and the log show the error, type included."""
        return _run_cpu()(
            _work.parse_settings,
            BROKEN_SETTINGS,
            key="settings",
            when_done=self.log_done("settings"),
        )

    def start_crash(self) -> Task[Any]:
        """A worker that dies mid-task: the task fails with WorkerCrashedError."""
        return task_mgr.run_process(
            _work.crash_worker, 3, key="crash", when_done=self.log_done("crash")
        )

    def start_stubborn(self) -> Task[Any]:
        """A process that ignores cancellation: it is killed ``cancel_grace`` after a cancel."""
        return task_mgr.run_process(
            _work.stubborn_render,
            60.0,
            key="stubborn",
            cancel_grace=2.0,
            when_done=self.log_done("stubborn"),
        )

    def cancel_all(self) -> int:
        """Cancel every live task; returns how many were asked to stop."""
        cancelled = task_mgr.cancel_all()
        # Show "Cancelling…" now, even for tasks that will not report again.
        self.model.refresh()
        return cancelled

    def log_done(
        self, title: str, describe: Callable[[Any], str] | None = None
    ) -> Callable[[Task[Any]], None]:
        """A ``when_done`` that logs how the task ended, and why it was cancelled."""

        def when_done(task: Task[Any]) -> None:
            status = task.get_status()
            if status is TaskStatus.COMPLETED:
                detail = describe(task.result()) if describe else "done"
                line = f"✓ {title}: {detail}"
            elif status is TaskStatus.FAILED:
                line = f"✗ {title}: {describe_error(task.exception())}"
            else:
                reason = task.cancel_reason
                why = f" ({reason.value.replace('_', ' ')})" if reason is not None else ""
                line = f"■ {title}: cancelled{why}"
            self.add_log(line)

        return when_done
