"""The seed README's examples, run as written against the global ``task_mgr``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import tasker
from tasker.testing import run_until


@pytest.fixture
def fresh_task_mgr() -> Iterator[None]:
    """A new global manager for the test, shut down afterwards; seed modules re-imported."""
    assert tasker._global_manager is None or not tasker._global_manager.has_tasks()
    tasker._global_manager = None
    for name in [m for m in sys.modules if m.startswith("tests.seed.")]:
        del sys.modules[name]
    try:
        yield
    finally:
        if tasker._global_manager is not None:
            tasker._global_manager.shutdown()
        tasker._global_manager = None


class FakeProgressBar:
    """Stands in for Gtk.ProgressBar (these tests run without a display)."""

    def __init__(self) -> None:
        self.fractions: list[float] = []

    def set_fraction(self, fraction: float) -> None:
        self.fractions.append(fraction)


class FakeLabel:
    """Stands in for Gtk.Label."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def set_text(self, text: str) -> None:
        self.texts.append(text)


@pytest.mark.usefixtures("fresh_task_mgr")
def test_io_example_and_ui_pattern() -> None:
    updating_ui = importlib.import_module("tests.seed.updating_ui")
    bar, label = FakeProgressBar(), FakeLabel()
    updating_ui.setup_ui(bar, label)  # connects a local closure, then returns
    importlib.import_module("tests.seed.io_task")
    task = tasker.task_mgr.get_task("downloader")
    assert task is not None
    run_until(lambda: "Downloading..." in label.texts, timeout=10)
    run_until(lambda: label.texts[-1] == "Idle", timeout=20)
    assert task.get_status() == "completed"
    assert task.get_message() == "Download complete!"
    assert bar.fractions[-1] == 1.0


@pytest.mark.usefixtures("fresh_task_mgr")
def test_cpu_example_and_cancellation(capsys: pytest.CaptureFixture[str]) -> None:
    completion = importlib.import_module("tests.seed.completion")  # starts "calculator"
    calculator = tasker.task_mgr.get_task("calculator")
    assert calculator is not None
    run_until(lambda: calculator.get_progress() >= 0.1, timeout=30)
    completion.cancel()
    run_until(calculator.is_final, timeout=30)
    assert calculator.get_status() == "cancelled"


@pytest.mark.usefixtures("fresh_task_mgr")
def test_cpu_example_runs_to_completion_with_when_done(
    capsys: pytest.CaptureFixture[str],
) -> None:
    completion = importlib.import_module("tests.seed.completion")
    tasker.task_mgr.cancel_task("calculator")  # the 50-step one started on import
    completion.start()
    assert tasker.task_mgr.wait_until_settled(60)
    assert "Task finished with result: Final Result" in capsys.readouterr().out


@pytest.mark.usefixtures("fresh_task_mgr")
def test_completion_example_reports_failures(capsys: pytest.CaptureFixture[str]) -> None:
    completion = importlib.import_module("tests.seed.completion")
    tasker.task_mgr.cancel_task("calculator")
    tasker.task_mgr.run_process(
        completion.my_cpu_task, "ten", when_done=completion.on_task_finished
    )
    assert tasker.task_mgr.wait_until_settled(60)
    out = capsys.readouterr().out
    assert "Task failed: total must be a number, not str" in out


@pytest.mark.usefixtures("fresh_task_mgr")
def test_cancellation_check_in_a_thread(capsys: pytest.CaptureFixture[str]) -> None:
    completion = importlib.import_module("tests.seed.completion")
    tasker.task_mgr.cancel_task("calculator")
    task: Any = tasker.task_mgr.run_thread(completion.my_cancellable_task, key="spinner")
    tasker.task_mgr.cancel_task("spinner")
    run_until(task.is_final, timeout=10)
    assert task.get_status() == "cancelled"
