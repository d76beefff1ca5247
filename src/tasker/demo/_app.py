"""The demo's Gtk.Application and main window."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gtk", "4.0")
gi.require_version("Gdk", "4.0")

from gi.repository import Gdk, Gio, GLib, Gtk, Pango  # noqa: E402 - after require_version

from .. import Task, task_mgr  # noqa: E402
from ..gtk import TaskListModel, TaskListView, TaskProgressBar  # noqa: E402
from . import _work  # noqa: E402
from ._actions import (  # noqa: E402
    FRACTAL_SIZE,
    PROCESSES_AVAILABLE,
    DemoActions,
    _run_cpu,
)
from ._server import DataServer  # noqa: E402

__all__ = ["PROCESSES_AVAILABLE", "DemoApplication", "DemoWindow"]


class FractalView(Gtk.Box):
    """A ``Gtk.Picture`` that fills with fractal rows as the render task streams them."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        self.width, self.height = width, height
        self._pixels = bytearray(width * height * 3)
        self.rows_drawn = 0
        self.picture = Gtk.Picture(can_shrink=True, hexpand=True)
        self.picture.set_size_request(width, height)
        self.picture.update_property([Gtk.AccessibleProperty.LABEL], ["Fractal being rendered"])
        self.caption = Gtk.Label(xalign=0.0, ellipsize=Pango.EllipsizeMode.END)
        self.caption.add_css_class("caption")
        self.caption.add_css_class("dim-label")
        self.append(self.picture)
        self.append(self.caption)
        self.clear("Press “Render fractal”: a worker process streams rows as they finish")

    def clear(self, caption: str) -> None:
        """Blank the picture (dark grey) and set the caption."""
        self._pixels[:] = b"\x24" * len(self._pixels)
        self.rows_drawn = 0
        self.caption.set_text(caption)
        self._show()

    def add_rows(self, first: int, count: int, rgb: bytes) -> None:
        """Copy ``count`` finished rows starting at ``first`` into the picture."""
        stride = self.width * 3
        self._pixels[first * stride : (first + count) * stride] = rgb
        self.rows_drawn = max(self.rows_drawn, first + count)
        self._show()

    def _show(self) -> None:
        texture = Gdk.MemoryTexture.new(
            self.width,
            self.height,
            Gdk.MemoryFormat.R8G8B8,
            GLib.Bytes.new(bytes(self._pixels)),
            self.width * 3,
        )
        self.picture.set_paintable(texture)


class ActivityLog(Gtk.ScrolledWindow):
    """A few lines saying how each task ended."""

    def __init__(self) -> None:
        super().__init__(vexpand=True, hscrollbar_policy=Gtk.PolicyType.NEVER)
        self.set_size_request(-1, 130)
        self.view = Gtk.TextView(editable=False, cursor_visible=False, monospace=True)
        self.view.set_wrap_mode(Gtk.WrapMode.WORD_CHAR)
        for side in ("top", "bottom", "left", "right"):
            getattr(self.view, f"set_{side}_margin")(6)
        self.view.update_property([Gtk.AccessibleProperty.LABEL], ["Activity log"])
        self.set_child(self.view)
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        """Append a line and scroll to it."""
        self.lines.append(line)
        buffer = self.view.get_buffer()
        buffer.insert(buffer.get_end_iter(), ("\n" if buffer.get_char_count() else "") + line)
        buffer.place_cursor(buffer.get_end_iter())
        # Scroll once the new line has been laid out, or the last line stays hidden.
        GLib.idle_add(self._scroll_to_end, priority=GLib.PRIORITY_LOW)  # type: ignore[call-arg]

    def _scroll_to_end(self) -> bool:
        self.view.scroll_mark_onscreen(self.view.get_buffer().get_insert())
        return GLib.SOURCE_REMOVE


