"""A worker started from a GTK application's main script loads no GTK and holds no display."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from tasker import GLibDispatcher, SerializationError, TaskManager  # noqa: E402

pytestmark = pytest.mark.gtk

ROOT = Path(__file__).resolve().parents[2]

GTK_APP = textwrap.dedent(
    """
    import os
    import sys

    import gi

    gi.require_version("Gtk", "4.0")
    from gi.repository import Gtk  # opens the display connection

    from tasker import task_mgr


    def sockets(pid):
        fd_dir = f"/proc/{pid}/fd"
        links = []
        for name in os.listdir(fd_dir):
            try:
                links.append(os.readlink(os.path.join(fd_dir, name)))
            except OSError:
                pass
        return sum(link.startswith("socket:") for link in links)


    def probe(context):
        return os.getpid(), sorted(
            name for name in ("gi.repository.Gtk", "gi.repository.Gdk", "gi") if name in sys.modules
        )


    if __name__ == "__main__":
        task_mgr.configure(max_workers=1)
        task = task_mgr.run_process(probe)
        assert task_mgr.wait_until_settled(timeout=60)
        pid, loaded = task.result()
        # The worker stays: its descriptors are read from outside while it lives.
        print("app sockets", sockets(os.getpid()) >= 1)
        print("worker sockets", sockets(pid))
        print("worker modules", loaded)
        task_mgr.shutdown()
    """
)


def test_worker_of_a_gtk_main_script_has_no_gtk_and_no_display_connection(tmp_path):
    script = tmp_path / "gtk_app.py"
    script.write_text(GTK_APP)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "app sockets True",  # the application has its display connection
        "worker sockets 1",  # the worker has only its channel to the application
        "worker modules []",
    ]


def test_closure_over_a_widget_fails_naming_the_widget():
    label = Gtk.Label(label="hello")

    def read_label(context):
        return label.get_text()

    manager = TaskManager(GLibDispatcher(), max_workers=1)
    try:
        task = manager.run_process(read_label)
        assert manager.wait_until_settled(timeout=30)
    finally:
        manager.shutdown()
    error = task.exception()
    assert isinstance(error, SerializationError)
    assert "it is a closure over 'label', a gi.repository.Gtk.Label" in str(error)
