"""The demo's scheduling scenes: a zoom slider, thumbnails behind an export, a closable panel.

* Zoom: every slider move asks for a render with ``policy="keep_latest"`` and
  ``debounce=0.05``: a render that started is never killed halfway, only the
  newest position waits, and nothing starts while the slider still moves.
* Thumbnails run in a ``Group`` with ``max_concurrency=2``; the export runs
  in a group of higher priority, so it starts before waiting thumbnails.
* The panel is a small window that owns its tasks (``owner=panel``): closing
  it cancels them, and none of their callbacks touches the closed panel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gi.repository import GLib, Gtk

from .. import ExecutionContext, Group, KeyPolicy, Task, TaskStatus, task_mgr
from . import _work

if TYPE_CHECKING:
    from ._app import DemoWindow

__all__ = ["Panel", "SchedulingScenes"]

ZOOM_DEBOUNCE = 0.05
THUMBNAILS = 8
THUMBNAIL_SIZE = (120, 80)
EXPORT_SIZE = (360, 240)


def panel_clock(context: ExecutionContext, seconds: float = 120.0) -> int:
    """The panel's live statistics: a tick event every 100 ms until cancelled."""
    ticks = 0
    stop = threading.Event()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not context.is_cancelled():
        ticks += 1
        context.send_event("tick", ticks)
        context.set_message(f"{ticks} ticks")
        stop.wait(0.1)
    return ticks


class Panel(Gtk.Window):
    """A closable panel that owns two tasks; its label is updated only while it exists."""

    def __init__(self, parent: Gtk.Window) -> None:
        super().__init__(title="Statistics panel", transient_for=parent)
        self.set_default_size(320, 140)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        for side in ("top", "bottom", "start", "end"):
            getattr(box, f"set_margin_{side}")(12)
        self.label = Gtk.Label(label="Starting…", xalign=0.0)
        caption = Gtk.Label(
            label="This panel owns its tasks: close it and they are cancelled.", xalign=0.0
        )
        caption.set_wrap(True)
        caption.add_css_class("dim-label")
        close = Gtk.Button(label="Close panel")
        close.connect("clicked", lambda _button: self.close())
        box.append(self.label)
        box.append(caption)
        box.append(close)
        self.set_child(box)
        self.tasks: list[Task[Any]] = [
            task_mgr.run_thread(
                panel_clock, key="panel-stats", owner=self, when_event=self._on_tick
            ),
            task_mgr.run_process(
                _work.render_fractal,
                *EXPORT_SIZE,
                1,
                key="panel-preview",
                owner=self,
                max_iter=400,
            ),
        ]

    def _on_tick(self, task: Task[Any], name: str, data: Any) -> None:
        self.label.set_text(f"Live statistics: {data} ticks")


