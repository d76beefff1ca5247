"""Owners: ``owner=obj`` ties tasks to an object's life, without keeping it alive.

The core knows no toolkit. Whether an object "goes away" when it is
destroyed (a ``Gtk.Widget``'s ``destroy`` signal, a ``QObject``'s
``destroyed``) or when it is garbage collected is told by a watcher
registered for its type with ``register_owner_type``; ``tasker.gtk`` registers
one for ``Gtk.Widget``. An object of a type without a watcher goes away when
it is collected (``weakref.finalize``).

When an owner goes away its tasks' ``when_done`` and ``when_event`` are
dropped at once (attribute stores only: this may run inside a garbage
collection, on any thread, even while the manager lock is held), and the
cancellation itself is done on a small thread (``tasker-owners``) fed by a
``queue.SimpleQueue``, whose ``put`` is safe in such places.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task

__all__ = ["OwnerRecord", "OwnerWatcher", "Owners", "register_owner_type"]

logger = logging.getLogger("tasker")

#: ``watch(owner, gone)``: arrange for ``gone()`` to be called once ``owner`` goes away.
#: It must not keep ``owner`` alive; ``gone`` may be called from any thread, more than once.
OwnerWatcher = Callable[[Any, Callable[[], None]], None]

#: Records added between two sweeps for collected owners.
_SWEEP = 256

_watchers: dict[type, OwnerWatcher] = {}
_watchers_lock = threading.Lock()


def register_owner_type(cls: type, watch: OwnerWatcher) -> None:
    """Tell tasker when an ``owner=`` of type ``cls`` (or a subclass) goes away.

    ``watch(owner, gone)`` is called once per owner and manager, the first
    time the owner is given to a task; it must arrange for ``gone()`` to be
    called when the owner is destroyed (for example from a ``destroy`` or
    ``destroyed`` signal) and must hold the owner only weakly. Toolkit
    integrations call this at import; objects of types nobody registered go
    away when they are garbage collected.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_owner_type() needs a class, not {cls!r}")
    if not callable(watch):
        raise TypeError(f"watch must be callable, not {type(watch).__name__}")
    with _watchers_lock:
        _watchers[cls] = watch


def _watcher_for(owner: object) -> OwnerWatcher | None:
    with _watchers_lock:
        if not _watchers:
            return None
        for cls in type(owner).__mro__:
            watch = _watchers.get(cls)
            if watch is not None:
                return watch
    return None


class OwnerRecord:
    """One owner as one manager sees it: its live tasks, and whether it has gone."""

    __slots__ = ("__weakref__", "gone", "key", "ref", "tasks")

    def __init__(self, owner: object) -> None:
        self.ref = weakref.ref(owner)
        self.key = id(owner)
        self.gone = False
        #: Live tasks owned (changed under the manager lock).
        self.tasks: set[Task[Any]] = set()


class Owners:
    """The owners of one manager's tasks. ``records`` is guarded by the manager lock."""

    def __init__(self, lock: threading.Lock, cancel: Callable[[list[Task[Any]]], None]) -> None:
        self._lock = lock
        self._cancel = cancel
        self.records: dict[int, OwnerRecord] = {}
        self._added = 0
        self._gone: queue.SimpleQueue[OwnerRecord | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def record_for(self, owner: object) -> OwnerRecord:
        """The record of ``owner``; the first call starts watching it (not under the lock)."""
        key = id(owner)
        with self._lock:
            record = self.records.get(key)
            if record is not None and record.ref() is owner:
                return record
        try:
            record = OwnerRecord(owner)
        except TypeError:
            raise TypeError(
                f"owner must support weak references, and a {type(owner).__name__} does not"
            ) from None
        self._ensure_thread()
        gone = weakref.WeakMethod(self._went)  # the watcher must not keep the manager alive
        record_ref = weakref.ref(record)

        def on_gone() -> None:
            went, rec = gone(), record_ref()
            if went is not None and rec is not None:
                went(rec)

        watch = _watcher_for(owner)
        if watch is None:
            finalizer = weakref.finalize(owner, on_gone)
            finalizer.atexit = False  # at interpreter exit nothing is cancelled one by one
        else:
            watch(owner, on_gone)
        with self._lock:
            current = self.records.get(key)
            if current is not None and current.ref() is owner:
                return current  # another thread got here first; ours never gets a task
            self.records[key] = record
            self._added += 1
            if self._added >= _SWEEP:
                # Forget owners that were collected (their id may be reused).
                self._added = 0
                for dead in [k for k, r in self.records.items() if r.ref() is None]:
                    del self.records[dead]
        return record

    def _went(self, record: OwnerRecord) -> None:
        """The owner has gone: drop its tasks' callbacks now, cancel them on our thread."""
        if record.gone:
            return
        record.gone = True
        for task in record.tasks.copy():  # set.copy() is atomic; no lock here (see module doc)
            mute(task)
        self._gone.put(record)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(self._gone,), name="tasker-owners", daemon=True
            )
        self._thread.start()

    def _run(self, gone: queue.SimpleQueue[OwnerRecord | None]) -> None:
        while True:
            record = gone.get()
            if record is None:
                return
            with self._lock:
                # A destroyed owner that is still alive stays known as gone: a
                # task given it later is cancelled at once.
                if record.ref() is None and self.records.get(record.key) is record:
                    del self.records[record.key]
                tasks = list(record.tasks)
            try:
                self._cancel(tasks)
            except Exception:
                logger.exception("tasker could not cancel the tasks of an owner that went away")

    def stop(self, timeout: float) -> None:
        """Stop the owners thread (at shutdown)."""
        thread = self._thread
        if thread is not None:
            self._gone.put(None)
            thread.join(timeout)


def mute(task: Task[Any]) -> None:
    """No ``when_done`` or ``when_event`` of ``task`` runs from now on."""
    task.when_done = None
    task.when_event = None
