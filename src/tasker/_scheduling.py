"""When a task may start: key policies, debounce, group limits, priorities, the waiting queue.

A submitted task meets the ``Scheduler`` before any backend. Only a task that
may start *now* is handed on (the manager calls its ``start`` callable);
the others stay ``pending`` here, in one of three places:

* **debouncing** — the newest call for a key, until its quiet time passes;
* **behind its key** — ``enqueue`` and ``keep_latest`` tasks wait until every
  earlier live task with their key has finished;
* **waiting for a slot** — its group is at ``max_concurrency``, or its pool
  has no free worker while other tasks of its kind wait. Among these a higher
  priority starts first, FIFO within a priority (one sequence number for all
  kinds).

A plain task (no policy, debounce, group or owner) whose key is free and
whose kind has nothing waiting is handed on at once, as before 0.2: the
fast path costs a dict lookup and two counter updates.

Everything here runs under the manager lock (methods named ``*_locked``),
and never calls a backend or user code: it returns what the manager is to
cancel and start once the lock is released.
"""

from __future__ import annotations

import enum
import itertools
import sys
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from ._task import CancelReason, Task, TaskKind

if TYPE_CHECKING:
    from ._owners import OwnerRecord

__all__ = ["KeyPolicy", "Lane", "Plan", "Scheduler", "Ticket"]

_UNLIMITED = sys.maxsize


class KeyPolicy(enum.StrEnum):
    """What a new task does when a live task has the same key (``policy=``).

    Compares equal to the plain strings, so ``policy="keep"`` works too.
    """

    #: Cancel the live task(s) with the key and start the new one (the default).
    REPLACE = "replace"
    #: Start nothing while a task with the key is live; return the live task.
    KEEP = "keep"
    #: Wait until every earlier live task with the key has finished; in call order.
    ENQUEUE = "enqueue"
    #: Wait behind the running task; a newer call replaces the one waiting.
    KEEP_LATEST = "keep_latest"


# Where a ticket's task is (Ticket.state).
DEBOUNCING = 1  # in _Key.debouncing, its quiet time not over
KEY_WAIT = 2  # in _Key.waiting
SLOT_WAIT = 3  # in a lane's queue
HANDED = 4  # handed to its backend
WITHDRAWN = 5  # cancelled before it was handed on


class Lane:
    """The scheduling side of a group (or of the tasks without one): limit, priority, queues."""

    __slots__ = ("limit", "priority", "queues", "running", "waiting")

    def __init__(self, priority: int = 0, limit: int | None = None) -> None:
        self.priority = priority
        self.limit = _UNLIMITED if limit is None else limit
        #: Tasks handed on and not yet final.
        self.running = 0
        #: Tasks waiting for a slot, in all queues.
        self.waiting = 0
        self.queues: dict[TaskKind, deque[Task[Any]]] = {kind: deque() for kind in TaskKind}


class Ticket:
    """A task's scheduling state; only tasks started with a policy, debounce, group or owner
    (or that had to wait) have one."""

    __slots__ = ("debounce", "group", "lane", "owner", "policy", "seq", "start", "state")

    def __init__(
        self,
        start: Callable[[Task[Any]], object],
        policy: KeyPolicy,
        debounce: float | None,
        lane: Lane | None,
        owner: OwnerRecord | None,
    ) -> None:
        self.start = start
        self.policy = policy
        self.debounce = debounce
        self.lane = lane
        self.owner = owner
        self.group: Any = None  # the public Group of ``lane``
        self.seq = 0
        self.state = 0


class _Key:
    """The live tasks of one key once more than one call has used it."""

    __slots__ = ("active", "debouncing", "waiting")

    def __init__(self) -> None:
        #: Handed on or waiting for a slot, not yet final; in admission order.
        self.active: list[Task[Any]] = []
        #: Waiting behind ``active`` (enqueue, keep_latest), in call order.
        self.waiting: deque[Task[Any]] = deque()
        self.debouncing: Task[Any] | None = None

    def head(self) -> Task[Any] | None:
        if self.active:
            return self.active[-1]
        if self.waiting:
            return self.waiting[0]
        return self.debouncing

    def live(self) -> list[Task[Any]]:
        tasks = [*self.active, *self.waiting]
        if self.debouncing is not None:
            tasks.append(self.debouncing)
        return tasks

    def empty(self) -> bool:
        return not self.active and not self.waiting and self.debouncing is None


_NOTHING: tuple[()] = ()


class Plan:
    """What the manager does once the lock is released: cancel these, start those.

    The lists are made on first use: most submits cancel nothing (fewer
    objects per submit means fewer garbage collections).
    """

    __slots__ = ("cancels", "starts")

    def __init__(self) -> None:
        self.cancels: list[tuple[Task[Any], CancelReason]] | tuple[()] = _NOTHING
        self.starts: list[tuple[Task[Any], Callable[[Task[Any]], object]]] | tuple[()] = _NOTHING

    def cancel(self, task: Task[Any], why: CancelReason) -> None:
        """Cancel ``task`` (with ``why`` as its reason) once the lock is released."""
        if not self.cancels:
            self.cancels = []
        self.cancels.append((task, why))

    def start(self, task: Task[Any], start: Callable[[Task[Any]], object]) -> None:
        """Hand ``task`` to its backend once the lock is released."""
        if not self.starts:
            self.starts = []
        self.starts.append((task, start))


