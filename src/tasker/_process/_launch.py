"""Starting a worker process without multiprocessing's main-module preparation.

A child of multiprocessing's spawn and forkserver start methods first runs
the parent's main module again (as ``__mp_main__``), so that functions
defined there can be found by name, and only then unpickles its process
object. A tasker worker never needs that: whatever comes from ``__main__``
travels by value (see ``_pickling``). And it hurts: a GTK application's main
script imports Gtk, which costs every worker about 75 MiB and a display
connection; a script fed on standard input, or a notebook, has no file to
run, and every worker died while starting.

``worker_process_class(method)`` gives a ``multiprocessing`` process class
of that start method whose launch sends the usual preparation data (sys.path,
working directory, argv, authkey, log settings) minus the two main-module
entries. The launch code is the standard library's (``popen_forkserver`` and
``popen_spawn_posix`` of CPython 3.11 to 3.13) with that one change. Under
fork there is no preparation: the child is a copy of the parent.
"""

from __future__ import annotations

import io
import os
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, popen_spawn_posix, reduction, spawn
from multiprocessing import util as _util
from multiprocessing.context import set_spawning_popen
from typing import Any

util: Any = _util  # the typeshed stubs lack close_fds and type spawnv_passfds for bytes only

__all__ = ["MAIN_KEYS", "preparation_data", "worker_process_class"]

#: The entries of multiprocessing's preparation data that make a child import ``__main__``.
MAIN_KEYS = ("init_main_from_name", "init_main_from_path")


def preparation_data(name: str) -> dict[str, Any]:
    """multiprocessing's preparation data for a child, without the main-module entries."""
    data: dict[str, Any] = spawn.get_preparation_data(name)
    for key in MAIN_KEYS:
        data.pop(key, None)
    return data


def _launch_data(popen: Any, process_obj: Any) -> io.BytesIO:
    buffer = io.BytesIO()
    prep = preparation_data(process_obj._name)
    set_spawning_popen(popen)  # lets the process object's descriptors register for the child
    try:
        reduction.dump(prep, buffer)
        reduction.dump(process_obj, buffer)
    finally:
        set_spawning_popen(None)
    return buffer


class _ForkServerPopen(popen_forkserver.Popen):
    _fds: list[int]

    def _launch(self, process_obj: Any) -> None:
        buffer = _launch_data(self, process_obj)
        self.sentinel, write_end = forkserver.connect_to_new_process(self._fds)
        # As the standard library does: a duplicate of the data pipe's write
        # end is the parent's sentinel in the child.
        parent_w = os.dup(write_end)
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(write_end, "wb", closefd=True) as pipe:
            pipe.write(buffer.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _SpawnPopen(popen_spawn_posix.Popen):
    _fds: list[int]

    def _launch(self, process_obj: Any) -> None:
        from multiprocessing import resource_tracker

        tracker_fd: int = resource_tracker.getfd()  # type: ignore[assignment]
        self._fds.append(tracker_fd)
        buffer = _launch_data(self, process_obj)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            self.pid = util.spawnv_passfds(spawn.get_executable(), cmd, self._fds)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as pipe:
                pipe.write(buffer.getbuffer())
        finally:
            to_close = [fd for fd in (parent_r, parent_w) if fd is not None]
            self.finalizer = util.Finalize(self, util.close_fds, to_close)
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


class ForkServerWorkerProcess(mp_context.ForkServerProcess):
    """A forkserver process that does not import the parent's main module."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _ForkServerPopen(process_obj)


class SpawnWorkerProcess(mp_context.SpawnProcess):
    """A spawned process that does not import the parent's main module."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _SpawnPopen(process_obj)


def worker_process_class(method: str) -> Any:
    """The process class a pool of start method ``method`` starts its workers with."""
    if method == "forkserver":
        return ForkServerWorkerProcess
    if method == "spawn":
        return SpawnWorkerProcess
    import multiprocessing

    return multiprocessing.get_context(method).Process  # type: ignore[attr-defined]
