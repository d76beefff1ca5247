"""Metric 11 (issue 11): what a worker of a GTK application costs, per system.

Each figure comes from a fresh interpreter running a generated *main script*
(a file, as an application's is) that imports either GLib only or Gtk 4, and
defines its task functions itself, as applications do. The probe task runs in
the worker and reports the worker's RSS, whether GTK is loaded there and how
many of its sockets are connected to the display server (a Unix socket whose
peer is an X11 or Wayland server socket).
"""

from __future__ import annotations

import ast
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._harness import BenchmarkError
from ._report import Cell

ROOT = Path(__file__).resolve().parent.parent
MS = 1000.0
Cells = dict[str, dict[str, Cell]]

SYSTEMS = ("tasker", "stdlib", "loky")

_TOOLKIT = {
    "glib": "from gi.repository import GLib",
    "gtk": (
        "import gi\n"
        "gi.require_version('Gtk', '4.0')\n"
        "from gi.repository import GLib, Gtk  # opens the display connection"
    ),
}

_SCRIPT = '''
import os, socket, statistics, sys, time
{toolkit}


def probe(*_):
    with open("/proc/self/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    display = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink("/proc/self/fd/" + name).startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.family == socket.AF_UNIX:
                peer = sock.getpeername()
                peer = peer.decode(errors="replace") if isinstance(peer, bytes) else peer
                display += ".X11-unix" in peer or "wayland" in peer
        except OSError:
            pass
        finally:
            sock.close()
    return rss_kib / 1024, "gi.repository.Gtk" in sys.modules, display


def noop(*_):
    return None


context = GLib.MainContext.default()


def call(submit):
    """Submit one task with ``submit(on_done)``; run the main loop until it is done."""
    global submit_cost
    box = []
    t0 = time.perf_counter()
    submit(lambda value: box.append((time.perf_counter(), value)))
    submit_cost = time.perf_counter() - t0
    deadline = time.monotonic() + 60
    while not box:
        if time.monotonic() > deadline:
            raise SystemExit("a task did not finish within 60 s")
        context.iteration(True)
    return box[0][0] - t0, box[0][1]


if __name__ == "__main__":  # the peers' workers import this script: they need the guard
{system}
    first, probed = call(submit_probe) if not AHEAD else (None, None)
    if AHEAD:
        start_ahead()
        after, _ = call(submit_noop)  # the same task as the warm round trips below
        probed = call(submit_probe)[1]
    else:
        after = None
    trips, costs = [], []
    for _ in range({trips}):
        trips.append(call(submit_noop)[0])
        costs.append(submit_cost)
    stop()
    print(repr((first, after, statistics.median(trips), statistics.median(costs), probed)))
'''

_TASKER = """
import tasker
AHEAD = {ahead}
manager = tasker.TaskManager(tasker.GLibDispatcher(), max_workers=2)


def submit_probe(done):
    manager.run_process(probe, when_done=lambda task: done(task.result()))


def submit_noop(done):
    manager.run_process(noop, when_done=lambda task: done(task.result()))


def start_ahead():
    manager.start_workers()
    # Benchmark only: wait until both workers are ready (the pool's own record).
    pool = manager._process_pool
    deadline = time.monotonic() + 60
    while len(pool._idle) < 2 and time.monotonic() < deadline:
        context.iteration(False)
        time.sleep(0.005)


def stop():
    manager.shutdown()
"""

_POOL = """
{imports}
AHEAD = False
pool = {make}


def _submit(fn, done):
    future = pool.submit(fn)
    future.add_done_callback(lambda f: GLib.idle_add(lambda: done(f.result()) and False))


def submit_probe(done):
    _submit(probe, done)


def submit_noop(done):
    _submit(noop, done)


def stop():
    pool.shutdown()
"""

_PEERS = {
    "stdlib": (
        "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor",
        "ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('forkserver'))",
    ),
    "loky": ("from loky import get_reusable_executor", "get_reusable_executor(max_workers=2)"),
}


@dataclass(frozen=True)
class LeanFigures:
    first: float | None  # s, first task including the pool start (None when started ahead)
    after_start: float | None  # s, first task after start_workers() (tasker only)
    warm: float  # s, median warm round trip of a no-op task
    submit: float  # s, median time the main thread spent submitting one
    rss_mib: float  # the worker's RSS when it ran the probe
    gtk_loaded: bool
    display_sockets: int