class Scheduler:
    """Decides when each task starts (see the module docstring). Guarded by the manager lock."""

    def __init__(self) -> None:
        #: key -> its one live plain task, or a _Key once it needs more.
        self.keys: dict[Hashable, Task[Any] | _Key] = {}
        #: Tasks handed to each backend and not yet final.
        self.inflight: dict[TaskKind, int] = dict.fromkeys(TaskKind, 0)
        #: Tasks waiting for a slot, per kind.
        self.waiting: dict[TaskKind, int] = dict.fromkeys(TaskKind, 0)
        self.capacity: dict[TaskKind, int] = dict.fromkeys(TaskKind, _UNLIMITED)
        self._ungrouped = Lane()
        #: Lanes with tasks waiting for a slot (insertion-ordered set).
        self._lanes: dict[Lane, None] = {}
        self._seq = itertools.count().__next__

    # ---------------------------------------------------------------- queries

    def head_locked(self, key: Hashable) -> Task[Any] | None:
        """The task ``get_task(key)`` returns: the running one, else the oldest waiting."""
        entry = self.keys.get(key)
        if isinstance(entry, _Key):
            return entry.head()
        return entry

    def live_locked(self, key: Hashable) -> list[Task[Any]]:
        """Every live task with ``key`` (running, waiting, debouncing)."""
        entry = self.keys.get(key)
        if entry is None:
            return []
        if isinstance(entry, _Key):
            return entry.live()
        return [entry]

    # --------------------------------------------------------------- admission

    def admit_plain_locked(self, task: Task[Any]) -> bool:
        """The fast path: True (and counted as handed on) if a plain task may start now."""
        keys = self.keys
        key = task.key
        kind = task.kind
        if key in keys or self.waiting[kind]:
            return False
        keys[key] = task
        self.inflight[kind] += 1
        return True

    def admit_locked(
        self,
        task: Task[Any],
        start: Callable[[Task[Any]], object],
        ticket: Ticket | None,
        plan: Plan,
    ) -> None:
        """Place a new task (registered by the manager) by its key policy and debounce."""
        key = task.key
        entry = self.keys.get(key)
        if entry is None and (ticket is None or ticket.debounce is None):
            # A free key: whatever the policy, the task is admitted now. The
            # key maps to the task itself (no _Key) until a second call comes.
            self.keys[key] = task
            self._gate_locked(task, start, ticket, plan)
            return
        if not isinstance(entry, _Key):
            old = entry
            entry = _Key()
            if old is not None:
                entry.active.append(old)
            self.keys[key] = entry
        if entry.debouncing is not None:
            # A newer call within the quiet time: the waiting one never starts.
            plan.cancel(entry.debouncing, CancelReason.SUPERSEDED)
        if ticket is not None and ticket.debounce is not None:
            ticket.state = DEBOUNCING
            entry.debouncing = task
            return
        policy = KeyPolicy.REPLACE if ticket is None else ticket.policy
        self._place_locked(entry, task, start, ticket, policy, plan)

    def debounced_locked(self, task: Task[Any], plan: Plan) -> None:
        """The quiet time of ``task`` is over: place it by its policy, unless superseded."""
        ticket: Ticket = task._sched
        entry = self.keys.get(task.key)
        if ticket.state != DEBOUNCING or entry.__class__ is not _Key:
            return
        assert isinstance(entry, _Key)
        if entry.debouncing is not task:
            return
        entry.debouncing = None
        self._place_locked(entry, task, ticket.start, ticket, ticket.policy, plan)

    def _place_locked(
        self,
        entry: _Key,
        task: Task[Any],
        start: Callable[[Task[Any]], object],
        ticket: Ticket | None,
        policy: KeyPolicy,
        plan: Plan,
    ) -> None:
        if policy is KeyPolicy.REPLACE or policy is KeyPolicy.KEEP:
            # (KEEP gets here only when nothing with the key was live.)
            for old in (*entry.active, *entry.waiting):
                if old._stop_reason is None:
                    plan.cancel(old, CancelReason.REPLACED)
        elif policy is KeyPolicy.KEEP_LATEST:
            for old in entry.waiting:
                plan.cancel(old, CancelReason.SUPERSEDED)
            if entry.active:
                self._wait_for_key(entry, task, start, ticket)
                return
        elif entry.active or entry.waiting:  # ENQUEUE
            self._wait_for_key(entry, task, start, ticket)
            return
        entry.active.append(task)
        self._gate_locked(task, start, ticket, plan)

    @staticmethod
    def _wait_for_key(
        entry: _Key, task: Task[Any], start: Callable[[Task[Any]], object], ticket: Ticket | None
    ) -> None:
        assert ticket is not None  # only enqueue / keep_latest wait here, and they have one
        ticket.state = KEY_WAIT
        entry.waiting.append(task)

    def _gate_locked(
        self,
        task: Task[Any],
        start: Callable[[Task[Any]], object],
        ticket: Ticket | None,
        plan: Plan,
    ) -> None:
        """Hand ``task`` on if its lane and its pool have room, else queue it for a slot."""
        kind = task.kind
        lane = None if ticket is None else ticket.lane
        if lane is None:
            may_start = not self.waiting[kind] or self.inflight[kind] < self.capacity[kind]
        else:
            may_start = lane.running < lane.limit and self.inflight[kind] < self.capacity[kind]
        if may_start:
            self._hand_locked(task, start, ticket, lane, plan)
            return
        if ticket is None:
            ticket = task._sched = Ticket(start, KeyPolicy.REPLACE, None, None, None)
        ticket.state = SLOT_WAIT
        ticket.seq = self._seq()
        queue_lane = self._ungrouped if lane is None else lane
        queue_lane.queues[kind].append(task)
        queue_lane.waiting += 1
        self.waiting[kind] += 1
        self._lanes[queue_lane] = None

    def _hand_locked(
        self,
        task: Task[Any],
        start: Callable[[Task[Any]], object],
        ticket: Ticket | None,
        lane: Lane | None,
        plan: Plan,
    ) -> None:
        self.inflight[task.kind] += 1
        if lane is not None:
            lane.running += 1
        if ticket is not None:
            ticket.state = HANDED
        plan.start(task, start)

    def release_locked(self, plan: Plan) -> None:
        """Hand on every waiting task that may start now, best priority first."""
        lanes = self._lanes
        inflight = self.inflight
        capacity = self.capacity
        ungrouped = self._ungrouped
        while lanes:
            best: deque[Task[Any]] | None = None
            best_lane: Lane | None = None
            best_rank = (0, 0)
            for lane in lanes:
                if lane.running >= lane.limit:
                    continue
                for kind, queue in lane.queues.items():
                    if queue and inflight[kind] < capacity[kind]:
                        rank = (-lane.priority, queue[0]._sched.seq)
                        if best is None or rank < best_rank:
                            best, best_lane, best_rank = queue, lane, rank
            if best is None or best_lane is None:
                return
            task = best.popleft()
            self._unqueued_locked(best_lane, task.kind)
            ticket: Ticket = task._sched
            self._hand_locked(
                task, ticket.start, ticket, None if best_lane is ungrouped else best_lane, plan
            )

    def _unqueued_locked(self, lane: Lane, kind: TaskKind) -> None:
        lane.waiting -= 1
        self.waiting[kind] -= 1
        if not lane.waiting:
            self._lanes.pop(lane, None)

    # ------------------------------------------------------------ leaving

    def withdraw_locked(self, task: Task[Any]) -> bool:
        """``task`` is being cancelled: True if it was never handed on (the caller finishes it)."""
        ticket: Ticket | None = task._sched
        if ticket is None:
            return False
        state = ticket.state
        if state in (HANDED, WITHDRAWN):
            return False
        entry = self.keys.get(task.key)
        if state == DEBOUNCING:
            if isinstance(entry, _Key) and entry.debouncing is task:
                entry.debouncing = None
        elif state == KEY_WAIT:
            if isinstance(entry, _Key):
                entry.waiting.remove(task)
        elif state == SLOT_WAIT:
            lane = ticket.lane or self._ungrouped
            lane.queues[task.kind].remove(task)
            self._unqueued_locked(lane, task.kind)
        ticket.state = WITHDRAWN
        return True

    def finished_locked(self, task: Task[Any]) -> Plan | None:
        """``task`` just became final: free its slot and key; a plan if others may start now."""
        ticket: Ticket | None = task._sched
        if ticket is None:
            self.inflight[task.kind] -= 1
        elif ticket.state == HANDED:
            self.inflight[task.kind] -= 1
            if ticket.lane is not None:
                ticket.lane.running -= 1
        plan = None
        key = task.key
        entry = self.keys.get(key)
        if entry is task:
            del self.keys[key]
        elif entry.__class__ is _Key:
            assert isinstance(entry, _Key)
            if task in entry.active:
                entry.active.remove(task)
            if not entry.active and entry.waiting:
                following = entry.waiting.popleft()
                follow: Ticket = following._sched
                entry.active.append(following)
                plan = Plan()
                self._gate_locked(following, follow.start, follow, plan)
            if entry.empty():
                del self.keys[key]
        if self._lanes:
            if plan is None:
                plan = Plan()
            self.release_locked(plan)
        return plan if plan is not None and plan.starts else None
