"""``python -m tasker.demo --qt``: the GTK demo's scenarios in a Qt (PySide6) window.

The same task functions (``_work``) and local data server; the views are
``tasker.qt``'s ``TaskListWidget`` and ``TaskProgressBar`` and the global
``task_mgr`` delivers through a ``QtDispatcher``. With ``--tour`` a scripted
tour presses the buttons in turn and saves screenshots to ``build/demo-qt/``
(headless: ``QT_QPA_PLATFORM=offscreen`` is chosen when there is no display).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QRect, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import Task, task_mgr
from ..qt import QtDispatcher, TaskListModel, TaskListWidget, TaskProgressBar
from ..qt._widgets import status_text
from ._actions import FRACTAL_SIZE, DemoActions
from ._server import DataServer

__all__ = ["QtDemoWindow", "QtTour", "main"]

#: Longest wait for one tour step; generous because CI machines can be slow.
STEP_TIMEOUT = 90.0


class FractalView(QWidget):
    """A picture that fills with fractal rows as the render task streams them."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.image_width, self.image_height = width, height
        self._pixels = bytearray(width * height * 3)
        self.rows_drawn = 0
        self.picture = QLabel()
        self.picture.setFixedSize(width, height)
        self.picture.setAccessibleName("Fractal being rendered")
        self.caption = QLabel()
        self.caption.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture)
        layout.addWidget(self.caption)
        self.clear("Press “Render fractal”: a worker process streams rows as they finish")

    def clear(self, caption: str) -> None:
        """Blank the picture (dark grey) and set the caption."""
        self._pixels[:] = b"\x24" * len(self._pixels)
        self.rows_drawn = 0
        self.caption.setText(caption)
        self._show()

    def add_rows(self, first: int, count: int, rgb: bytes) -> None:
        """Copy ``count`` finished rows starting at ``first`` into the picture."""
        stride = self.image_width * 3
        self._pixels[first * stride : (first + count) * stride] = rgb
        self.rows_drawn = max(self.rows_drawn, first + count)
        self._show()

    def _show(self) -> None:
        image = QImage(
            bytes(self._pixels),
            self.image_width,
            self.image_height,
            self.image_width * 3,
            QImage.Format.Format_RGB888,
        )
        self.picture.setPixmap(QPixmap.fromImage(image))


class LatencyMeter:
    """Measures how late a 50 ms GUI timer fires: a frozen UI shows up as a large stall."""

    PERIOD_MS = 50

    def __init__(self, label: QLabel) -> None:
        self.label = label
        self.worst_ms = 0.0
        self._window: list[float] = []
        self._expected: float | None = time.monotonic() + self.PERIOD_MS / 1000
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._timer.start(self.PERIOD_MS)

    def skip(self) -> None:
        """Do not count the current stall (the tour's own screenshot work, say)."""
        self._expected = None

    def _tick(self) -> None:
        now = time.monotonic()
        if self._expected is None:
            self._expected = now + self.PERIOD_MS / 1000
            return
        stall = max(0.0, (now - self._expected) * 1000)
        self._expected = now + self.PERIOD_MS / 1000
        self.worst_ms = max(self.worst_ms, stall)
        self._window = [*self._window[-39:], stall]  # the last two seconds
        self.label.setText(f"UI stall (last 2 s): {max(self._window):.0f} ms")

    def stop(self) -> None:
        """Stop the timer."""
        self._timer.stop()


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class QtDemoWindow(QMainWindow, DemoActions):
    """Buttons that start each kind of task, the fractal, the task list and the overall bar."""

    def __init__(self, server_url: str) -> None:
        super().__init__()
        self.setWindowTitle("tasker demo (Qt)")
        self.resize(1280, 780)
        self.server_url = server_url
        self.render_count = 0
        self.render_task: Task[Any] | None = None

        top = QHBoxLayout()
        self.latency_label = QLabel("UI stall (last 2 s): 0 ms")
        self.cancel_all_button = QPushButton("Cancel all")
        self.cancel_all_button.setToolTip("Cancel every running task")
        self.cancel_all_button.clicked.connect(self.cancel_all)
        top.addWidget(self.latency_label)
        top.addStretch(1)
        top.addWidget(self.cancel_all_button)
        self.latency = LatencyMeter(self.latency_label)

        self.buttons: dict[str, QPushButton] = {}
        actions = QVBoxLayout()
        actions.addWidget(_heading("Start a task"))
        for name, title, caption, handler in (
            ("download", "Download 24 MiB", "coroutine · asyncio streams", self.start_download),
            (
                "render",
                "Render fractal",
                "process · streams rows; again = replace",
                self.start_render,
            ),
            ("hash", "Hash 1.5 GiB", "thread · BLAKE2b releases the GIL", self.start_hash),
            ("pipeline", "Import pipeline", "3 stages via sub_context", self.start_pipeline),
            ("fail", "Parse broken settings", "fails with ValueError", self.start_failing),
            ("crash", "Crash a worker", "os._exit in a process", self.start_crash),
            (
                "stubborn",
                "Stubborn task",
                "ignores cancel; killed after grace",
                self.start_stubborn,
            ),
        ):
            button = QPushButton(f"{title}\n{caption}")
            button.setStyleSheet("text-align: left; padding: 6px;")
            button.setAccessibleName(f"{title}: {caption}")
            button.clicked.connect(_ignore_result(handler))
            self.buttons[name] = button
            actions.addWidget(button)
        actions.addStretch(1)

        self.fractal: FractalView = FractalView(*FRACTAL_SIZE)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName("Activity log")
        self.log_lines: list[str] = []
        centre = QVBoxLayout()
        centre.addWidget(_heading("Fractal"))
        centre.addWidget(self.fractal)
        centre.addWidget(_heading("Activity"))
        centre.addWidget(self.log, 1)

        self.task_list = TaskListWidget(
            keep_finished=6, placeholder="No tasks: start one on the left"
        )
        self.model: TaskListModel = self.task_list.model
        self.task_list.setMinimumWidth(560)
        tasks = QVBoxLayout()
        tasks.addWidget(_heading("Tasks"))
        tasks.addWidget(self.task_list, 1)

        body = QHBoxLayout()
        body.addLayout(actions)
        body.addLayout(centre, 1)
        body.addLayout(tasks)

        self.progress = TaskProgressBar(idle_text="Idle: no task running")
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        content = QWidget()
        outer = QVBoxLayout(content)
        outer.addLayout(top)
        outer.addLayout(body, 1)
        outer.addWidget(line)
        outer.addWidget(self.progress)
        self.setCentralWidget(content)

    # ----------------------------------------------------------------- actions

    def add_log(self, line: str) -> None:
        """Append a line to the activity log."""
        self.log_lines.append(line)
        self.log.appendPlainText(line)


