"""Weights, context.stage(), and the rate/ETA estimator with its stated stability bound."""

from __future__ import annotations

import itertools
import random
import threading
from typing import Any

import pytest

from tasker import ExecutionContext, TaskManager
from tasker._context import ProgressReport
from tasker._progress import MIN_SPAN, MIN_UPDATES, RateEstimator
from tasker.testing import drain, run_until

# ------------------------------------------------------------------ estimator


def steady_readings(
    duration: float, interval: float, lateness: float, seed: int
) -> list[tuple[float, float, float | None]]:
    """Feed an estimator a steady task the way the update tick sees it.

    The worker's progress grows linearly over ``duration`` seconds; the tick
    runs every ``interval`` seconds, up to ``lateness`` seconds late, and sees
    a value set up to one interval earlier. Returns (time, true time left, ETA).
    """
    rng = random.Random(seed)
    estimator = RateEstimator()
    readings = []
    tick = 0.0
    while tick < duration:
        tick += interval + rng.uniform(0.0, lateness)
        seen_at = tick - rng.uniform(0.0, interval)  # when the worker set what the tick sees
        estimator.update(tick, min(1.0, max(0.0, seen_at / duration)))
        # The UI reads the ETA at the tick and once between ticks.
        for now in (tick, tick + interval / 2):
            readings.append((now, max(0.0, duration - now), estimator.eta(now)))
    return readings


@pytest.mark.parametrize("seed", range(20))
def test_eta_of_a_steady_task_stays_within_the_stated_bound(seed: int) -> None:
    # The bound of tasker._progress: within 10 % + 0.1 s of the time left
    # when the tick sees values at most d = 0.1 s late (one 0.05 s interval
    # plus 0.05 s of main-loop lateness).
    readings = steady_readings(duration=10.0, interval=0.05, lateness=0.05, seed=seed)
    available = [(now, left, eta) for now, left, eta in readings if eta is not None]
    assert available, "the ETA never became available"
    for now, left, eta in available:
        assert abs(eta - left) <= 0.10 * left + 0.1 + 1e-9, (now, left, eta)
    # No jumps: from one reading to the next the ETA falls by the time that passed,
    # give or take twice that margin.
    for (t1, left1, eta1), (t2, _left2, eta2) in itertools.pairwise(available):
        assert abs((eta1 - eta2) - (t2 - t1)) <= 2 * (0.10 * left1 + 0.1) + 1e-9


def test_eta_needs_three_updates_over_one_second() -> None:
    estimator = RateEstimator()
    estimator.update(0.0, 0.1)
    estimator.update(0.6, 0.2)
    assert estimator.rate is None  # two updates
    estimator.update(0.9, 0.3)
    assert estimator.rate is None  # three, but only 0.9 s
    estimator.update(MIN_SPAN, 0.33)
    assert MIN_UPDATES <= 4
    assert estimator.rate is not None
    assert estimator.eta(MIN_SPAN) == pytest.approx((1 - 0.33) / estimator.rate)


def test_eta_counts_down_between_updates_and_not_below_zero() -> None:
    estimator = RateEstimator()
    for step in range(11):
        estimator.update(step * 0.2, step * 0.02)  # 0.1 per second
    eta = estimator.eta(2.0)
    assert eta == pytest.approx(8.0)
    assert estimator.eta(3.0) == pytest.approx(7.0)
    assert estimator.eta(100.0) == 0.0


def test_sparse_updates_use_the_bias_corrected_ema() -> None:
    # One update every 20 s: the 10 s window never holds two samples.
    estimator = RateEstimator()
    for step in range(4):
        estimator.update(step * 20.0, step * 0.1)
    # Every interval had the same rate (0.005/s): the corrected EMA is exactly
    # that, where an uncorrected one would still be far below it.
    assert estimator.rate == pytest.approx(0.005)


