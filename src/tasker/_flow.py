"""Event flow control: each task's byte credit for undelivered events, and coalescing.

Every task owns an ``EventCredit`` (think of HTTP/2 flow-control windows):
queuing an event spends its size, and the main-thread drain returns it as it
delivers the event. While a task's undelivered events take more than its
window, its producer waits:

* a thread task's ``send_event`` waits on the credit's condition (and returns
  as soon as the task is asked to stop);
* a coroutine's plain ``send_event`` never waits (it would block the loop);
  ``send_event_async`` awaits a future the drain resolves;
* a process task's worker keeps its own count of what it sent and waits for a
  GRANT from the parent (see ``_process/_worker.py``). The parent spends the
  credit as the listener receives each event, never waiting itself, and sends
  the GRANT when the drain has delivered enough (``remote_blocked``).

An event sent with ``coalesce=True`` replaces the task's undelivered earlier
coalescing event of the same name: the old one is dropped where it stands in
the inbox (its payload freed, its credit returned), the new one is queued
at the back, so events keep the order they were sent in.

One lock per task guards its counters, the coalescing map and its events'
states; it is never held while user code runs or a frame is sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from ._task import Task

__all__ = [
    "DEFAULT_EVENT_BUFFER",
    "EventCredit",
    "QueuedEvent",
    "check_event_buffer",
    "deliver_plain",
    "payload_size",
    "send_async",
    "send_now",
    "send_waiting",
]

logger = logging.getLogger("tasker")

#: The manager's default ``event_buffer``: bytes of undelivered events per task.
DEFAULT_EVENT_BUFFER = 64 * 1024 * 1024

#: What a payload without a size of its own (None, a number, a small object) counts.
SMALL_PAYLOAD = 64
#: Containers are counted this many levels deep (a tuple of a frame number and its bytes).
_DEPTH = 3
#: ... and only their first items: counting must stay cheap next to sending.
_ITEMS = 64

_QUEUED, _DELIVERED, _DROPPED = 0, 1, 2


def check_event_buffer(value: Any, name: str = "event_buffer") -> int | None:
    """Validate an ``event_buffer`` value: a positive int of bytes, or None for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a number of bytes (int) or None, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 byte, not {value!r}")
    return value


def payload_size(data: Any, depth: int = _DEPTH) -> int:
    """Bytes an event payload counts against its task's ``event_buffer`` (threads, coroutines).

    Bytes-like objects (anything with the buffer protocol, NumPy arrays too)
    count their length in bytes, ``str`` its length; tuples, lists and dicts
    the sum of their items (three levels deep, first 64 items); other objects
    ``nbytes`` when they have one, else 64. Process tasks count the pickled
    size instead, which is what actually waits in the parent.
    """
    cls = data.__class__
    if cls is bytes or cls is bytearray or cls is str:
        return len(data) or 1
    if data is None or cls is int or cls is float or cls is bool:
        return SMALL_PAYLOAD
    if cls is tuple or cls is list:
        if depth <= 0:
            return SMALL_PAYLOAD
        return SMALL_PAYLOAD + sum(payload_size(item, depth - 1) for item in data[:_ITEMS])
    if cls is dict:
        if depth <= 0:
            return SMALL_PAYLOAD
        total = SMALL_PAYLOAD
        for count, (key, value) in enumerate(data.items()):
            if count >= _ITEMS:
                break
            total += payload_size(key, depth - 1) + payload_size(value, depth - 1)
        return total
    try:
        return memoryview(data).nbytes or 1
    except TypeError:
        pass
    nbytes = getattr(data, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool) and nbytes > 0:
        return nbytes
    return SMALL_PAYLOAD


def deliver_plain(task: Task[Any], name: str, data: Any, size: int) -> None:
    """Deliver an event sent without ``coalesce`` (queued as a ``functools.partial`` of this).

    The credit goes back before ``when_event`` runs, so the producer makes the
    next event while the handler draws this one.
    """
    credit = task._credit
    with credit._lock:  # release(size), inlined: this runs for every event
        credit.delivered += size
        waiting = credit._waiting
    if waiting:
        credit.wake()
    callback = task.when_event
    if callback is not None:
        try:
            callback(task, name, data)
        except Exception:
            logger.exception("exception in task callback %r", callback)


