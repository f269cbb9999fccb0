"""The batcher on its own: a real jitted quadratic stands in for the likelihood (it is generic)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from service.batcher import (
    Batcher,
    BatcherClosed,
    BatchStuck,
    DeadlineExceeded,
    QueueFull,
    QueueSpec,
)
from service.metrics import Metrics

P = 3
BUCKETS = (1, 2, 4, 8)
PADDING = np.array([0.5, -0.5, 1.0])


def quadratic(theta):
    return -0.5 * jnp.sum(theta**2) + theta[0]


_value = jax.jit(jax.vmap(quadratic))
_value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(quadratic)))


class Recorder:
    """The evaluate function the batcher calls, recording each batch; optionally held shut."""

    def __init__(self) -> None:
        self.batches: list[tuple[np.ndarray, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def __call__(self, model: str, batch: np.ndarray, gradient: bool):
        self.gate.wait()
        self.batches.append((batch.copy(), gradient))
        if self.fail:
            raise RuntimeError("device on fire")
        if gradient:
            values, gradients = _value_and_grad(batch)
            return np.asarray(values), np.asarray(gradients)
        return np.asarray(_value(batch)), None


def expected(points: np.ndarray) -> np.ndarray:
    return -0.5 * (points**2).sum(axis=1) + points[:, 0]


@pytest.fixture
def recorder():
    return Recorder()


def make_batcher(recorder, max_batch_size=8, parallel_lanes=True, **overrides) -> Batcher:
    options = dict(max_wait_ms=20.0, max_queue_points=64, metrics=Metrics())
    queues = {"q": QueueSpec(BUCKETS, PADDING, max_batch_size, parallel_lanes)}
    batcher = Batcher(recorder, queues, **{**options, **overrides})
    batcher.start()
    return batcher


def points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, P))


def test_concurrent_requests_share_a_padded_batch(recorder):
    recorder.gate.clear()  # hold the dispatcher so all five requests queue together
    batcher = make_batcher(recorder)
    first = batcher.submit("q", points(1, 0))
    time.sleep(0.05)  # the first batch (just `first`) is now held at the gate
    requests = [points(1, s) for s in range(1, 6)]
    futures = [batcher.submit("q", p) for p in requests]
    recorder.gate.set()
    assert np.allclose(first.result(5).values, expected(points(1, 0)))
    for p, f in zip(requests, futures, strict=True):
        assert np.allclose(f.result(5).values, expected(p))
    batch, gradient = recorder.batches[1]
    assert batch.shape == (8, P) and not gradient  # five points padded to bucket 8
    assert np.array_equal(batch[5:], np.tile(PADDING, (3, 1)))
    batcher.close()


def test_sequential_lanes_cut_batches_to_whole_buckets(recorder):
    recorder.gate.clear()
    batcher = make_batcher(recorder, parallel_lanes=False)
    first = batcher.submit("q", points(1, 0))
    time.sleep(0.05)  # the first batch (just `first`) is now held at the gate
    requests = [points(1, s) for s in range(1, 8)]
    futures = [batcher.submit("q", p) for p in requests]
    recorder.gate.set()
    first.result(5)
    for p, f in zip(requests, futures, strict=True):
        assert np.allclose(f.result(5).values, expected(p))
    assert [len(b) for b, _ in recorder.batches] == [1, 4, 2, 1]  # 7 queued: no padded lane
    batcher.close()


def test_a_large_request_is_split_across_batches_and_reassembled(recorder):
    batcher = make_batcher(recorder, max_batch_size=4)
    many = points(11)
    result = batcher.submit("q", many).result(5)
    assert np.allclose(result.values, expected(many))
    assert [len(b) for b, _ in recorder.batches] == [4, 4, 4]  # 4 + 4 + 3 (padded to 4)
    batcher.close()


def test_several_dispatchers_run_batches_side_by_side():
    both_inside, first_inside = threading.Barrier(2, timeout=5), threading.Event()

    def evaluate(model, batch, gradient):
        first_inside.set()
        both_inside.wait()  # returns only while two batches are being evaluated at once
        return np.asarray(_value(batch)), None

    batcher = make_batcher(evaluate, parallel_lanes=False, dispatchers=2)
    first = batcher.submit("q", points(4, 1))
    assert first_inside.wait(5)
    second = batcher.submit("q", points(4, 2))
    assert np.allclose(first.result(5).values, expected(points(4, 1)))
    assert np.allclose(second.result(5).values, expected(points(4, 2)))
    batcher.close()


def test_one_large_request_keeps_every_dispatcher_busy():
    both_inside = threading.Barrier(2, timeout=5)

    def evaluate(model, batch, gradient):
        both_inside.wait()  # returns only while two batches of the one request run at once
        return np.asarray(_value(batch)), None

    batcher = make_batcher(evaluate, max_batch_size=4, parallel_lanes=False, dispatchers=2)
    many = points(16)
    assert np.allclose(batcher.submit("q", many).result(5).values, expected(many))
    batcher.close()


def test_requests_split_over_concurrent_batches_are_reassembled(recorder):
    batcher = make_batcher(recorder, max_batch_size=4, parallel_lanes=False, dispatchers=3,
                           max_queue_points=256)
    requests = [points(23, seed) for seed in range(6)]
    futures = [batcher.submit("q", p) for p in requests]
    for p, f in zip(requests, futures, strict=True):
        assert np.allclose(f.result(5).values, expected(p))
    batcher.close()


def test_at_least_one_dispatcher(recorder):
    with pytest.raises(ValueError, match="dispatchers"):
        Batcher(recorder, {"q": QueueSpec(BUCKETS, PADDING)}, max_wait_ms=1.0,
                max_queue_points=8, dispatchers=0)


def test_batch_closes_after_max_wait_from_the_first_point(recorder):
    batcher = make_batcher(recorder, max_wait_ms=100.0)
    started = time.monotonic()
    batcher.submit("q", points(1)).result(5)
    assert 0.09 < time.monotonic() - started < 1.0
    batcher.close()


def test_sequential_lanes_do_not_wait_for_a_batch_to_fill(recorder):
    batcher = make_batcher(recorder, max_wait_ms=10_000.0, parallel_lanes=False)
    started = time.monotonic()
    batcher.submit("q", points(1)).result(5)
    assert time.monotonic() - started < 1.0
    batcher.close()


def test_a_full_batch_does_not_wait(recorder):
    batcher = make_batcher(recorder, max_wait_ms=10_000.0)
    started = time.monotonic()
    batcher.submit("q", points(8)).result(5)
    assert time.monotonic() - started < 1.0
    batcher.close()


def test_gradient_and_value_requests_go_in_separate_batches(recorder):
    recorder.gate.clear()
    batcher = make_batcher(recorder)
    held = batcher.submit("q", points(1, 9))
    time.sleep(0.05)
    value = batcher.submit("q", points(2, 1))
    with_gradient = batcher.submit("q", points(2, 2), gradient=True)
    recorder.gate.set()
    held.result(5)
    assert value.result(5).gradients is None
    result = with_gradient.result(5)
    p = points(2, 2)
    assert np.allclose(result.gradients, -p + np.array([1.0, 0.0, 0.0]))
    assert sorted(g for _, g in recorder.batches[1:]) == [False, True]
    batcher.close()


def test_a_full_queue_rejects_at_once(recorder):
    recorder.gate.clear()
    batcher = make_batcher(recorder, max_queue_points=10, max_batch_size=8)
    batcher.submit("q", points(8))  # taken by the dispatcher, held at the gate
    time.sleep(0.05)
    batcher.submit("q", points(10))
    with pytest.raises(QueueFull):
        batcher.submit("q", points(1))
    assert batcher.queued_points("q") == 10
    recorder.gate.set()
    batcher.close()


def test_cancelled_requests_are_never_computed(recorder):
    recorder.gate.clear()
    batcher = make_batcher(recorder)
    batcher.submit("q", points(8, 0))  # occupies the dispatcher
    time.sleep(0.05)
    gone = batcher.submit("q", points(3, 1))
    kept = batcher.submit("q", points(2, 2))
    assert gone.cancel()
    recorder.gate.set()
    assert np.allclose(kept.result(5).values, expected(points(2, 2)))
    with pytest.raises(CancelledError):
        gone.result(0)
    computed = np.concatenate([b for b, _ in recorder.batches])
    assert not any(np.allclose(row, p) for row in computed for p in points(3, 1))
    batcher.close()


def test_requests_past_their_deadline_are_dropped(recorder):
    recorder.gate.clear()
    batcher = make_batcher(recorder)
    batcher.submit("q", points(8, 0))
    time.sleep(0.05)
    late = batcher.submit("q", points(1, 1), timeout_s=0.01)
    time.sleep(0.05)
    recorder.gate.set()
    with pytest.raises(DeadlineExceeded):
        late.result(5)
    assert len(recorder.batches) == 1
    batcher.close()


def test_an_evaluation_error_reaches_every_request_of_the_batch(recorder):
    recorder.fail = True
    batcher = make_batcher(recorder)
    futures = [batcher.submit("q", points(2, s)) for s in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="on fire"):
            f.result(5)
    recorder.fail = False
    assert np.allclose(batcher.submit("q", points(1)).result(5).values, expected(points(1)))
    batcher.close()


def test_close_finishes_queued_work_then_refuses(recorder):
    batcher = make_batcher(recorder, max_wait_ms=10_000.0)
    pending = batcher.submit("q", points(3))
    batcher.close()  # must not wait the 10 s: closing flushes at once
    assert np.allclose(pending.result(0).values, expected(points(3)))
    with pytest.raises(BatcherClosed):
        batcher.submit("q", points(1))


def test_wrong_width_is_refused(recorder):
    batcher = make_batcher(recorder)
    with pytest.raises(ValueError, match=r"shape \(n >= 1, 3\)"):
        batcher.submit("q", np.zeros((2, 4)))
    batcher.close()


def test_metrics_record_batches(recorder):
    metrics = Metrics()
    batcher = make_batcher(recorder, metrics=metrics)
    batcher.submit("q", points(3)).result(5)
    batcher.close()
    text = metrics.render().decode()
    assert 'lensserve_batch_size_points_sum{model="q"} 3.0' in text
    assert 'lensserve_batch_padded_size_points_sum{model="q"} 4.0' in text
    assert 'lensserve_queue_depth_points{model="q"} 0.0' in text


def test_models_take_turns_rather_than_oldest_request_first(recorder):
    """A cheap model's request does not wait behind every queued batch of another model."""
    order: list[str] = []

    def evaluate(model, batch, gradient):
        order.append(model)
        return recorder(model, batch, gradient)

    queues = {name: QueueSpec((1,), PADDING, 1, parallel_lanes=False) for name in ("slow", "fast")}
    batcher = Batcher(evaluate, queues, max_wait_ms=0.0, max_queue_points=64)
    recorder.gate.clear()
    batcher.start()
    first = batcher.submit("slow", points(1))
    time.sleep(0.2)  # the dispatcher holds `slow`'s first batch at the gate
    queued = [batcher.submit("slow", points(1, seed)) for seed in range(1, 4)]
    fast = batcher.submit("fast", points(1, 9))  # the newest request
    recorder.gate.set()
    fast.result(5)
    for future in (first, *queued):
        future.result(5)
    assert order[:2] == ["slow", "fast"]
    batcher.close()