def test_progress_going_back_restarts_the_estimate() -> None:
    estimator = RateEstimator()
    for step in range(10):
        estimator.update(step * 0.2, step * 0.05)
    assert estimator.rate is not None
    estimator.update(2.0, 0.1)  # a second pass starts over
    assert estimator.rate is None


def test_a_stalled_task_has_no_rate() -> None:
    estimator = RateEstimator()
    for step in range(10):
        estimator.update(step * 0.2, 0.5)
    assert estimator.rate is None


# ------------------------------------------------------------ manager-level


def _stepper(context: ExecutionContext, go: threading.Event, steps: int) -> str:
    """Reports 1/steps more each time the test lets it go on."""
    for step in range(1, steps + 1):
        if not go.wait(10.0):
            raise TimeoutError("the test never let the task go on")
        go.clear()
        context.set_progress(step / steps)
        context.flush()
    return "done"


def test_task_eta_from_real_updates(task_manager: TaskManager) -> None:
    go = threading.Event()
    task = task_manager.run_thread(_stepper, go, 8)
    run_until(lambda: task.get_status() == "running")
    assert task.get_eta() is None and task.get_rate() is None
    assert task_manager.get_overall_eta() is None
    steps = 0

    def step() -> None:
        nonlocal steps
        # The ETA is about time: let some pass (the main loop keeps running).
        drain(0.3)
        go.set()
        steps += 1
        run_until(lambda: task._estimator is not None and task._estimator._count >= steps)

    for _ in range(3):
        step()
        if steps < 3:
            assert task.get_rate() is None  # fewer than 3 updates
    # At least 1 s of updates is needed: step until the rate appears.
    while task.get_rate() is None:
        assert steps < 7, "no rate after every update"
        step()
    rate = task.get_rate()
    eta = task.get_eta()
    assert rate is not None and rate > 0
    assert eta is not None and eta >= 0
    overall = task_manager.get_overall_eta()
    assert overall is not None and overall <= eta + 1e-6
    assert task.timings.first_progress is not None
    while steps < 7:
        step()
    go.set()  # the last step: 100 %, the task ends
    run_until(task.is_final)
    assert task.get_eta() is None  # final: nothing left to estimate
    run_until(lambda: not task_manager.has_tasks())
    assert task_manager.get_overall_eta() == 0.0


def _wait_for(context: ExecutionContext, release: threading.Event, progress: float) -> None:
    context.set_progress(progress)
    context.flush()
    release.wait(10.0)


def test_overall_progress_is_the_weighted_mean(task_manager: TaskManager) -> None:
    release = threading.Event()
    try:
        big = task_manager.run_thread(_wait_for, release, 0.5, weight=3.0)
        small = task_manager.run_thread(_wait_for, release, 1.0)
        assert big.weight == 3.0 and small.weight == 1.0
        run_until(lambda: big.get_progress() == 0.5 and small.get_progress() == 1.0)
        # (3 * 0.5 + 1 * 1.0) / 4, not the plain mean 0.75.
        assert task_manager.get_overall_progress() == pytest.approx(0.625)
    finally:
        release.set()
    run_until(lambda: not task_manager.has_tasks())
    assert task_manager.get_overall_progress() == 1.0


def test_finished_tasks_keep_their_weight_until_idle(task_manager: TaskManager) -> None:
    release = threading.Event()
    try:
        slow = task_manager.run_thread(_wait_for, release, 0.0)
        quick = task_manager.run_thread(lambda context: None, weight=4.0)
        run_until(lambda: quick.is_final() and task_manager.get_task(quick.key) is None)
        assert not slow.is_final()
        assert task_manager.get_overall_progress() == pytest.approx(4.0 / 5.0)
    finally:
        release.set()
    run_until(lambda: not task_manager.has_tasks())