class QueuedEvent:
    """A coalescing event in the manager's inbox; the drain calls it to deliver it.

    It may be dropped in place by a newer one of its name (``replace_latest``),
    so, unlike a plain event, it has a state, claimed under the credit's lock.
    """

    __slots__ = ("coalesce", "data", "name", "size", "state", "task")

    def __init__(self, task: Task[Any], name: str, data: Any, size: int, coalesce: bool) -> None:
        self.task = task
        self.name = name
        self.data = data
        self.size = size
        self.coalesce = coalesce
        self.state = _QUEUED

    def __call__(self) -> None:
        task = self.task
        data = task._credit.deliver(self)
        if data is _GONE:
            return  # replaced by a newer coalescing event
        callback = task.when_event
        if callback is None:
            return
        try:
            callback(task, self.name, data)
        except Exception:
            logger.exception("exception in task callback %r", callback)


_GONE: Any = object()


class EventCredit:
    """One task's byte credit for undelivered events (see the module docstring)."""

    __slots__ = (
        "_async_waiters",
        "_cond",
        "_latest",
        "_lock",
        "_remote_grant",
        "_remote_need",
        "_thread_waiters",
        "_waiting",
        "delivered",
        "spent",
        "window",
    )

    def __init__(self, window: int | None) -> None:
        self.window = window  # None: no bound
        # Bytes queued, and bytes delivered or dropped, since the task started.
        # ``spent`` is written under the lock, except by the process listener,
        # the only writer for a process task (one attribute store per event);
        # ``delivered`` is always written under the lock.
        self.spent = 0
        self.delivered = 0
        self._lock = threading.Lock()
        # Made on first wait only: most tasks never wait, and a task start must stay cheap.
        self._cond: threading.Condition | None = None
        self._latest: dict[str, QueuedEvent] | None = None  # undelivered coalescing events
        self._thread_waiters = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # A worker process waiting for credit: the "delivered" value it needs,
        # and how to tell it (sends a GRANT frame).
        self._remote_need: int | None = None
        self._remote_grant: Callable[[int], object] | None = None
        # Whether any of the above waits: the one check a delivery makes.
        self._waiting = False

    def _update_waiting_locked(self) -> None:
        self._waiting = bool(
            self._thread_waiters or self._async_waiters or self._remote_need is not None
        )

    @property
    def outstanding(self) -> int:
        """Bytes of events queued and not yet delivered."""
        return self.spent - self.delivered

    def _room_locked(self, size: int) -> bool:
        window = self.window
        if window is None:
            return True
        outstanding = self.spent - self.delivered
        return outstanding == 0 or outstanding + size <= window

    # ------------------------------------------------------------ producers

    def acquire(self, size: int, cancelled: bytearray | memoryview) -> bool:
        """Spend ``size`` bytes, waiting while the window is full; False if the task is stopping.

        An event larger than the whole window is let through once nothing
        else of the task is undelivered, so no size is refused.
        """
        with self._lock:
            while not self._room_locked(size):
                if cancelled[0]:
                    return False
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(self._lock)
                self._thread_waiters += 1
                self._waiting = True
                try:
                    cond.wait()
                finally:
                    self._thread_waiters -= 1
                    self._update_waiting_locked()
            self.spent += size
        return True

    def try_acquire(self, size: int, waiter: asyncio.Future[None] | None = None) -> bool:
        """Spend ``size`` bytes if there is room; else register ``waiter`` (resolved on room)."""
        with self._lock:
            if self._room_locked(size):
                self.spent += size
                return True
            if waiter is not None:
                self._async_waiters.append((waiter.get_loop(), waiter))
                self._waiting = True
            return False

    def spend(self, size: int) -> None:
        """Spend ``size`` bytes without waiting (a coroutine's plain send_event)."""
        with self._lock:
            self.spent += size

    def remote_blocked(self, need: int, grant: Callable[[int], object], stopping: bool) -> None:
        """A worker waits until ``delivered`` reaches ``need``; ``grant(delivered)`` tells it.

        Called by the process listener. The worker is told at once when the
        drain has delivered enough already or its task is stopping.
        """
        with self._lock:
            if self.delivered < need and not stopping:
                self._remote_need = need
                self._remote_grant = grant
                self._waiting = True
                return
            self._remote_need = self._remote_grant = None
            self._update_waiting_locked()
            delivered = self.delivered
        grant(delivered)

    def forget_remote(self) -> None:
        """The worker finished the task: nobody waits for a grant any more."""
        with self._lock:
            self._remote_need = self._remote_grant = None
            self._update_waiting_locked()

    # ------------------------------------------------------------ queuing

    def replace_latest(self, event: QueuedEvent) -> None:
        """Make ``event`` its name's newest coalescing event; drop the older undelivered one."""
        with self._lock:
            latest = self._latest
            if latest is None:
                latest = self._latest = {}
            old = latest.get(event.name)
            latest[event.name] = event
            if old is None or old.state != _QUEUED:
                return
            old.state = _DROPPED
            old.data = None  # free the payload now, not when the drain reaches it
            wake = self._returned_locked(old.size)
        if wake is not None:
            wake()

    def deliver(self, event: QueuedEvent) -> Any:
        """Claim ``event`` for delivery and return its credit: its payload, or ``_GONE``."""
        with self._lock:
            if event.state != _QUEUED:
                return _GONE
            event.state = _DELIVERED
            data, event.data = event.data, None
            if (
                event.coalesce
                and self._latest is not None
                and self._latest.get(event.name) is event
            ):
                del self._latest[event.name]
            wake = self._returned_locked(event.size)
        if wake is not None:
            wake()
        return data

    def release(self, size: int) -> None:
        """Return ``size`` bytes: an event was delivered, or not queued (nobody listens)."""
        with self._lock:
            self.delivered += size
            if not self._waiting:
                return  # the common case: nobody waits for room
            wake = self._wake_locked()
        if wake is not None:
            wake()

    def wake(self) -> None:
        """Let go on whoever the credit returned so far makes room for."""
        with self._lock:
            wake = self._wake_locked()
        if wake is not None:
            wake()

    def _returned_locked(self, size: int) -> Callable[[], None] | None:
        self.delivered += size
        return self._wake_locked()

    def _wake_locked(self) -> Callable[[], None] | None:
        """Whom credit just returned lets go on: notify threads; what to call for the rest."""
        if self._thread_waiters and self._cond is not None:
            self._cond.notify_all()
        wake: Callable[[], None] | None = None
        if self._async_waiters and self._room_locked(0):
            waiters, self._async_waiters = self._async_waiters, []
            wake = _resolver(waiters)
        need = self._remote_need
        if need is not None and self.delivered >= need:
            grant = self._remote_grant
            self._remote_need = self._remote_grant = None
            if grant is not None:
                delivered = self.delivered
                remote = _granter(grant, delivered)
                wake = remote if wake is None else _both(wake, remote)
        self._update_waiting_locked()
        return wake

    # ------------------------------------------------------------ stopping

    def stopped(self) -> None:
        """The task was asked to stop: wake every producer waiting for credit."""
        with self._lock:
            if self._cond is not None:
                self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
            grant = self._remote_grant
            self._remote_need = self._remote_grant = None
            self._update_waiting_locked()
            delivered = self.delivered
        if waiters:
            _resolver(waiters)()
        if grant is not None:
            grant(delivered)