class LatencyMeter:
    """Measures how late a 50 ms main-loop timer fires: a frozen UI shows up as a large stall."""

    PERIOD_MS = 50

    def __init__(self, label: Gtk.Label) -> None:
        self.label = label
        self.worst_ms = 0.0
        self._window: list[float] = []
        self._expected: float | None = time.monotonic() + self.PERIOD_MS / 1000
        self._source = GLib.timeout_add(self.PERIOD_MS, self._tick)

    def skip(self) -> None:
        """Do not count the current stall (the tour's own screenshot work, say)."""
        self._expected = None

    def _tick(self) -> bool:
        now = time.monotonic()
        if self._expected is None:
            self._expected = now + self.PERIOD_MS / 1000
            return GLib.SOURCE_CONTINUE
        stall = max(0.0, (now - self._expected) * 1000)
        self._expected = now + self.PERIOD_MS / 1000
        self.worst_ms = max(self.worst_ms, stall)
        if stall > 40 and os.environ.get("TASKER_DEMO_DEBUG_STALLS"):
            print(f"stall {stall:.0f} ms at {now:.3f}", file=sys.stderr)
        self._window = [*self._window[-39:], stall]  # the last two seconds
        self.label.set_text(f"UI stall (last 2 s): {max(self._window):.0f} ms")
        return GLib.SOURCE_CONTINUE

    def stop(self) -> None:
        """Remove the timer."""
        if self._source:
            GLib.source_remove(self._source)
            self._source = 0


def _heading(text: str) -> Gtk.Label:
    label = Gtk.Label(label=text, xalign=0.0)
    label.add_css_class("heading")
    return label


def _action_button(title: str, caption: str, handler: Callable[[], object]) -> Gtk.Button:
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=2)
    box.append(Gtk.Label(label=title, xalign=0.0))
    small = Gtk.Label(label=caption, xalign=0.0)
    small.add_css_class("caption")
    small.add_css_class("dim-label")
    box.append(small)
    button = Gtk.Button(child=box)
    button.update_property([Gtk.AccessibleProperty.LABEL], [f"{title}: {caption}"])
    button.connect("clicked", lambda _button: handler())
    return button


