"""tasker as a benchmarked system, written against the public API of SPEC.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gi.repository import GLib

from . import _work
from ._harness import OnDone, Outcome, now

NAME = "tasker"
SRC = Path(__file__).resolve().parent.parent / "src"


def ensure_src_on_path() -> None:
    """Let an uninstalled checkout's ``src/tasker`` be imported here and in subprocesses."""
    if not (SRC / "tasker").is_dir():
        return
    src = str(SRC)
    if src not in sys.path:
        sys.path.insert(0, src)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    root = str(SRC.parent)
    for extra in (root, src):
        if extra not in parts:
            parts.insert(0, extra)
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)


def load() -> tuple[Any, str | None]:
    """``(tasker module, None)``, or ``(None, reason)`` when tasker cannot be benchmarked."""
    ensure_src_on_path()
    try:
        import tasker
    except Exception as exc:  # any import failure means "not ready", never a crash here
        return None, f"n/a (not importable: {type(exc).__name__}: {exc})"
    missing = [name for name in ("TaskManager", "GLibDispatcher") if not hasattr(tasker, name)]
    if not missing and not hasattr(tasker.TaskManager, "run_process"):
        missing.append("TaskManager.run_process")
    if missing:
        return None, f"n/a (not importable: tasker lacks {', '.join(missing)})"
    return tasker, None


def outcome_of(task: Any) -> Outcome:
    t = now()
    status = str(task.get_status())
    if status == "completed":
        return Outcome(t, value=task.result())
    if status == "cancelled":
        return Outcome(t, cancelled=True)
    return Outcome(t, error=task.exception())


class TaskerRunner:
    """One TaskManager on the GLib dispatcher; shut down by ``close``."""

    name = NAME

    def __init__(self, workers: int, **options: Any) -> None:
        tasker, reason = load()
        if tasker is None:
            raise RuntimeError(reason)
        self.tasker = tasker
        self.manager: Any = tasker.TaskManager(
            tasker.GLibDispatcher(), max_workers=workers, **options
        )
        self.workers = workers
        self.started = 0
        self.events = 0

    def _on_event(self, task: Any, name: str, data: Any) -> None:
        self.events += 1
        if name == "started":
            self.started += 1

    def submit(self, work: str, *args: Any, on_done: OnDone, **options: Any) -> Any:
        return self.submit_fn(_work.WITH_CONTEXT[work], *args, on_done=on_done, **options)

    def submit_fn(self, fn: Any, *args: Any, on_done: OnDone, **options: Any) -> Any:
        return self.manager.run_process(
            fn,
            *args,
            when_done=lambda task: on_done(outcome_of(task)),
            when_event=self._on_event,
            **options,
        )

    def cancel(self, handle: Any) -> bool:
        return bool(self.manager.cancel_task(handle.key))

    def cancel_cooperatively(self, handle: Any) -> None:
        self.manager.cancel_task(handle.key)

    def reset_cancel(self) -> None:
        pass

    def rebuild(self) -> str | None:
        return "same pool"

    def warm(self, loop: Any, timeout: float = 10.0) -> None:
        done: list[Outcome] = []
        for _ in range(self.workers):
            self.submit("sleep", 0.05, on_done=done.append)
        if not loop.run_until(lambda: len(done) >= self.workers, timeout):
            raise RuntimeError("tasker: pool did not warm up")

    def close(self) -> None:
        try:
            self.manager.shutdown(timeout=10.0)
        except TypeError:
            self.manager.shutdown()
        # let callbacks the shutdown queued run now, not inside the next benchmark
        context = GLib.MainContext.default()
        deadline = now() + 1.0
        while context.pending() and now() < deadline:
            context.iteration(False)
