"""``DaskBackend``: ``run_process`` tasks on a Dask cluster, with the ExecutionContext contract.

Transport. Progress, events and the start/end markers travel from the worker
as ``Worker.log_event`` messages on one topic per backend, to which the
backend's client subscribes (``Client.subscribe_topic``). We chose it over
``distributed.Queue`` (a scheduler round trip per put and per get, and a
polling reader) and ``Pub``/``Sub`` (documented as experimental; messages
published before the subscription is known are lost): a log event is one
fire-and-forget message on the worker's existing batched stream to the
scheduler, which forwards it on its existing batched stream to the client,
over the same authenticated (TLS) connections, with no extra port and no
connection from the cluster back to the GUI. Both streams are ordered and
the worker sends a task's events before its result, so events arrive in
order and before the result; the ``end`` marker counts them and is checked.
Cost: the scheduler keeps the last ``distributed.admin.low-level-log-length``
messages of each topic (the embedded cluster sets it low).

Threads. All bookkeeping runs on the client's event loop thread; ``submit``
and ``cancel`` hand over with ``loop.add_callback``. The first ``submit``
connects (or starts the embedded ``LocalCluster``) on a starter thread, so
the GUI thread never waits for a cluster.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ManagerShutdownError, SerializationError, TaskError, WorkerCrashedError
from .._process._pickling import describe_type, load_exception
from . import _worker

if TYPE_CHECKING:
    from .._backend import TaskHost
    from .._task import Task

__all__ = ["DaskBackend"]

logger = logging.getLogger("tasker")

#: Messages the scheduler keeps per topic on the embedded cluster (Dask's default is 1000,
#: which would keep up to 1000 event payloads in the scheduler's memory).
_EMBEDDED_LOG_LENGTH = 32
#: Seconds our clients batch messages to the scheduler (Dask's client uses 0.01).
_CLIENT_BATCH_INTERVAL = 0.002


class _Record:
    """One task on the cluster; touched on the client's loop thread only."""

    __slots__ = (
        "ended",
        "events",
        "failure",
        "future",
        "grace",
        "grace_handle",
        "key",
        "pid",
        "started",
        "stopping",
        "task",
        "timeout",
        "timeout_handle",
        "worker",
    )

    def __init__(self, task: Task[Any], key: str, timeout: float | None, grace: float) -> None:
        self.task = task
        self.key = key
        self.timeout = timeout
        self.grace = grace
        self.future: Any = None  # a distributed.Future
        self.started = False
        self.ended: dict[str, Any] | None = None
        self.stopping = False
        self.events = 0
        self.failure: BaseException | None = None
        self.worker: str | None = None
        self.pid: int | None = None
        self.grace_handle: Any = None
        self.timeout_handle: Any = None


