"""Main-loop timing helpers and statistics shared by every benchmark."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import gi

gi.require_version("GLib", "2.0")
from gi.repository import GLib  # noqa: E402

now = time.perf_counter


class BenchmarkError(Exception):
    """A benchmark could not produce its figure (shown in the table instead of a number)."""


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        return cls(
            n=len(samples),
            median=statistics.median(samples),
            p95=percentile(samples, 95),
            p99=percentile(samples, 99),
            max=max(samples),
        )


# --- outcomes -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the main thread learnt about a finished task, and when (perf_counter)."""

    t: float
    value: Any = None
    error: BaseException | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


OnDone = Callable[[Outcome], None]


class Runner(Protocol):
    """One system able to run a named function of ``benchmarks._work`` in a worker process.

    ``on_done`` must be called on the main (GLib) thread.  ``started`` counts the "started"
    notifications the main thread has received from running tasks.
    """

    name: str
    started: int

    def submit(self, work: str, *args: Any, on_done: OnDone) -> Any: ...

    def cancel(self, handle: Any) -> bool: ...

    def cancel_cooperatively(self, handle: Any) -> None: ...

    def close(self) -> None: ...


# --- driving the GLib main loop on this (main) thread ---------------------------------------


class Loop:
    """Runs the default GLib main context on the calling thread, the way GLib.MainLoop does.

    ``dispatches`` counts the iterations that dispatched at least one source.
    """

    def __init__(self) -> None:
        self.context = GLib.MainContext.default()
        self.dispatches = 0

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Iterate until ``predicate()`` holds; False if ``timeout`` seconds passed first."""
        if predicate():
            return True
        deadline = now() + timeout
        fired: list[bool] = []

        def guard() -> bool:
            fired.append(True)
            return GLib.SOURCE_REMOVE

        guard_id = GLib.timeout_add(int(timeout * 1000) + 1, guard)
        try:
            while not predicate():
                if now() >= deadline:
                    return False
                if self.context.iteration(True):
                    self.dispatches += 1
            return True
        finally:
            if not fired:
                GLib.source_remove(guard_id)

    def run_for(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)

    def drain(self, limit: float = 5.0) -> None:
        """Dispatch whatever is ready now (bounded in time)."""
        deadline = now() + limit
        while self.context.pending() and now() < deadline:
            self.context.iteration(False)


class LatenessProbe:
    """A GLib timeout on the main thread that records how late each of its dispatches is.

    Lateness of a dispatch = dispatch time - (previous dispatch's source time + interval),
    which is exactly when GLib made it due.
    """

    def __init__(self, interval_ms: int = 1) -> None:
        self.interval_us = interval_ms * 1000
        self.interval_ms = interval_ms
        self.samples: list[tuple[float, float]] = []  # (perf_counter time, lateness in s)
        self._due_us = 0
        self._source_id = 0

    def start(self) -> None:
        self._due_us = GLib.get_monotonic_time() + self.interval_us
        self._source_id = GLib.timeout_add(self.interval_ms, self._tick)

    def _tick(self) -> bool:
        dispatched = GLib.get_monotonic_time()
        self.samples.append((now(), (dispatched - self._due_us) / 1e6))
        source = GLib.main_current_source()
        base = source.get_time() if source is not None else dispatched
        self._due_us = base + self.interval_us
        return GLib.SOURCE_CONTINUE

    def stop(self) -> None:
        if self._source_id:
            GLib.source_remove(self._source_id)
            self._source_id = 0

    @property
    def fires(self) -> int:
        return len(self.samples)

    def lateness(self, start: float, end: float) -> list[float]:
        """Lateness samples (seconds) of the dispatches between ``start`` and ``end``."""
        return [late for t, late in self.samples if start <= t <= end]


class CallbackCounter:
    """Counts main-loop callbacks that code in this process registers through GLib.

    While active it wraps the callback given to ``GLib.idle_add``, ``timeout_add``,
    ``timeout_add_seconds``, ``io_add_watch``, ``unix_fd_add_full`` and
    ``GLib.Source.set_callback`` (sources made by ``idle_source_new`` etc.), so it sees the
    callbacks of a library it does not know, such as tasker's dispatcher.  Every invocation
    counts, including repeated dispatches of a source that returned ``SOURCE_CONTINUE``.
    Callbacks registered before ``start()`` are not counted.
    """

    _NAMES = ("idle_add", "timeout_add", "timeout_add_seconds", "io_add_watch", "unix_fd_add_full")

    def __init__(self) -> None:
        self.calls = 0
        self.times: list[float] = []
        self._saved: dict[str, Any] = {}

    def _wrap_callback(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.calls += 1
            self.times.append(now())
            return callback(*args)

        return counted

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def register(*args: Any, **kwargs: Any) -> Any:
            items = list(args)
            for index, item in enumerate(items):
                if callable(item):
                    items[index] = self._wrap_callback(item)
                    break
            return original(*items, **kwargs)

        return register

    def start(self) -> None:
        for name in self._NAMES:
            original = getattr(GLib, name, None)
            if original is not None:
                self._saved[name] = original
                setattr(GLib, name, self._wrap(original))
        set_callback = GLib.Source.set_callback
        self._saved["Source.set_callback"] = set_callback

        def counted_set_callback(source: Any, callback: Any, *args: Any) -> Any:
            return set_callback(source, self._wrap_callback(callback), *args)  # type: ignore[no-untyped-call]

        GLib.Source.set_callback = counted_set_callback  # type: ignore[method-assign]

    def stop(self) -> None:
        for name, original in self._saved.items():
            if name == "Source.set_callback":
                GLib.Source.set_callback = original  # type: ignore[method-assign]
            else:
                setattr(GLib, name, original)
        self._saved.clear()

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)

    @contextmanager
    def active(self) -> Iterator[CallbackCounter]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


@dataclass
class Sink:
    """Main-thread end of a stream of progress updates (the peers' natural design).

    Every update is one main-loop callback; an ``("end", worker, t)`` update marks the last
    update of a worker.
    """

    workers: int = 0
    updates: int = 0
    callbacks: int = 0
    started: int = 0
    closed: bool = False
    ends: dict[int, float] = field(default_factory=dict)
    last_progress: dict[int, object] = field(default_factory=dict)
    last_message: dict[int, object] = field(default_factory=dict)

    def on_update(self, item: tuple[Any, ...]) -> bool:
        self.callbacks += 1
        if self.closed:
            return GLib.SOURCE_REMOVE
        kind = item[0]
        if kind == "p":
            self.updates += 1
            self.last_progress[item[1]] = item[2]
        elif kind == "m":
            self.updates += 1
            self.last_message[item[1]] = item[2]
        elif kind == "end":
            self.ends[item[1]] = now()
        elif kind == "started":
            self.started += 1
        return GLib.SOURCE_REMOVE

    @property
    def all_ended(self) -> bool:
        return len(self.ends) >= self.workers


def gc_quiet() -> None:
    """Collect garbage between measurements so a collection does not land inside one."""
    import gc

    gc.collect()
