"""The scripted demo tour: it runs, exits 0 and saves screenshots that show the task list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._display import load_gtk

Gtk = load_gtk()

import gi  # noqa: E402

gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf  # noqa: E402

from tasker.demo.__main__ import tour_requested  # noqa: E402

# The tour is a real application run: give it more than the default 120 s on slow machines.
pytestmark = [pytest.mark.gtk, pytest.mark.timeout(400)]


def region_spread(pixbuf: GdkPixbuf.Pixbuf, box: list[float] | None = None) -> float:
    """Standard deviation of the grey level over ``box`` (x, y, w, h), sampled on a grid."""
    x0, y0, width, height = (0, 0, pixbuf.get_width(), pixbuf.get_height())
    if box is not None:
        x0, y0, width, height = (round(v) for v in box)
    pixels = pixbuf.get_pixels()
    stride, channels = pixbuf.get_rowstride(), pixbuf.get_n_channels()
    values = []
    for y in range(y0, y0 + height, max(1, height // 60)):
        for x in range(x0, x0 + width, max(1, width // 60)):
            offset = y * stride + x * channels
            r, g, b = pixels[offset], pixels[offset + 1], pixels[offset + 2]
            values.append(0.299 * r + 0.587 * g + 0.114 * b)
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, GTK_A11Y="none")
    env.pop("TASKER_DEMO_TOUR", None)
    completed = subprocess.run(
        [sys.executable, "-m", "tasker.demo", "--tour", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    return completed, output


def test_the_tour_exits_cleanly_and_prints_its_screenshots(
    tour: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, output = tour
    assert completed.returncode == 0, completed.stderr[-4000:]
    printed = [Path(line) for line in completed.stdout.splitlines() if line.endswith(".png")]
    manifest = json.loads((output / "tour.json").read_text())
    assert [path.name for path in printed] == [shot["file"] for shot in manifest["shots"]]
    expected = ["01-start", "02-running", "04-multi-stage", "05-errors", "08-cancel-all"]
    expected += ["09-export-paused"]  # issue 14
    expected += ["12-panel-open", "13-panel-closed"]  # owner= (issue 13)
    if manifest["processes"]:
        expected += ["03-render-replaced", "06-cancelling", "07-forced-stop"]
        expected += ["10-zoom-keep-latest", "11-groups-priority"]  # issue 13
    assert sorted(path.stem for path in printed) == sorted(expected)
    assert all(path.is_file() for path in printed)
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]


def test_screenshots_show_the_task_list_and_progress_bars(
    tour: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _completed, output = tour
    manifest = json.loads((output / "tour.json").read_text())
    shots: dict[str, dict[str, Any]] = {Path(s["file"]).stem: s for s in manifest["shots"]}
    for name, shot in shots.items():
        path = output / shot["file"]
        assert 20_000 < path.stat().st_size < 20_000_000, name
        pixbuf = GdkPixbuf.Pixbuf.new_from_file(str(path))
        assert (pixbuf.get_width(), pixbuf.get_height()) == tuple(shot["size"])
        assert pixbuf.get_width() >= 800 and pixbuf.get_height() >= 500
        assert region_spread(pixbuf) > 10, f"{name} looks blank"
        assert shot["bounds"]["task_list"] and shot["bounds"]["progress_bar"]

    running = shots["02-running"]
    assert running["rows_shown"] >= 2
    kinds = {task["kind"] for task in running["tasks"]}
    assert {"coroutine", "thread"} <= kinds
    assert "running" in {task["status"] for task in running["tasks"]}
    assert 0 < running["overall"]["fraction"] < 1
    pixbuf = GdkPixbuf.Pixbuf.new_from_file(str(output / running["file"]))
    # The list has rows with text and bars in it, the bottom bar is partly filled.
    assert region_spread(pixbuf, running["bounds"]["task_list"]) > 10
    assert region_spread(pixbuf, running["bounds"]["progress_bar"]) > 5
    if manifest["processes"]:
        assert region_spread(pixbuf, running["bounds"]["fractal"]) > 10  # rows drawn

    errors = {task["key"]: task for task in shots["05-errors"]["tasks"]}
    assert errors["settings"]["status"] == "failed"
    assert errors["settings"]["error"].startswith("ValueError: line 3")
    if manifest["processes"]:
        assert errors["crash"]["error"].startswith("WorkerCrashedError")
        replaced = [t for t in shots["03-render-replaced"]["tasks"] if t["key"] == "fractal"]
        # The replaced render and its successor (an earlier render that completed
        # before the tour pressed Render again may be listed before them).
        assert [t["status"] for t in replaced][-2:] == ["cancelled", "running"]
        stubborn = [t for t in shots["06-cancelling"]["tasks"] if t["key"] == "stubborn"]
        assert stubborn[0]["status"] == "running"
        stopped = [t for t in shots["07-forced-stop"]["tasks"] if t["key"] == "stubborn"]
        assert stopped[0]["status"] == "cancelled"

    # Issue 14: the export paused from its row, with its time left and weight shown.
    export = [t for t in shots["09-export-paused"]["tasks"] if t["key"] == "export"]
    assert export[0]["status"] == "running" and export[0]["pause_state"] == "paused"
    assert export[0]["eta"] >= 0 and export[0]["weight"] == 5.0
    # Issue 13: owners and policies.
    closed = [t for t in shots["13-panel-closed"]["tasks"] if t["key"].startswith("panel-")]
    assert {t["key"] for t in closed} == {"panel-stats", "panel-preview"}
    assert {(t["status"], t["cancel_reason"]) for t in closed} == {("cancelled", "owner_gone")}
    if manifest["processes"]:
        zoom = [t for t in shots["10-zoom-keep-latest"]["tasks"] if t["key"] == "zoom"]
        assert zoom and zoom[-1]["status"] == "completed"
        assert all(t["cancel_reason"] in ("", "superseded") for t in zoom)
        groups = {t["key"]: t for t in shots["11-groups-priority"]["tasks"]}
        assert groups["export-image"]["status"] == "running"
        thumbs = [t for key, t in groups.items() if key.startswith("thumbnail")]
        assert sum(t["status"] == "running" for t in thumbs) <= 2

    final = shots["08-cancel-all"]
    assert final["tasks"] and all(task["status"] == "cancelled" for task in final["tasks"])
    assert final["overall"]["label"].startswith("Idle")


def test_the_tour_writes_a_trace_of_its_tasks(
    tour: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    from tasker.trace import summarize

    _completed, output = tour
    manifest = json.loads((output / "tour.json").read_text())
    summaries = {s.kind: s for s in summarize(output / "trace.json")}
    assert {"coroutine", "thread"} <= set(summaries)
    assert sum(s.failed for s in summaries.values()) >= 1  # the broken settings
    assert sum(s.cancelled for s in summaries.values()) >= 3  # cancel all, replaced render...
    export_kind = "process" if manifest["processes"] else "thread"
    assert summaries[export_kind].count >= 1


def test_tour_detection() -> None:
    assert tour_requested(True, {})
    assert not tour_requested(False, {})
    assert tour_requested(False, {"TASKER_DEMO_TOUR": "1"})
    assert tour_requested(False, {"XAUTHORITY": "/tmp/xvfb-run.Ab12Cd/Xauthority"})
    assert not tour_requested(
        False, {"XAUTHORITY": "/tmp/xvfb-run.Ab12Cd/Xauthority", "TASKER_DEMO_TOUR": "0"}
    )
    assert not tour_requested(False, {"XAUTHORITY": "/home/me/.Xauthority"})
