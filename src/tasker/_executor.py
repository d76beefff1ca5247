"""``run_in_executor``: await a plain function run on tasker's worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import ManagerShutdownError
from ._main_calls import FutureSetter

if TYPE_CHECKING:
    import asyncio

    from ._threads import ThreadPool

__all__ = ["ExecutorCalls"]


class _Call:
    """One ``fn(*args)`` on its way through the thread pool to an awaiting asyncio future."""

    __slots__ = ("_args", "_fn", "_future", "_loop", "_owner")

    def __init__(
        self,
        owner: ExecutorCalls,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self._owner = owner
        self._fn = fn
        self._args = args
        self._loop = loop
        self._future = future

    def __call__(self) -> None:
        """Run on a pool thread; never raises (the pool's contract)."""
        if not self._owner._take(self):
            return  # abandoned at shutdown: its awaiter has been told already
        try:
            result = self._fn(*self._args)
        except BaseException as error:  # the awaiter gets it, whatever it is
            self._settle(None, error)
        else:
            self._settle(result, None)

    def abandon(self, error: BaseException) -> None:
        """Fail the awaiter: the call will never run."""
        self._settle(None, error)

    def _settle(self, result: Any, error: BaseException | None) -> None:
        FutureSetter(self._loop, self._future)(result, error)


class ExecutorCalls:
    """The calls queued by ``TaskManager.run_in_executor`` that have not started yet.

    They share the bounded thread pool with thread tasks. The pool drops its
    queue when it stops, so the manager calls ``abandon_all`` at shutdown and
    every awaiter gets ``ManagerShutdownError`` instead of waiting forever.
    """

    def __init__(self) -> None:
        # Guards _pending only.
        self._lock = threading.Lock()
        self._pending: set[_Call] = set()

    async def run(self, pool: ThreadPool, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``fn(*args)`` on ``pool`` and return its result (or raise its exception)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        call = _Call(self, fn, args, loop, future)
        with self._lock:
            self._pending.add(call)
        if not pool.submit(call):
            with self._lock:
                self._pending.discard(call)
            raise ManagerShutdownError("this TaskManager has been shut down")
        try:
            return await future
        finally:
            with self._lock:
                self._pending.discard(call)  # cancelled before it started: it will not run

    def _take(self, call: _Call) -> bool:
        with self._lock:
            if call not in self._pending:
                return False
            self._pending.discard(call)
            return True

    def abandon_all(self) -> None:
        """Fail every call that has not started with ``ManagerShutdownError``."""
        with self._lock:
            calls, self._pending = self._pending, set()
        for call in calls:
            call.abandon(ManagerShutdownError("the TaskManager shut down before the call ran"))
