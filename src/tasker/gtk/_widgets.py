"""GTK 4 widgets: an overall progress bar and a task list with a cancel button per task."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gi

try:
    gi.require_version("Gtk", "4.0")
except ValueError as error:  # another GTK version is already loaded
    raise ImportError(f"tasker.gtk widgets need GTK 4: {error}") from error

from gi.repository import GObject, Gtk, Pango

from .._labels import eta_text, placeholder_message, status_text
from .._task import Task, TaskStatus
from ._model import TaskItem, TaskListModel, check_thread

if TYPE_CHECKING:
    from .._manager import TaskManager

__all__ = ["TaskListView", "TaskProgressBar", "eta_text", "status_text"]

# Standard GTK 4 (Adwaita) style classes for each status; "dim-label" for the quiet ones.
_STATUS_CLASS = {
    TaskStatus.PENDING: "dim-label",
    TaskStatus.COMPLETED: "success",
    TaskStatus.FAILED: "error",
    TaskStatus.CANCELLED: "warning",
}
_ALL_STATUS_CLASSES = ("dim-label", "success", "error", "warning", "accent")


def _set_accessible_label(widget: Gtk.Widget, label: str) -> None:
    widget.update_property([Gtk.AccessibleProperty.LABEL], [label])


def _set_accessible_description(widget: Gtk.Widget, text: str) -> None:
    widget.update_property([Gtk.AccessibleProperty.DESCRIPTION], [text])


class TaskProgressBar(Gtk.Box):
    """The manager's overall progress and its newest message, in one row.

    Follows ``manager`` (``None``: the global ``tasker.task_mgr``) through
    ``tasks_updated``. When nothing runs it shows ``idle_text`` dimmed and an
    empty bar, or hides itself if ``hide_when_idle`` is true. The parts are
    ``label`` and ``progress_bar`` for styling. Must be created and used on
    the main thread.
    """

    __gtype_name__ = "TaskerTaskProgressBar"

    def __init__(
        self,
        manager: TaskManager | None = None,
        *,
        idle_text: str = "Idle",
        hide_when_idle: bool = False,
    ) -> None:
        super().__init__(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        if manager is None:
            from .. import task_mgr

            manager = task_mgr
        self._owner = threading.get_ident()
        self._manager: TaskManager | None = manager
        self._idle_text = idle_text
        self._hide_when_idle = hide_when_idle
        self.add_css_class("tasker-progress-bar")

        self.label = Gtk.Label(xalign=0.0, hexpand=True, ellipsize=Pango.EllipsizeMode.END)
        self.progress_bar = Gtk.ProgressBar(
            show_text=True, valign=Gtk.Align.CENTER, width_request=220
        )
        _set_accessible_label(self.progress_bar, "Overall progress")
        self.append(self.label)
        self.append(self.progress_bar)

        manager.tasks_updated.connect(self._on_tasks_updated, weak=True)
        self._show(list(manager), manager.get_overall_progress())

    @property
    def manager(self) -> TaskManager | None:
        """The manager shown; None after ``close()``."""
        return self._manager

    def close(self) -> None:
        """Stop following the manager (it is held weakly anyway)."""
        check_thread(self._owner, "TaskProgressBar.close")
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.tasks_updated.disconnect(self._on_tasks_updated)

    def _on_tasks_updated(
        self, sender: object, *, tasks: Sequence[Task[Any]], progress: float, **_: object
    ) -> None:
        check_thread(self._owner, "TaskProgressBar update")
        self._show(tasks, progress)

    def _show(self, tasks: Sequence[Task[Any]], progress: float) -> None:
        live = [task for task in tasks if not task.is_final()]
        if not live:
            self.label.set_text(self._idle_text)
            self.label.add_css_class("dim-label")
            self.progress_bar.set_fraction(0.0)
            self.progress_bar.set_text("")
            _set_accessible_description(self.progress_bar, self._idle_text)
            if self._hide_when_idle:
                self.set_visible(False)
            return
        message = next((m for t in reversed(live) if (m := t.get_message())), None)
        text = message or "Working…"
        self.label.set_text(text)
        self.label.remove_css_class("dim-label")
        self.progress_bar.set_fraction(progress)
        percent = f"{progress * 100:.0f} %"
        count = len(live)
        text_parts = [percent] if count == 1 else [f"{count} tasks", percent]
        manager = self._manager
        left = eta_text(manager.get_overall_eta()) if manager is not None else ""
        if left:
            text_parts.append(left)
        self.progress_bar.set_text(" · ".join(text_parts))
        _set_accessible_description(self.progress_bar, text)
        if self._hide_when_idle:
            self.set_visible(True)


class TaskRow(Gtk.Box):
    """One row of ``TaskListView``: key, kind, time left, message or error, progress,
    status, a pause/resume toggle and a cancel button.

    The toggle pauses cooperatively (``TaskItem.pause``): the task pauses at its
    next ``context.checkpoint()``, showing "Pausing…" until then.
    """

    __gtype_name__ = "TaskerTaskRow"

    def __init__(self) -> None:
        super().__init__(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        self._owner = threading.get_ident()
        self.add_css_class("tasker-task-row")
        for side in ("top", "bottom", "start", "end"):
            getattr(self, f"set_margin_{side}")(6)

        text = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4, hexpand=True)
        heading = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=8)
        self.title = Gtk.Label(xalign=0.0, ellipsize=Pango.EllipsizeMode.MIDDLE)
        self.title.add_css_class("heading")
        self.kind = Gtk.Label(xalign=0.0)
        self.kind.add_css_class("caption")
        self.kind.add_css_class("dim-label")
        self.eta = Gtk.Label(xalign=1.0, hexpand=True)
        self.eta.add_css_class("caption")
        self.eta.add_css_class("dim-label")
        self.eta.add_css_class("numeric")
        heading.append(self.title)
        heading.append(self.kind)
        heading.append(self.eta)
        self.message = Gtk.Label(xalign=0.0, ellipsize=Pango.EllipsizeMode.END)
        self.message.add_css_class("caption")
        self.progress_bar = Gtk.ProgressBar(valign=Gtk.Align.CENTER)
        text.append(heading)
        text.append(self.message)
        text.append(self.progress_bar)

        self.status = Gtk.Label(width_chars=11, xalign=1.0)
        self.status.add_css_class("numeric")
        self.cancel_button = Gtk.Button(icon_name="process-stop-symbolic", valign=Gtk.Align.CENTER)
        self.cancel_button.add_css_class("flat")
        self.cancel_button.add_css_class("circular")
        self.cancel_button.connect("clicked", self._on_cancel_clicked)
        self.pause_button = Gtk.ToggleButton(
            icon_name="media-playback-pause-symbolic", valign=Gtk.Align.CENTER
        )
        self.pause_button.add_css_class("flat")
        self.pause_button.add_css_class("circular")
        self._showing = False
        self.pause_button.connect("toggled", self._on_pause_toggled)

        self.append(text)
        self.append(self.status)
        self.append(self.pause_button)
        self.append(self.cancel_button)

        self._item: TaskItem | None = None
        self._bindings: list[GObject.Binding] = []
        self._notify_handler = 0

    @property
    def item(self) -> TaskItem | None:
        """The item shown, or None while the row is unbound."""
        return self._item

    def bind_item(self, item: TaskItem) -> None:
        """Show ``item``: bind its properties to the row's widgets."""
        check_thread(self._owner, "TaskRow.bind_item")
        self.unbind_item()
        self._item = item
        flags = GObject.BindingFlags.SYNC_CREATE
        self._bindings = [
            item.bind_property("key", self.title, "label", flags),
            item.bind_property("kind", self.kind, "label", flags),
            item.bind_property("progress", self.progress_bar, "fraction", flags),
            item.bind_property("can-cancel", self.cancel_button, "sensitive", flags),
            item.bind_property("can-cancel", self.pause_button, "sensitive", flags),
        ]
        self._notify_handler = item.connect("notify", self._on_item_notify)
        key = item.key
        self.cancel_button.set_tooltip_text(f"Cancel {key}")
        _set_accessible_label(self.cancel_button, f"Cancel {key}")
        _set_accessible_label(self.progress_bar, f"Progress of {key}")
        self._refresh()

    def unbind_item(self) -> None:
        """Stop showing the current item, if any."""
        item, self._item = self._item, None
        for binding in self._bindings:
            binding.unbind()
        self._bindings = []
        if item is not None and self._notify_handler:
            item.disconnect(self._notify_handler)
        self._notify_handler = 0

    def _on_item_notify(self, item: TaskItem, pspec: GObject.ParamSpec) -> None:
        check_thread(self._owner, "TaskRow update")
        if pspec.name in (
            "status",
            "message",
            "error",
            "can-cancel",
            "progress",
            "eta",
            "pause-state",
            "cancel-reason",
        ):
            self._refresh()

    def _refresh(self) -> None:
        item = self._item
        if item is None:
            return
        status: str = item.status
        can_cancel: bool = item.can_cancel
        error: str = item.error
        pause_state: str = item.pause_state
        label = status_text(status, can_cancel, pause_state, item.cancel_reason)
        self.status.set_text(label)
        for css in _ALL_STATUS_CLASSES:
            self.status.remove_css_class(css)
        css_class = _STATUS_CLASS.get(TaskStatus(status)) if status else None
        if status in (TaskStatus.PENDING, TaskStatus.RUNNING) and not can_cancel:
            css_class = "warning"
        elif pause_state and status in (TaskStatus.PENDING, TaskStatus.RUNNING):
            css_class = "accent"
        if css_class:
            self.status.add_css_class(css_class)
        if error:
            self.message.set_text(error)
            self.message.add_css_class("error")
            self.message.remove_css_class("dim-label")
        else:
            self.message.set_text(item.message or placeholder_message(status, item.kind))
            self.message.remove_css_class("error")
            self.message.add_css_class("dim-label")
        self.message.set_tooltip_text(error or item.message or None)
        eta: float = item.eta
        left = eta_text(eta if eta >= 0 else None) if status == TaskStatus.RUNNING else ""
        self.eta.set_text(left)
        paused = bool(pause_state)
        # Showing the state must not toggle it again.
        self._showing = True
        try:
            self.pause_button.set_active(paused)
        finally:
            self._showing = False
        self.pause_button.set_icon_name(
            "media-playback-start-symbolic" if paused else "media-playback-pause-symbolic"
        )
        action = f"Resume {item.key}" if paused else f"Pause {item.key}"
        self.pause_button.set_tooltip_text(action)
        _set_accessible_label(self.pause_button, action)
        percent = round(item.progress * 100)
        spoken = f"{item.key}: {label}, {percent} percent"
        _set_accessible_label(self, f"{spoken}, {left}" if left else spoken)

    def _on_pause_toggled(self, button: Gtk.ToggleButton) -> None:
        check_thread(self._owner, "TaskRow pause")
        item = self._item
        if item is None or self._showing:
            return
        if button.get_active():
            item.pause()
        else:
            item.resume()
        self._refresh()  # the item may not have changed (a final task): show what is true

    def _on_cancel_clicked(self, button: Gtk.Button) -> None:
        check_thread(self._owner, "TaskRow cancel")
        if self._item is not None:
            self._item.cancel()


