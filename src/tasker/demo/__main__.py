"""Run the demo: ``python -m tasker.demo [--qt] [--tour] [--output DIR] [--dask [ADDRESS]]``.

With a display it opens the window (``--qt``: the Qt one, PySide6).
``--tour`` (or ``TASKER_DEMO_TOUR=1``, or running under ``xvfb-run``) plays a
scripted tour instead: every action in turn, a screenshot of each state in
``build/demo/`` (``build/demo-qt/`` with ``--qt``), then exit. The Qt tour
needs no display: it picks ``QT_QPA_PLATFORM=offscreen`` when there is none.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path


def tour_requested(flag: bool, environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether to play the tour: ``--tour``, ``TASKER_DEMO_TOUR=1``, or an ``xvfb-run`` display.

    ``xvfb-run`` points ``XAUTHORITY`` into its private ``xvfb-run.XXXXXX``
    directory; nobody can look at that display, so a tour is the only useful run.
    """
    if flag:
        return True
    value = environ.get("TASKER_DEMO_TOUR", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return "/xvfb-run." in environ.get("XAUTHORITY", "")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, start the GTK application and return its exit status."""
    parser = argparse.ArgumentParser(prog="python -m tasker.demo", description=__doc__)
    parser.add_argument("--tour", action="store_true", help="play the scripted tour and exit")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the tour saves its screenshots (default: build/demo, build/demo-qt)",
    )
    parser.add_argument(
        "--qt", action="store_true", help="the Qt (PySide6) window instead of the GTK one"
    )
    parser.add_argument(
        "--dask",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="render a tiled fractal on a Dask cluster (default: an embedded LocalCluster)",
    )
    args = parser.parse_args(argv)
    tour = tour_requested(args.tour)
    if args.qt:
        return _qt_main(tour, args.output or Path("build/demo-qt"))
    args.output = args.output or Path("build/demo")

    try:
        import gi

        gi.require_version("Gtk", "4.0")
        gi.require_version("Gdk", "4.0")
        from gi.events import GLibEventLoopPolicy  # type: ignore[import-untyped]
        from gi.repository import Gdk, Gtk
    except (ImportError, ValueError) as error:
        print(f"the demo needs PyGObject and GTK 4: {error}", file=sys.stderr)
        return 2
    # Importing Gtk 4 already tried to open the display; ask whether it worked.
    if not Gtk.init_check() or Gdk.Display.get_default() is None:
        print(
            "cannot open a display: run the demo on a desktop, or `make demo` "
            "(which uses xvfb-run when there is no display)",
            file=sys.stderr,
        )
        return 2

    # Run asyncio on the GLib main loop, so the tour (and any app coroutine)
    # shares the main thread with GTK. tasker's own coroutine tasks still run
    # on the manager's private loop, off the main thread.
    asyncio.set_event_loop_policy(GLibEventLoopPolicy())

    if args.dask is not None:
        from ._dask import run

        return run(args.dask, tour=tour, output_dir=args.output)

    from .. import task_mgr
    from ._app import DemoApplication

    task_mgr.configure(max_workers=3, cancel_grace=1.0)
    app = DemoApplication(tour=tour, output_dir=args.output)
    status = app.run([sys.argv[0]])  # our options are not GApplication's
    return status or app.exit_status


def _qt_main(tour: bool, output: Path) -> int:
    try:
        from ._qt import main as qt_main
    except ImportError as error:
        print(f"the Qt demo needs PySide6 (pip install 'tasker-gtk[qt]'): {error}", file=sys.stderr)
        return 2
    return qt_main(tour=tour, output_dir=output)


if __name__ == "__main__":
    sys.exit(main())