def test_new_buckets_are_used_once_set(recorder):
    batcher = make_batcher(recorder, max_batch_size=8, parallel_lanes=False)
    batcher.set_buckets("q", (1,))
    recorder.gate.clear()
    futures = [batcher.submit("q", points(4, 1))]
    time.sleep(0.1)
    batcher.set_buckets("q", (1, 2, 4))
    futures.append(batcher.submit("q", points(4, 2)))
    recorder.gate.set()
    for future in futures:
        future.result(5)
    sizes = [len(batch) for batch, _ in recorder.batches]
    assert sizes[0] == 1 and 4 in sizes and max(sizes) == 4
    batcher.close()


def test_the_watchdog_fails_a_stuck_batch_and_every_queued_request():
    release = threading.Event()

    def evaluate(model, batch, gradient):
        release.wait(30)
        return np.asarray(_value(batch)), None

    metrics = Metrics()
    batcher = make_batcher(evaluate, parallel_lanes=False, metrics=metrics, watchdog_floor_s=0.5)
    stuck = batcher.submit("q", points(1))
    time.sleep(0.1)
    queued = batcher.submit("q", points(1, 2))
    with pytest.raises(BatchStuck, match="watchdog"):
        stuck.result(5)
    with pytest.raises(BatchStuck):  # the only dispatcher is stuck: it would wait for ever
        queued.result(5)
    assert batcher.stuck
    with pytest.raises(BatchStuck):
        batcher.submit("q", points(1, 3))
    assert metrics.stuck_batches.labels("q")._value.get() == 1
    assert not batcher.close(timeout=0.5)  # still running: close gives up in time
    release.set()
    assert batcher.close(timeout=5)
    assert not batcher.stuck


def test_the_watchdogs_bound_follows_the_measured_compute_time(recorder):
    batcher = make_batcher(recorder, watchdog_floor_s=1.0, watchdog_factor=10.0)
    assert batcher.stuck_after("q", 1, False) == 1.0  # nothing measured yet: the floor
    for seed in range(3):
        batcher.submit("q", points(1, seed)).result(5)
    assert batcher.stuck_after("q", 1, False) == 1.0  # fast batches: still the floor
    batcher._recent["q", 1, False].extend([0.5, 0.5, 0.5, 0.5])
    assert batcher.stuck_after("q", 1, False) == pytest.approx(5.0)
    batcher.close()
