"""The scripted tour: start each action in turn, wait for it to show, save screenshots.

It runs as a coroutine on the application's main loop (``gi.events``), so it
drives the window exactly as a user would, through the same buttons, while
the tasks run in the background.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gi.repository import Graphene, Gtk

from .. import task_mgr
from ..gtk._widgets import status_text
from ._app import PROCESSES_AVAILABLE

if TYPE_CHECKING:
    from ._app import DemoApplication, DemoWindow

__all__ = ["Tour", "save_screenshot"]

#: Longest wait for one step; generous because CI machines can be slow.
STEP_TIMEOUT = 90.0


def save_screenshot(widget: Gtk.Widget, path: Path) -> tuple[int, int]:
    """Render ``widget`` (a window, say) to a PNG file as it looks now; returns its size.

    GTK 4 way: snapshot a ``Gtk.WidgetPaintable`` and render the node with the
    window's own ``Gsk.Renderer``.
    """
    width, height = widget.get_width(), widget.get_height()
    if width <= 0 or height <= 0 or not widget.get_mapped():
        raise NothingDrawnError(f"{type(widget).__name__} is not shown yet ({width}x{height})")
    paintable = Gtk.WidgetPaintable.new(widget)
    snapshot = Gtk.Snapshot()
    paintable.snapshot(snapshot, width, height)
    node = snapshot.to_node()
    if node is None:
        raise NothingDrawnError("the widget drew nothing")
    native = widget.get_native()
    renderer = native.get_renderer() if native is not None else None
    if renderer is None:
        raise RuntimeError("the widget has no renderer (is its window realized?)")
    texture = renderer.render_texture(node, Graphene.Rect().init(0, 0, width, height))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not texture.save_to_png(str(path)):
        raise RuntimeError(f"could not write {path}")
    return width, height


class NothingDrawnError(RuntimeError):
    """The widget has no picture yet (not mapped, or not painted once)."""


class Tour:
    """Runs every demo action in turn and saves a screenshot of each visible state."""

    def __init__(self, app: DemoApplication, window: DemoWindow, output_dir: Path) -> None:
        self.app = app
        self.window = window
        self.output_dir = output_dir
        self.shots: list[dict[str, Any]] = []

    async def run(self) -> None:
        """Run the tour, print the screenshot paths, then quit the application."""
        try:
            await self._tour()
            self._write_manifest()
            worst = self.window.latency.worst_ms
            print(f"tour finished: {len(self.shots)} screenshots; worst UI stall {worst:.0f} ms")
        except Exception:
            self.app.exit_status = 1
            print("tour failed:", file=sys.stderr)
            traceback.print_exc()
            try:
                await self.shot("failed", "The window when the tour failed")
            except Exception:
                traceback.print_exc()
            self._write_manifest()
        finally:
            sys.stdout.flush()
            self.app.quit()

    async def _tour(self) -> None:
        w = self.window
        await self.shot("01-start", "The demo window before any task: empty list, idle bar.")

        if PROCESSES_AVAILABLE:
            w.buttons["render"].emit("clicked")  # the slowest one first
        download = w.start_download()
        w.start_hash()
        if PROCESSES_AVAILABLE:
            await self.until(lambda: w.fractal.rows_drawn >= w.fractal.height * 0.3, "30 % rows")
        await self.until(lambda: download.get_progress() > 0.15, "download progress")
        await self.shot(
            "02-running",
            "A download coroutine, a hashing thread and a fractal process run at once; the "
            "fractal fills in as the process streams rows; the bottom bar shows overall progress.",
        )

        if PROCESSES_AVAILABLE:
            first = w.render_task
            if first is None or first.is_final():
                # A fast machine finished the first render while the others caught
                # up: start another, so the next press replaces a running render.
                w.buttons["render"].emit("clicked")
                first = w.render_task
                await self.until(
                    lambda: w.fractal.rows_drawn >= w.fractal.height * 0.1, "10 % rows"
                )
            w.buttons["render"].emit("clicked")  # same key: replaces the running render
            second = w.render_task
            assert first is not None and second is not None and first is not second
            await self.until(first.is_final, "the first render to be replaced")
            # The task is final at once; the list shows it at the next main-loop update.
            await self.until(
                lambda: any(i.key == "fractal" and i.finished for i in w.model.items()),
                "the list to show render #1 ended",
            )
            await self.until(lambda: w.fractal.rows_drawn >= w.fractal.height * 0.25, "new rows")
            await self.shot(
                "03-render-replaced",
                "Pressing Render again started render #2 under the same key: render #1 was "
                "cancelled (see the list and the log) and the picture restarted.",
            )

        pipeline = w.start_pipeline()
        await self.until(
            lambda: (pipeline.get_message() or "").startswith("Stage 2"), "stage 2 of the pipeline"
        )
        await self.shot(
            "04-multi-stage",
            "The import pipeline in its second stage: each stage owns a slice of the task's "
            "progress through sub_context.",
        )

        failing = w.start_failing()
        crash = w.start_crash() if PROCESSES_AVAILABLE else None
        waited = [failing] + ([crash] if crash is not None else [])
        await self.until(lambda: all(self._finished(t.key) for t in waited), "the failures")
        await self.shot(
            "05-errors",
            "A task that raised ValueError and a worker that died with os._exit(3): both rows "
            "show the error (WorkerCrashedError for the crash); the pool healed.",
        )

        if PROCESSES_AVAILABLE:
            w.model.clear_finished()
            stubborn = w.start_stubborn()
            await self.until(lambda: stubborn.get_progress() > 0, "the stubborn task to run")
            await self.frame()
            item = w.model.find("stubborn")
            row = w.task_list.row_for(item) if item is not None else None
            if row is not None:
                row.cancel_button.emit("clicked")  # what a user's click does
            else:
                stubborn.cancel()
            await self.until(
                lambda: any(
                    r.status.get_text() == status_text("running", False) for r in w.task_list.rows()
                ),
                "the Cancelling… state",
            )
            await self.shot(
                "06-cancelling",
                "The stubborn task was cancelled but ignores it: it shows Cancelling… while its "
                "grace period runs.",
            )
            await self.until(stubborn.is_final, "the forced stop")
            await self.until(lambda: self._finished("stubborn"), "the list to show the stop")
            await self.shot(
                "07-forced-stop",
                "After the 2 s grace the manager killed the stubborn worker: the task ended "
                "cancelled and a fresh worker replaced it.",
            )

        await self.until(lambda: not task_mgr.has_tasks(), "the earlier tasks to end")
        w.model.clear_finished()
        started = [w.start_download(), w.start_hash()]
        if PROCESSES_AVAILABLE:
            w.buttons["render"].emit("clicked")
            assert w.render_task is not None
            started.append(w.render_task)
        await self.until(lambda: all(t.get_progress() > 0.05 for t in started), "new tasks")
        w.cancel_all_button.emit("clicked")
        await self.until(lambda: not task_mgr.has_tasks(), "every task to stop")
        await self.shot(
            "08-cancel-all",
            "Cancel all stopped every running task; the list keeps the last finished rows and "
            "the bar is idle again.",
        )
        await self._paused_export()
        await self._scheduling_scenes()
        # The timeline of the whole tour: open it in https://ui.perfetto.dev, or
        # summarise it with python -m tasker.trace build/demo/trace.json.
        written = task_mgr.write_trace(self.output_dir / "trace.json")
        print(f"{self.output_dir / 'trace.json'}: {written} tasks", flush=True)

    async def _paused_export(self) -> None:
        """Export a video, pause it from its row's toggle, screenshot it, resume it."""
        w = self.window
        w.model.clear_finished()
        export = w.start_export()
        await self.frame()
        await self.until(lambda: w.model.find("export") is not None, "the export row")
        # Past its quick preparing stage, so the time left is the encoder's.
        await self.until(
            lambda: export.get_progress() > 0.3 and export.get_eta() is not None,
            "the export's time left",
        )
        item = w.model.find("export")
        assert item is not None
        await self.until(lambda: item.eta >= 0, "the row's time left")
        row = w.task_list.row_for(item)
        if row is not None:
            row.pause_button.set_active(True)  # what a user's click does
        else:
            export.pause()
        await self.until(lambda: export.get_pause_state() == "paused", "the export to pause")
        await self.until(
            lambda: any(r.status.get_text() == "Paused" for r in w.task_list.rows()),
            "the row to show Paused",
        )
        await self.shot(
            "09-export-paused",
            "The export (a process task, weight 5) paused from its row's toggle at a "
            "checkpoint() between two frames; its time left stands still while paused.",
        )
        export.resume()
        await self.until(export.is_final, "the export to finish")
        await self.until(lambda: not task_mgr.has_tasks(), "the export to be delivered")

    async def _scheduling_scenes(self) -> None:
        """Policies, groups and owners (issue 13): zoom slider, thumbnails + export, panel."""
        w = self.window
        scenes = w.scenes
        if PROCESSES_AVAILABLE:
            w.model.clear_finished()
            for step in range(1, 101):  # a user dragging the zoom slider
                scenes.zoom.set_value(1.0 + step)
                await asyncio.sleep(0.005)
            last = scenes.zoom_tasks[-1]
            await self.until(last.is_final, "the render of the last zoom position")
            await self.until(lambda: not task_mgr.has_tasks(), "the zoom renders to end")
            await self.until(lambda: self._finished("zoom"), "the list to show the zoom render")
            stats = scenes.zoom_stats()
            if last.get_status() != "completed" or stats["killed"]:
                raise AssertionError(f"zoom: last render {last.get_status()}, stats {stats}")
            await self.shot(
                "10-zoom-keep-latest",
                f"{stats['moves']} zoom slider moves with policy keep_latest and debounce 50 ms "
                f"started {stats['started']} render(s) and killed none halfway; the superseded "
                "requests never started (rows read Superseded); the picture is the last zoom.",
            )

            w.model.clear_finished()
            thumbnails = scenes.start_thumbnails()
            await self.until(
                lambda: sum(t.get_status() == "running" for t in thumbnails) == 2,
                "two thumbnails to run",
            )
            export = scenes.start_export()
            await self.until(lambda: export.get_status() == "running", "the export to start")
            await self.until(
                lambda: {"export-image", "thumbnail 8"} <= {i.key for i in w.model.items()},
                "the list to show the thumbnails and the export",
            )
            waiting = sum(t.get_status() == "pending" for t in thumbnails)
            running = sum(t.get_status() == "running" for t in thumbnails)
            await self.shot(
                "11-groups-priority",
                f"Eight thumbnails in a group with max_concurrency=2 ({running} running, "
                f"{waiting} waiting for their group); the export, in a group of priority 10, "
                "started at once instead of queueing behind them.",
            )
            await self.until(lambda: not task_mgr.has_tasks(), "the thumbnails and the export")

        w.model.clear_finished()
        panel = scenes.open_panel()
        owned = list(scenes.panel_tasks)
        await self.until(
            lambda: (
                all(t.get_status() == "running" for t in owned)
                and "ticks" in panel.label.get_text()
            ),
            "the panel's tasks to run",
        )
        await self.shot(
            "12-panel-open",
            "The statistics panel (a separate window) owns a thread task that updates its label "
            "and a process render: owner=panel.",
        )
        scenes.close_panel()
        await self.until(lambda: all(t.is_final() for t in owned), "the panel's tasks to end")
        await self.until(lambda: all(self._finished(t.key) for t in owned), "the list to show it")
        reasons = {str(t.cancel_reason) for t in owned}
        if reasons != {"owner_gone"}:
            raise AssertionError(f"panel tasks ended with cancel reasons {reasons}")
        await self.shot(
            "13-panel-closed",
            "Closing the panel cancelled the tasks it owned (rows read Owner gone); none of "
            "their callbacks ran on the closed panel.",
        )

    # ----------------------------------------------------------------- helpers

    def _finished(self, key: object) -> bool:
        item = self.window.model.find(key)
        return item is not None and bool(item.finished)

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        """Wait (letting the main loop run) until ``predicate()`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_TIMEOUT
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError(f"tour: waited {STEP_TIMEOUT:g} s for {what}")
            await asyncio.sleep(0.02)

    async def frame(self) -> None:
        """Wait until the window has laid out and painted its current state."""
        clock = self.window.get_frame_clock()
        if clock is None:
            await asyncio.sleep(0.1)
            return
        painted = asyncio.get_running_loop().create_future()

        def after_paint(_clock: object) -> None:
            if not painted.done():
                painted.set_result(None)

        handler = clock.connect("after-paint", after_paint)
        self.window.queue_draw()
        try:
            await asyncio.wait_for(painted, 2.0)
        except TimeoutError:
            pass  # no frame (an unmapped window): the snapshot lays it out anyway
        finally:
            clock.disconnect(handler)

    async def shot(self, name: str, description: str) -> Path:
        """Save the window as ``<output_dir>/<name>.png``, note what it shows, print the path."""
        path = self.output_dir / f"{name}.png"
        for attempt in range(10):
            await self.frame()
            await self.frame()  # the second frame has the list rows bound to new items
            try:
                width, height = save_screenshot(self.window, path)
                self.window.latency.skip()  # rendering the PNG is the tour's stall, not the app's
                break
            except NothingDrawnError:
                if attempt == 9:
                    raise
        w = self.window
        self.shots.append(
            {
                "file": path.name,
                "description": description,
                "size": [width, height],
                "tasks": [
                    {
                        "key": item.key,
                        "kind": item.kind,
                        "status": item.status,
                        "progress": round(item.progress, 3),
                        "message": item.message,
                        "error": item.error,
                        "pause_state": item.pause_state,
                        "eta": item.eta,
                        "weight": item.weight,
                        "cancel_reason": item.cancel_reason,
                    }
                    for item in w.model.items()
                ],
                "rows_shown": len([r for r in w.task_list.rows() if r.item is not None]),
                "overall": {
                    "fraction": round(w.progress.progress_bar.get_fraction(), 3),
                    "text": w.progress.progress_bar.get_text(),
                    "label": w.progress.label.get_text(),
                },
                "bounds": {
                    "task_list": _bounds(w.task_list, w),
                    "progress_bar": _bounds(w.progress, w),
                    "fractal": _bounds(w.fractal.picture, w),
                },
                "log": list(w.log.lines),
            }
        )
        print(path, flush=True)
        if os.environ.get("TASKER_DEMO_DEBUG_STALLS"):
            print(f"shot {name} at {time.monotonic():.3f}", file=sys.stderr)
        return path

    def _write_manifest(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.output_dir / "tour.json"
        manifest.write_text(
            json.dumps({"processes": PROCESSES_AVAILABLE, "shots": self.shots}, indent=2) + "\n"
        )


def _bounds(widget: Gtk.Widget, window: Gtk.Widget) -> list[float] | None:
    ok, rect = widget.compute_bounds(window)
    if not ok:
        return None
    return [rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()]