# The ignore: with a second base, mypy compares Gtk.ApplicationWindow's own
# bases, whose stubs disagree among themselves (Widget vs ActionGroup).
class DemoWindow(Gtk.ApplicationWindow, DemoActions):  # type: ignore[misc]
    """Buttons that start each kind of task, the fractal, the task list and the overall bar."""

    def __init__(self, app: Gtk.Application, server_url: str) -> None:
        super().__init__(application=app, title="tasker demo")
        self.set_default_size(1220, 780)
        self.server_url = server_url
        self.render_count = 0
        self.render_task: Task[Any] | None = None

        header = Gtk.HeaderBar()
        self.latency_label = Gtk.Label(label="UI stall (last 2 s): 0 ms")
        self.latency_label.add_css_class("dim-label")
        self.latency_label.add_css_class("numeric")
        header.pack_start(self.latency_label)
        self.cancel_all_button = Gtk.Button(label="Cancel all")
        self.cancel_all_button.add_css_class("destructive-action")
        self.cancel_all_button.set_tooltip_text("Cancel every running task")
        self.cancel_all_button.connect("clicked", lambda _button: self.cancel_all())
        header.pack_end(self.cancel_all_button)
        self.set_titlebar(header)
        self.latency = LatencyMeter(self.latency_label)

        self.buttons: dict[str, Gtk.Button] = {}
        actions = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, width_request=250)
        actions.append(_heading("Start a task"))
        for name, title, caption, handler, needs_processes in (
            (
                "download",
                "Download 24 MiB",
                "coroutine · asyncio streams",
                self.start_download,
                False,
            ),
            (
                "render",
                "Render fractal",
                "process · streams rows; again = replace",
                self.start_render,
                True,
            ),
            ("hash", "Hash 1.5 GiB", "thread · BLAKE2b releases the GIL", self.start_hash, False),
            ("pipeline", "Import pipeline", "3 stages via sub_context", self.start_pipeline, False),
            ("fail", "Parse broken settings", "fails with ValueError", self.start_failing, False),
            ("crash", "Crash a worker", "os._exit in a process", self.start_crash, True),
            (
                "stubborn",
                "Stubborn task",
                "ignores cancel; killed after grace",
                self.start_stubborn,
                True,
            ),
            (
                "export",
                "Export video",
                "process · weight 5 · pausable, time left",
                self.start_export,
                False,
            ),
        ):
            button = _action_button(title, caption, handler)
            if needs_processes and not PROCESSES_AVAILABLE:
                button.set_sensitive(False)
                button.set_tooltip_text("needs tasker's worker-process pool, not installed")
            self.buttons[name] = button
            actions.append(button)

        # Policies, groups and owners (issue 13): see _scenes.py.
        from ._scenes import SchedulingScenes

        self.fractal_size = FRACTAL_SIZE
        self.scenes = SchedulingScenes(self)
        actions.append(_heading("Schedule"))
        for name, button in self.scenes.buttons(_action_button).items():
            if name != "panel" and not PROCESSES_AVAILABLE:
                button.set_sensitive(False)
            self.buttons[name] = button
            actions.append(button)

        self.fractal: FractalView = FractalView(*FRACTAL_SIZE)
        self.log = ActivityLog()
        centre = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, hexpand=True)
        centre.append(_heading("Fractal"))
        centre.append(self.fractal)
        centre.append(self.scenes.zoom_row)
        centre.append(_heading("Activity"))
        centre.append(Gtk.Frame(child=self.log, vexpand=True))

        self.model: TaskListModel = TaskListModel(keep_finished=6)
        self.task_list = TaskListView(self.model, placeholder="No tasks: start one on the left")
        self.task_list.set_size_request(420, -1)
        tasks = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        tasks.append(_heading("Tasks"))
        tasks.append(Gtk.Frame(child=self.task_list, vexpand=True))

        body = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=18, vexpand=True)
        for side in ("top", "bottom", "start", "end"):
            getattr(body, f"set_margin_{side}")(12)
        body.append(actions)
        body.append(centre)
        body.append(tasks)

        self.progress = TaskProgressBar(idle_text="Idle: no task running")
        for side in ("top", "bottom", "start", "end"):
            getattr(self.progress, f"set_margin_{side}")(10)

        content = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
        content.append(body)
        content.append(Gtk.Separator())
        content.append(self.progress)
        self.set_child(content)

    # ----------------------------------------------------------------- actions

    def start_export(self) -> Task[Any]:
        """A long export that counts five times a quick task in the overall bar.

        It calls ``context.checkpoint()`` per frame, so its row's pause
        toggle pauses it between two frames; its row shows the time left.
        """
        return _run_cpu()(
            _work.export_video,
            key="export",
            weight=5.0,
            when_done=self.log_done(
                "export", lambda r: f"{r['frames']} frames in {r['seconds']:.1f} s"
            ),
        )

    def add_log(self, line: str) -> None:
        """Append a line to the activity log."""
        self.log.add(line)


class DemoApplication(Gtk.Application):
    """Creates the window, runs the local HTTP server, shuts tasker down on exit."""

    def __init__(self, *, tour: bool = False, output_dir: Path | None = None) -> None:
        super().__init__(
            application_id="io.github.tasker.Demo", flags=Gio.ApplicationFlags.NON_UNIQUE
        )
        self.tour = tour
        self.output_dir = output_dir or Path("build/demo")
        self.server = DataServer()
        self.window: DemoWindow | None = None
        self.exit_status = 0
        self._tour_task: asyncio.Task[None] | None = None

    def do_startup(self) -> None:
        """Start the local HTTP server the download task reads from."""
        Gtk.Application.do_startup(self)
        self.server.start()

    def do_activate(self) -> None:
        """Show the window; with ``tour`` start the scripted tour on the main loop."""
        if self.window is None:
            self.window = DemoWindow(self, self.server.url)
        self.window.present()
        if self.tour and self._tour_task is None:
            from ._tour import Tour

            # gi.events: Application.run() runs asyncio on the GLib main loop,
            # so the tour is a plain coroutine on the main thread.
            tour = Tour(self, self.window, self.output_dir)
            self._tour_task = asyncio.get_running_loop().create_task(tour.run())

    def do_shutdown(self) -> None:
        """Cancel and stop every task and worker before the process exits."""
        if self.window is not None:
            self.window.latency.stop()
            self.window.model.close()
        task_mgr.shutdown(timeout=5.0)
        self.server.stop()
        Gtk.Application.do_shutdown(self)