class SchedulingScenes:
    """The controls of the scheduling scenes, added to the demo window."""

    def __init__(self, window: DemoWindow) -> None:
        self.window = window
        self.thumbnails = Group("thumbnails", max_concurrency=2, priority=0)
        self.exports = Group("exports", priority=10)
        self.zoom_tasks: list[Task[Any]] = []
        self.thumbnail_tasks: list[Task[Any]] = []
        self.export_task: Task[Any] | None = None
        self.panel: Panel | None = None
        self.panel_tasks: list[Task[Any]] = []

        self.zoom = Gtk.Scale.new_with_range(Gtk.Orientation.HORIZONTAL, 1.0, 200.0, 1.0)
        self.zoom.set_value(1.0)
        self.zoom.set_hexpand(True)
        self.zoom.update_property([Gtk.AccessibleProperty.LABEL], ["Fractal zoom"])
        self.zoom.connect("value-changed", lambda scale: self.on_zoom(scale.get_value()))
        self.zoom_row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        zoom_label = Gtk.Label(label="Zoom")
        zoom_label.add_css_class("dim-label")
        self.zoom_row.append(zoom_label)
        self.zoom_row.append(self.zoom)

    def buttons(
        self, make: Callable[[str, str, Callable[[], object]], Gtk.Button]
    ) -> dict[str, Gtk.Button]:
        """The scenes' action buttons, made like the window's own."""
        return {
            "thumbnails": make(
                "Make 8 thumbnails", "process group · 2 at a time", self.start_thumbnails
            ),
            "export-image": make(
                "Export image", "process · priority 10, one at a time", self.start_export
            ),
            "panel": make("Open panel", "owns its tasks; close it to cancel", self.open_panel),
        }

    # ------------------------------------------------------------------ zoom

    def on_zoom(self, zoom: float) -> Task[Any]:
        """Ask for a render of this zoom: keep_latest never kills a running render."""
        w = self.window
        task = task_mgr.run_process(
            _work.render_fractal,
            *w.fractal_size,
            1,
            zoom=zoom,
            key="zoom",
            policy=KeyPolicy.KEEP_LATEST,
            debounce=ZOOM_DEBOUNCE,
            when_event=self._on_zoom_rows,
            when_done=w.log_done(f"zoom {zoom:.0f}x", lambda r: f"{r['rows']} rows"),
        )
        self.zoom_tasks.append(task)
        return task

    def _on_zoom_rows(self, task: Task[Any], name: str, data: Any) -> None:
        if name != "rows":
            return
        first, count, rgb = data
        if first == 0:
            started = self.zoom_stats()["started"]
            self.window.fractal.clear(
                f"Zoom {self.zoom.get_value():.0f}x: {len(self.zoom_tasks)} slider moves, "
                f"{started} render(s) started (keep_latest + debounce {ZOOM_DEBOUNCE * 1000:g} ms)"
            )
        self.window.fractal.add_rows(first, count, rgb)

    def zoom_stats(self) -> dict[str, int]:
        """Moves so far, renders started, renders killed halfway."""
        started = [t for t in self.zoom_tasks if t.timings.started is not None]
        killed = [t for t in started if t.get_status() is TaskStatus.CANCELLED]
        return {"moves": len(self.zoom_tasks), "started": len(started), "killed": len(killed)}

    # ------------------------------------------------------------- groups

    def start_thumbnails(self) -> list[Task[Any]]:
        """Eight thumbnails in a group that runs two at a time."""
        w = self.window
        self.thumbnail_tasks = [
            task_mgr.run_process(
                _work.render_fractal,
                *THUMBNAIL_SIZE,
                number,
                zoom=1.0 + number,
                max_iter=300,
                key=f"thumbnail {number + 1}",
                group=self.thumbnails,
                when_done=w.log_done(f"thumbnail {number + 1}"),
            )
            for number in range(THUMBNAILS)
        ]
        return self.thumbnail_tasks

    def start_export(self) -> Task[Any]:
        """An export whose group has priority 10: it starts before waiting thumbnails."""
        self.export_task = task_mgr.run_process(
            _work.render_fractal,
            *EXPORT_SIZE,
            2,
            max_iter=200,
            key="export-image",
            policy=KeyPolicy.KEEP,  # a second click while it runs changes nothing
            group=self.exports,
            when_done=self.window.log_done("export image", lambda r: f"{r['rows']} rows"),
        )
        return self.export_task

    # -------------------------------------------------------------- panel

    def open_panel(self) -> Panel:
        """Open the panel (once): its tasks run while it is open."""
        if self.panel is None:
            self.panel = Panel(self.window)
            self.panel_tasks = list(self.panel.tasks)
            self.panel.connect("close-request", self._on_panel_close)
        self.panel.present()
        return self.panel

    def close_panel(self) -> None:
        """What closing the panel does (the tour calls it; the user clicks)."""
        if self.panel is not None:
            self.panel.close()

    def _on_panel_close(self, panel: Panel) -> bool:
        self.panel = None
        # GTK 4 emits "destroy" when the window is disposed; dispose it now
        # rather than when the last reference happens to go.
        GLib.idle_add(_dispose, panel)
        return False  # let GTK close it


def _dispose(panel: Gtk.Window) -> bool:
    panel.run_dispose()
    return GLib.SOURCE_REMOVE
