"""TaskItem and TaskListModel: the manager's live tasks as a ``Gio.ListModel`` of GObjects."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gi.repository import Gio, GLib, GObject

from .._labels import describe_error
from .._task import Task, TaskStatus

if TYPE_CHECKING:
    from .._manager import TaskManager

__all__ = ["TaskItem", "TaskListModel", "WrongThreadError", "check_thread"]


class WrongThreadError(RuntimeError):
    """Raised when GTK-side tasker code runs off the thread that created the object.

    GObjects bound to widgets must only change on the main (GLib) thread; a
    model update elsewhere would race with GTK. The check is a cheap thread-id
    comparison and is always on.
    """


def check_thread(owner: int, what: str) -> None:
    """Raise ``WrongThreadError`` unless the calling thread's id is ``owner``."""
    if threading.get_ident() != owner:
        raise WrongThreadError(
            f"{what} ran on thread {threading.current_thread().name!r}, not on the thread "
            "that created it; GTK objects must only be touched on the main thread (was the "
            "TaskManager given a scheduler that runs callbacks elsewhere?)"
        )


class TaskItem(GObject.Object):
    """One task as a GObject, for ``Gtk.ListView`` rows and ``bind_property``.

    Properties (all read-only, notified only when their value changes):
    ``key``, ``kind`` (``"coroutine"``, ``"thread"`` or ``"process"``),
    ``status`` (a ``TaskStatus`` value), ``progress`` (0.0 to 1.0; 1.0 once
    completed), ``message`` (``""`` when none), ``task-id``, ``error``
    (``"TypeName: message"`` of a failed task, else ``""``), ``finished``
    (the status is final) and ``can-cancel`` (live and not yet asked to
    stop); ``eta`` (estimated seconds left, ``-1.0`` while unknown; see
    ``Task.get_eta``), ``pause-state`` (``""``, ``"pausing"`` or
    ``"paused"``), ``weight`` (its share of the overall progress) and
    ``cancel-reason`` (a ``tasker.CancelReason`` value once the task was
    asked to cancel, else ``""``). The ``task`` attribute is the
    ``tasker.Task`` itself.
    """

    __gtype_name__ = "TaskerTaskItem"

    def __init__(self, task: Task[Any]) -> None:
        super().__init__()
        self._owner = threading.get_ident()
        self._task = task
        self._key = str(task.key)
        self._kind = str(task.kind.value)
        self._task_id = task.id
        self._status = ""
        self._progress = 0.0
        self._message = ""
        self._error = ""
        self._finished = False
        self._can_cancel = False
        self._eta = -1.0
        self._pause_state = ""
        self._weight = float(task.weight)
        self._cancel_reason = ""
        self.sync()

    @property
    def task(self) -> Task[Any]:
        """The ``tasker.Task`` this item shows."""
        return self._task

    def cancel(self) -> bool:
        """Cancel the task; True if it was still live (see ``Task.cancel``).

        On the item's own thread the properties are refreshed at once, so a
        row shows "cancelling" even if the task reports nothing more.
        """
        cancelled = self._task.cancel()
        if threading.get_ident() == self._owner:
            self.sync()
        return cancelled

    def pause(self) -> bool:
        """Pause the task (see ``Task.pause``); True if it was live and not paused yet."""
        paused = self._task.pause()
        if threading.get_ident() == self._owner:
            self.sync()
        return paused

    def resume(self) -> bool:
        """Resume the task (see ``Task.resume``); True if it was paused or pausing."""
        resumed = self._task.resume()
        if threading.get_ident() == self._owner:
            self.sync()
        return resumed

    @GObject.Property(type=float, default=-1.0, minimum=-1.0, nick="ETA")
    def eta(self) -> float:
        """Estimated seconds left (to a tenth), ``-1.0`` while unknown or once finished."""
        return self._eta

    @GObject.Property(type=str, default="", nick="Pause state")
    def pause_state(self) -> str:
        """``""``, ``"pausing"`` (not yet at a checkpoint) or ``"paused"`` (``pause-state``)."""
        return self._pause_state

    @GObject.Property(type=float, default=1.0, minimum=0.0, nick="Weight")
    def weight(self) -> float:
        """The task's weight in the overall progress (``weight=`` when it was started)."""
        return self._weight

    @GObject.Property(type=str, default="", nick="Key", blurb="The task's key, as text")
    def key(self) -> str:
        """The task's key, as text."""
        return self._key

    @GObject.Property(type=str, default="", nick="Kind", blurb="coroutine, thread or process")
    def kind(self) -> str:
        """Which backend runs the task: ``"coroutine"``, ``"thread"`` or ``"process"``."""
        return self._kind

    @GObject.Property(type=GObject.TYPE_INT64, default=0, nick="Task id")  # type: ignore[arg-type]
    def task_id(self) -> int:
        """The task's ``id``, unique for the process lifetime (GObject name ``task-id``)."""
        return self._task_id

    @GObject.Property(type=str, default="", nick="Status", blurb="pending, running, ...")
    def status(self) -> str:
        """The task's status: pending, running, completed, failed or cancelled."""
        return self._status

    @GObject.Property(type=float, default=0.0, minimum=0.0, maximum=1.0, nick="Progress")
    def progress(self) -> float:
        """The task's progress from 0.0 to 1.0 (1.0 once it completed)."""
        return self._progress

    @GObject.Property(type=str, default="", nick="Message")
    def message(self) -> str:
        """The task's latest message, ``""`` when it has none."""
        return self._message

    @GObject.Property(type=str, default="", nick="Error")
    def error(self) -> str:
        """``"TypeName: message"`` of the exception of a failed task, else ``""``."""
        return self._error

    @GObject.Property(type=bool, default=False, nick="Finished")
    def finished(self) -> bool:
        """True once the task has completed, failed or been cancelled."""
        return self._finished

    @GObject.Property(type=bool, default=False, nick="Can cancel")
    def can_cancel(self) -> bool:
        """True while the task is live and has not been asked to stop (``can-cancel``)."""
        return self._can_cancel

    @GObject.Property(type=str, default="", nick="Cancel reason")
    def cancel_reason(self) -> str:
        """Why the task was asked to cancel (a ``CancelReason`` value), else ``""``."""
        return self._cancel_reason

    def sync(self) -> bool:
        """Copy the task's current state into the properties; notify those that changed.

        Called by ``TaskListModel`` on the main thread. Notifications are
        frozen while the values are stored, so a handler of one property
        sees all the others already up to date. Returns True if the status
        changed (the model then re-announces the item to filters and sorters).
        """
        task = self._task
        status = task.get_status()
        finished = status.is_final
        progress = 1.0 if status is TaskStatus.COMPLETED else _clamp(task.get_progress())
        message = task.get_message() or ""
        error = describe_error(task.exception()) if status is TaskStatus.FAILED else ""
        can_cancel = not finished and not task.is_cancelled()
        eta_seconds = None if finished else task.get_eta()
        # A tenth of a second: the row shows minutes, and fewer notifications.
        eta = -1.0 if eta_seconds is None else round(eta_seconds, 1)
        pause_state = task.get_pause_state() or ""
        reason = task.cancel_reason
        cancel_reason = "" if reason is None else str(reason.value)
        changed: list[str] = []
        if status != self._status:
            self._status = str(status.value)
            changed.append("status")
        if progress != self._progress:
            self._progress = progress
            changed.append("progress")
        if message != self._message:
            self._message = message
            changed.append("message")
        if error != self._error:
            self._error = error
            changed.append("error")
        if finished != self._finished:
            self._finished = finished
            changed.append("finished")
        if can_cancel != self._can_cancel:
            self._can_cancel = can_cancel
            changed.append("can-cancel")
        if eta != self._eta:
            self._eta = eta
            changed.append("eta")
        if pause_state != self._pause_state:
            self._pause_state = pause_state
            changed.append("pause-state")
        if cancel_reason != self._cancel_reason:
            self._cancel_reason = cancel_reason
            changed.append("cancel-reason")
        if not changed:
            return False
        with self.freeze_notify():
            for name in changed:
                self.notify(name)
        return changed[0] == "status"

    def __repr__(self) -> str:
        return f"<TaskItem {self._key!r} {self._kind} {self._status} {self._progress:.2f}>"