class TaskListView(Gtk.Box):
    """A scrollable list of tasks, one ``TaskRow`` per task, with a placeholder when empty.

    Shows ``model`` if given, else a new ``TaskListModel`` of ``manager``
    (``None``: the global ``tasker.task_mgr``) with ``keep_finished``. The
    ``Gtk.ListView`` inside is ``list_view``. Each row's cancel button
    cancels that row's task.
    """

    __gtype_name__ = "TaskerTaskListView"

    def __init__(
        self,
        model: TaskListModel | None = None,
        *,
        manager: TaskManager | None = None,
        keep_finished: int = 0,
        placeholder: str = "No tasks",
    ) -> None:
        super().__init__(orientation=Gtk.Orientation.VERTICAL)
        self._owner = threading.get_ident()
        if model is None:
            model = TaskListModel(manager, keep_finished=keep_finished)
        self._model = model
        self.add_css_class("tasker-task-list")

        factory = Gtk.SignalListItemFactory()
        factory.connect("setup", self._on_setup)
        factory.connect("bind", self._on_bind)
        factory.connect("unbind", self._on_unbind)
        self.list_view = Gtk.ListView(
            model=Gtk.NoSelection(model=model), factory=factory, show_separators=True
        )
        _set_accessible_label(self.list_view, "Background tasks")
        scrolled = Gtk.ScrolledWindow(
            vexpand=True, hscrollbar_policy=Gtk.PolicyType.NEVER, child=self.list_view
        )
        self.placeholder = Gtk.Label(label=placeholder, vexpand=True)
        self.placeholder.add_css_class("dim-label")
        self._stack = Gtk.Stack(vexpand=True)
        self._stack.add_named(scrolled, "list")
        self._stack.add_named(self.placeholder, "empty")
        self.append(self._stack)
        model.connect("items-changed", self._on_items_changed)
        self._on_items_changed(model, 0, 0, 0)

    @property
    def model(self) -> TaskListModel:
        """The ``TaskListModel`` shown."""
        return self._model

    def rows(self) -> list[TaskRow]:
        """The rows currently built by the list view (visible ones and a few more)."""
        found: list[TaskRow] = []
        stack: list[Gtk.Widget] = [self.list_view]
        while stack:
            widget = stack.pop()
            if isinstance(widget, TaskRow):
                found.append(widget)
                continue
            child = widget.get_first_child()
            while child is not None:
                stack.append(child)
                child = child.get_next_sibling()
        return found

    def row_for(self, item: TaskItem) -> TaskRow | None:
        """The row bound to ``item``, if the list view has built one."""
        return next((row for row in self.rows() if row.item is item), None)

    def _on_items_changed(
        self, model: TaskListModel, position: int, removed: int, added: int
    ) -> None:
        check_thread(self._owner, "TaskListView update")
        self._stack.set_visible_child_name("list" if model.get_n_items() else "empty")

    def _on_setup(self, factory: Gtk.SignalListItemFactory, list_item: Gtk.ListItem) -> None:
        list_item.set_activatable(False)
        list_item.set_child(TaskRow())

    def _on_bind(self, factory: Gtk.SignalListItemFactory, list_item: Gtk.ListItem) -> None:
        row = list_item.get_child()
        item = list_item.get_item()
        if isinstance(row, TaskRow) and isinstance(item, TaskItem):
            row.bind_item(item)

    def _on_unbind(self, factory: Gtk.SignalListItemFactory, list_item: Gtk.ListItem) -> None:
        row = list_item.get_child()
        if isinstance(row, TaskRow):
            row.unbind_item()