def ensure_display() -> str | None:
    """A display for the GTK main script (the tests' Xvfb helper); why not, or None."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.gtk._display import ensure_display as ensure

    return ensure()


def measure(system: str, toolkit: str, *, ahead: bool = False, trips: int = 20) -> LeanFigures:
    """Run the main script of ``toolkit`` ("glib" or "gtk") with ``system``'s pool once."""
    if system == "tasker":
        body = _TASKER.format(ahead=ahead)
    else:
        imports, make = _PEERS[system]
        body = _POOL.format(imports=imports, make=make)
    body = textwrap.indent(body, "    ")
    script = _SCRIPT.format(toolkit=_TOOLKIT[toolkit], system=body, trips=trips)
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "src"), *filter(None, env.get("PYTHONPATH", "").split(":"))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    with tempfile.TemporaryDirectory(prefix="tasker-lean-") as folder:
        path = Path(folder) / f"{toolkit}_app.py"
        path.write_text(script)
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BenchmarkError(f"main script failed: {tail[0]}")
    first, after, warm, submit, probed = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    rss, gtk, display = probed
    return LeanFigures(first, after, warm, submit, float(rss), bool(gtk), int(display))


ROWS = (
    "lean.rss_glib",
    "lean.rss_gtk",
    "lean.rss_extra",
    "lean.gtk_free",
    "lean.display",
    "lean.first_glib",
    "lean.first_gtk",
    "lean.warm",
    "lean.submit",
    "lean.after",
    "lean.after_ratio",
)


def lean(bench: Any) -> Cells:
    """Every system runs the GLib-only and the GTK main script; tasker also with start_workers()."""
    rows: Cells = {key: {} for key in ROWS}
    runs = bench.sizes.cold_runs
    trips = max(10, bench.sizes.warm_trips)
    display_problem = ensure_display()

    def measure_system(system: str) -> dict[str, Cell]:
        cells: dict[str, Cell] = {}
        glib = [measure(system, "glib", trips=trips) for _ in range(runs)]
        rss_glib = statistics.median(f.rss_mib for f in glib)
        cells["lean.rss_glib"] = Cell.number(rss_glib)
        cells["lean.first_glib"] = Cell.number(statistics.median(f.first or 0.0 for f in glib) * MS)
        if display_problem is not None:
            for key in ROWS:
                cells.setdefault(key, Cell.note(f"n/a ({display_problem})"))
            return cells
        gtk = [measure(system, "gtk", trips=trips) for _ in range(runs)]
        rss_gtk = statistics.median(f.rss_mib for f in gtk)
        cells["lean.rss_gtk"] = Cell.number(rss_gtk)
        cells["lean.rss_extra"] = Cell.number(rss_gtk - rss_glib)
        loaded = any(f.gtk_loaded for f in gtk)
        cells["lean.gtk_free"] = Cell.flag(not loaded, "no: GTK loaded" if loaded else "yes")
        display = max(f.display_sockets for f in gtk)
        cells["lean.display"] = Cell(display, str(display))
        cells["lean.first_gtk"] = Cell.number(statistics.median(f.first or 0.0 for f in gtk) * MS)
        cells["lean.warm"] = Cell.number(statistics.median(f.warm for f in gtk) * MS)
        cells["lean.submit"] = Cell.number(statistics.median(f.submit for f in gtk) * 1e6)
        if system != "tasker":
            cells["lean.after"] = Cell.note("no API")
            cells["lean.after_ratio"] = Cell.note("no API")
            return cells
        ahead = [measure(system, "gtk", ahead=True, trips=trips) for _ in range(runs)]
        after = statistics.median(f.after_start or 0.0 for f in ahead)
        warm = statistics.median(f.warm for f in ahead)
        cells["lean.after"] = Cell.number(after * MS)
        cells["lean.after_ratio"] = Cell.number(after / warm)
        bench.notes.append(
            f"11 after start_workers(): first task {after * MS:.2f} ms, warm round trip"
            f" {warm * MS:.3f} ms in the same runs (median of {runs})"
        )
        return cells

    bench.each(rows, SYSTEMS, measure_system)
    return rows
