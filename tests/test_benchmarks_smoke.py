"""The benchmark suite must keep running: ``python -m benchmarks --smoke`` in a subprocess.

Benchmarks are not tests: nothing here looks at a figure or a time, only that the run
completes and prints its table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("gi", reason="the benchmarks run a GLib main loop")


@pytest.mark.timeout(300)
def test_benchmark_smoke_run_prints_a_table(tmp_path: Path) -> None:
    markdown = tmp_path / "bench.md"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--markdown", str(markdown)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    header = next((line for line in lines if line.startswith("metric")), None)
    assert header is not None, done.stdout
    for column in ("tasker", "stdlib", "loky", "pebble", "floor", "target", "holds"):
        assert column in header
    for metric in range(1, 10):
        row = re.compile(rf"{metric}[a-z]? ")
        assert any(row.match(line) for line in lines), f"metric {metric} missing"
    # The Qt table (tasker on a Qt loop beside superqt), when PySide6 and superqt are here.
    qt = next((line for line in lines if line.startswith("Qt progress storm")), None)
    assert qt is not None, done.stdout
    if "skipped" not in qt:
        assert "superqt threads" in qt and "tasker threads" in qt
        assert any(line.startswith("GUI-loop lateness p99") for line in lines)
    # The Dask rows (tasker on a LocalCluster vs the local pool), when the dask extra is there.
    try:
        import distributed  # noqa: F401
    except ImportError:
        pass
    else:
        assert "Dask rows" in done.stdout and "Dask LocalCluster" in done.stdout
    text = markdown.read_text()
    assert "| metric |" in text
    assert "CPU" in text
