"""The public API's types catch wrong arguments (checked with mypy --strict)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = textwrap.dedent(
    """
    from tasker import ExecutionContext, Task, TaskManager

    async def fetch(context: ExecutionContext, url: str, retries: int) -> bytes:
        return b""

    def crunch(context: ExecutionContext, n: int) -> float:
        return 0.0

    def on_done(task: Task[float]) -> None:
        pass

    manager = TaskManager()
    ok1: Task[bytes] = manager.add_coroutine(fetch, "http://x", 3, key="k")
    ok2: Task[float] = manager.run_process(crunch, 5, when_done=on_done, timeout=2.0)
    ok3: Task[float] = manager.run_thread(crunch, 5)
    reveal_type(ok2.result())
    manager.add_coroutine(fetch, 3, "http://x")  # E: wrong argument types
    manager.run_process(crunch, "five")  # E: wrong argument type
    manager.run_thread(crunch)  # E: missing argument
    manager.add_coroutine(crunch, 5)  # E: not a coroutine function
    """
)


def test_positional_arguments_and_results_are_checked(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _err, _status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    lines = out.splitlines()
    errors = {int(line.split(":")[1]) for line in lines if ": error:" in line}
    expected = {
        number
        for number, text in enumerate(SNIPPET.splitlines(), start=1)
        if text.rstrip().endswith(("types", "type", "argument", "function")) and "# E:" in text
    }
    assert errors == expected, out
    assert any("Revealed type is" in line and "float" in line for line in lines), out
