"""``python -m tasker.demo --dask [ADDRESS]``: a fractal rendered in tiles across a Dask cluster.

Each tile is one ``run_process`` task on ``tasker.dask.DaskBackend`` (an
embedded ``LocalCluster`` without ADDRESS), listed with its own progress;
"Cancel" stops them all. With ``--tour`` it renders, cancels, renders again
and saves a screenshot of each state as ``dask-*.png``.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

from gi.repository import Gdk, Gio, GLib, Gtk

from .. import Task, TaskManager
from ..gtk import TaskListView, TaskProgressBar
from ._dask_work import render_tile

IMAGE = (480, 320)
TILES = (4, 4)


class DaskWindow(Gtk.ApplicationWindow):
    """The picture, the per-tile task list, the overall bar, Render and Cancel."""

    def __init__(self, app: Gtk.Application, manager: TaskManager, where: str) -> None:
        super().__init__(application=app, title="tasker on Dask: tiled fractal")
        self.set_default_size(900, 560)
        self.manager = manager
        self.tasks: list[Task[Any]] = []
        self.done_tiles = 0
        self.workers: set[int] = set()
        width, height = IMAGE
        self._pixels = bytearray(width * height * 3)
        self.picture = Gtk.Picture(can_shrink=True, hexpand=True, vexpand=True)
        self.picture.set_size_request(width, height)
        self.status = Gtk.Label(xalign=0.0, label=f"Cluster: {where}")
        self.render_button = Gtk.Button(label="Render on the cluster")
        self.render_button.connect("clicked", lambda _b: self.render())
        self.cancel_button = Gtk.Button(label="Cancel")
        self.cancel_button.connect("clicked", lambda _b: self.cancel())
        buttons = Gtk.Box(spacing=6)
        buttons.append(self.render_button)
        buttons.append(self.cancel_button)
        left = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        left.append(self.picture)
        left.append(self.status)
        left.append(buttons)
        self.task_list = TaskListView(manager=manager, keep_finished=len(self._tiles()))
        self.task_list.set_size_request(380, -1)
        body = Gtk.Box(spacing=12)
        for side in ("top", "bottom", "start", "end"):
            getattr(body, f"set_margin_{side}")(12)
        body.append(left)
        body.append(self.task_list)
        outer = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        outer.append(body)
        self.progress = TaskProgressBar(manager, idle_text="Idle")
        for side in ("bottom", "start", "end"):
            getattr(self.progress, f"set_margin_{side}")(12)
        outer.append(self.progress)
        self.set_child(outer)
        self._show()

    def _tiles(self) -> list[tuple[int, int, int, int]]:
        width, height = IMAGE
        columns, rows = TILES
        w, h = width // columns, height // rows
        return [(c * w, r * h, w, h) for r in range(rows) for c in range(columns)]

    def render(self) -> None:
        """Start one task per tile (a new render replaces the tiles of the old one by key)."""
        self._pixels[:] = b"\x24" * len(self._pixels)
        self._show()
        self.done_tiles = 0
        self.tasks = [
            self.manager.run_process(
                render_tile,
                left,
                top,
                w,
                h,
                IMAGE,
                key=("tile", left, top),
                when_done=self._tile_done,
            )
            for left, top, w, h in self._tiles()
        ]
        self.status.set_text(f"Rendering {len(self.tasks)} tiles on the cluster")

    def cancel(self) -> None:
        """Cancel every tile still running or waiting."""
        cancelled = sum(task.cancel() for task in self.tasks)
        self.status.set_text(f"Cancelled {cancelled} tile(s)")

    def _tile_done(self, task: Task[Any]) -> None:
        if task.get_status() != "completed" or task.result() is None:
            return
        left, top, w, h, rgb, pid = task.result()
        self.workers.add(pid)
        stride = IMAGE[0] * 3
        for row in range(h):
            start = (top + row) * stride + left * 3
            self._pixels[start : start + w * 3] = rgb[row * w * 3 : (row + 1) * w * 3]
        self.done_tiles += 1
        self._show()
        self.status.set_text(
            f"{self.done_tiles}/{len(self.tasks)} tiles from {len(self.workers)} worker process(es)"
        )

    def _show(self) -> None:
        width, height = IMAGE
        texture = Gdk.MemoryTexture.new(
            width,
            height,
            Gdk.MemoryFormat.R8G8B8,
            GLib.Bytes.new(bytes(self._pixels)),
            width * 3,
        )
        self.picture.set_paintable(texture)


class DaskDemo(Gtk.Application):
    """Shows the window; with ``tour`` plays render, cancel, render and saves screenshots."""

    def __init__(self, manager: TaskManager, where: str, tour: bool, output_dir: Path) -> None:
        super().__init__(
            application_id="io.github.tasker.DaskDemo", flags=Gio.ApplicationFlags.NON_UNIQUE
        )
        self.manager = manager
        self.where = where
        self.tour = tour
        self.output_dir = output_dir
        self.window: DaskWindow | None = None
        self.exit_status = 0
        self._tour_task: asyncio.Task[None] | None = None

    def do_activate(self) -> None:
        """Show the window and start the tour if asked."""
        if self.window is None:
            self.window = DaskWindow(self, self.manager, self.where)
        self.window.present()
        if self.tour and self._tour_task is None:
            self._tour_task = asyncio.get_running_loop().create_task(self._play())

    def do_shutdown(self) -> None:
        """Stop every task, then the cluster (or our connection to it)."""
        self.manager.shutdown(timeout=10.0)
        Gtk.Application.do_shutdown(self)

    async def _play(self) -> None:
        from ._tour import NothingDrawnError, save_screenshot

        window = self.window
        assert window is not None

        async def until(predicate: Any, what: str, timeout: float = 120.0) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not predicate():
                if loop.time() > deadline:
                    raise TimeoutError(f"dask tour: waited {timeout:g} s for {what}")
                await asyncio.sleep(0.05)

        async def shot(name: str) -> None:
            path = self.output_dir / f"dask-{name}.png"
            for attempt in range(50):
                window.queue_draw()
                await asyncio.sleep(0.1)  # let the list and the bar catch up and paint
                try:
                    save_screenshot(window, path)
                    break
                except NothingDrawnError:
                    if attempt == 49:
                        raise
            print(path, flush=True)

        try:
            window.render()
            await until(lambda: window.done_tiles >= 3, "three tiles")
            await shot("01-rendering")
            window.cancel()
            await until(lambda: all(t.is_final() for t in window.tasks), "the cancel")
            await shot("02-cancelled")
            window.render()
            await until(lambda: all(t.is_final() for t in window.tasks), "the whole render")
            await until(lambda: window.done_tiles == len(window.tasks), "every tile")
            await shot("03-done")
            print(f"dask tour finished; tiles came from {len(window.workers)} worker process(es)")
        except Exception:
            self.exit_status = 1
            print("dask tour failed:", file=sys.stderr)
            traceback.print_exc()
        finally:
            self.quit()


def run(address: str | None, *, tour: bool, output_dir: Path) -> int:
    """Start the Dask demo on ``address`` (None: an embedded LocalCluster)."""
    try:
        from ..dask import DaskBackend

        backend = DaskBackend(address or None)
    except ImportError as error:
        print(f"the Dask demo needs the dask extra: {error}", file=sys.stderr)
        return 2
    from .. import task_mgr

    task_mgr.configure(process_backend=backend, cancel_grace=1.0)
    where = address or "embedded LocalCluster, 2 worker processes on 127.0.0.1"
    app = DaskDemo(task_mgr, where, tour, output_dir)
    status = app.run([sys.argv[0]])
    return status or app.exit_status
