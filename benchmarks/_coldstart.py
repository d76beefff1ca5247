"""Cold start, measured in fresh interpreters: import time and the first task's round trip."""

from __future__ import annotations

import ast
import compileall
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ._harness import BenchmarkError

ROOT = Path(__file__).resolve().parent.parent

IMPORTED = {
    "tasker": "tasker",
    "stdlib": "concurrent.futures.process",
    "loky": "loky",
    "pebble": "pebble",
}

# Uses only modules that are loaded at interpreter start-up before the measured import, so
# that nothing the measured module needs is imported ahead of it.
_IMPORT_SCRIPT = """
import os, sys, time
def _threads():
    return len(os.listdir("/proc/self/task"))
def _children():
    me, count = str(os.getpid()), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/" + pid + "/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                count += 1
    return count
threads, children = _threads(), _children()
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
time.sleep(0.05)
print(repr((t1 - t0, _threads() - threads, _children() - children)))
"""

_FIRST_TASK_SCRIPT = """
import time
import gi
gi.require_version("GLib", "2.0")
from gi.repository import GLib
from benchmarks import _work
{imports}
context = GLib.MainContext.default()
done = []
def finished(*args):
    done.append(time.perf_counter())
    return False
def give_up():
    done.append(None)
    return False
GLib.timeout_add(20000, give_up)
t0 = time.perf_counter()
{start}
while not done:
    context.iteration(True)
{stop}
print(repr(None if done[0] is None else done[0] - t0))
"""

_FIRST_TASK = {
    "tasker": (
        "import tasker",
        "manager = tasker.TaskManager(tasker.GLibDispatcher(), max_workers=2)\n"
        "manager.run_process(_work.ctx_noop, when_done=finished)",
        "manager.shutdown()",
    ),
    "stdlib": (
        "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor",
        "pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('forkserver'))\n"
        "pool.submit(_work.noop).add_done_callback(lambda f: GLib.idle_add(finished))",
        "pool.shutdown()",
    ),
    "loky": (
        "from loky import get_reusable_executor",
        "pool = get_reusable_executor(max_workers=2)\n"
        "pool.submit(_work.noop).add_done_callback(lambda f: GLib.idle_add(finished))",
        "pool.shutdown()",
    ),
    "pebble": (
        "import multiprocessing, pebble",
        "pool = pebble.ProcessPool(2, context=multiprocessing.get_context('forkserver'))\n"
        "pool.schedule(_work.noop).add_done_callback(lambda f: GLib.idle_add(finished))",
        "pool.close()\npool.join()",
    ),
}


@dataclass(frozen=True)
class ImportFigures:
    seconds: float
    threads: int  # threads started by the import
    children: int  # child processes started by the import


def compile_checkout() -> None:
    """Give the checkout's modules the bytecode files an installed package has.

    pip compiles a package's modules when it installs it, and the standard
    library and the peers are measured with theirs. Without this, a checkout
    run under ``PYTHONDONTWRITEBYTECODE=1`` (or never imported before) paid the
    compiler in every cold start: about 9 ms of ``import tasker`` and more of
    the first task, whose fork server and worker import tasker too.
    """
    for package in (ROOT / "src" / "tasker", ROOT / "benchmarks"):
        if package.is_dir():
            compileall.compile_dir(str(package), quiet=1)


def _run(script: str) -> object:
    env = dict(os.environ)
    paths = [
        str(ROOT),
        str(ROOT / "src"),
        *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchmarkError(f"subprocess failed: {tail[0]}")
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def import_time(system: str) -> ImportFigures:
    figures = _run(_IMPORT_SCRIPT.format(module=IMPORTED[system]))
    if not isinstance(figures, tuple) or len(figures) != 3:
        raise BenchmarkError(f"unexpected output: {figures!r}")
    seconds, threads, children = figures
    return ImportFigures(float(seconds), int(threads), int(children))


def first_task(system: str) -> float:
    imports, start, stop = _FIRST_TASK[system]
    took = _run(_FIRST_TASK_SCRIPT.format(imports=imports, start=start, stop=stop))
    if took is None:
        raise BenchmarkError("the first task did not finish within 20 s")
    return float(took)  # type: ignore[arg-type]
