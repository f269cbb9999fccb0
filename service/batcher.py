"""Dynamic batcher: per-model queues of points, dispatcher threads that evaluate the batches.

Policy (after Triton's dynamic batcher and Ray Serve's `@serve.batch`):

- Sizes are counted in points, not requests. A batch closes when `max_batch_size` points are
  queued or the oldest queued point has waited `max_wait_ms`; a request larger than a batch is
  split across consecutive batches and answered when its last slice is back.
- A batch is padded to the next bucket (a compiled batch size) with a valid padding point, so the
  padding lanes always compute a finite value and never force a recompilation.
- Where the device evaluates a batch's lanes one after another (`parallel_lanes=False`: XLA on a
  CPU), a lane costs a point's time whether real, padded or waited for, so neither waiting nor
  padding can pay: a batch closes as soon as a dispatcher is free, and takes the largest bucket
  the queued points fill, leaving the rest, already due, for the next batch.
- One batch holds only value requests or only value-and-gradient requests: the oldest queued
  request chooses; the others wait for the next batch.
- `dispatchers` threads take batches: one owns an accelerator; on a CPU, where XLA runs a
  batch on one core (no intra-op threads, see `service.environment`), one per core lets batches
  run side by side (two threads evaluated a stream of MGE batches 1.8-2.2x as fast as one on 2 cores).
- Each model's queue is bounded (in points): `submit` raises `QueueFull` rather than queueing.
- A request whose future was cancelled (its client went away) or whose deadline passed is dropped
  before dispatch; its remaining slices are never computed.
- A watchdog thread checks the running batches: one running longer than its bound (the larger of
  `watchdog_floor_s` and `watchdog_factor` times the median of that model, bucket and variant's
  last compute times) is logged with every thread's stack and counted, its requests fail with
  `BatchStuck` (503, retry), and `stuck` is true until it returns. While every dispatcher is
  stuck, queued and new requests fail the same way instead of waiting for their deadline.
- A model's buckets can grow while it serves (`set_buckets`): the engine compiles the smallest
  first and hands over the others as they are ready.

The batcher knows nothing of JAX: it calls the injected `evaluate(model, batch, gradient)` with a
`(bucket, P)` float64 array and expects `(values (bucket,), gradients (bucket, P) or None)`.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import numpy as np

from service.metrics import Metrics

logger = logging.getLogger(__name__)

EvaluateFn = Callable[[str, np.ndarray, bool], tuple[np.ndarray, "np.ndarray | None"]]


class QueueFull(Exception):
    """The model's queue cannot take the request's points now (answer 503, retry later)."""


class DeadlineExceeded(Exception):
    """The request was still queued when its deadline passed."""


class BatcherClosed(Exception):
    """The batcher is shutting down and takes no new requests."""


class QueueClosed(LookupError):
    """The model is being retired: its queue takes no new points."""


class BatchStuck(Exception):
    """The request's batch, or every dispatcher, is stuck past the watchdog's bound (retry)."""


@dataclass(frozen=True)
class QueueSpec:
    """One model's queue: its compiled batch sizes, the point that pads a batch to one, the most
    points a batch takes (None: the largest bucket), and whether the device evaluates a batch's
    lanes in parallel (then batches wait to fill and are padded; see the module docstring)."""

    buckets: tuple[int, ...]
    padding: np.ndarray  # (P,), a valid point of the model
    max_batch_size: int | None = None
    parallel_lanes: bool = True

    def __post_init__(self) -> None:
        largest = self.buckets[-1]
        if self.max_batch_size is None:
            object.__setattr__(self, "max_batch_size", largest)
        elif self.max_batch_size > largest:
            raise ValueError(
                f"max_batch_size {self.max_batch_size} exceeds the largest bucket {largest}"
            )

    def bucket_for(self, points: int) -> int:
        return next(b for b in self.buckets if b >= points)

    def batch_size(self, queued: int) -> int:
        """Points the next batch takes when `queued` are waiting (in its mode)."""
        size = min(queued, self.max_batch_size)
        if self.parallel_lanes:
            return size
        return max((b for b in self.buckets if b <= size), default=size)


@dataclass(frozen=True)
class BatchResult:
    """Answers for one request, row-aligned with its points."""

    values: np.ndarray  # (n,)
    gradients: np.ndarray | None  # (n, P) when asked for


@dataclass(eq=False)
class _Job:
    points: np.ndarray  # (n, P)
    gradient: bool
    deadline: float
    enqueued: float
    future: Future = field(default_factory=Future)
    next_row: int = 0  # first row not yet dispatched
    rows_left: int = 0  # rows dispatched or not whose answers are still missing
    failed: bool = False

    def __post_init__(self) -> None:
        n, p = self.points.shape
        self.rows_left = n
        self.values = np.empty(n)
        self.gradients = np.empty((n, p)) if self.gradient else None

    @property
    def undispatched(self) -> int:
        return len(self.points) - self.next_row


@dataclass(frozen=True)
class _Slice:
    job: _Job
    start: int
    stop: int


@dataclass(eq=False)
class _Running:
    """A batch on a dispatcher: what the watchdog watches."""

    model: str
    bucket: int
    gradient: bool
    started: float  # time.monotonic()
    slices: list[_Slice]
    stuck: bool = False


RECENT_BATCHES = 20  # compute times kept per model, bucket and variant for the watchdog's bound


class Batcher:
    """Queues points per model and evaluates them in padded batches on `dispatchers` threads."""

    def __init__(
        self,
        evaluate: EvaluateFn,
        queues: Mapping[str, QueueSpec],
        *,
        max_wait_ms: float,
        max_queue_points: int,
        metrics: Metrics | None = None,
        dispatchers: int = 1,
        watchdog_floor_s: float = 30.0,
        watchdog_factor: float = 10.0,
    ) -> None:
        if dispatchers < 1:
            raise ValueError(f"dispatchers must be at least 1, got {dispatchers}")
        self._evaluate = evaluate
        self._specs = dict(queues)
        self._largest_batch = {name: spec.max_batch_size for name, spec in self._specs.items()}
        self.watchdog_floor_s = watchdog_floor_s
        self.watchdog_factor = watchdog_factor
        self._running: list[_Running] = []
        self._recent: dict[tuple[str, int, bool], deque[float]] = {}
        self._stopped = threading.Event()
        self._max_wait_s = max_wait_ms / 1000.0
        # How long a queue's oldest point may wait for its batch to fill.
        self._fill_wait_s = {name: self._fill_wait_s_of(spec) for name, spec in self._specs.items()}
        self.max_queue_points = max_queue_points
        self._metrics = metrics or Metrics()
        self._jobs: dict[str, deque[_Job]] = {name: deque() for name in queues}
        self._queued = dict.fromkeys(queues, 0)  # undispatched points per model
        self._last_served = dict.fromkeys(queues, 0.0)  # when each model's last batch was taken
        self._taken = dict.fromkeys(queues, 0)  # batches taken from each queue, not yet done
        self._retiring: set[str] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"lensserve-dispatcher-{i}", daemon=True)
            for i in range(dispatchers)
        ]
        self._watchdog = threading.Thread(target=self._watch, name="lensserve-watchdog",
                                          daemon=True)

    def _fill_wait_s_of(self, spec: QueueSpec) -> float:
        return self._max_wait_s if spec.parallel_lanes else 0.0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self._watchdog.start()
        for name in self._specs:
            self._metrics.queue_depth.labels(name).set(0)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking requests, dispatch everything already queued, and join the threads within
        `timeout` seconds (None: however long). Returns whether every dispatcher has stopped
        (False: some batch is still running, e.g. stuck)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        return not any(thread.is_alive() for thread in self._threads)

    def add_queue(self, model: str, spec: QueueSpec) -> None:
        """Queue points for one more model from now on. Its batches fit its smallest bucket
        until `set_buckets` tells of more (the engine, as it compiles them)."""
        with self._cond:
            self._specs[model] = dataclasses.replace(
                spec, buckets=spec.buckets[:1], max_batch_size=min(spec.max_batch_size,
                                                                   spec.buckets[0]))
            self._largest_batch[model] = spec.max_batch_size
            self._fill_wait_s[model] = self._fill_wait_s_of(spec)
            self._jobs[model] = deque()
            self._queued[model] = 0
            self._last_served[model] = 0.0
            self._taken[model] = 0
        self._metrics.queue_depth.labels(model).set(0)

    def has_queue(self, model: str) -> bool:
        with self._cond:
            return model in self._specs

    def retire(self, model: str, timeout: float) -> bool:
        """Take no more points for `model` (`submit` raises `QueueClosed`), answer those queued,
        then drop its queue. Whether that took less than `timeout` seconds; if not, what was
        still queued fails with `QueueClosed` (a batch still running is left to finish)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._retiring.add(model)
            while True:
                self._drop_dead(model, time.monotonic())
                drained = not self._jobs[model] and not self._taken[model]
                if drained or time.monotonic() >= deadline:
                    break
                # Polled: a dispatcher finishing a batch notifies no one in particular.
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            for job in self._jobs[model]:
                _fail(job, QueueClosed(f"model {model} was deleted before this request ran"))
            for table in (self._specs, self._largest_batch, self._fill_wait_s, self._jobs,
                          self._queued, self._last_served, self._taken):
                del table[model]
            for key in [key for key in self._recent if key[0] == model]:
                del self._recent[key]
            self._retiring.discard(model)
        return drained

    def set_buckets(self, model: str, buckets: tuple[int, ...]) -> None:
        """The buckets `model` can run now (compiled); batches are cut to fit them."""
        with self._cond:
            largest = min(self._largest_batch[model], buckets[-1])
            self._specs[model] = dataclasses.replace(
                self._specs[model], buckets=tuple(buckets), max_batch_size=largest)
            self._cond.notify_all()

    @property
    def stuck(self) -> bool:
        """Some batch is running past the watchdog's bound."""
        with self._cond:
            return bool(self._stuck_batches())

    def stuck_after(self, model: str, bucket: int, gradient: bool) -> float:
        """Seconds a batch may run before the watchdog calls it stuck."""
        recent = self._recent.get((model, bucket, gradient))
        if not recent:
            return self.watchdog_floor_s
        return max(self.watchdog_floor_s, self.watchdog_factor * statistics.median(recent))

    def queued_points(self, model: str) -> int:
        with self._cond:
            return self._queued.get(model, 0)

    def submit(
        self, model: str, points: np.ndarray, gradient: bool = False, timeout_s: float = 60.0
    ) -> Future:
        """Queue `points` (n, P) for `model`; the future resolves to a `BatchResult`.

        Cancel the future to withdraw the request: slices not yet dispatched are dropped.
        Raises `QueueFull`, `BatcherClosed`, `QueueClosed` or `KeyError` (unknown model) at once.
        """
        if model in self._retiring:
            raise QueueClosed(f"model {model} is being deleted")
        spec = self._specs[model]
        points = np.ascontiguousarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != spec.padding.shape[0] or len(points) == 0:
            raise ValueError(
                f"points must have shape (n >= 1, {spec.padding.shape[0]}), got {points.shape}"
            )
        now = time.monotonic()
        job = _Job(points, gradient, deadline=now + timeout_s, enqueued=now)
        with self._cond:
            if self._closing:
                raise BatcherClosed("the service is shutting down")
            if self._all_dispatchers_stuck():
                raise BatchStuck(self._stuck_message())
            if self._queued[model] + len(points) > self.max_queue_points:
                raise QueueFull(
                    f"model {model} has {self._queued[model]} points queued; limit "
                    f"{self.max_queue_points}"
                )
            self._jobs[model].append(job)
            self._queued[model] += len(points)
            self._metrics.queue_depth.labels(model).set(self._queued[model])
            self._cond.notify()
        return job.future

    def _run(self) -> None:
        while True:
            with self._cond:
                model = self._wait_for_batch()
                if model is None:
                    return
                slices = self._take(model)
                if any(self._queued.values()):
                    # `submit` woke one dispatcher; what this batch left behind needs another.
                    self._cond.notify()
            if slices:
                self._dispatch(model, slices)

    def _stuck_batches(self) -> list[_Running]:
        return [running for running in self._running if running.stuck]

    def _all_dispatchers_stuck(self) -> bool:
        return len(self._stuck_batches()) >= len(self._threads)

    def _stuck_message(self) -> str:
        now = time.monotonic()
        return "batches stuck: " + ", ".join(
            f"model {r.model} bucket {r.bucket} for {now - r.started:.0f} s"
            for r in self._stuck_batches())

    def _done_running(self, running: _Running) -> None:
        """A batch returned or failed (lock held): no longer watched; a stuck one is logged."""
        self._running.remove(running)
        if running.model in self._taken:  # else retired while this batch ran (`retire`)
            self._taken[running.model] -= 1
        if running.stuck:
            logger.warning("stuck batch of model %s bucket %d returned after %.1f s",
                           running.model, running.bucket, time.monotonic() - running.started)
            self._metrics.stuck_now.set(len(self._stuck_batches()))

    def _watch(self) -> None:
        """The watchdog: every second, flag running batches past their bound (see module doc)."""
        while not self._stopped.wait(min(1.0, self.watchdog_floor_s / 4)):
            with self._cond:
                now = time.monotonic()
                newly_stuck = [
                    running for running in self._running if not running.stuck
                    and now - running.started > self.stuck_after(
                        running.model, running.bucket, running.gradient)
                ]
                for running in newly_stuck:
                    running.stuck = True
                    error = BatchStuck(
                        f"the batch holding this request (model {running.model}, bucket "
                        f"{running.bucket}) has run {now - running.started:.1f} s, past the "
                        "watchdog's bound; retry later")
                    for s in running.slices:
                        _fail(s.job, error)
                    self._metrics.stuck_batches.labels(running.model).inc()
                if newly_stuck and self._all_dispatchers_stuck():
                    self._fail_queued(BatchStuck(self._stuck_message()))
                self._metrics.stuck_now.set(len(self._stuck_batches()))
            for running in newly_stuck:
                logger.error(
                    "watchdog: batch of model %s bucket %d%s has run %.1f s; every thread's "
                    "stack follows", running.model, running.bucket,
                    " value_and_grad" if running.gradient else "", now - running.started)
            if newly_stuck:
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)

    def _fail_queued(self, error: Exception) -> None:
        """Fail every queued request (lock held)."""
        for model, jobs in self._jobs.items():
            for job in jobs:
                _fail(job, error)
            self._drop_dead(model, time.monotonic())

    def _wait_for_batch(self) -> str | None:
        """With the lock held: block until some model's batch should close; None: closed and idle.

        Of the models whose batch should close now, the one served longest ago goes first: in
        turn, not oldest request first, or a cheap model's requests would wait behind every
        queued batch of an expensive one (a small MGE point waited 7 s behind `delaunay`'s).
        """
        while True:
            now = time.monotonic()
            earliest: float | None = None  # when the next batch is due
            closing_now = []
            for name, jobs in self._jobs.items():
                self._drop_dead(name, now)
                if not jobs:
                    continue
                due = jobs[0].enqueued + self._fill_wait_s[name]
                if (self._closing or now >= due
                        or self._queued[name] >= self._specs[name].max_batch_size):
                    closing_now.append(name)
                elif earliest is None or due < earliest:
                    earliest = due
            if closing_now:
                return min(closing_now, key=self._last_served.__getitem__)
            if earliest is None:
                if self._closing:
                    return None
                self._cond.wait()
                continue
            self._cond.wait(earliest - now)

    def _drop_dead(self, model: str, now: float) -> None:
        """Remove jobs cancelled by their client, already failed, or past deadline (lock held)."""
        jobs = self._jobs[model]
        if not any(job.future.done() or now > job.deadline for job in jobs):
            return
        kept: deque[_Job] = deque()
        for job in jobs:
            if now > job.deadline and not job.future.done():
                _fail(job, DeadlineExceeded("the request's deadline passed while it was queued"))
            elif not job.future.done():
                kept.append(job)
                continue
            self._queued[model] -= job.undispatched
        self._jobs[model] = kept
        self._metrics.queue_depth.labels(model).set(self._queued[model])

    def _take(self, model: str) -> list[_Slice]:
        """Move the next batch's points, all of one mode, from the queue into slices (lock held)."""
        jobs = self._jobs[model]
        if not jobs:
            return []
        gradient = jobs[0].gradient
        same_mode = [job for job in jobs if job.gradient == gradient]
        size = self._specs[model].batch_size(sum(job.undispatched for job in same_mode))
        room = size
        slices: list[_Slice] = []
        now = time.monotonic()
        for job in same_mode:
            if room == 0:
                break
            stop = job.next_row + min(room, job.undispatched)
            slices.append(_Slice(job, job.next_row, stop))
            self._metrics.queue_wait.labels(model).observe(now - job.enqueued)
            room -= stop - job.next_row
            job.next_row = stop
            if job.undispatched == 0:
                jobs.remove(job)
        self._queued[model] -= size
        self._taken[model] += 1
        self._last_served[model] = now
        self._metrics.queue_depth.labels(model).set(self._queued[model])
        return slices

    def _dispatch(self, model: str, slices: list[_Slice]) -> None:
        """Pad, evaluate and split one batch (lock not held: this is where the time goes)."""
        spec = self._specs[model]
        gradient = slices[0].job.gradient
        n = sum(s.stop - s.start for s in slices)
        bucket = spec.bucket_for(n)
        batch = np.empty((bucket, spec.padding.shape[0]))
        row = 0
        for s in slices:
            batch[row : row + s.stop - s.start] = s.job.points[s.start : s.stop]
            row += s.stop - s.start
        batch[n:] = spec.padding
        running = _Running(model, bucket, gradient, time.monotonic(), slices)
        with self._cond:
            self._running.append(running)
        started = time.perf_counter()
        try:
            values, gradients = self._evaluate(model, batch, gradient)
        except Exception as error:  # noqa: BLE001 - every waiting request must get an answer
            logger.exception("evaluation of a %d-point batch of model %s failed", bucket, model)
            with self._cond:
                self._done_running(running)
                for s in slices:
                    _fail(s.job, error)
            return
        seconds = time.perf_counter() - started
        self._metrics.observe_batch(model, n, bucket, gradient, seconds)
        finished = []
        with self._cond:  # another dispatcher may be filling other slices of the same request
            self._done_running(running)
            if not running.stuck:
                self._recent.setdefault((model, bucket, gradient), deque(maxlen=RECENT_BATCHES)
                                        ).append(seconds)
            row = 0
            for s in slices:
                job, size = s.job, s.stop - s.start
                job.values[s.start : s.stop] = values[row : row + size]
                if gradient:
                    job.gradients[s.start : s.stop] = gradients[row : row + size]
                row += size
                job.rows_left -= size
                if job.rows_left == 0 and not job.failed:
                    finished.append(job)
        for job in finished:
            _resolve(job.future, BatchResult(job.values, job.gradients))


def _resolve(future: Future, result: BatchResult) -> None:
    try:
        future.set_result(result)
    except InvalidStateError:  # cancelled by its client meanwhile
        pass


def _fail(job: _Job, error: BaseException) -> None:
    job.failed = True
    try:
        job.future.set_exception(error)
    except InvalidStateError:
        pass
