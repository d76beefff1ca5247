"""The peers: process pools wrapped the way their docs recommend, and the GNOME thread helper.

Each pool delivers results with ``future.add_done_callback(lambda f: GLib.idle_add(...))``.
Progress and cancellation, which the pools lack, use the natural equivalent: a
``multiprocessing.Event`` and a ``multiprocessing.Queue`` handed to every worker by the
pool initializer, the queue drained by a thread that ``GLib.idle_add``s every update.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from gi.repository import GLib

from . import _work
from ._harness import BenchmarkError, OnDone, Outcome, Sink, now

POOL_PEERS = ("stdlib", "loky", "pebble")
PEERS = (*POOL_PEERS, "gnome-thread")

_FORKSERVER = multiprocessing.get_context("forkserver")


def available(name: str) -> str | None:
    """None when the peer can run here, else why it cannot."""
    try:
        if name == "loky":
            import loky  # noqa: F401
        elif name == "pebble":
            import pebble  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc})"
    return None


class Channel:
    """Cancel event + update queue shared with a pool's workers, drained to the main loop."""

    def __init__(self, sink: Sink | None = None) -> None:
        self.cancel = _FORKSERVER.Event()
        self.updates: Any = _FORKSERVER.Queue()
        self.sink = sink if sink is not None else Sink()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="bench-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        get = self.updates.get
        idle_add = GLib.idle_add
        on_update = self.sink.on_update
        while not self._stop.is_set():
            try:
                item = get(timeout=0.05)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            if self.sink.closed:
                continue
            idle_add(on_update, item)

    def close(self) -> None:
        self.sink.closed = True
        self._stop.set()
        self.updates.cancel_join_thread()
        self._thread.join(timeout=1.0)


def _deliver(future: Future[Any], on_done: OnDone) -> bool:
    t = now()
    if future.cancelled():
        on_done(Outcome(t, cancelled=True))
    else:
        error = future.exception()
        on_done(Outcome(t, value=None if error else future.result(), error=error))
    return GLib.SOURCE_REMOVE


class PoolRunner:
    """A warm process pool of one peer kind, with its channel."""

    def __init__(self, kind: str, workers: int, sink: Sink | None = None) -> None:
        self.name = kind
        self.workers = workers
        self.channel = Channel(sink)
        self.pool: Any = None
        self.rebuilt = 0
        self._open()

    @property
    def started(self) -> int:
        return self.channel.sink.started

    def _open(self) -> None:
        initargs = (self.channel.cancel, self.channel.updates)
        if self.name == "stdlib":
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=_FORKSERVER,
                initializer=_work.install_channel,
                initargs=initargs,
            )
        elif self.name == "loky":
            self.pool = self._loky()
        elif self.name == "pebble":
            import pebble

            self.pool = pebble.ProcessPool(
                self.workers,
                context=_FORKSERVER,
                initializer=_work.install_channel,
                initargs=initargs,
            )
        else:
            raise ValueError(self.name)

    def _loky(self) -> Any:
        from loky import get_reusable_executor

        return get_reusable_executor(
            max_workers=self.workers,
            initializer=_work.install_channel,
            initargs=(self.channel.cancel, self.channel.updates),
        )

    def _raw_submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any]:
        if self.name == "pebble":
            future: Future[Any] = self.pool.schedule(fn, args=args)
            return future
        result: Future[Any] = self.pool.submit(fn, *args)
        return result

    def submit(self, work: str, *args: Any, on_done: OnDone) -> Future[Any]:
        future = self._raw_submit(_work.PLAIN[work], args)
        future.add_done_callback(lambda f: GLib.idle_add(_deliver, f, on_done))
        return future

    def submit_fn(self, fn: Callable[..., Any], *args: Any, on_done: OnDone) -> Future[Any]:
        future = self._raw_submit(fn, args)
        future.add_done_callback(lambda f: GLib.idle_add(_deliver, f, on_done))
        return future

    def cancel(self, handle: Any) -> bool:
        return bool(handle.cancel())

    def cancel_cooperatively(self, handle: Any) -> None:
        self.channel.cancel.set()

    def reset_cancel(self) -> None:
        self.channel.cancel.clear()

    def rebuild(self) -> str | None:
        """After a crash: the recovery each peer documents, or why there is none."""
        if self.name == "loky":
            self.pool = self._loky()  # get_reusable_executor replaces a broken executor
            self.rebuilt += 1
            return "new executor"
        if self.name == "stdlib":
            return None  # BrokenProcessPool: every later submit raises
        return "same pool"

    def warm(self, loop: Any, timeout: float = 10.0) -> None:
        """Start every worker: ``workers`` concurrent short sleeps, run to completion."""
        done: list[Outcome] = []
        for _ in range(self.workers):
            self.submit("sleep", 0.05, on_done=done.append)
        if not loop.run_until(lambda: len(done) >= self.workers, timeout):
            raise BenchmarkError(f"{self.name}: pool did not warm up")

    def kill(self) -> None:
        """Stop the pool now, even with tasks that would never return."""
        if self.name == "stdlib":
            processes = getattr(self.pool, "_processes", None) or {}
            for process in list(processes.values()):
                with contextlib.suppress(Exception):
                    process.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
        elif self.name == "loky":
            self.pool.shutdown(wait=True, kill_workers=True)
        else:
            self.pool.stop()
            self.pool.join(timeout=5)

    def close(self) -> None:
        try:
            if self.name == "pebble":
                self.pool.close()
                self.pool.join(timeout=10)
            elif self.name == "loky":
                self.pool.shutdown(wait=True, kill_workers=False)
            else:
                self.pool.shutdown(wait=True)
        finally:
            self.channel.close()


class GnomeHelperStorm:
    """The usual GNOME helper: a thread per task calling GLib.idle_add for every update."""

    name = "gnome-thread"

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.threads: list[threading.Thread] = []
        self.results: dict[int, tuple[float, int]] = {}

    def _run(self, worker_id: int, deadline: float) -> None:
        idle_add = GLib.idle_add
        on_update = self.sink.on_update
        steps = 0
        t = now()
        while t < deadline:
            steps += 1
            idle_add(on_update, ("p", worker_id, steps))
            if steps % 100 == 0:
                idle_add(on_update, ("m", worker_id, f"step {steps}"))
            t = now()
        idle_add(on_update, ("end", worker_id, t))
        self.results[worker_id] = (t, steps)

    def start(self, workers: int, deadline: float) -> None:
        for worker_id in range(workers):
            thread = threading.Thread(
                target=self._run, args=(worker_id, deadline), name=f"gnome-helper-{worker_id}"
            )
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