@pytest.mark.parametrize("weight", [0, -1.0, float("nan"), float("inf")])
def test_bad_weight_is_a_value_error(task_manager: TaskManager, weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        task_manager.run_thread(lambda context: None, weight=weight)
    assert len(task_manager) == 0  # nothing was registered


@pytest.mark.parametrize("weight", ["1", None, True])
def test_weight_of_the_wrong_type_is_a_type_error(task_manager: TaskManager, weight: Any) -> None:
    with pytest.raises(TypeError, match="weight"):
        task_manager.run_process(lambda context: None, weight=weight)
    assert len(task_manager) == 0


# ---------------------------------------------------------------------- stage


class _Backend:
    def send_event(self, name: str, data: Any) -> None:
        raise AssertionError("not used")

    def flush(self) -> None:
        pass

    def cancellable(self) -> Any:
        raise RuntimeError("none")

    def wait_while_paused(self) -> None:
        raise AssertionError("not used")

    async def async_wait_while_paused(self) -> None:
        raise AssertionError("not used")


def make_context() -> tuple[ExecutionContext, ProgressReport]:
    report = ProgressReport(lambda: None)
    return ExecutionContext(report, bytearray(2), 0, _Backend(), pause_index=1), report


def test_stages_follow_each_other() -> None:
    context, report = make_context()
    with context.stage(0.2) as download:
        download.set_progress(0.5)
        assert report.progress == pytest.approx(0.1)
    with context.stage(0.5, total=10) as convert:
        convert.set_progress(5)
        assert report.progress == pytest.approx(0.2 + 0.25)
    assert report.progress == pytest.approx(0.7)
    with context.stage(0.3) as rest:
        assert report.progress == pytest.approx(0.7)
        rest.set_progress(0.0)
    assert report.progress == pytest.approx(1.0)


def test_a_stage_counts_as_done_when_it_fails() -> None:
    context, report = make_context()
    with pytest.raises(KeyError), context.stage(0.4) as part:
        part.set_progress(0.1)
        raise KeyError("boom")
    assert report.progress == pytest.approx(0.4)
    with context.stage(0.6) as second:
        second.set_progress(0.5)
    assert report.progress == pytest.approx(1.0)


def test_stages_nest() -> None:
    context, report = make_context()
    with context.stage(0.5) as outer:
        with outer.stage(0.5) as inner:
            inner.set_progress(1.0)
        assert report.progress == pytest.approx(0.25)
        with outer.stage(0.5) as inner:
            inner.set_progress(0.5)
            assert report.progress == pytest.approx(0.375)
    assert report.progress == pytest.approx(0.5)


def test_stages_may_not_add_up_to_more_than_one() -> None:
    context, report = make_context()
    with context.stage(0.7):
        pass
    with pytest.raises(ValueError, match="does not fit"), context.stage(0.5):
        pass
    assert report.progress == pytest.approx(0.7)  # the refused stage changed nothing
    with context.stage(0.3):
        pass


@pytest.mark.parametrize("share", [0, -0.1, 1.5, float("nan")])
def test_bad_share_is_a_value_error(share: float) -> None:
    context, _ = make_context()
    with pytest.raises(ValueError, match="share"):
        context.stage(share)


def test_bad_stage_arguments_are_type_errors() -> None:
    context, _ = make_context()
    with pytest.raises(TypeError, match="share"):
        context.stage("half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total"):
        context.stage(0.5, total=0)


async def _staged_coroutine(context: ExecutionContext, started: threading.Event) -> None:
    import asyncio

    with context.stage(0.6) as first:
        first.set_progress(1.0)
    with context.stage(0.4) as second:
        second.set_progress(0.5)
        started.set()
        await asyncio.sleep(30)


def test_a_cancelled_stage_counts_as_done(task_manager: TaskManager) -> None:
    started = threading.Event()
    task = task_manager.add_coroutine(_staged_coroutine, started)
    run_until(started.is_set)
    task.cancel()
    run_until(task.is_final)
    assert task.get_status() == "cancelled"
    assert task.get_progress() == pytest.approx(1.0)
