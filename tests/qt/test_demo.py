"""``python -m tasker.demo --qt --tour``: headless, exits 0, saves screenshots that show tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The tour is a real application run: give it more than the default 120 s on slow machines.
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = tmp_path_factory.mktemp("demo-qt")
    env = dict(os.environ)
    env.pop("DISPLAY", None)  # headless: the tour picks the offscreen platform itself
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    completed = subprocess.run(
        [sys.executable, "-m", "tasker.demo", "--qt", "--tour", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    return completed, output


def test_the_qt_tour_exits_cleanly_and_prints_its_screenshots(
    tour: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, output = tour
    assert completed.returncode == 0, completed.stderr[-4000:]
    printed = [Path(line) for line in completed.stdout.splitlines() if line.endswith(".png")]
    manifest = json.loads((output / "tour.json").read_text())
    assert [path.name for path in printed] == [shot["file"] for shot in manifest["shots"]]
    assert [path.stem for path in printed] == [
        "01-start",
        "02-running",
        "03-render-replaced",
        "04-multi-stage",
        "05-errors",
        "06-cancelling",
        "07-forced-stop",
        "08-cancel-all",
    ]
    assert "Traceback" not in completed.stderr, completed.stderr[-4000:]


def test_qt_screenshots_show_the_tasks(tour: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    from PySide6.QtGui import QImage

    _completed, output = tour
    manifest = json.loads((output / "tour.json").read_text())
    shots: dict[str, dict[str, Any]] = {Path(s["file"]).stem: s for s in manifest["shots"]}
    for name, shot in shots.items():
        image = QImage(str(output / shot["file"]))
        assert not image.isNull(), name
        assert [image.width(), image.height()] == shot["size"]
        assert image.width() >= 800 and image.height() >= 500
        # Not blank: many distinct colours across a grid of samples.
        colours = {
            image.pixel(x, y)
            for x in range(0, image.width(), 23)
            for y in range(0, image.height(), 23)
        }
        assert len(colours) > 20, name

    running = shots["02-running"]
    assert running["rows_shown"] >= 3
    assert {"coroutine", "thread", "process"} <= {task["kind"] for task in running["tasks"]}
    assert 0 < running["overall"]["value"] < 1

    replaced = [t for t in shots["03-render-replaced"]["tasks"] if t["key"] == "fractal"]
    # The replaced render and its successor (an earlier render that completed
    # before the tour pressed Render again may be listed before them).
    assert [t["status"] for t in replaced][-2:] == ["cancelled", "running"]

    errors = {task["key"]: task for task in shots["05-errors"]["tasks"]}
    assert errors["settings"]["status"] == "failed"
    assert errors["settings"]["error"].startswith("ValueError: line 3")
    assert errors["crash"]["error"].startswith("WorkerCrashedError")

    stubborn = [t for t in shots["06-cancelling"]["tasks"] if t["key"] == "stubborn"]
    assert stubborn[0]["status"] == "running"
    stopped = [t for t in shots["07-forced-stop"]["tasks"] if t["key"] == "stubborn"]
    assert stopped[0]["status"] == "cancelled"

    final = shots["08-cancel-all"]
    assert final["tasks"] and all(task["status"] == "cancelled" for task in final["tasks"])
    assert final["overall"]["label"].startswith("Idle")
