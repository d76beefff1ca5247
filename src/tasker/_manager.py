"""TaskManager: starts tasks, tracks them, and delivers their news on the main thread."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, TypeVarTuple, Unpack

from . import _runtime
from ._checks import (
    check_grace,
    check_options,
    check_plain_function,
    check_scheduling,
    check_timeout,
    check_weight,
    describe,
    is_async_callable,
)
from ._context import ExecutionContext, ProgressReport
from ._delivery import Delivery, call_logged
from ._dispatch import Dispatcher
from ._errors import ManagerShutdownError, TaskTimeoutError
from ._flow import (
    DEFAULT_EVENT_BUFFER,
    EventCredit,
    check_event_buffer,
    payload_size,
)
from ._group import Group
from ._local import LocalTasks
from ._owners import Owners, mute
from ._pausing import PauseControl
from ._progress import overall_eta, weighted_progress
from ._scheduling import KeyPolicy, Plan, Scheduler, Ticket
from ._task import CancelReason, StopReason, Task, TaskKind, TaskStatus
from ._timeline import TRACE_HISTORY, Record, build_trace, record, write_json

if TYPE_CHECKING:
    import asyncio

    from ._backend import ExecutionBackend, ProcessBackend
    from ._coroutines import LoopThread
    from ._executor import ExecutorCalls
    from ._main_calls import DelayedCall
    from ._process import ProcessPool
    from ._signal import TasksUpdatedSignal
    from ._threads import ThreadPool

__all__ = ["TaskManager"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
P = ParamSpec("P")

logger = logging.getLogger("tasker")

#: What a cancel must still do once the lock is released: (was pending, held
#: by the scheduler, the task's Gio.Cancellable or None, its resume Event or None).
_Stop = tuple[bool, bool, Any, Any]


class _Default:
    """The type of ``_DEFAULT``: "use the manager's option" for a per-task keyword."""

    def __repr__(self) -> str:
        return "<the manager's setting>"


_DEFAULT = _Default()


class TaskManager:
    """Runs coroutine, thread and process tasks and reports on them on the main thread.

    ``scheduler`` says where callbacks run: ``None`` (the GLib main loop when
    PyGObject is installed, else a private dispatch thread), a dispatcher
    from ``tasker``, an asyncio loop, or any callable ``scheduler(fn, *args)``
    such as ``GLib.idle_add``. Nothing starts until the first task does.
    """

    def __init__(
        self,
        scheduler: Any = None,
        *,
        max_workers: int | None = None,
        max_threads: int | None = None,
        start_method: str | None = None,
        timeout: float | None = None,
        cancel_grace: float = 1.0,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        update_rate: float = 20.0,
        loop: Any = None,
        worker_nice: int = 5,
        process_backend: ProcessBackend | None = None,
        event_buffer: int | None = DEFAULT_EVENT_BUFFER,
        prestart_workers: bool = False,
    ) -> None:
        # The manager lock guards the task table, the key map, the delivery inbox
        # and its scheduling flags (Delivery shares it). It is only held for
        # bookkeeping, never while user code or a backend call runs.
        self._lock = threading.Lock()
        self._tasks: dict[int, Task[Any]] = {}
        # Who decides when a task starts (keys, policies, groups, the waiting queue).
        self._scheduler = Scheduler()
        self._delivery = Delivery(self, scheduler)
        self._pausing = PauseControl(self)
        # Records of the last finished tasks, for write_trace (appended under the lock).
        self._history: deque[Record] = deque(maxlen=TRACE_HISTORY)
        self._owners: Owners | None = None
        self._options: dict[str, Any] = {}
        self._apply_options(
            max_workers=max_workers,
            max_threads=max_threads,
            start_method=start_method,
            timeout=timeout,
            cancel_grace=cancel_grace,
            initializer=initializer,
            initargs=initargs,
            update_rate=update_rate,
            loop=loop,
            worker_nice=worker_nice,
            process_backend=process_backend,
            event_buffer=event_buffer,
            prestart_workers=prestart_workers,
        )
        #: ``handler(sender, tasks=[live tasks], progress=float)`` on the main thread.
        self.tasks_updated: TasksUpdatedSignal = self._delivery.tasks_updated
        #: ``handler(sender, task=finished task)`` on the main thread after its ``when_done``.
        self.task_done: TasksUpdatedSignal = self._delivery.task_done
        self._started = False
        self._shut_down = False
        self._loop_thread: LoopThread | None = None
        self._thread_pool: ThreadPool | None = None
        self._process_pool: ProcessPool | None = None
        # What run_process submits to: the local pool or options["process_backend"].
        self._process_backend: ExecutionBackend | None = None
        self._local = LocalTasks(self)
        self._executor_calls: ExecutorCalls | None = None
        if prestart_workers:
            self.start_workers()

    # ----------------------------------------------------------------- options

    def configure(self, **options: Any) -> None:
        """Change manager options (the keyword arguments of the constructor) before first use.

        Raises ``RuntimeError`` once a task has been started.
        """
        scheduler = options.pop("scheduler", self._delivery.scheduler)
        with self._lock:
            if self._started:
                raise RuntimeError("configure() must be called before the first task starts")
            self._apply_options(**options)
            self._delivery.scheduler = scheduler
        if options.get("prestart_workers"):
            self.start_workers()

    def _apply_options(self, **options: Any) -> None:
        check_options(options)
        self._options.update(options)
        self._delivery.set_update_rate(self._options.get("update_rate", 20.0))

    # ----------------------------------------------------------- starting tasks

    def add_coroutine(
        self,
        coro_fn: Callable[[ExecutionContext, Unpack[Ts]], Awaitable[T]],
        /,
        *args: *Ts,
        key: Hashable | None = None,
        when_done: Callable[[Task[T]], object] | None = None,
        when_event: Callable[[Task[T], str, Any], object] | None = None,
        timeout: float | None = None,
        cancel_grace: float | None = None,
        visible: bool = True,
        weight: float = 1.0,
        event_buffer: int | _Default | None = _DEFAULT,
        policy: KeyPolicy | str | None = None,
        debounce: float | None = None,
        group: Group | None = None,
        owner: object | None = None,
        **kwargs: Any,
    ) -> Task[T]:
        """Run ``await coro_fn(context, *args, **kwargs)`` on the manager's asyncio loop.

        Positional arguments are type-checked against ``coro_fn``; other keyword
        arguments pass through. ``cancel_grace`` is accepted for symmetry and
        unused: a coroutine is cancelled at its next ``await``.
        """
        if not is_async_callable(coro_fn):
            raise TypeError(
                f"add_coroutine() needs an async def function, not {describe(coro_fn)}; "
                "use run_thread() or run_process() for plain functions"
            )
        start = functools.partial(self._hand_coroutine, coro_fn, args, kwargs)
        return self._new_task(
            TaskKind.COROUTINE,
            key,
            when_done,
            when_event,
            timeout,
            cancel_grace,
            start,
            policy=policy,
            debounce=debounce,
            group=group,
            owner=owner,
            visible=visible,
            weight=weight,
            event_buffer=event_buffer,
        )

    def run_thread(
        self,
        func: Callable[[ExecutionContext, Unpack[Ts]], T],
        /,
        *args: *Ts,
        key: Hashable | None = None,
        when_done: Callable[[Task[T]], object] | None = None,
        when_event: Callable[[Task[T], str, Any], object] | None = None,
        timeout: float | None = None,
        cancel_grace: float | None = None,
        visible: bool = True,
        weight: float = 1.0,
        event_buffer: int | _Default | None = _DEFAULT,
        policy: KeyPolicy | str | None = None,
        debounce: float | None = None,
        group: Group | None = None,
        owner: object | None = None,
        **kwargs: Any,
    ) -> Task[T]:
        """Run ``func(context, *args, **kwargs)`` on a worker thread (shared memory, no pickling).

        Cancellation is cooperative through ``context.is_cancelled()``; a
        thread cannot be killed, so ``cancel_grace`` is unused.
        """
        check_plain_function(func, "run_thread")
        start = functools.partial(self._hand_thread, func, args, kwargs)
        return self._new_task(
            TaskKind.THREAD,
            key,
            when_done,
            when_event,
            timeout,
            cancel_grace,
            start,
            policy=policy,
            debounce=debounce,
            group=group,
            owner=owner,
            visible=visible,
            weight=weight,
            event_buffer=event_buffer,
        )

    def run_process(
        self,
        func: Callable[[ExecutionContext, Unpack[Ts]], T],
        /,
        *args: *Ts,
        key: Hashable | None = None,
        when_done: Callable[[Task[T]], object] | None = None,
        when_event: Callable[[Task[T], str, Any], object] | None = None,
        timeout: float | None = None,
        cancel_grace: float | None = None,
        visible: bool = True,
        weight: float = 1.0,
        event_buffer: int | _Default | None = _DEFAULT,
        policy: KeyPolicy | str | None = None,
        debounce: float | None = None,
        group: Group | None = None,
        owner: object | None = None,
        **kwargs: Any,
    ) -> Task[T]:
        """Run ``func(context, *args, **kwargs)`` in a worker process.

        ``func``, its arguments and its result must be picklable. A task asked
        to stop that has not returned ``cancel_grace`` seconds later has its
        worker killed and replaced.
        """
        check_plain_function(func, "run_process")
        grace = self._options["cancel_grace"] if cancel_grace is None else cancel_grace
        start = functools.partial(self._hand_process, func, args, kwargs, grace)
        return self._new_task(
            TaskKind.PROCESS,
            key,
            when_done,
            when_event,
            timeout,
            cancel_grace,
            start,
            policy=policy,
            debounce=debounce,
            group=group,
            owner=owner,
            visible=visible,
            weight=weight,
            event_buffer=event_buffer,
        )

    def start_workers(self, n: int | None = None) -> None:
        """Start worker processes now, ahead of need: up to ``n`` (``None``: ``max_workers``).

        Returns at once; the workers start in the background. A process task
        submitted once they are up pays no pool start. Call it, say, from
        ``Gtk.Application``'s ``startup``. Workers already running count toward
        ``n``. Does nothing with a ``process_backend`` (it has workers of its
        own), in a worker process, or while a ``multiprocessing`` child imports
        the main module.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive int or None, not {n!r}")
        if self._options["process_backend"] is not None or _runtime.importing_main_in_child():
            return
        # The way to the main thread too, as the first task would take it: a
        # bad scheduler fails here, and a no-op through the dispatcher lets
        # the toolkit set up its first source now (PyGObject's first idle
        # source alone costs about 0.2 ms), not when the first result arrives.
        self._delivery.dispatch(0.0, _nothing)
        with self._lock:
            if self._shut_down:
                raise ManagerShutdownError("this TaskManager has been shut down")
            self._start_locked()  # the options are fixed from now on, as after a first task
        self._processes().start_workers(n)

    def _new_task(
        self,
        kind: TaskKind,
        key: Hashable | None,
        when_done: Callable[[Task[T]], object] | None,
        when_event: Callable[[Task[T], str, Any], object] | None,
        timeout: float | None,
        cancel_grace: float | None,
        start: Callable[[Task[Any]], object],
        *,
        policy: KeyPolicy | str | None = None,
        debounce: float | None = None,
        group: Group | None = None,
        owner: object | None = None,
        visible: bool = True,
        weight: float = 1.0,
        event_buffer: int | _Default | None = _DEFAULT,
    ) -> Task[T]:
        """Check the call, register the task and start it, or let the scheduler hold it.

        ``start(task)`` hands the task to its backend; the scheduler calls it
        later for a task that may not start yet. Under ``policy="keep"`` the
        live task with the key may be returned instead of a new one.
        """
        if key is not None:
            hash(key)  # an unhashable key fails here, with Python's own TypeError
        for name, callback in (("when_done", when_done), ("when_event", when_event)):
            if callback is not None and not callable(callback):
                raise TypeError(f"{name} must be callable, not {type(callback).__name__}")
        check_timeout(timeout)
        if cancel_grace is not None:
            check_grace(cancel_grace)
        if visible is not True and visible is not False:
            raise TypeError(f"visible must be True or False, not {visible!r}")
        check_weight(weight)
        if event_buffer is _DEFAULT:
            window = self._options["event_buffer"]
        else:
            window = check_event_buffer(event_buffer)
        scheduled = policy is not None or debounce is not None or group is not None
        if scheduled or owner is not None:
            key_policy = check_scheduling(key, policy, debounce, group)
        # A bad scheduler fails here, before the task is registered, not after.
        delivery = self._delivery
        delivery.dispatcher()
        record = None if owner is None else self._owner_records().record_for(owner)
        report = ProgressReport(None)
        report.notify = functools.partial(delivery.mark_dirty, report)
        task: Task[T] = Task(
            self,
            kind,
            key,
            when_done,
            when_event,
            report,
            timeout if timeout is not None else self._options["timeout"],
            visible,
            float(weight),
            EventCredit(window),
        )
        report.task = task  # the update tick feeds the task's rate estimator from its report
        ticket = None
        if scheduled or record is not None:
            lane = None if group is None else group._lane
            ticket = Ticket(start, key_policy, debounce, lane, record)
            ticket.group = group
            task._sched = ticket
        scheduler = self._scheduler
        plan = None
        with self._lock:
            if self._shut_down:
                raise ManagerShutdownError("this TaskManager has been shut down")
            if group is not None and group._manager is not self:
                if group._manager is not None:
                    raise ValueError(f"{group!r} belongs to another TaskManager")
                group._manager = self
            if ticket is not None and key_policy is KeyPolicy.KEEP:
                kept = self._kept_locked(task.key)
                if kept is not None:
                    return kept  # nothing registered, none of this call's callbacks attached
            self._start_locked()
            self._tasks[task.id] = task
            delivery.undelivered += 1
            if not visible:
                delivery.hidden += 1
            # The new task is announced by the update tick, under the same
            # lock: one acquisition per start.
            delay = delivery.announce_locked()
            if ticket is None and scheduler.admit_plain_locked(task):
                stops = None
            else:
                plan = Plan()
                if group is not None:
                    group._live[task.id] = task
                if record is not None:
                    record.tasks.add(task)
                if record is not None and record.gone:
                    mute(task)
                    stops = self._stops_locked([(task, CancelReason.OWNER_GONE)])
                else:
                    scheduler.admit_locked(task, start, ticket, plan)
                    stops = self._stops_locked(plan.cancels) if plan.cancels else None
        if delay is not None:
            delivery.arm_tick(delay)
        if plan is None:
            start(task)
            return task
        self._carry_out(stops, plan.starts)
        if ticket is not None and debounce is not None and not task._status.is_final:
            self._loop().call_later(debounce, self._debounced, task)
        return task

    def _start_locked(self) -> None:
        """First use: options are fixed from now on, and shutdown runs at interpreter exit."""
        if not self._started:
            self._started = True
            atexit.register(_shutdown_at_exit, weakref.ref(self))
            cpus = os.cpu_count() or 1
            capacity = self._scheduler.capacity
            capacity[TaskKind.THREAD] = self._options["max_threads"] or min(32, cpus + 4)
            capacity[TaskKind.PROCESS] = self._options["max_workers"] or cpus

    def _kept_locked(self, key: Hashable) -> Task[Any] | None:
        """Under ``policy="keep"``: the live task a new call returns, if any."""
        live = [t for t in self._scheduler.live_locked(key) if t._stop_reason is None]
        if not live:
            return None
        head = self._scheduler.head_locked(key)
        return head if head in live else live[0]

    def _debounced(self, task: Task[Any]) -> None:
        """The quiet time of a debounced task is over (on the coroutine loop's thread)."""
        plan = Plan()
        with self._lock:
            self._scheduler.debounced_locked(task, plan)
            stops = self._stops_locked(plan.cancels)
        self._carry_out(stops, plan.starts)

    def _carry_out(
        self,
        stops: list[tuple[Task[Any], _Stop]] | None,
        starts: Sequence[tuple[Task[Any], Callable[[Task[Any]], object]]],
    ) -> None:
        """Do what the scheduler decided under the lock: cancel first, then start."""
        if stops:
            for stopped, how in stops:
                self._stopped(stopped, how)
        for task, start in starts:
            try:
                start(task)
            except Exception:
                # A start that raises has failed its task (see _hand_process); the
                # tasks after it still start.
                logger.exception("tasker could not start task %r", task.key)

    # the backends' front doors: start(task) callables built by run_*

    def _hand_coroutine(
        self,
        coro_fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task: Task[Any],
    ) -> None:
        if not self._loop().call_soon(self._local.start_coroutine, task, coro_fn, args, kwargs):
            self._refused(task)

    def _hand_thread(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task: Task[Any],
    ) -> None:
        if not self._threads().submit(
            functools.partial(self._local.run_thread_task, task, func, args, kwargs)
        ):
            self._refused(task)

    def _hand_process(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        grace: float,
        task: Task[Any],
    ) -> None:
        try:
            backend = self._process_runner()
        except BaseException as error:  # e.g. a process_backend that serves another manager
            self._finish(task, error=error)
            raise
        backend.submit(task, func, args, kwargs, timeout=task.timeout, cancel_grace=grace)

    def _refused(self, task: Task[Any]) -> None:
        """The backend stopped under us: shutdown() ran after ``task`` was registered.

        shutdown() has cancelled the task already; this only makes sure it is final.
        """
        self._finish(task, error=ManagerShutdownError("the manager shut down as the task started"))

    def _ignored_task(self, key: Hashable | None) -> Task[Any]:
        """A task that never ran: what module-level starts inside a worker process get."""
        report = ProgressReport(lambda: None)
        task: Task[Any] = Task(self, TaskKind.THREAD, key, None, None, report)
        task._status = TaskStatus.CANCELLED
        return task

    # ---------------------------------------------------------- the main thread

    def schedule_on_main_thread(
        self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Run ``fn(*args, **kwargs)`` on the main thread (the dispatcher's), soon.

        Never runs it at once, even on the main thread. Calls made from one
        thread run in the order they were made, after the events and
        completions queued before them. An exception ``fn`` raises is logged.
        After ``shutdown()`` the call is dropped.
        """
        self._check_main_call(fn, "schedule_on_main_thread")
        self._delivery.schedule_call(fn, args, kwargs)

    async def run_on_main_thread(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the main thread and return its result.

        Await it from any asyncio loop (a coroutine task's, or the
        application's own); ``fn``'s exception is raised here. On the main
        thread itself ``fn`` runs at once. Raises ``ManagerShutdownError`` if
        the manager shuts down before ``fn`` runs. Cancelling the awaiting
        coroutine before ``fn`` has started means it never runs.
        """
        self._check_main_call(fn, "run_on_main_thread")
        result: T = await self._delivery.run_call(fn, args, kwargs)
        return result

    def call_on_main_thread(
        self, fn: Callable[..., T], /, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on the main thread, wait, and return its result.

        For thread tasks and other threads; ``fn``'s exception is raised here.
        On the main thread itself ``fn`` runs at once (waiting there would
        never end). Raises ``TimeoutError`` when ``timeout`` seconds pass
        first (``fn`` then never runs, or its outcome is discarded if it had
        started), and ``ManagerShutdownError`` when the manager shuts down
        before ``fn`` runs. ``timeout`` belongs to this method: it is not
        passed to ``fn``.
        """
        self._check_main_call(fn, "call_on_main_thread")
        if timeout is not None:
            check_grace(timeout, "timeout")
        result: T = self._delivery.call(fn, args, kwargs, timeout)
        return result

    def schedule_delayed_on_main_thread(
        self, delay: float, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> DelayedCall:
        """Run ``fn(*args, **kwargs)`` on the main thread after ``delay`` seconds.

        Returns a handle: ``handle.cancel()`` is True if it stopped the call
        before it ran. An exception ``fn`` raises is logged. Calls still
        pending at ``shutdown()`` are dropped.
        """
        check_grace(delay, "delay")
        self._check_main_call(fn, "schedule_delayed_on_main_thread")
        return self._delivery.schedule_delayed(float(delay), fn, args, kwargs)

    def _check_main_call(self, fn: object, method: str) -> None:
        if not callable(fn):
            raise TypeError(f"{method}() needs a callable, not a {type(fn).__name__}")
        if not self._started:  # read without the lock: it only ever turns True
            with self._lock:
                self._start_locked()  # the scheduler is in use: options are fixed from now on

    # ------------------------------------------------------------- public queries

    def cancel_task(self, key: Hashable) -> bool:
        """Cancel every live task with ``key`` (running and waiting); True if there was one."""
        with self._lock:
            live = self._scheduler.live_locked(key)
            stops = self._stops_locked([(task, CancelReason.USER) for task in live])
        self._carry_out(stops, [])
        return bool(stops)

    def cancel_all(self) -> int:
        """Cancel every live task (hidden ones too); return how many were cancelled."""
        with self._lock:
            # All at once, so that no waiting task starts as another one ends.
            live = _waiting_first(list(self._tasks.values()))
            stops = self._stops_locked([(t, CancelReason.USER) for t in live])
        self._carry_out(stops, [])
        return len(stops)

    def restart_worker_pool(self) -> None:
        """Move process work to fresh worker processes, losing and repeating nothing.

        New process tasks go to new workers at once; tasks still waiting for
        a worker go to the new workers too. Tasks running on the old workers
        finish there (with their usual results and callbacks), then those
        workers exit. Use it when the workers' imported code or initializer
        state is stale (an add-on was installed, say). Does nothing before
        the first process task. A ``process_backend`` restarts if it has a
        ``restart()`` method; one without raises ``NotImplementedError``.
        """
        with self._lock:
            if self._shut_down:
                raise ManagerShutdownError("this TaskManager has been shut down")
            backend: Any = self._process_backend or self._process_pool
            chosen = self._options["process_backend"]
        if backend is None:
            return  # nothing started yet: the first workers will be fresh anyway
        restart = getattr(backend, "restart", None)
        if restart is None:
            name = type(chosen if chosen is not None else backend).__name__
            raise NotImplementedError(f"the process backend {name} cannot restart its workers")
        restart()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio event loop coroutine tasks run on.

        tasker's own loop thread, started on first access, or the application's
        loop when the manager was configured with ``loop=``.
        """
        with self._lock:
            if self._shut_down and self._loop_thread is None:
                raise ManagerShutdownError("this TaskManager has been shut down")
            self._start_locked()  # the loop option is in use from now on
        return self._loop().loop

    async def run_in_executor(self, fn: Callable[[Unpack[Ts]], T], /, *args: *Ts) -> T:
        """Run ``fn(*args)`` on tasker's worker threads and return its result.

        Await it from any asyncio loop (a coroutine task's, or the
        application's own). ``fn``'s exception is raised here. The threads are
        those of ``run_thread``; the call waits for a free one. Raises
        ``ManagerShutdownError`` if the manager shuts down before it starts.
        """
        if not callable(fn):
            raise TypeError(f"run_in_executor() needs a callable, not a {type(fn).__name__}")
        with self._lock:
            if self._shut_down:
                raise ManagerShutdownError("this TaskManager has been shut down")
            self._start_locked()
            calls = self._executor_calls
            if calls is None:
                from ._executor import ExecutorCalls

                calls = self._executor_calls = ExecutorCalls()
        result: T = await calls.run(self._threads(), fn, args)
        return result

    def get_task(self, key: Hashable) -> Task[Any] | None:
        """Return the live task with ``key`` (the running one, else the oldest waiting), or None."""
        with self._lock:
            return self._scheduler.head_locked(key)

    def __iter__(self) -> Iterator[Task[Any]]:
        """Iterate over a snapshot of the live tasks, oldest first."""
        with self._lock:
            return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        """Return the number of live tasks."""
        with self._lock:
            return len(self._tasks)

    def has_tasks(self) -> bool:
        """True while any task is live (not finished, or its ``when_done`` not yet run)."""
        with self._lock:
            return bool(self._tasks)

    def get_overall_progress(self) -> float:
        """Return the progress of all work since the manager was last idle (1.0 when idle).

        Tasks finished meanwhile count as done, so the value never jumps back
        when one of several tasks ends.
        """
        with self._lock:
            return self._overall_progress()

    def _overall_progress(self) -> float:
        """The weighted overall progress of the visible tasks; called with the lock held."""
        tasks = self._delivery.visible_tasks_locked()
        return weighted_progress(self._delivery.done_since_idle, tasks)

    def get_overall_eta(self) -> float | None:
        """Return the estimated seconds until every live task is done, or None.

        Live tasks run side by side, so this is the largest of their ETAs
        (hidden tasks, ``visible=False``, left out as in the overall progress)
        ``Task.get_eta``; None while any of them has no ETA yet (a pending
        task has none), 0.0 when there is no live task.
        """
        with self._lock:
            tasks = self._delivery.visible_tasks_locked()
        return overall_eta(tasks)

    # ------------------------------------------------------------ pause, resume

    def pause_all(self, freeze: bool = False) -> int:
        """Pause every live task (``Task.pause``); returns how many were paused.

        With ``freeze=True`` process tasks are frozen (SIGSTOP) and the others
        paused cooperatively. Tasks on a backend that cannot pause
        (``tasker.dask``) are left running.
        """
        with self._lock:
            tasks = list(self._tasks.values())
        pausing = self._pausing
        return sum(
            pausing.pause(task, freeze and task.kind is TaskKind.PROCESS)
            for task in tasks
            if pausing.can_pause(task)  # process tasks on tasker.dask cannot pause
        )

    def resume_all(self) -> int:
        """Resume every paused or pausing task; returns how many were."""
        with self._lock:
            tasks = list(self._tasks.values())
        return sum(self._pausing.resume(task) for task in tasks)

    def _pause(self, task: Task[Any], freeze: bool) -> bool:
        return self._pausing.pause(task, freeze)

    def _resume(self, task: Task[Any]) -> bool:
        return self._pausing.resume(task)

    def _mark_paused(self, task: Task[Any]) -> None:
        """A backend reports that ``task`` reached a checkpoint and is paused."""
        self._pausing.mark_paused(task)

    # ------------------------------------------------------------------- trace

    def write_trace(self, path: str | os.PathLike[str], last: int = 1000) -> int:
        """Write the last ``last`` tasks (finished and live) to ``path`` as Chrome trace JSON.

        One track per worker (process, thread, the coroutine loop); open the
        file in https://ui.perfetto.dev or chrome://tracing, or summarise it
        with ``python -m tasker.trace FILE``. The manager remembers the last
        10,000 finished tasks. Returns the number of tasks written.
        """
        if isinstance(last, bool) or not isinstance(last, int):
            raise TypeError(f"last must be an int, not {type(last).__name__}")
        if last < 0:
            raise ValueError(f"last must be 0 or more, not {last!r}")
        os.fspath(path)  # a bad path type fails here, with Python's own TypeError
        with self._lock:
            records = [
                *self._history,
                *(record(t) for t in self._tasks.values() if not t._status.is_final),
            ]
        records.sort(key=lambda r: r[4])  # by creation time
        records = records[len(records) - last :] if last else []
        write_json(path, build_trace(records))
        return len(records)

    def wait_until_settled(self, timeout: float | None = None) -> bool:
        """Wait until every task has finished and its ``when_done`` has run.

        On the main thread it keeps the main loop turning meanwhile. Returns
        False if ``timeout`` seconds pass first.
        """
        return self._delivery.wait_until_settled(timeout)

    # ------------------------------------------------------------- cancellation

    def _cancel(
        self,
        task: Task[Any],
        reason: StopReason = StopReason.CANCEL,
        why: CancelReason = CancelReason.USER,
    ) -> bool:
        """Ask ``task`` to stop, ``why`` becoming its ``cancel_reason``; False if stopping."""
        with self._lock:
            how = self._stop_locked(task, reason, why)
        if how is None:
            return False
        self._stopped(task, how)
        return True

    def _stops_locked(
        self, cancels: Sequence[tuple[Task[Any], CancelReason]]
    ) -> list[tuple[Task[Any], _Stop]]:
        """Mark several tasks stopping in one acquisition (so none starts meanwhile)."""
        stops = []
        for task, why in cancels:
            how = self._stop_locked(task, StopReason.CANCEL, why)
            if how is not None:
                stops.append((task, how))
        return stops

    def _stop_locked(self, task: Task[Any], reason: StopReason, why: CancelReason) -> _Stop | None:
        """The check-and-set of a cancel; what ``_stopped`` must do, or None if already stopping."""
        if task._status.is_final or task._stop_reason is not None:
            return None
        task._stop_reason = reason
        task._cancel_reason = why
        task._cancel_flag[0] = 1
        task._cancel_requested = time.monotonic()
        # A task the scheduler still holds never reached a backend: it just ends.
        held = task._sched is not None and self._scheduler.withdraw_locked(task)
        # task._resumed: a paused thread task wakes up to see the cancel.
        return (task._status is TaskStatus.PENDING, held, task._cancellable, task._resumed)

    def _stopped(self, task: Task[Any], how: _Stop) -> None:
        """Carry a cancel to the task's backend (called without the lock)."""
        was_pending, held, cancellable, resumed = how
        if resumed is not None:
            resumed.set()
        if cancellable is not None:
            cancellable.cancel()
        self._delivery.post(None)  # views show "cancelling" now, not at the task's next report
        if task.kind is not TaskKind.PROCESS:
            task._credit.stopped()  # a send_event waiting for credit returns now (the pool's own)
        if held:
            self._finish(task)
        elif task.kind is TaskKind.PROCESS:
            if self._process_backend is not None:
                self._process_backend.cancel(task)
        elif was_pending:
            self._finish(task)
        elif task.kind is TaskKind.COROUTINE:
            self._loop().call_soon(self._local.cancel_coroutine, task)

    def _mark_timed_out(self, task: Task[Any]) -> bool:
        """Record that ``task`` ran past its timeout; False if it is already stopping."""
        with self._lock:
            if task._status.is_final or task._stop_reason is not None:
                return False
            task._stop_reason = StopReason.TIMEOUT
            task._cancel_flag[0] = 1
            task._cancel_requested = time.monotonic()
            cancellable = task._cancellable
            resumed = task._resumed
        if resumed is not None:
            resumed.set()
        if cancellable is not None:
            cancellable.cancel()
        if task.kind is not TaskKind.PROCESS:
            task._credit.stopped()  # the pool wakes its worker once it has set the worker's flag
        return True

    # ------------------------------------------------- the state machine proper

    def _mark_running(
        self,
        task: Task[Any],
        worker: int | str | None = None,
        restart: Callable[[], object] | None = None,
    ) -> bool:
        """Move ``task`` from pending to running; False if it must not run (now).

        ``worker`` names where it runs (a pid, a thread name) for its timings.
        A paused task is held and not started: ``restart()`` starts it again
        once resumed.
        """
        delay = None
        with self._lock:
            if task._status is not TaskStatus.PENDING:
                return False
            stopping = task._stop_reason is not None
            if not stopping:
                if self._pausing.hold_locked(task, restart):
                    return False
                task._status = TaskStatus.RUNNING
                task._started = time.monotonic()
                task._worker = worker
                # Announced by the update tick, in the same lock.
                delay = self._delivery.announce_locked()
        if stopping:
            self._finish(task)
            return False
        if delay is not None:
            self._delivery.arm_tick(delay)
        return True

    def _finish(
        self,
        task: Task[Any],
        *,
        result: Any = None,
        error: BaseException | None = None,
        cancelled: bool = False,
    ) -> bool:
        """Give ``task`` its one final status from its raw outcome and stop reason.

        Returns False, changing nothing, if the task was final already.
        """
        with self._lock:
            if task._status.is_final:
                return False
            reason = task._stop_reason
            if reason is StopReason.CANCEL or (cancelled and reason is None):
                task._status = TaskStatus.CANCELLED
            elif reason is StopReason.TIMEOUT:
                timeout_error = TaskTimeoutError(task.timeout or 0.0)
                timeout_error.__cause__ = error
                task._error = timeout_error
                task._status = TaskStatus.FAILED
            elif error is not None:
                task._error = error
                task._status = TaskStatus.FAILED
            else:
                task._result = result
                task._status = TaskStatus.COMPLETED
            # Its slot and key are free: what waited for them may start now.
            plan = self._scheduler.finished_locked(task)
            ticket = task._sched
            if ticket is not None and ticket.owner is not None:
                ticket.owner.tasks.discard(task)
            task._finished = time.monotonic()
            resumed = self._pausing.finished_locked(task)
            self._history.append(record(task))
            callbacks, task._done_callbacks = task._done_callbacks, None
            drain = self._delivery.queue_done_locked(task)
        if resumed is not None:
            resumed.set()
        if callbacks:
            for callback in callbacks:
                call_logged(callback, task)
        if drain is not None:
            self._delivery.arm_drain(drain)
        if plan is not None:
            self._carry_out(None, plan.starts)
        return True

    def _add_final_callback(self, task: Task[Any], callback: Callable[[Task[Any]], object]) -> None:
        """Call ``callback(task)`` in the finishing thread once the task is final."""
        with self._lock:
            if not task._status.is_final:
                if task._done_callbacks is None:
                    task._done_callbacks = []
                task._done_callbacks.append(callback)
                return
        callback(task)

    # ------------------------------------- delivery (host calls, any thread)

    def _deliver_event(
        self,
        task: Task[Any],
        name: str,
        data: Any,
        size: int | None = None,
        coalesce: bool = False,
    ) -> None:
        """Queue ``task.when_event(task, name, data)`` for the main thread, in order.

        ``size`` bytes of the task's event credit are spent already; None (a
        backend without flow control, e.g. Dask): counted and spent here.
        """
        if size is None:
            size = payload_size(data)
            task._credit.spend(size)
        self._delivery.deliver_event(task, name, data, size, coalesce)

    def _post(self, item: Callable[[], object] | None) -> None:
        """Queue ``item`` for the main thread; None just announces a status change."""
        self._delivery.post(item)

    def _mark_dirty(self, report: ProgressReport, urgent: bool = False) -> None:
        """Called from any thread when a task's progress or message changes."""
        self._delivery.mark_dirty(report, urgent)

    # ------------------------------------------------------------------ backends

    def _get_dispatcher(self) -> Dispatcher:
        return self._delivery.dispatcher()

    def _loop(self) -> LoopThread:
        if self._loop_thread is None:
            from ._coroutines import LoopThread

            with self._lock:
                if self._loop_thread is None:
                    self._loop_thread = LoopThread(self._options["loop"])
        return self._loop_thread

    def _threads(self) -> ThreadPool:
        if self._thread_pool is None:
            from ._threads import ThreadPool

            with self._lock:
                if self._thread_pool is None:
                    size = self._options["max_threads"] or min(32, (os.cpu_count() or 1) + 4)
                    self._thread_pool = ThreadPool(size)
        return self._thread_pool

    def _processes(self) -> ProcessPool:
        if self._process_pool is None:
            from ._process import ProcessPool

            with self._lock:
                if self._process_pool is None:
                    options = self._options
                    self._process_pool = ProcessPool(
                        self,
                        max_workers=options["max_workers"],
                        start_method=options["start_method"],
                        initializer=options["initializer"],
                        initargs=options["initargs"],
                        update_rate=options["update_rate"],
                        worker_nice=options["worker_nice"],
                    )
        return self._process_pool

    def _process_runner(self) -> ExecutionBackend:
        """What ``run_process`` submits to: the ``process_backend`` option, or the pool."""
        backend = self._process_backend
        if backend is None:
            chosen = self._options["process_backend"]
            if chosen is None:
                backend = self._processes()
                self._process_backend = backend
            else:
                with self._lock:
                    backend = self._process_backend
                    if backend is None:
                        # attach() only stores its arguments: the lock is held briefly.
                        chosen.attach(self, update_rate=self._options["update_rate"])
                        backend = self._process_backend = chosen
        return backend

    # ------------------------------------------------------------ groups, owners

    def _scheduled_delivered(self, task: Task[Any]) -> None:
        """``task``'s ``when_done`` has run (main thread): tell its group; maybe it is idle now."""
        group = task._sched.group
        if group is None:
            return
        with self._lock:
            live = group._live
            if live.pop(task.id, None) is None:
                return
            group._done_since_idle += 1
            if live:
                return
            group._done_since_idle = 0
            waiters, group._waiters = group._waiters, []
            self._delivery.settled.notify_all()  # wakes group.wait_until_settled()
        for waiter in waiters:
            call_logged(waiter)
        signal = group._idle
        if signal is not None and signal.receivers:
            for receiver in signal.receivers_for(group):
                call_logged(receiver, group)

    def _set_group_limit(self, group: Group, limit: int | None) -> None:
        """``group.max_concurrency = limit``: takes effect at once."""
        plan = Plan()
        with self._lock:
            group._max_concurrency = limit
            group._lane.limit = sys.maxsize if limit is None else limit
            self._scheduler.release_locked(plan)
        self._carry_out(None, plan.starts)

    def _cancel_group(self, group: Group) -> int:
        """``group.cancel()``: every live task of the group, in one acquisition."""
        with self._lock:
            cancels = [(t, CancelReason.GROUP) for t in group._live.values()]
            stops = self._stops_locked(cancels)
        self._carry_out(stops, [])
        return len(stops)

    def _owner_records(self) -> Owners:
        owners = self._owners
        if owners is None:
            with self._lock:
                if self._owners is None:
                    self._owners = Owners(self._lock, self._owner_gone)
                owners = self._owners
        return owners

    def _owner_gone(self, tasks: list[Task[Any]]) -> None:
        """An owner went away (on the owners thread): cancel its tasks, muted already."""
        with self._lock:
            stops = self._stops_locked([(t, CancelReason.OWNER_GONE) for t in tasks])
        self._carry_out(stops, [])

    # ------------------------------------------------------------------ shutdown

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every task, stop workers and threads, and deliver the last callbacks.

        Safe to call more than once and from any thread; also run at
        interpreter exit. Afterwards starting a task raises
        ``ManagerShutdownError``.
        """
        check_grace(timeout, "timeout")  # before anything changes: a bad value stops nothing
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            live = _waiting_first(list(self._tasks.values()))
            # All at once, so that no waiting task starts as another one ends.
            stops = self._stops_locked([(task, CancelReason.SHUTDOWN) for task in live])
        # First, so a thread blocked in call_on_main_thread is freed (with
        # ManagerShutdownError) and does not hold up the joins below.
        self._delivery.refuse_calls()
        deadline = time.monotonic() + timeout
        self._carry_out(stops, [])
        if self._owners is not None:
            self._owners.stop(max(0.0, deadline - time.monotonic()))
        backends = {id(b): b for b in (self._process_backend, self._process_pool) if b}
        for backend in backends.values():
            backend.shutdown(timeout)
        if self._thread_pool is not None:
            stuck = self._thread_pool.stop(max(0.0, deadline - time.monotonic()))
            if self._executor_calls is not None:
                self._executor_calls.abandon_all()
            if stuck:
                stuck_tasks = [
                    t for t in live if t.kind is TaskKind.THREAD and not t._status.is_final
                ]
                logger.warning(
                    "%d thread task(s) ignored cancellation and are left running on %s; "
                    "they end cancelled now and what they return is discarded: %s",
                    len(stuck_tasks),
                    ", ".join(t.name for t in stuck),
                    ", ".join(repr(t.key) for t in stuck_tasks),
                )
                # Every task ends in one final status, and shutdown leaves none live.
                for task in stuck_tasks:
                    self._finish(task, cancelled=True)
        if self._loop_thread is not None:
            stopped = self._loop_thread.stop(max(0.1, deadline - time.monotonic()))
            if stopped and self._options["loop"] is None:
                # A coroutine that swallowed its cancellation can never run again
                # now that our private loop is closed: it ends cancelled here.
                stuck_coroutines = [
                    t for t in live if t.kind is TaskKind.COROUTINE and not t._status.is_final
                ]
                if stuck_coroutines:
                    logger.warning(
                        "%d coroutine task(s) ignored cancellation; their loop is closed: %s",
                        len(stuck_coroutines),
                        ", ".join(repr(t.key) for t in stuck_coroutines),
                    )
                for task in stuck_coroutines:
                    self._finish(task, cancelled=True)
        # Let the final when_done callbacks run where they belong, if we can.
        self._delivery.close(max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> TaskManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _waiting_first(tasks: list[Task[Any]]) -> list[Task[Any]]:
    """Pending tasks before running ones, for cancelling them all.

    A worker freed by a cancelled running task must not start one of the
    waiting tasks before that one's own cancellation has arrived.
    """
    return sorted(tasks, key=lambda task: task._status is not TaskStatus.PENDING)


def _shutdown_at_exit(ref: weakref.ref[TaskManager]) -> None:
    manager = ref()
    if manager is not None:
        manager.shutdown(timeout=2.0)


def _nothing() -> None:
    """A main-thread call that does nothing (start_workers primes the dispatcher with it)."""
