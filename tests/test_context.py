"""ExecutionContext: progress arithmetic, clamping, messages and input checks."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker import ExecutionContext
from tasker._context import MAX_MESSAGE_LENGTH, ProgressReport


class _Backend:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.coalesced: list[str] = []
        self.flushes = 0

    def send_event(self, name: str, data: Any, coalesce: bool) -> None:
        self.events.append((name, data))
        if coalesce:
            self.coalesced.append(name)

    async def send_event_async(self, name: str, data: Any, coalesce: bool) -> None:
        self.send_event(name, data, coalesce)

    def flush(self) -> None:
        self.flushes += 1

    def cancellable(self) -> Any:
        raise RuntimeError("no cancellable here")


def make_context(total: float = 1.0) -> tuple[ExecutionContext, ProgressReport, bytearray]:
    notified: list[int] = []
    report = ProgressReport(lambda: notified.append(1))
    flags = bytearray(1)
    return ExecutionContext(report, flags, 0, _Backend(), total=total), report, flags


def test_progress_is_normalised_by_total() -> None:
    ctx, report, _ = make_context()
    ctx.set_total(50)
    ctx.set_progress(25)
    assert report.progress == 0.5
    ctx.set_progress(50)
    assert report.progress == 1.0


def test_progress_is_clamped() -> None:
    ctx, report, _ = make_context()
    ctx.set_progress(-3)
    assert report.progress == 0.0
    ctx.set_progress(7)
    assert report.progress == 1.0
    ctx.set_progress(math.inf)
    assert report.progress == 1.0
    ctx.set_progress(-math.inf)
    assert report.progress == 0.0


def test_nan_progress_is_an_error() -> None:
    ctx, report, _ = make_context()
    ctx.set_progress(0.25)
    with pytest.raises(ValueError, match="NaN"):
        ctx.set_progress(math.nan)
    assert report.progress == 0.25


@pytest.mark.parametrize("total", [0, -1, math.nan, math.inf])
def test_bad_totals_are_rejected(total: float) -> None:
    ctx, _, _ = make_context()
    with pytest.raises(ValueError, match="total"):
        ctx.set_total(total)


@pytest.mark.parametrize("total", ["10", None, True])
def test_total_must_be_a_number(total: Any) -> None:
    ctx, _, _ = make_context()
    with pytest.raises(TypeError, match="total"):
        ctx.set_total(total)


def test_progress_must_be_a_number() -> None:
    ctx, _, _ = make_context()
    with pytest.raises(TypeError):
        ctx.set_progress("half")  # type: ignore[arg-type]


def test_notify_runs_only_on_the_clean_to_dirty_edge() -> None:
    calls: list[int] = []
    report = ProgressReport(lambda: calls.append(1))
    ctx = ExecutionContext(report, bytearray(1), 0, _Backend())
    for i in range(1000):
        ctx.set_progress(i / 1000)
        ctx.set_message(str(i))
    assert calls == [1]
    report.dirty = False  # what the manager's update tick does
    ctx.set_progress(1.0)
    assert calls == [1, 1]


def test_messages() -> None:
    ctx, report, _ = make_context()
    ctx.set_message("hello")
    assert report.message == "hello"
    ctx.set_message(None)
    assert report.message is None
    ctx.set_message("x" * (MAX_MESSAGE_LENGTH * 3))
    assert report.message is not None
    assert len(report.message) == MAX_MESSAGE_LENGTH
    assert report.message.endswith("…")
    with pytest.raises(TypeError, match="message"):
        ctx.set_message(42)  # type: ignore[arg-type]


def test_is_cancelled_reads_the_flag() -> None:
    ctx, _, flags = make_context()
    sub = ctx.sub_context(0.5, 0.5).sub_context(0.0, 0.1)
    assert not ctx.is_cancelled()
    assert not sub.is_cancelled()
    flags[0] = 1
    assert ctx.is_cancelled()
    assert sub.is_cancelled()


def test_events_and_flush_go_to_the_backend() -> None:
    backend = _Backend()
    ctx = ExecutionContext(ProgressReport(lambda: None), bytearray(1), 0, backend)
    ctx.sub_context(0, 1).send_event("row", [1, 2])
    ctx.send_event("done")
    ctx.flush()
    assert backend.events == [("row", [1, 2]), ("done", None)]
    assert backend.flushes == 1
    with pytest.raises(TypeError, match="event name"):
        ctx.send_event(3)  # type: ignore[arg-type]


def test_coalesce_is_passed_on_and_must_be_a_bool() -> None:
    import asyncio

    backend = _Backend()
    ctx = ExecutionContext(ProgressReport(lambda: None), bytearray(1), 0, backend)
    ctx.send_event("frame", 1, coalesce=True)
    asyncio.run(ctx.send_event_async("frame", 2, coalesce=True))
    ctx.send_event("row", 3)
    assert backend.events == [("frame", 1), ("frame", 2), ("row", 3)]
    assert backend.coalesced == ["frame", "frame"]
    with pytest.raises(TypeError, match="coalesce must be True or False"):
        ctx.send_event("frame", 4, coalesce=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="event name"):
        asyncio.run(ctx.send_event_async(b"frame"))  # type: ignore[arg-type]
    assert len(backend.events) == 3  # the refused ones were not sent


@pytest.mark.parametrize(
    ("base", "span"), [(-0.1, 0.5), (0.5, 0.6), (0.0, 1.5), (math.nan, 0.1), (0.2, math.inf)]
)
def test_sub_context_rejects_ranges_outside_the_parent(base: float, span: float) -> None:
    ctx, _, _ = make_context()
    with pytest.raises(ValueError):
        ctx.sub_context(base, span)


def test_seed_style_multi_stage() -> None:
    ctx, report, _ = make_context()
    download = ctx.sub_context(0.0, 0.5, total=10)
    download.set_progress(5)
    assert report.progress == pytest.approx(0.25)
    process = ctx.sub_context(0.5, 0.5)
    inner = process.sub_context(0.5, 0.5, total=4)
    inner.set_progress(2)
    assert report.progress == pytest.approx(0.875)


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def nested_ranges(draw: st.DrawFn) -> list[tuple[float, float]]:
    levels = draw(st.integers(min_value=1, max_value=12))
    ranges = []
    for _ in range(levels):
        base = draw(unit)
        span = draw(st.floats(min_value=0.0, max_value=1.0 - base, allow_nan=False))
        ranges.append((base, span))
    return ranges


@given(
    ranges=nested_ranges(),
    total=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    value=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
def test_sub_context_maps_into_the_parent_slice(
    ranges: list[tuple[float, float]], total: float, value: float
) -> None:
    ctx, report, _ = make_context()
    lo, width = 0.0, 1.0
    for base, span in ranges:
        ctx = ctx.sub_context(base, span)
        lo, width = lo + width * base, width * span
    ctx.set_total(total)
    ctx.set_progress(value)
    fraction = min(1.0, max(0.0, value / total))
    assert report.progress == pytest.approx(lo + width * fraction, abs=1e-9)
    assert lo - 1e-9 <= report.progress <= lo + width + 1e-9
    assert 0.0 <= report.progress <= 1.0 + 1e-9