def _resolver(
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]],
) -> Callable[[], None]:
    def resolve() -> None:
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: the coroutine is gone
                loop.call_soon_threadsafe(_settle, future)

    return resolve


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _granter(grant: Callable[[int], object], delivered: int) -> Callable[[], None]:
    def send() -> None:
        grant(delivered)

    return send


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        first()
        second()

    return both


# ---------------------------------------------------------------- senders


def send_waiting(host: Any, task: Task[Any], name: str, data: Any, coalesce: bool) -> None:
    """A thread task's ``send_event``: wait for room, then queue (nothing once it is stopping)."""
    if task.when_event is None:
        return  # nobody listens: nothing to queue, nothing to wait for
    size = payload_size(data)
    if task._credit.acquire(size, task._cancel_flag):
        host._deliver_event(task, name, data, size, coalesce)


def send_now(host: Any, task: Task[Any], name: str, data: Any, coalesce: bool) -> None:
    """A coroutine's plain ``send_event``: queue at once, never blocking its loop."""
    if task.when_event is None:
        return
    size = payload_size(data)
    task._credit.spend(size)
    host._deliver_event(task, name, data, size, coalesce)


async def send_async(host: Any, task: Task[Any], name: str, data: Any, coalesce: bool) -> None:
    """A coroutine's ``send_event_async``: await room without blocking the loop, then queue."""
    if task.when_event is None:
        return
    import asyncio

    size = payload_size(data)
    credit = task._credit
    loop = asyncio.get_running_loop()
    while True:
        waiter: asyncio.Future[None] = loop.create_future()
        if credit.try_acquire(size, waiter):
            break
        await waiter
        if task._cancel_flag[0]:
            return  # asked to stop: its events no longer matter
    host._deliver_event(task, name, data, size, coalesce)