def _ignore_result(fn: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        fn()

    return call


class QtTour:
    """Presses every demo button in turn and saves a screenshot of each visible state."""

    def __init__(self, window: QtDemoWindow, output_dir: Path) -> None:
        self.window = window
        self.output_dir = output_dir
        self.shots: list[dict[str, Any]] = []
        self.failed = False

    def run(self) -> None:
        """Run the tour (processing Qt events while it waits), then quit the application."""
        try:
            self._tour()
            worst = self.window.latency.worst_ms
            print(f"tour finished: {len(self.shots)} screenshots; worst UI stall {worst:.0f} ms")
        except Exception:
            self.failed = True
            print("tour failed:", file=sys.stderr)
            traceback.print_exc()
            try:
                self.shot("failed", "The window when the tour failed")
            except Exception:
                traceback.print_exc()
        finally:
            self._write_manifest()
            sys.stdout.flush()
            QCoreApplication.quit()  # aboutToQuit shuts task_mgr down

    def _tour(self) -> None:
        w = self.window
        self.shot("01-start", "The Qt demo window before any task: empty list, idle bar.")

        w.buttons["render"].click()  # the slowest one first
        download = w.start_download()
        w.start_hash()
        self.until(lambda: w.fractal.rows_drawn >= w.fractal.image_height * 0.3, "30 % rows")
        self.until(lambda: download.get_progress() > 0.15, "download progress")
        self.shot(
            "02-running",
            "A download coroutine, a hashing thread and a fractal process run at once; the "
            "fractal fills in as the process streams rows; the bottom bar shows overall progress.",
        )

        first = w.render_task
        if first is None or first.is_final():
            # A fast machine finished the first render while the others caught up:
            # start another, so the next press replaces a render that is running.
            w.buttons["render"].click()
            first = w.render_task
            self.until(lambda: w.fractal.rows_drawn >= w.fractal.image_height * 0.1, "10 % rows")
        w.buttons["render"].click()  # same key: replaces the running render
        second = w.render_task
        assert first is not None and second is not None and first is not second
        self.until(first.is_final, "the first render to be replaced")
        self.until(
            lambda: any(t.key == "fractal" and t.is_final() for t in w.model.tasks()),
            "the list to show render #1 ended",
        )
        self.until(lambda: w.fractal.rows_drawn >= w.fractal.image_height * 0.25, "new rows")
        self.shot(
            "03-render-replaced",
            "Pressing Render again started render #2 under the same key: render #1 was "
            "cancelled (see the list and the log) and the picture restarted.",
        )

        pipeline = w.start_pipeline()
        self.until(lambda: (pipeline.get_message() or "").startswith("Stage 2"), "stage 2")
        self.shot(
            "04-multi-stage",
            "The import pipeline in its second stage: each stage owns a slice of the task's "
            "progress through sub_context.",
        )

        failing = w.start_failing()
        crash = w.start_crash()
        self.until(lambda: self._finished(failing) and self._finished(crash), "the failures")
        self.shot(
            "05-errors",
            "A task that raised ValueError and a worker that died with os._exit(3): both rows "
            "show the error (WorkerCrashedError for the crash); the pool healed.",
        )

        w.model.clear_finished()
        stubborn = w.start_stubborn()
        self.until(lambda: stubborn.get_progress() > 0, "the stubborn task to run")
        self.until(lambda: w.task_list.row_for("stubborn") is not None, "the stubborn row")
        row = w.task_list.row_for("stubborn")
        assert row is not None
        row.cancel_button.click()  # what a user's click does
        self.until(lambda: row.status.text() == status_text("running", False), "Cancelling…")
        self.shot(
            "06-cancelling",
            "The stubborn task was cancelled but ignores it: it shows Cancelling… while its "
            "grace period runs.",
        )
        self.until(stubborn.is_final, "the forced stop")
        self.until(lambda: self._finished(stubborn), "the list to show the stop")
        self.shot(
            "07-forced-stop",
            "After the 2 s grace the manager killed the stubborn worker: the task ended "
            "cancelled and a fresh worker replaced it.",
        )

        self.until(lambda: not task_mgr.has_tasks(), "the earlier tasks to end")
        w.model.clear_finished()
        w.buttons["render"].click()
        assert w.render_task is not None
        started = [w.start_download(), w.start_hash(), w.render_task]
        self.until(lambda: all(t.get_progress() > 0.05 for t in started), "new tasks")
        w.cancel_all_button.click()
        self.until(lambda: not task_mgr.has_tasks(), "every task to stop")
        self.until(lambda: not w.model.busy(), "the bar to idle")
        self.shot(
            "08-cancel-all",
            "Cancel all stopped every running task; the list keeps the last finished rows and "
            "the bar is idle again.",
        )

    # ----------------------------------------------------------------- helpers

    def _finished(self, task: Task[Any]) -> bool:
        return any(t is task for t in self.window.model.tasks()) and task.is_final()

    def until(self, predicate: Callable[[], object], what: str) -> None:
        """Process Qt events until ``predicate()`` is true (the dispatcher's ``run_until``)."""
        dispatcher = task_mgr._get_dispatcher()
        if not dispatcher.run_until(lambda: bool(predicate()), STEP_TIMEOUT):
            raise TimeoutError(f"tour: waited {STEP_TIMEOUT:g} s for {what}")

    def settle(self) -> None:
        """Let pending updates and paints happen (two update intervals' worth of events)."""
        deadline = time.monotonic() + 0.12
        self.until(lambda: time.monotonic() >= deadline, "a few frames")

    def shot(self, name: str, description: str) -> Path:
        """Save the window as ``<output_dir>/<name>.png``, note what it shows, print the path."""
        self.settle()
        w = self.window
        path = self.output_dir / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixmap = w.grab()
        if not pixmap.save(str(path)):
            raise RuntimeError(f"could not write {path}")
        w.latency.skip()  # rendering the PNG is the tour's stall, not the app's
        model = w.model
        from ..qt import TaskRole

        self.shots.append(
            {
                "file": path.name,
                "description": description,
                "size": [pixmap.width(), pixmap.height()],
                "tasks": [
                    {
                        "key": model.data(model.index(row, 0), TaskRole.KEY),
                        "kind": model.data(model.index(row, 0), TaskRole.KIND),
                        "status": model.data(model.index(row, 0), TaskRole.STATUS),
                        "progress": round(model.data(model.index(row, 0), TaskRole.PROGRESS), 3),
                        "message": model.data(model.index(row, 0), TaskRole.MESSAGE),
                        "error": model.data(model.index(row, 0), TaskRole.ERROR),
                    }
                    for row in range(model.rowCount())
                ],
                "rows_shown": len(w.task_list.rows()),
                "overall": {
                    "value": w.progress.progress_bar.value() / w.progress.progress_bar.maximum(),
                    "text": w.progress.progress_bar.format(),
                    "label": w.progress.label.text(),
                },
                "bounds": {
                    "task_list": _bounds(w.task_list, w),
                    "progress_bar": _bounds(w.progress, w),
                    "fractal": _bounds(w.fractal.picture, w),
                },
                "log": list(w.log_lines),
            }
        )
        print(path, flush=True)
        return path

    def _write_manifest(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.output_dir / "tour.json"
        manifest.write_text(json.dumps({"shots": self.shots}, indent=2) + "\n")


def _bounds(widget: QWidget, window: QWidget) -> list[int]:
    top_left = widget.mapTo(window, widget.rect().topLeft())
    rect = QRect(top_left, widget.size())
    return [rect.x(), rect.y(), rect.width(), rect.height()]


def main(*, tour: bool, output_dir: Path) -> int:
    """Open the Qt demo window (or play the tour) and return the exit status."""
    if tour and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless: no display needed
    app = QApplication.instance() or QApplication([sys.argv[0]])
    task_mgr.configure(scheduler=QtDispatcher(), max_workers=3, cancel_grace=1.0)
    server = DataServer()
    server.start()
    window = QtDemoWindow(server.url)
    window.show()
    runner: QtTour | None = None
    if tour:
        runner = QtTour(window, output_dir)
        QTimer.singleShot(0, runner.run)
    try:
        status = app.exec()
    finally:
        window.latency.stop()
        window.model.close()
        task_mgr.shutdown(timeout=5.0)  # already done by aboutToQuit; a no-op then
        server.stop()
    if runner is not None and runner.failed:
        return 1
    return status