class DaskBackend:
    """Runs ``run_process`` tasks on a Dask cluster: ``TaskManager(process_backend=DaskBackend())``.

    ``client_or_address`` is a ``distributed.Client``, a scheduler address
    (``"tls://host:8786"``, reached with ``security``, a ``distributed.Security``),
    or ``None`` for an embedded ``LocalCluster`` of ``n_workers`` worker
    processes listening on 127.0.0.1 only. With ``restart_on_grace=True`` a
    task that ignores its cancellation for ``cancel_grace`` seconds also gets
    its worker restarted (killing every other task on that worker). Further
    keyword arguments go to ``LocalCluster``.
    """

    def __init__(
        self,
        client_or_address: Any = None,
        *,
        security: Any = None,
        restart_on_grace: bool = False,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        start_timeout: float = 60.0,
        **cluster_options: Any,
    ) -> None:
        from distributed import Client

        if client_or_address is not None and not isinstance(client_or_address, str | Client):
            raise TypeError(
                "client_or_address must be a distributed.Client, a scheduler address or None, "
                f"not {type(client_or_address).__name__}"
            )
        for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if cluster_options and client_or_address is not None:
            raise TypeError(
                f"{', '.join(sorted(cluster_options))}: LocalCluster options apply only "
                "to the embedded cluster (client_or_address=None)"
            )
        self._target = client_or_address
        self._security = security
        self._restart_on_grace = bool(restart_on_grace)
        self._n_workers = n_workers
        self._threads = threads_per_worker
        self._start_timeout = start_timeout
        self._cluster_options = cluster_options
        self._topic = f"tasker-{uuid.uuid4().hex}"
        self._host: TaskHost | None = None
        self._update_rate = 20.0

        # Guarded by _lock: the connection state and the submissions waiting for it.
        self._lock = threading.Lock()
        # distributed's API is untyped: its objects are Any here.
        self._client: Any = None
        self._cluster: Any = None
        self._starter: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._waiting: list[tuple[Task[Any], bytes, float | None, float]] = []
        self._closed = False
        self._started_tracker = False

        # Owned by the client's loop thread.
        self._records: dict[str, _Record] = {}
        self._by_task: dict[int, _Record] = {}
        # Tasks ended past their grace whose function still runs: key -> worker pid.
        self._stuck: dict[str, int] = {}

    # ------------------------------------------------------------- public extras

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use, once connected (``None`` before)."""
        return self._client

    def start(self, timeout: float | None = None) -> Any:
        """Connect now (or start the embedded cluster) and wait until ready; return the client.

        Optional: the first ``run_process`` starts it in the background anyway.
        Raises what connecting raised.
        """
        self._ensure_starter()
        if not self._started.wait(self._start_timeout if timeout is None else timeout):
            raise TimeoutError("the Dask cluster did not become ready in time")
        if self._start_error is not None:
            raise self._start_error
        assert self._client is not None
        return self._client

    # -------------------------------------------------------- ProcessBackend

    def attach(self, host: TaskHost, *, update_rate: float) -> None:
        """Bind to the manager that submits to this backend (once only)."""
        if self._host is not None and self._host is not host:
            raise RuntimeError("this DaskBackend is already used by another TaskManager")
        self._host = host
        self._update_rate = update_rate

    def submit(
        self,
        task: Task[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        cancel_grace: float,
    ) -> None:
        """Pickle the call here (an unpicklable piece fails the task), then send it to Dask."""
        host = self._need_host()
        try:
            blob = _dump_call(fn, args, kwargs)
        except SerializationError as error:
            host._finish(task, error=error)
            return
        with self._lock:
            closed = self._closed
            if not closed and self._client is None:
                self._waiting.append((task, blob, timeout, cancel_grace))
                self._ensure_starter_locked()
                return
            client = self._client
        if closed or client is None:
            host._finish(task, error=ManagerShutdownError("the Dask backend is shut down"))
            return
        client.loop.add_callback(self._launch, task, blob, timeout, cancel_grace)

    def cancel(self, task: Task[Any]) -> None:
        """Cancel the Dask future; a running task sees ``is_cancelled()`` within one update tick.

        ``cancel_grace`` seconds later a task still running ends ``cancelled``
        anyway (its late result is discarded) and, with ``restart_on_grace``,
        its worker is restarted.
        """
        host = self._need_host()
        with self._lock:
            for index, waiting in enumerate(self._waiting):
                if waiting[0] is task:
                    del self._waiting[index]
                    break
            else:
                waiting = None
            client = self._client
        if waiting is not None:
            host._finish(task)
        elif client is not None:
            client.loop.add_callback(self._cancel_on_loop, task)

    def shutdown(self, timeout: float) -> None:
        """End every task here ``cancelled``; close the embedded cluster or our connection.

        A client passed in by the user stays open (its futures of our tasks are cancelled).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting, self._waiting = self._waiting, []
            starter = self._starter
        host = self._host
        for task, *_ in waiting:
            if host is not None:
                host._finish(task, error=ManagerShutdownError("the Dask backend is shut down"))
        if starter is not None:
            self._started.wait(timeout)
        client = self._client
        if client is None:
            return
        done = threading.Event()

        async def close_runs() -> None:
            try:
                await self._close_runs(client, timeout / 2)
            finally:
                done.set()

        try:
            client.loop.add_callback(close_runs)
            done.wait(timeout)
        except Exception:  # the client's loop is gone already
            logger.debug("tasker: Dask client loop closed before shutdown", exc_info=True)
        if self._target is None or isinstance(self._target, str):
            try:
                client.close(timeout=max(1.0, timeout))
            except Exception:
                logger.warning("tasker: closing the Dask client failed", exc_info=True)
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=max(1.0, timeout))
            except Exception:
                logger.warning("tasker: closing the embedded LocalCluster failed", exc_info=True)
            if self._started_tracker:
                _stop_resource_tracker()

    async def _close_runs(self, client: Any, patience: float) -> None:
        """Cancel our futures, give running tasks ``patience`` s to return, then end them.

        On the embedded cluster a worker still running one of our tasks then
        is killed (its nanny is closing and does not restart it), so closing
        the cluster does not wait for a function that ignores cancellation.
        """
        import asyncio

        futures = [r.future for r in self._records.values() if r.future is not None]
        if futures:
            await client._cancel(futures, reason="tasker shutdown")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while self._by_task and loop.time() < deadline:
            # Cooperative ends arrive as END messages on this loop; a short
            # poll keeps this shutdown-only wait simple.
            await asyncio.sleep(0.02)
        if self._cluster is not None:
            pids = {r.pid for r in self._by_task.values() if r.pid is not None}
            for pid in pids | set(self._stuck.values()):
                _kill_child(pid)
        for record in list(self._by_task.values()):
            self._end(record, cancelled=True)
        client.unsubscribe_topic(self._topic)

    # ------------------------------------------------------------ connecting

    def _need_host(self) -> TaskHost:
        if self._host is None:
            raise RuntimeError("pass the DaskBackend to TaskManager(process_backend=...)")
        return self._host

    def _ensure_starter(self) -> None:
        with self._lock:
            if self._closed:
                raise ManagerShutdownError("the Dask backend is shut down")
            self._ensure_starter_locked()

    def _ensure_starter_locked(self) -> None:
        if self._starter is None or (self._start_error is not None and self._started.is_set()):
            self._start_error = None
            self._started.clear()
            self._starter = threading.Thread(
                target=self._connect, name="tasker-dask-start", daemon=True
            )
            self._starter.start()

    def _connect(self) -> None:
        from distributed import Client

        client: Any = None
        cluster: Any = None
        try:
            target = self._target
            if isinstance(target, Client):
                client = target
            elif isinstance(target, str):
                client = Client(  # type: ignore[no-untyped-call]
                    target,
                    security=self._security,
                    timeout=self._start_timeout,
                    set_as_default=False,
                )
            else:
                # Dask's nannies start multiprocessing's resource tracker; stop
                # it at shutdown if it was not running before (leave nothing behind).
                self._started_tracker = not _resource_tracker_running()
                cluster = _local_cluster(
                    self._n_workers, self._threads, self._security, self._cluster_options
                )
                client = Client(  # type: ignore[no-untyped-call]
                    cluster, security=self._security, set_as_default=False
                )
            if not isinstance(target, Client):
                _shorten_batching(client)
            client.subscribe_topic(self._topic, self._on_message)
            if cluster is None:
                _warn_if_reruns(client)
        except BaseException as error:
            with self._lock:
                self._start_error = error
                failed, self._waiting = self._waiting, []
            self._started.set()
            logger.error("tasker: could not start the Dask backend: %s", error)
            for task, *_ in failed:
                self._need_host()._finish(task, error=error)
            return
        with self._lock:
            self._client, self._cluster = client, cluster
            waiting, self._waiting = self._waiting, []
            closed = self._closed
        self._started.set()
        if closed:
            return
        for task, blob, timeout, grace in waiting:
            client.loop.add_callback(self._launch, task, blob, timeout, grace)

    # ------------------------------------------------ on the client's loop

    def _launch(self, task: Task[Any], blob: bytes, timeout: float | None, grace: float) -> None:
        client = self._client
        assert client is not None
        if task._status.is_final:
            return
        key = f"tasker-{task.id}-{uuid.uuid4().hex[:8]}"
        record = _Record(task, key, timeout, grace)
        self._records[key] = record
        self._by_task[task.id] = record
        # retries=0: a failed attempt is never re-run by Dask (see docs/dask.md for worker deaths).
        record.future = client.submit(
            _worker.run_task,
            key,
            self._topic,
            self._update_rate,
            blob,
            key=key,
            pure=False,
            retries=0,
        )
        client.loop.add_callback(self._watch, record)

    async def _watch(self, record: _Record) -> None:
        from distributed.scheduler import KilledWorker

        future = record.future
        assert future is not None
        try:
            value = await future._result()
        except KilledWorker:
            self._crashed(record)
            return
        except BaseException as error:
            if _is_cancel(error):
                # Our own cancel ends the task at its END message or its grace
                # expiry (see _cancel_on_loop); a cancel from elsewhere, now.
                if not record.stopping:
                    self._end(record, cancelled=True)
            else:  # a Dask-level failure (the client lost the cluster...)
                self._end(record, error=error)
            return
        finally:
            future.release()
        if record.task.id not in self._by_task:
            return  # ended already: by its end message, or cancelled (the late result is dropped)
        self._complete(record, value)

    def _complete(self, record: _Record, outcome: Sequence[Any]) -> None:
        """End ``record`` with the outcome ``run_task`` produced (its end message came first)."""
        if record.ended is None or outcome[0] == _worker.INLINE:
            # The end message is sent before the result, on ordered streams.
            self._end(record, error=TaskError("RuntimeError", "the task's end message was lost"))
            return
        if record.ended["n"] != record.events:
            logger.error(
                "tasker: task %r ended with %d of its %d events received",
                record.task.key,
                record.events,
                record.ended["n"],
            )
        self._set_report(record, record.ended)
        kind = outcome[0]
        if kind == "ok":
            try:
                result = pickle.loads(outcome[1])
            except Exception as error:
                self._end(record, error=_unpickling_error("the result", error))
                return
            self._end(record, result=result)
        elif kind == "error":
            meta = outcome[1]
            self._end(record, error=load_exception((meta[0], meta[1], meta[2]), outcome[2]))
        else:  # skipped: it saw its cancellation before starting
            self._end(record, cancelled=True)

    def _on_message(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        kind = message["t"]
        record = self._records.get(message.get("k", ""))
        if record is None:
            # A task that has ended already (late progress of a cancelled one).
            if kind == _worker.END:
                self._stuck.pop(message["k"], None)  # its function has returned after all
            return
        host = self._host
        assert host is not None
        if kind == _worker.PROGRESS:
            record.task._report.set(message["p"], message["m"])
        elif kind == _worker.EVENT:
            record.events += 1
            try:
                data = pickle.loads(message["d"])
            except Exception as error:
                if record.failure is None:
                    what = f"the payload of event {message['n']!r}"
                    record.failure = _unpickling_error(what, error)
                return
            host._deliver_event(record.task, message["n"], data, coalesce=bool(message.get("c")))
        elif kind == _worker.START:
            if record.started:
                # Dask re-ran the task after its worker died (a scheduler whose
                # allowed-failures is above 0): fail it now and stop the re-run.
                self._crashed(record)
                return
            record.started = True
            record.worker = message["w"]
            record.pid = message["pid"]
            if host._mark_running(record.task) and record.timeout is not None:
                loop = self._loop()
                record.timeout_handle = loop.call_later(record.timeout, self._timed_out, record)
        elif kind == _worker.END:
            record.ended = message
            if record.stopping:
                self._set_report(record, message)
                self._end(record, cancelled=True)  # cooperative: it returned after the cancel
            elif "o" in message:
                self._complete(record, message["o"])  # a small outcome: no fetch needed

    def _cancel_on_loop(self, task: Task[Any]) -> None:
        record = self._by_task.get(task.id)
        if record is None or record.stopping:
            return
        record.stopping = True
        client = self._client
        assert client is not None
        if record.future is not None:
            client.loop.add_callback(client._cancel, [record.future], "cancelled by tasker")
        if not record.started:
            # Not started as far as we know: it ends now. Should a worker start
            # it meanwhile, it sees its cancellation before calling the function.
            self._end(record, cancelled=True)
        elif record.ended is not None:
            self._end(record, cancelled=True)
        else:
            record.grace_handle = self._loop().call_later(record.grace, self._escalate, record)

    def _timed_out(self, record: _Record) -> None:
        record.timeout_handle = None
        host = self._host
        assert host is not None
        if record.task.id in self._by_task and host._mark_timed_out(record.task):
            self._cancel_on_loop(record.task)

    def _escalate(self, record: _Record) -> None:
        record.grace_handle = None
        if record.task.id not in self._by_task:
            return
        worker = record.worker
        if record.pid is not None:
            self._stuck[record.key] = record.pid
        self._end(record, cancelled=True)
        if self._restart_on_grace and worker is not None:
            client = self._client
            assert client is not None
            # Its neighbours on that worker die with it: fail them first, so
            # Dask, which re-runs tasks of a worker it restarts, has nothing of
            # ours left to re-run there.
            neighbours = [r for r in self._by_task.values() if r.worker == worker]
            for other in neighbours:
                self._crashed(other, cancel=True)
            logger.warning(
                "tasker: restarting Dask worker %s: task %r ignored its cancellation",
                worker,
                record.task.key,
            )
            client.loop.add_callback(self._restart, worker)

    async def _restart(self, worker: str) -> None:
        client = self._client
        assert client is not None
        try:
            await client._restart_workers([worker], timeout=30, raise_for_error=False)
        except Exception:
            logger.warning("tasker: restarting Dask worker %s failed", worker, exc_info=True)

    def _crashed(self, record: _Record, cancel: bool = True) -> None:
        if record.task.id not in self._by_task:
            return
        if cancel and record.future is not None and self._client is not None:
            self._client.loop.add_callback(self._client._cancel, [record.future], "worker died")
        self._end(record, error=WorkerCrashedError(record.pid, None))

    def _end(
        self,
        record: _Record,
        *,
        result: Any = None,
        error: BaseException | None = None,
        cancelled: bool = False,
    ) -> None:
        """Forget ``record`` and give its task its outcome (once)."""
        if self._by_task.pop(record.task.id, None) is None:
            return
        self._records.pop(record.key, None)
        loop = self._loop()
        for handle in (record.grace_handle, record.timeout_handle):
            if handle is not None:
                loop.remove_timeout(handle)
        if record.failure is not None and error is None and not cancelled:
            result, error = None, record.failure
        host = self._host
        assert host is not None
        host._finish(record.task, result=result, error=error, cancelled=cancelled)

    def _set_report(self, record: _Record, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        report = record.task._report
        if report.progress != message["p"] or report.message != message["m"]:
            report.set(message["p"], message["m"])

    def _loop(self) -> Any:
        client = self._client
        assert client is not None
        return client.loop


def _shorten_batching(client: Any) -> None:
    """Batch the client's messages to the scheduler for 2 ms instead of Dask's 10 ms.

    The client sends at most one batch per interval, so 10 ms is the floor of
    a submit that follows a result; a GUI's short tasks wait for it. Workers
    batch for 2 ms too. Only for clients we create; silently skipped if a
    Dask version lacks the attribute.
    """
    comm = getattr(client, "scheduler_comm", None)
    if comm is not None and isinstance(getattr(comm, "interval", None), float):
        comm.interval = _CLIENT_BATCH_INTERVAL


def _warn_if_reruns(client: Any) -> None:
    """Warn when the scheduler re-runs tasks of dead workers (allowed-failures above 0)."""
    try:
        # A lambda travels by value: the scheduler needs no tasker installed.
        failures = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    except Exception:
        return  # run_on_scheduler may be blocked on this scheduler: nothing to check with
    if isinstance(failures, int) and failures > 0:
        logger.warning(
            "tasker: this Dask scheduler re-runs a task whose worker died up to %d time(s) "
            "(distributed.scheduler.allowed-failures); tasker fails such a task with "
            "WorkerCrashedError when it sees it start again, but the re-run may already have "
            "begun. Set allowed-failures to 0 on the scheduler so no task runs twice.",
            failures,
        )


def _kill_child(pid: int) -> None:
    """SIGKILL ``pid`` if it is a child of this process (a worker of our LocalCluster)."""
    import signal

    # psutil comes with distributed; imported by name since it ships no type hints.
    psutil: Any = importlib.import_module("psutil")
    try:
        if psutil.Process(pid).ppid() == os.getpid():
            os.kill(pid, signal.SIGKILL)
    except (psutil.Error, OSError):
        pass  # gone already


def _resource_tracker_running() -> bool:
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    return tracker is not None and getattr(tracker, "_pid", None) is not None


def _stop_resource_tracker() -> None:
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and hasattr(tracker, "_stop"):
        try:
            tracker._stop()
        except Exception:
            logger.debug("tasker: could not stop the resource tracker", exc_info=True)


def _is_cancel(error: BaseException) -> bool:
    from concurrent.futures import CancelledError

    return isinstance(error, CancelledError) or type(error).__name__ == "CancelledError"


def _local_cluster(n_workers: int, threads: int, security: Any, options: dict[str, Any]) -> Any:
    import dask
    from distributed import LocalCluster

    settings = {
        # A task whose worker dies fails at once (KilledWorker) instead of
        # being silently re-run on another worker.
        "distributed.scheduler.allowed-failures": 0,
        "distributed.admin.low-level-log-length": _EMBEDDED_LOG_LENGTH,
        # A worker gets a task only when a thread is free: a queued task waits
        # on the scheduler, where cancelling it is immediate and certain.
        "distributed.scheduler.worker-saturation": 1.0,
    }
    cluster_options: dict[str, Any] = {
        "n_workers": n_workers,
        "threads_per_worker": threads,
        "processes": True,
        # Loopback only: anything that can reach a scheduler can run code on it.
        "host": "127.0.0.1",
        # Port 0: a free port, on the loopback host above (Dask binds 8787 otherwise).
        "dashboard_address": ":0",
        "silence_logs": logging.ERROR,
    }
    if security is not None:
        cluster_options["security"] = security
    cluster_options.update(options)
    with dask.config.set(settings):
        return LocalCluster(**cluster_options)  # type: ignore[no-untyped-call]


def _dump_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Pickle the call with cloudpickle (the cluster may not have the main script)."""
    # Dask always brings cloudpickle; imported by name since it ships no type hints.
    cloudpickle: Any = importlib.import_module("cloudpickle")
    try:
        data: bytes = cloudpickle.dumps((fn, args, kwargs), protocol=5)
        return data
    except Exception as error:
        pieces: list[tuple[str, object]] = [(f"function {getattr(fn, '__qualname__', '?')!r}", fn)]
        pieces += [(f"argument {index}", arg) for index, arg in enumerate(args, 1)]
        pieces += [(f"keyword argument {name!r}", value) for name, value in kwargs.items()]
        for label, value in pieces:
            try:
                cloudpickle.dumps(value, protocol=5)
            except Exception as piece_error:
                raise SerializationError(
                    f"{label} of type {describe_type(value)} cannot be pickled: {piece_error}"
                ) from error
        raise SerializationError(
            f"the task's function and arguments cannot be pickled: {error}"
        ) from error


def _unpickling_error(what: str, error: Exception) -> TaskError:
    import traceback

    text = "".join(traceback.format_exception(error))
    failure = TaskError(
        describe_type(error), f"{what} could not be unpickled in the parent: {error}", text
    )
    failure.__cause__ = error
    return failure
