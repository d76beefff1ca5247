"""``python -m tasker.demo --dask --tour``: tiles rendered across an embedded LocalCluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._display import load_gtk

Gtk = load_gtk()
pytest.importorskip("distributed")

import gi  # noqa: E402

gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf  # noqa: E402

pytestmark = [pytest.mark.gtk, pytest.mark.timeout(300)]


def distinct_colours(path: Path) -> int:
    """How many distinct colours a grid of samples over the picture's area shows."""
    pixbuf = GdkPixbuf.Pixbuf.new_from_file(str(path))
    pixels = pixbuf.get_pixels()
    stride, channels = pixbuf.get_rowstride(), pixbuf.get_n_channels()
    # The fractal sits in the left half of the window.
    width, height = pixbuf.get_width() // 2, pixbuf.get_height()
    seen = set()
    for y in range(0, height, max(1, height // 50)):
        for x in range(0, width, max(1, width // 50)):
            offset = y * stride + x * channels
            seen.add(bytes(pixels[offset : offset + 3]))
    return len(seen)


def test_the_dask_tour_renders_tiles_on_the_cluster(tmp_path: Path) -> None:
    env = dict(os.environ, GTK_A11Y="none")
    completed = subprocess.run(
        [sys.executable, "-m", "tasker.demo", "--dask", "--tour", "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    printed = [Path(line).name for line in completed.stdout.splitlines() if line.endswith(".png")]
    assert printed == ["dask-01-rendering.png", "dask-02-cancelled.png", "dask-03-done.png"]
    assert "dask tour finished" in completed.stdout
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]
    # The finished render shows the whole fractal: more colours than the cancelled,
    # partly drawn one, and far more than a blank canvas.
    done = distinct_colours(tmp_path / "dask-03-done.png")
    assert done > distinct_colours(tmp_path / "dask-02-cancelled.png")
    assert done > 100
