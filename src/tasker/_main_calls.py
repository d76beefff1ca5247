"""Calls the application asks to run on the main thread: now, awaited, blocking, or later.

``Delivery`` owns the order: immediate calls go through its inbox, behind the
events and completions queued before them. This module keeps the state of
each call that has a caller waiting (``call_on_main_thread``,
``run_on_main_thread``) or a handle (``schedule_delayed_on_main_thread``), so
that a timeout, a cancelled awaiter or a shutdown settles each exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import ManagerShutdownError

if TYPE_CHECKING:
    import asyncio

__all__ = ["DelayedCall", "MainCall", "MainCalls"]

logger = logging.getLogger("tasker")

# States of a call. One lock (MainCalls._lock) guards every transition.
_PENDING = 0  # queued, not started
_RUNNING = 1  # running on the main thread
_DONE = 2  # ran (its outcome is delivered)
_GONE = 3  # will never run: timed out, cancelled, or dropped at shutdown


def _shut_down() -> ManagerShutdownError:
    return ManagerShutdownError("the TaskManager shut down before the main-thread call ran")


class MainCall:
    """``fn(*args, **kwargs)`` on the main thread, with a caller waiting for its outcome.

    ``on_outcome(result, error)`` is called once: from the main thread after
    ``fn`` ran, or from whichever thread gives the call up (``give_up``).
    """

    __slots__ = ("_args", "_calls", "_fn", "_kwargs", "_on_outcome", "state")

    def __init__(
        self,
        calls: MainCalls,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_outcome: Callable[[Any, BaseException | None], object],
    ) -> None:
        self._calls = calls
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._on_outcome = on_outcome
        self.state = _PENDING

    def __call__(self) -> None:
        """Run on the main thread (the drain calls it); never raises an ``Exception``."""
        if not self._calls._start(self):
            return
        try:
            result = self._fn(*self._args, **self._kwargs)
        except BaseException as error:
            self._calls._end(self)
            self._on_outcome(None, error)
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt and friends belong to the main thread too
        else:
            self._calls._end(self)
            self._on_outcome(result, None)

    def give_up(self, error: BaseException) -> bool:
        """Make sure ``fn`` never runs; True if it had not started (``error`` is its outcome)."""
        if not self._calls._drop(self):
            return False
        self._on_outcome(None, error)
        return True


class DelayedCall:
    """A call scheduled with ``schedule_delayed_on_main_thread``; ``cancel()`` it before it runs."""

    __slots__ = ("_args", "_calls", "_fn", "_kwargs", "_state")

    def __init__(
        self,
        calls: MainCalls,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._calls = calls
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._state = _PENDING

    def cancel(self) -> bool:
        """Stop the call; True if this stopped it (it had not run, nor been dropped)."""
        return self._calls._drop_delayed(self)

    def done(self) -> bool:
        """True once the call ran, was cancelled or was dropped at shutdown."""
        return self._state != _PENDING and self._state != _RUNNING

    def cancelled(self) -> bool:
        """True if the call will never run (cancelled, or dropped at shutdown)."""
        return self._state == _GONE

    def __repr__(self) -> str:
        state = ("pending", "running", "done", "cancelled")[self._state]
        return f"<DelayedCall {self._fn!r} {state}>"

    def _fire(self) -> None:
        """The delay passed: run on the main thread unless cancelled meanwhile."""
        if not self._calls._start_delayed(self):
            return
        try:
            self._fn(*self._args, **self._kwargs)
        except Exception:
            logger.exception("exception in a delayed main-thread call %r", self._fn)
        finally:
            self._state = _DONE


class MainCalls:
    """The main-thread calls still pending, so shutdown can settle every one of them."""

    def __init__(self) -> None:
        # Guards every call's state and the two pending sets; never held while user code runs.
        self._lock = threading.Lock()
        self._waiting: set[MainCall] = set()
        self._delayed: set[DelayedCall] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once shutdown began: new calls are refused."""
        return self._closed

    # --------------------------------------------------------- calls with a waiter

    def new_call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_outcome: Callable[[Any, BaseException | None], object],
    ) -> MainCall:
        """Register a call; raises ``ManagerShutdownError`` once shutdown began."""
        call = MainCall(self, fn, args, kwargs, on_outcome)
        with self._lock:
            if self._closed:
                raise ManagerShutdownError("this TaskManager has been shut down")
            self._waiting.add(call)
        return call

    def _start(self, call: MainCall) -> bool:
        with self._lock:
            if call.state != _PENDING:
                return False
            call.state = _RUNNING
            return True

    def _end(self, call: MainCall) -> None:
        with self._lock:
            call.state = _DONE
            self._waiting.discard(call)

    def _drop(self, call: MainCall) -> bool:
        with self._lock:
            if call.state != _PENDING:
                return False
            call.state = _GONE
            self._waiting.discard(call)
            return True

    # --------------------------------------------------------------- delayed calls

    def new_delayed(
        self, fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> DelayedCall | None:
        """Register a delayed call; None (nothing registered) once shutdown began."""
        call = DelayedCall(self, fn, args, kwargs)
        with self._lock:
            if self._closed:
                return None
            self._delayed.add(call)
        return call

    def dropped_delayed(
        self, fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> DelayedCall:
        """A handle for a call refused at shutdown: it never runs."""
        call = DelayedCall(self, fn, args, kwargs)
        call._state = _GONE
        return call

    def _start_delayed(self, call: DelayedCall) -> bool:
        with self._lock:
            if call._state != _PENDING:
                return False
            call._state = _RUNNING
            self._delayed.discard(call)
            return True

    def _drop_delayed(self, call: DelayedCall) -> bool:
        with self._lock:
            if call._state != _PENDING:
                return False
            call._state = _GONE
            self._delayed.discard(call)
            return True

    # -------------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Shutdown began: refuse new calls, drop delayed ones, fail those with a waiter."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, set()
            delayed, self._delayed = self._delayed, set()
            for call in waiting:
                if call.state == _PENDING:
                    call.state = _GONE
            for handle in delayed:
                handle._state = _GONE
        for call in waiting:
            if call.state == _GONE:
                call._on_outcome(None, _shut_down())
        if delayed:
            logger.debug("tasker: %d delayed main-thread call(s) dropped at shutdown", len(delayed))


class Waiter:
    """Blocks a thread until a ``MainCall``'s outcome arrives (``call_on_main_thread``)."""

    __slots__ = ("_event", "error", "result")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self, result: Any, error: BaseException | None) -> None:
        self.result = result
        self.error = error
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """True once the outcome is in; False if ``timeout`` seconds passed first."""
        return self._event.wait(timeout)


class FutureSetter:
    """Hands a ``MainCall``'s outcome to an asyncio future on its own loop."""

    __slots__ = ("_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self._loop = loop
        self._future = future

    def __call__(self, result: Any, error: BaseException | None) -> None:
        # RuntimeError: the awaiting loop is closed, nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_resolve, self._future, result, error)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # the awaiting coroutine was cancelled meanwhile
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
