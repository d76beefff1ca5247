"""QtDispatcher: tasker's callbacks on the Qt GUI thread.

The mechanism is a posted event. Background threads append callables to a
deque of ours and, when no wake-up is pending, post one custom ``QEvent`` to
a receiver ``QObject`` that lives on the GUI thread
(``QCoreApplication.postEvent`` is documented thread-safe). The receiver's
``event()`` drains the deque in time slices of a few milliseconds.

Why not a queued ``Signal(object)`` or ``QMetaObject.invokeMethod``: both
hand each Python callable through Qt's queued-call machinery, one Qt event
(and a metatype copy of a Python object) per call. A posted wake-up carries
no Python object at all, costs one Qt event per batch however many
callables the batch holds, and keeps the order in our own deque. It also
stays clear of the queued ``Signal(object)`` path that PySide6 6.12.0 breaks
(see ``tasker.qt``'s docstring).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, QThread, QTimer

from .._dispatch._common import logger, run_logged

if TYPE_CHECKING:
    from .._manager import TaskManager

__all__ = ["QtDispatcher"]

#: Qt takes timer intervals as a C int of milliseconds (about 24.8 days).
_MAX_DELAY_MS = 2**31 - 1

#: Our event type, registered once per process (Qt hands out ids above QEvent.User).
_WAKE = QEvent.Type(QEvent.registerEventType())


class _Receiver(QObject):
    """Lives on the GUI thread; turns each posted wake-up into one drain."""

    def __init__(self, drain: Callable[[], None]) -> None:
        super().__init__()
        self._drain = drain

    def event(self, event: QEvent) -> bool:
        if event.type() == _WAKE:
            self._drain()
            return True
        return super().event(event)


class QtDispatcher:
    """Runs tasker's callbacks on the Qt GUI thread, in order, from any thread.

    Create it on the GUI thread (the one that runs ``QApplication.exec()``)
    and pass it as ``TaskManager(QtDispatcher())`` or
    ``task_mgr.configure(scheduler=QtDispatcher())``. Callables wait in one
    queue and run in time slices of ``slice_ms`` milliseconds, so a flood of
    work from background threads cannot hold the GUI for a frame; delayed
    calls run on a ``QTimer``. When the application emits ``aboutToQuit``,
    every manager that delivers through a ``QtDispatcher`` is shut down.
    """

    def __init__(self, *, slice_ms: float = 4.0) -> None:
        if isinstance(slice_ms, bool) or not isinstance(slice_ms, int | float):
            raise TypeError(f"slice_ms must be a number of milliseconds, not {slice_ms!r}")
        if not slice_ms > 0:
            raise ValueError(f"slice_ms must be above 0, not {slice_ms!r}")
        app = QCoreApplication.instance()
        if app is not None and app.thread() is not QThread.currentThread():
            raise RuntimeError(
                "create QtDispatcher on the Qt GUI thread (the thread that runs "
                "QApplication.exec()), not on thread "
                f"{threading.current_thread().name!r}"
            )
        self._thread_id = threading.get_ident()
        self._slice = slice_ms / 1000.0
        self._queue: deque[Callable[[], object]] = deque()
        # Guards _posted and _closed; deque appends and pops are atomic.
        self._lock = threading.Lock()
        self._posted = False
        self._closed = False
        self._receiver = _Receiver(self._drain)
        self._managers: weakref.WeakSet[TaskManager] = weakref.WeakSet()
        _live_dispatchers.add(self)
        if app is not None:
            _watch_quit(app)

    @property
    def thread_id(self) -> int:
        """``threading.get_ident()`` of the GUI thread callables run on."""
        return self._thread_id

    def is_dispatch_thread(self) -> bool:
        """True on the GUI thread, where the callables run."""
        return threading.get_ident() == self._thread_id

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` for the GUI thread; thread-safe."""
        if self._closed:
            return
        self._queue.append(fn)
        with self._lock:
            if self._posted or self._closed:
                return
            self._posted = True
        QCoreApplication.postEvent(self._receiver, QEvent(_WAKE))

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the GUI thread after ``delay`` seconds, on a ``QTimer``; thread-safe."""
        if self._closed:
            return
        delay_ms = max(0, round(min(delay * 1000.0, _MAX_DELAY_MS)))

        def fire() -> None:
            if not self._closed:
                run_logged(fn)

        if threading.get_ident() == self._thread_id:
            # Qt picks a precise timer below 2 s, a coarse one (5 %) above.
            QTimer.singleShot(delay_ms, self._receiver, fire)
        else:
            # A QTimer belongs to the thread that starts it: start it on ours.
            self.call_soon(lambda: QTimer.singleShot(delay_ms, self._receiver, fire))

    def _drain(self) -> None:
        _watch_quit(QCoreApplication.instance())
        deadline = time.monotonic() + self._slice
        queue = self._queue
        while queue and not self._closed:
            run_logged(queue.popleft())
            if time.monotonic() >= deadline and queue:
                # Yield to the event loop (input, painting) and come back.
                QCoreApplication.postEvent(self._receiver, QEvent(_WAKE))
                return
        with self._lock:
            if queue:  # something arrived after the loop's last check
                QCoreApplication.postEvent(self._receiver, QEvent(_WAKE))
                return
            self._posted = False

    def run_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool | None:
        """Process Qt events until ``predicate()`` holds or ``timeout`` seconds pass.

        Returns None, doing nothing, when called off the GUI thread or when
        no ``QCoreApplication`` exists (nothing could deliver then): the
        caller waits by its own means.
        """
        if predicate():
            return True
        if threading.get_ident() != self._thread_id or QCoreApplication.instance() is None:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        # A timer bounds each blocking wait, like GLib's iterate_until does.
        wake = QTimer()
        wake.setSingleShot(True)
        flags = (
            QEventLoop.ProcessEventsFlag.AllEvents | QEventLoop.ProcessEventsFlag.WaitForMoreEvents
        )
        try:
            while not predicate():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                wake.start(50 if remaining is None else max(1, min(50, round(remaining * 1000))))
                QCoreApplication.processEvents(flags)
            return True
        finally:
            wake.stop()

    def attach_manager(self, manager: TaskManager) -> None:
        """Called by a ``TaskManager`` that delivers through this dispatcher (any thread).

        Such managers are shut down when the application emits ``aboutToQuit``.
        """
        self._managers.add(manager)

    def managers(self) -> list[TaskManager]:
        """The live managers that deliver through this dispatcher."""
        return list(self._managers)

    def close(self) -> None:
        """Stop accepting work; queued callables and pending timers are dropped."""
        with self._lock:
            self._closed = True
        self._queue.clear()


#: Every QtDispatcher alive, so aboutToQuit finds their managers.
_live_dispatchers: weakref.WeakSet[QtDispatcher] = weakref.WeakSet()
#: A dynamic property marking an application whose aboutToQuit we listen to.
_WATCHED = "_tasker_shuts_down_at_quit"


def _watch_quit(app: QCoreApplication | None) -> None:
    """Connect ``app.aboutToQuit`` to shutting the managers down, once per application."""
    if app is None or app.property(_WATCHED):
        return
    app.setProperty(_WATCHED, True)
    app.aboutToQuit.connect(shutdown_qt_managers)


def shutdown_qt_managers(timeout: float = 5.0) -> None:
    """Shut down every manager that delivers through a ``QtDispatcher`` (``aboutToQuit``).

    Runs on the GUI thread; each manager cancels its tasks, stops its
    workers and delivers the last callbacks while Qt can still run them.
    """
    managers: dict[int, TaskManager] = {}
    for dispatcher in list(_live_dispatchers):
        for manager in dispatcher.managers():
            managers[id(manager)] = manager
    for manager in managers.values():
        try:
            manager.shutdown(timeout=timeout)
        except Exception:
            logger.exception("shutting down %r at aboutToQuit failed", manager)