class TaskListModel(GObject.Object, Gio.ListModel):  # type: ignore[misc]
    """A ``Gio.ListModel`` of a manager's live tasks, as ``TaskItem`` objects.

    ``manager=None`` follows the global ``tasker.task_mgr``. Items are kept
    in the order the tasks were started. The model changes only when the
    manager emits ``tasks_updated`` (on the main thread, coalesced): item
    properties are notified only when their value changed, and
    ``items-changed`` is emitted once per contiguous run of added or
    removed items per update.

    ``keep_finished`` keeps up to that many finished tasks in the list,
    showing their final status, until newer ones push them out;
    ``finished_timeout`` (seconds) also drops each of them that long after it
    finished. Hidden tasks (started with ``visible=False``) are left out
    unless ``show_hidden`` is True; the model's ``progress`` is the
    manager's overall progress, which never counts them. The model must be
    created and used on the main thread: an update arriving on any other
    thread raises ``WrongThreadError`` (which the manager logs) and changes
    nothing.

    The manager holds the model weakly: a model nobody references stops
    receiving updates. ``close()`` disconnects at once and empties it.
    """

    __gtype_name__ = "TaskerTaskListModel"

    def __init__(
        self,
        manager: TaskManager | None = None,
        *,
        keep_finished: int = 0,
        finished_timeout: float | None = None,
        show_hidden: bool = False,
    ) -> None:
        super().__init__()
        if show_hidden is not True and show_hidden is not False:
            raise TypeError(f"show_hidden must be True or False, not {show_hidden!r}")
        if isinstance(keep_finished, bool) or not isinstance(keep_finished, int):
            raise TypeError(f"keep_finished must be an int, not {type(keep_finished).__name__}")
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be 0 or more, not {keep_finished}")
        if finished_timeout is not None and not finished_timeout > 0:
            raise ValueError(f"finished_timeout must be above 0 seconds, not {finished_timeout!r}")
        if manager is None:
            from .. import task_mgr

            manager = task_mgr
        self._manager: TaskManager | None = manager
        self._owner = threading.get_ident()
        self._keep = keep_finished
        self._show_hidden = show_hidden
        self._finished_timeout = finished_timeout
        self._items: list[TaskItem] = []
        self._by_id: dict[int, TaskItem] = {}
        # Finished items still shown, oldest first, with the monotonic time they finished.
        self._retained: dict[int, float] = {}
        self._prune_source: int | None = None
        self._progress = 1.0
        self._busy = False
        # Weak: blinker drops the receiver when the model is garbage-collected.
        manager.tasks_updated.connect(self._on_tasks_updated, weak=True)
        if keep_finished:
            # Catches tasks that start and finish between two tasks_updated.
            manager.task_done.connect(self._on_task_done, weak=True)
        self._apply(self._live(manager), manager.get_overall_progress())

    # ---------------------------------------------------------------- properties

    @GObject.Property(type=float, default=1.0, minimum=0.0, maximum=1.0, nick="Progress")
    def progress(self) -> float:
        """The manager's overall progress (1.0 when idle), as of the last update."""
        return self._progress

    @GObject.Property(type=bool, default=False, nick="Busy")
    def busy(self) -> bool:
        """True while the manager has live tasks, as of the last update."""
        return self._busy

    @property
    def manager(self) -> TaskManager | None:
        """The manager this model follows; None once closed."""
        return self._manager

    # ---------------------------------------------------------- Gio.ListModel

    def do_get_item_type(self) -> GObject.GType:
        """``TaskItem``'s GType."""
        gtype: GObject.GType = TaskItem.__gtype__  # type: ignore[attr-defined]
        return gtype

    def do_get_n_items(self) -> int:
        """The number of items."""
        return len(self._items)

    def do_get_item(self, position: int) -> TaskItem | None:
        """The item at ``position``, or None past the end."""
        if 0 <= position < len(self._items):
            return self._items[position]
        return None

    # ------------------------------------------------------------------- public

    def items(self) -> list[TaskItem]:
        """A snapshot of the items, in list order."""
        return list(self._items)

    def find(self, key: object) -> TaskItem | None:
        """Return the newest item whose task has ``key`` (compared as text), or None."""
        text = str(key)
        for item in reversed(self._items):
            if item.task.key == key or item._key == text:
                return item
        return None

    def clear_finished(self) -> None:
        """Drop the finished items kept by ``keep_finished`` now."""
        check_thread(self._owner, "TaskListModel.clear_finished")
        for task_id in self._retained:
            del self._by_id[task_id]
        self._retained.clear()
        self._rebuild()

    def refresh(self) -> None:
        """Re-read the manager's live tasks now instead of waiting for its next update."""
        check_thread(self._owner, "TaskListModel.refresh")
        if self._manager is not None:
            self._apply(self._live(self._manager), self._manager.get_overall_progress())

    def close(self) -> None:
        """Stop following the manager and remove every item. Safe to call twice."""
        check_thread(self._owner, "TaskListModel.close")
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.tasks_updated.disconnect(self._on_tasks_updated)
            manager.task_done.disconnect(self._on_task_done)
        if self._prune_source is not None:
            GLib.source_remove(self._prune_source)
            self._prune_source = None
        self._retained.clear()
        self._by_id.clear()
        removed, self._items = len(self._items), []
        if removed:
            self.items_changed(0, removed, 0)

    # ----------------------------------------------------------------- updates

    def _on_tasks_updated(
        self, sender: object, *, tasks: Sequence[Task[Any]], progress: float, **_: object
    ) -> None:
        # Raising here is the point: the manager logs it, and the model stays
        # untouched instead of racing with GTK on the wrong thread.
        check_thread(self._owner, "TaskListModel update")
        if self._manager is None:
            return
        # tasks_updated lists the visible tasks only; the manager itself lists all.
        self._apply(list(self._manager) if self._show_hidden else tasks, progress)

    def _on_task_done(self, sender: object, *, task: Task[Any], **_: object) -> None:
        check_thread(self._owner, "TaskListModel update")
        if self._manager is None or task.id in self._by_id:
            return
        if not task.visible and not self._show_hidden:
            return
        # Never seen live: keep it as finished. The list itself changes at the
        # tasks_updated that ends this drain, batched with everything else.
        self._by_id[task.id] = TaskItem(task)
        self._retained[task.id] = GLib.get_monotonic_time() / 1e6

    def _live(self, manager: TaskManager) -> list[Task[Any]]:
        """The manager's live tasks this model shows."""
        if self._show_hidden:
            return list(manager)
        return [task for task in manager if task.visible]

    def _apply(self, tasks: Sequence[Task[Any]], progress: float) -> None:
        check_thread(self._owner, "TaskListModel update")
        live: set[int] = set()
        restyled: set[int] = set()
        for task in tasks:
            live.add(task.id)
            item = self._by_id.get(task.id)
            if item is None:
                self._by_id[task.id] = TaskItem(task)
            elif item.sync():
                restyled.add(task.id)
        now = GLib.get_monotonic_time() / 1e6
        for task_id, item in list(self._by_id.items()):
            if task_id in live or task_id in self._retained:
                continue
            # The task left the live list, so its when_done has run and its
            # status is final: show that final state before keeping or dropping it.
            if item.sync():
                restyled.add(task_id)
            if self._keep:
                self._retained[task_id] = now
            else:
                del self._by_id[task_id]
        self._trim_retained(live, now)
        self._rebuild(restyled)
        self._set_overall(progress, bool(tasks))

    def _trim_retained(self, live: set[int], now: float) -> None:
        retained = self._retained
        timeout = self._finished_timeout
        if timeout is not None:
            for task_id, since in list(retained.items()):
                if now - since >= timeout:
                    del retained[task_id]
        while len(retained) > self._keep:
            del retained[next(iter(retained))]  # the oldest finished one
        for task_id in list(self._by_id):
            if task_id not in live and task_id not in retained:
                del self._by_id[task_id]
        if timeout is not None and retained and self._prune_source is None:
            oldest = min(retained.values())
            delay = max(0.0, oldest + timeout - now)
            self._prune_source = GLib.timeout_add(
                max(1, round(delay * 1000)), _prune_later, weakref.ref(self)
            )

    def _prune(self) -> None:
        self._prune_source = None
        if self._manager is None:
            return
        now = GLib.get_monotonic_time() / 1e6
        live = {task_id for task_id in self._by_id if task_id not in self._retained}
        self._trim_retained(live, now)
        self._rebuild()

    def _rebuild(self, restyled: set[int] | None = None) -> None:
        """Bring ``_items`` to the id order of ``_by_id``, one items-changed per changed run.

        Items in ``restyled`` changed status: they are announced again (as a
        same-item replacement) so ``Gtk.FilterListModel`` and ``Gtk.SortListModel``
        re-check them; GTK does not watch item properties itself.
        """
        new = [self._by_id[task_id] for task_id in sorted(self._by_id)]
        old = self._items
        if not (len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))):
            before = {item._task_id for item in old}
            restyled = {task_id for task_id in restyled or () if task_id in before}
            for position, removed, added in _diff_runs(
                [item._task_id for item in old], [item._task_id for item in new]
            ):
                # The list must show exactly this change when the signal goes out.
                old[position : position + removed] = new[position : position + added]
                self.items_changed(position, removed, added)
        if restyled:
            runs: list[list[int]] = []
            for position, item in enumerate(old):
                if item._task_id in restyled:
                    if runs and runs[-1][-1] == position - 1:
                        runs[-1].append(position)
                    else:
                        runs.append([position])
            for run in runs:
                self.items_changed(run[0], len(run), len(run))

    def _set_overall(self, progress: float, busy: bool) -> None:
        progress = _clamp(progress)
        changed = []
        if progress != self._progress:
            self._progress = progress
            changed.append("progress")
        if busy != self._busy:
            self._busy = busy
            changed.append("busy")
        with self.freeze_notify():
            for name in changed:
                self.notify(name)


def _prune_later(ref: Callable[[], TaskListModel | None]) -> bool:
    model = ref()
    if model is not None:
        model._prune()
    return GLib.SOURCE_REMOVE


def _diff_runs(old: Sequence[int], new: Sequence[int]) -> list[tuple[int, int, int]]:
    """Turn two ascending id lists into ``(position, removed, added)`` runs, front to back.

    Each run's position is where it starts once the earlier runs are applied,
    which is what ``items-changed`` expects when they are emitted in order.
    """
    runs: list[tuple[int, int, int]] = []
    i = j = 0
    n_old, n_new = len(old), len(new)
    while i < n_old or j < n_new:
        if i < n_old and j < n_new and old[i] == new[j]:
            i += 1
            j += 1
            continue
        start, removed, added = j, 0, 0
        while (i < n_old or j < n_new) and not (i < n_old and j < n_new and old[i] == new[j]):
            if j >= n_new or (i < n_old and old[i] < new[j]):
                i += 1
                removed += 1
            else:
                j += 1
                added += 1
        runs.append((start, removed, added))
    return runs


def _clamp(value: float) -> float:
    if value != value:  # NaN
        return 0.0
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else float(value)
