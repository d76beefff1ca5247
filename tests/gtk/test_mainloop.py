"""Coroutines on the GLib main loop (gi.events), and ``context.cancellable`` with real Gio calls."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ._display import load_gtk

Gtk = load_gtk()

from gi.repository import Gio, GLib  # noqa: E402

from tasker import ManagerShutdownError, Task, TaskManager  # noqa: E402
from tasker.gtk import TaskListModel, main_loop_manager, shutdown_async  # noqa: E402
from tasker.gtk._mainloop import glib_event_loop  # noqa: E402
from tasker.testing import run_until  # noqa: E402

pytestmark = pytest.mark.gtk

TIMEOUT = 30.0


@pytest.fixture
def glib_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """asyncio running on the GLib main loop, as ``gi.events`` apps have it; restored after."""
    from gi.events import GLibEventLoopPolicy

    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(GLibEventLoopPolicy())
    loop = glib_event_loop()
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop_policy(previous)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local TCP port that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def until_updated(manager: TaskManager, predicate: Any) -> None:
    """Wait, letting the loop run, until ``predicate()`` holds after a ``tasks_updated``."""
    if predicate():
        return
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle() -> None:
        if predicate() and not future.done():
            future.set_result(None)

    def check(sender: object, **_: object) -> None:
        # Look once every receiver (the model among them) has seen this update.
        loop.call_soon(settle)

    manager.tasks_updated.connect(check)
    try:
        await future
    finally:
        manager.tasks_updated.disconnect(check)


def is_cancelled_error(error: object) -> bool:
    return isinstance(error, GLib.Error) and error.matches(
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED
    )


def test_main_loop_coroutines_run_on_the_main_thread_and_touch_widgets(
    glib_loop: asyncio.AbstractEventLoop,
) -> None:
    manager = main_loop_manager()
    label = Gtk.Label()
    threads: set[int] = set()

    async def count(context: Any, steps: int) -> int:
        for step in range(steps):
            threads.add(threading.get_ident())
            label.set_text(f"step {step + 1}")  # allowed: this is the main thread
            context.set_progress((step + 1) / steps)
            await asyncio.sleep(0)
        return steps

    async def scenario() -> tuple[int, int, bool]:
        done: asyncio.Future[int] = glib_loop.create_future()
        task = manager.add_coroutine(
            count, 5, when_done=lambda task: done.set_result(threading.get_ident())
        )
        result = await task
        done_thread = await done
        return result, done_thread, await shutdown_async(manager)

    result, done_thread, settled = glib_loop.run_until_complete(
        asyncio.wait_for(scenario(), TIMEOUT)
    )
    main = threading.get_ident()
    assert (result, settled) == (5, True)
    assert threads == {main} and done_thread == main
    assert label.get_text() == "step 5"


def test_cancelling_a_main_loop_coroutine_cancels_its_gio_call(
    glib_loop: asyncio.AbstractEventLoop, silent_port: int
) -> None:
    manager = main_loop_manager()
    outcome: dict[str, Any] = {}

    async def read_silence(context: Any, port: int, reading: asyncio.Future[None]) -> bytes:
        client = Gio.SocketClient()
        connection = await client.connect_to_host_async("127.0.0.1", port, context.cancellable)
        finished = asyncio.get_running_loop().create_future()

        def on_read(stream: Gio.InputStream, result: Gio.AsyncResult) -> None:
            try:
                outcome["data"] = stream.read_bytes_finish(result)
            except GLib.Error as error:
                outcome["error"] = error
            outcome["gio_done"].set_result(None)
            if not finished.done():
                finished.set_result(None)

        stream = connection.get_input_stream()
        stream.read_bytes_async(1024, GLib.PRIORITY_DEFAULT, context.cancellable, on_read)
        outcome["cancellable"] = context.cancellable
        reading.set_result(None)
        await finished
        return bytes(outcome["data"].get_data())

    async def scenario() -> Task[bytes]:
        reading = glib_loop.create_future()
        outcome["gio_done"] = glib_loop.create_future()
        task = manager.add_coroutine(read_silence, silent_port, reading)
        await reading
        assert task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await outcome["gio_done"]
        assert await shutdown_async(manager)
        return task

    task = glib_loop.run_until_complete(asyncio.wait_for(scenario(), TIMEOUT))
    assert task.get_status() == "cancelled"
    assert outcome["cancellable"].is_cancelled()
    assert is_cancelled_error(outcome.get("error")), outcome


def test_private_loop_coroutine_gio_call_is_cancelled_with_the_task(
    task_manager: TaskManager, silent_port: int
) -> None:
    outcome: dict[str, Any] = {}
    reading = threading.Event()

    async def read_silence(context: Any, port: int) -> None:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        connection = Gio.SocketClient().connect_to_host("127.0.0.1", port, context.cancellable)

        def on_read(stream: Gio.InputStream, result: Gio.AsyncResult) -> None:
            # Gio calls back on the default main context: the main thread.
            outcome["thread"] = threading.get_ident()
            try:
                stream.read_bytes_finish(result)
            except GLib.Error as error:
                outcome["error"] = error
            loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        outcome["loop_thread"] = threading.current_thread().name
        stream = connection.get_input_stream()
        stream.read_bytes_async(1024, GLib.PRIORITY_DEFAULT, context.cancellable, on_read)
        reading.set()
        await finished

    task = task_manager.add_coroutine(read_silence, silent_port)
    run_until(reading.is_set, TIMEOUT)
    task.cancel()
    run_until(lambda: "error" in outcome and not task_manager.has_tasks(), TIMEOUT)
    assert task.get_status() == "cancelled"
    assert is_cancelled_error(outcome["error"])
    assert outcome["loop_thread"] == "tasker-asyncio"
    assert outcome["thread"] == threading.get_ident()


def test_a_blocking_gio_call_in_a_thread_task_stops_on_cancel(
    task_manager: TaskManager, silent_port: int
) -> None:
    reading = threading.Event()
    errors: list[BaseException] = []

    def read_silence(context: Any, port: int) -> bytes:
        client = Gio.SocketClient()
        connection = client.connect_to_host("127.0.0.1", port, context.cancellable)
        reading.set()
        try:
            # Blocks until data arrives (never) or the cancellable fires.
            return bytes(
                connection.get_input_stream().read_bytes(1024, context.cancellable).get_data()
            )
        except GLib.Error as error:
            errors.append(error)
            raise

    task = task_manager.run_thread(read_silence, silent_port)
    run_until(reading.is_set, TIMEOUT)
    task.cancel()
    run_until(lambda: not task_manager.has_tasks(), TIMEOUT)
    assert task.get_status() == "cancelled"
    assert len(errors) == 1 and is_cancelled_error(errors[0])


def test_shutdown_async_cancels_everything_without_blocking_the_loop(
    glib_loop: asyncio.AbstractEventLoop,
) -> None:
    manager = main_loop_manager()
    started = threading.Event()

    async def forever(context: Any) -> None:
        await asyncio.Event().wait()

    def polite_thread(context: Any) -> str:
        started.set()
        while not context.is_cancelled():
            context.set_progress(0.5)
            threading.Event().wait(0.005)
        return "stopped"

    async def scenario() -> tuple[bool, list[Task[Any]]]:
        tasks: list[Task[Any]] = [
            manager.add_coroutine(forever),
            manager.add_coroutine(forever),
            manager.run_thread(polite_thread),
        ]
        await asyncio.to_thread(started.wait, TIMEOUT)
        return await shutdown_async(manager, timeout=10), tasks

    settled, tasks = glib_loop.run_until_complete(asyncio.wait_for(scenario(), TIMEOUT))
    assert settled
    assert [task.get_status() for task in tasks] == ["cancelled", "cancelled", "cancelled"]
    with pytest.raises(ManagerShutdownError):
        manager.add_coroutine(forever)


def test_the_model_follows_a_main_loop_manager(glib_loop: asyncio.AbstractEventLoop) -> None:
    manager = main_loop_manager()
    model = TaskListModel(manager, keep_finished=2)
    seen: list[tuple[str, str]] = []
    model.connect(
        "items-changed",
        lambda model, position, removed, added: seen.extend(
            (model.get_item(i).key, model.get_item(i).status)
            for i in range(position, position + added)
        ),
    )

    async def steps(context: Any, gate: asyncio.Event) -> str:
        context.set_message("waiting for the gate")
        await gate.wait()
        return "through"

    async def scenario() -> None:
        gate = asyncio.Event()
        task = manager.add_coroutine(steps, gate, key="gated")
        await until_updated(manager, lambda: model.get_n_items() == 1)
        gate.set()
        assert await task == "through"
        await until_updated(manager, lambda: model.find("gated").finished)
        assert await shutdown_async(manager)

    glib_loop.run_until_complete(asyncio.wait_for(scenario(), TIMEOUT))
    assert seen and seen[0][0] == "gated"
    assert model.find("gated").status == "completed"


def test_main_loop_manager_needs_the_gi_events_policy() -> None:
    with pytest.raises(RuntimeError, match="GLibEventLoopPolicy"):
        main_loop_manager()
