"""How news reaches the main thread: the inbox, the drain and the update tick.

Background threads never call user callbacks. They append events and
completions to the inbox and make sure one drain is scheduled on the
dispatcher; progress, messages and status changes only mark something dirty
and schedule the rate-limited update tick, which emits ``tasks_updated``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._context import ProgressReport
from ._dispatch import Dispatcher, resolve_dispatcher
from ._errors import ManagerShutdownError
from ._flow import QueuedEvent, deliver_plain
from ._main_calls import DelayedCall, FutureSetter, MainCalls, Waiter
from ._progress import observe_progress
from ._task import Task

if TYPE_CHECKING:
    from ._manager import TaskManager
    from ._signal import TasksUpdatedSignal

__all__ = ["Delivery"]

logger = logging.getLogger("tasker")

#: Longest stretch one main-thread drain may run before yielding to the main loop.
_DRAIN_SLICE = 0.004
#: Inbox items the drain takes per lock acquisition.
_DRAIN_BATCH = 64
#: With more undelivered tasks than this, a completion waits up to _BURST_DELAY
#: seconds for others to share its main-thread drain.
_BURST = 8
_BURST_DELAY = 0.001


class Delivery:
    """The manager's main-thread delivery: events, completions and ``tasks_updated``.

    It shares the manager's lock (``manager._lock``) and its task table
    (``manager._tasks``): a completion leaves the table in the same
    acquisition the drain takes it in, and the manager registers a task and
    claims the update tick that announces it in one acquisition. Methods named
    ``*_locked`` expect that lock held; every other method takes it itself,
    only for bookkeeping, never while a callback or a dispatcher call runs.
    """

    def __init__(self, manager: TaskManager, scheduler: Any) -> None:
        from ._signal import TasksUpdatedSignal  # blinker is imported on first use only

        self._manager = manager
        self._lock: threading.Lock = manager._lock
        self._tasks: dict[int, Task[Any]] = manager._tasks
        #: What the application passed as ``scheduler`` (``configure()`` may change it).
        self.scheduler = scheduler
        self.tasks_updated: TasksUpdatedSignal = TasksUpdatedSignal(
            "tasks_updated: handler(sender, tasks=[live tasks], progress=float)"
        )
        # Lets a view of recent tasks (tasker.gtk.TaskListModel) see tasks that
        # started and finished between two tasks_updated emissions.
        self.task_done: TasksUpdatedSignal = TasksUpdatedSignal(
            "task_done: handler(sender, task=finished task), on the main thread after when_done"
        )
        #: Notified (under the lock) when the last undelivered task has been delivered.
        self.settled = threading.Condition(self._lock)
        #: Tasks registered whose ``when_done`` has not run yet.
        self.undelivered = 0
        #: The summed weight of the visible tasks delivered since the manager was
        #: last idle (they count as done in the overall progress).
        self.done_since_idle = 0.0
        #: Live hidden tasks (``visible=False``): left out of ``tasks_updated`` and its progress.
        self.hidden = 0
        # Callables (events), and finished tasks whose completion is to be delivered.
        self._inbox: deque[Callable[[], object] | Task[Any]] = deque()
        self._drain_scheduled = False
        self._tick_scheduled = False
        self._tick_urgent = False
        self._changed = False
        self._last_tick = 0.0
        self._interval = 0.05
        self._dirty: list[ProgressReport] = []
        self._dispatcher: Dispatcher | None = None
        self._owns_dispatcher = False
        #: Main-thread calls with a waiter or a handle (schedule/run/call_on_main_thread).
        self.calls = MainCalls()

    def set_update_rate(self, rate: float) -> None:
        """Emit ``tasks_updated`` at most ``rate`` times a second."""
        self._interval = 1.0 / float(rate)

    # -------------------------------------------------------------- dispatcher

    def dispatcher(self) -> Dispatcher:
        """The dispatcher for ``scheduler``, resolved on first use (a bad one raises here)."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            with self._lock:
                if self._dispatcher is None:
                    self._dispatcher = resolve_dispatcher(self.scheduler)
                    self._owns_dispatcher = self._dispatcher is not self.scheduler
                    attach = getattr(self._dispatcher, "attach_manager", None)
                else:
                    attach = None
                dispatcher = self._dispatcher
            if attach is not None:
                # The optional hook: a dispatcher that knows when its loop ends
                # (tasker.qt: QCoreApplication.aboutToQuit) shuts the manager down then.
                attach(self._manager)
        return dispatcher

    def refuse_calls(self) -> None:
        """Shutdown began: drop delayed calls, fail waiting ones, refuse new ones."""
        self.calls.close()

    def close(self, timeout: float) -> None:
        """At shutdown: let the last ``when_done`` callbacks run, then close our own dispatcher."""
        if self._dispatcher is None:
            return
        self.wait_until_settled(timeout)
        if self._owns_dispatcher:
            self._dispatcher.close()

    def dispatch(self, delay: float, fn: Callable[[], object]) -> bool:
        """Hand ``fn`` to the dispatcher; False (logged) if an application scheduler raised.

        Backends call in here from their own threads: a broken scheduler must
        not take the process listener or a worker thread down with it.
        """
        dispatcher = self.dispatcher()
        try:
            if delay > 0:
                dispatcher.call_later(delay, fn)
            else:
                dispatcher.call_soon(fn)
        except Exception:
            logger.exception("the scheduler refused a main-thread call; tasker retries later")
            return False
        return True

    # ------------------------------------------------------- queueing (any thread)

    def post(self, item: Callable[[], object] | None) -> None:
        """Queue ``item`` for the main thread; None just announces a status change.

        Announcements ride on the rate-limited update tick, so a burst of
        starts and finishes costs the main thread a bounded number of
        ``tasks_updated`` emissions.
        """
        if item is None:
            self.schedule_tick(None)
            return
        with self._lock:
            self._inbox.append(item)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self.arm_drain(0.0)

    def deliver_event(
        self, task: Task[Any], name: str, data: Any, size: int, coalesce: bool
    ) -> None:
        """Queue ``task.when_event(task, name, data)`` for the main thread, in order.

        ``size`` bytes of the task's event credit are spent already; the event
        returns them when the drain delivers it (see ``_flow.QueuedEvent``).
        """
        if task.when_event is None:
            task._credit.release(size)
            return
        if coalesce:
            event = QueuedEvent(task, name, data, size, coalesce)
            task._credit.replace_latest(event)
            self.post(event)
        else:
            self.post(functools.partial(deliver_plain, task, name, data, size))

    def queue_done_locked(self, task: Task[Any]) -> float | None:
        """Queue the completion of ``task`` (just made final); the drain delay to arm, or None.

        The caller arms it with ``arm_drain`` once the lock is released.
        """
        # The task itself stands for "deliver its completion" (see drain).
        self._inbox.append(task)
        if self._drain_scheduled:
            return None
        self._drain_scheduled = True
        if self.undelivered > _BURST:
            # Many tasks are in flight, so more completions are coming: let them
            # gather for a moment and deliver them in one drain. Waking the main
            # thread for each one or two costs it more than the callbacks
            # themselves, and takes the GIL from the threads that feed the
            # workers. A lone task is delivered at once.
            return _BURST_DELAY
        return 0.0

    def announce_locked(self) -> float | None:
        """Record a status change for the next tick; the tick delay to arm, or None.

        What ``post(None)`` does, for callers that already hold the lock (one
        acquisition per start); they call ``arm_tick`` once it is released.
        """
        self._changed = True
        return self._tick_delay_locked(False)

    def mark_dirty(self, report: ProgressReport, urgent: bool = False) -> None:
        """Called from any thread when a task's progress or message changes."""
        task = report.task
        if task is not None and task._first_progress is None and report.progress > 0.0:
            # On the clean-to-dirty edge only (at most once per tick), so the
            # timing is exact even while the main loop is busy; the tick notes
            # it otherwise (observe_progress).
            task._first_progress = time.monotonic()
        self.schedule_tick(report, urgent)

    def schedule_tick(self, report: ProgressReport | None, urgent: bool = False) -> None:
        """Make sure an update tick is due: now if urgent, else within the update interval."""
        with self._lock:
            if report is None:
                self._changed = True
            else:
                self._dirty.append(report)
            delay = self._tick_delay_locked(urgent)
        if delay is not None:
            self.arm_tick(delay)

    def _tick_delay_locked(self, urgent: bool) -> float | None:
        """Claim the tick for a change just recorded; its delay, or None if one is due already."""
        if self._tick_scheduled and (self._tick_urgent or not urgent):
            return None
        self._tick_scheduled = True
        self._tick_urgent = urgent
        return 0.0 if urgent else self._last_tick + self._interval - time.monotonic()

    def arm_tick(self, delay: float) -> None:
        """Schedule the tick claimed under the lock (called without the lock)."""
        if not self.dispatch(delay, self._tick):
            with self._lock:
                self._tick_scheduled = False  # let the next change try again

    def arm_drain(self, delay: float) -> None:
        """Schedule the drain claimed by setting ``_drain_scheduled`` (called without the lock)."""
        if not self.dispatch(delay, self._drain):
            with self._lock:
                self._drain_scheduled = False  # let the next completion try again

    # ----------------------------------------- main-thread calls (from any thread)

    def on_dispatch_thread(self) -> bool:
        """True when called on the thread the dispatcher runs callbacks on.

        A dispatcher may say so itself (``is_dispatch_thread()``); for one that
        does not (a foreign scheduler callable), it is the main thread.
        """
        check = getattr(self.dispatcher(), "is_dispatch_thread", None)
        if check is not None:
            return bool(check())
        return threading.current_thread() is threading.main_thread()

    def schedule_call(
        self, fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Queue ``fn(*args, **kwargs)`` behind what is queued already; dropped after shutdown."""
        if self.calls.closed:
            logger.debug("tasker: main-thread call %r dropped: the manager is shut down", fn)
            return
        self.post(functools.partial(_run_main_call, fn, args, kwargs))

    def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        """Run ``fn`` on the main thread and wait for its outcome (at once when called there)."""
        if self.on_dispatch_thread():
            if self.calls.closed:
                raise ManagerShutdownError("this TaskManager has been shut down")
            return fn(*args, **kwargs)  # waiting for ourselves would never end
        waiter = Waiter()
        call = self.calls.new_call(fn, args, kwargs, waiter)
        self.post(call)
        if not waiter.wait(timeout):
            late = TimeoutError(f"{fn!r} did not run on the main thread within {timeout:g} s")
            if call.give_up(late):
                raise late  # it will never run
            if not waiter.wait(0):
                raise TimeoutError(
                    f"{fn!r} did not finish on the main thread within {timeout:g} s; "
                    "its outcome is discarded"
                )
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def run_call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run ``fn`` on the main thread; awaitable from any asyncio loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self.on_dispatch_thread():
            if self.calls.closed:
                raise ManagerShutdownError("this TaskManager has been shut down")
            return fn(*args, **kwargs)
        future: asyncio.Future[Any] = loop.create_future()
        call = self.calls.new_call(fn, args, kwargs, FutureSetter(loop, future))
        self.post(call)
        try:
            return await future
        finally:
            # Cancelled while still queued: it must not run for nobody.
            call.give_up(asyncio.CancelledError())

    def schedule_delayed(
        self,
        delay: float,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> DelayedCall:
        """Run ``fn`` on the main thread after ``delay`` seconds, unless cancelled or shut down."""
        handle = self.calls.new_delayed(fn, args, kwargs)
        if handle is None:
            logger.debug("tasker: delayed call %r dropped: the manager is shut down", fn)
            return self.calls.dropped_delayed(fn, args, kwargs)
        from ._dispatch import InlineDispatcher

        if isinstance(self.dispatcher(), InlineDispatcher):
            # It has no clock (it runs everything at once): time it on our loop thread.
            fire = functools.partial(self.dispatch, 0.0, handle._fire)
            self._manager._loop().call_later(delay, fire)
        elif not self.dispatch(delay, handle._fire):
            handle.cancel()  # the scheduler refused it (logged): it will never run
        return handle

    # ------------------------------------------------------------- main thread

    def _drain(self) -> None:
        """Run queued events and completions on the main thread, in time slices.

        Items are taken in batches, one lock acquisition each: a completion
        (a ``Task`` in the inbox) leaves the task table right before its
        ``when_done``, and ``undelivered`` drops once the batch's callbacks
        have run.
        What a slice does not reach goes back to the front of the inbox;
        other threads only append at the back, so the order is kept.
        """
        deadline = time.monotonic() + _DRAIN_SLICE
        inbox = self._inbox
        tasks = self._tasks
        lock = self._lock
        monotonic = time.monotonic
        while True:
            with lock:
                if not inbox:
                    self._drain_scheduled = False
                    idle = self.undelivered == 0
                    if idle:
                        self.settled.notify_all()
                    break
                if len(inbox) <= _DRAIN_BATCH:
                    batch = list(inbox)
                    inbox.clear()
                else:
                    batch = [inbox.popleft() for _ in range(_DRAIN_BATCH)]
            delivered = taken = 0
            sliced = False
            try:
                for item in batch:
                    taken += 1
                    if item.__class__ is Task:
                        # It leaves the table just before its when_done, as it
                        # always did: a when_done still sees the tasks of the same
                        # batch that have not been delivered (has_tasks(), len()).
                        with lock:
                            tasks.pop(item.id, None)
                            if item.visible:
                                self.done_since_idle += item.weight
                            else:
                                self.hidden -= 1
                        delivered += 1
                        self._deliver_done(item)
                        if item._sched is not None:  # a group or owner to tell
                            self._manager._scheduled_delivered(item)
                    else:
                        item()  # type: ignore[operator]
                    if monotonic() >= deadline:
                        sliced = True
                        break
            finally:
                # Also on an exception escaping a callback: nothing taken is lost.
                rest = batch[taken:]
                if rest or delivered:
                    with lock:
                        inbox.extendleft(reversed(rest))
                        self._delivered_locked(delivered)
            if sliced:
                # Yield to the main loop (it may have a frame to draw); the
                # drain stays scheduled, so nobody else schedules another.
                self.arm_drain(0.0)
                self.schedule_tick(None)
                return
        if idle:
            self._emit_tasks_updated()  # becoming idle is announced at once, always
        else:
            self.schedule_tick(None)

    def _deliver_done(self, task: Task[Any]) -> None:
        """Run ``when_done`` and ``task_done`` handlers; the drain did the bookkeeping."""
        when_done = task.when_done
        if when_done is not None:
            try:
                when_done(task)
            except Exception:
                logger.exception("exception in task callback %r", when_done)
        if self.task_done.receivers:
            manager = self._manager
            for receiver in self.task_done.receivers_for(manager):
                call_logged(functools.partial(receiver, manager, task=task))

    def _delivered_locked(self, count: int) -> None:
        """``count`` completions have been delivered: wake waiters once none is left."""
        if not count:
            return
        self.undelivered -= count
        if self.undelivered == 0:
            self.done_since_idle = 0.0
            self.settled.notify_all()

    def _tick(self) -> None:
        """Emit ``tasks_updated`` for what changed since the last tick (at most
        ``update_rate`` times a second): progress, messages and statuses."""
        with self._lock:
            self._tick_scheduled = False
            self._tick_urgent = False
            self._last_tick = time.monotonic()
            dirty, self._dirty = self._dirty, []
            changed, self._changed = self._changed, False
        if not dirty and not changed:
            return  # an earlier tick (an urgent one, say) took these changes
        for report in dirty:
            report.dirty = False  # before the handlers read the values: see ProgressReport
        if dirty:
            observe_progress(dirty, time.monotonic())
        self._emit_tasks_updated()

    def _emit_tasks_updated(self) -> None:
        if not self.tasks_updated.receivers:
            return  # nobody listens: skip walking every live task
        manager = self._manager
        with self._lock:
            tasks = self.visible_tasks_locked()
            progress = manager._overall_progress()
        for receiver in self.tasks_updated.receivers_for(manager):
            try:
                receiver(manager, tasks=tasks, progress=progress)
            except Exception:
                logger.exception("exception in a tasks_updated handler %r", receiver)

    def visible_tasks_locked(self) -> list[Task[Any]]:
        """The live tasks views show: all but the hidden ones (``visible=False``)."""
        if self.hidden:
            return [t for t in self._tasks.values() if t.visible]
        return list(self._tasks.values())

    # ----------------------------------------------------------------- waiting

    def is_settled(self) -> bool:
        """True when every task has been delivered and nothing is queued."""
        return self.undelivered == 0 and not self._inbox and not self._drain_scheduled

    def wait_until_settled(self, timeout: float | None) -> bool:
        """See ``TaskManager.wait_until_settled``."""
        if self.undelivered == 0 and not self._inbox:
            return True
        return self.wait_for(self.is_settled, timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` (a delivery made it true: ``settled`` is notified).

        On the dispatcher's thread the main loop keeps turning meanwhile.
        """
        outcome = self.dispatcher().run_until(predicate, timeout)
        if outcome is not None:
            return outcome
        with self.settled:
            return self.settled.wait_for(predicate, timeout)


def _run_main_call(
    fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:
        logger.exception("exception in a main-thread call %r", fn)


def call_logged(callback: Callable[..., object], *args: Any) -> None:
    """Call ``callback(*args)``; log what it raises (user code must not stop delivery)."""
    try:
        callback(*args)
    except Exception:
        logger.exception("exception in task callback %r", callback)
