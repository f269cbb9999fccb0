"""Lenses registered at runtime: validate, store, serve, restore and retire them.

A registration is checked as `likelihood.load_imaging` checks a dataset file and built as a
configured model is (`service.models.build_served_model`) before anything is stored or served, so
a bad one changes nothing. Then it is stored (`RegistryStore`), added to the engine and the
batcher, and compiled: at once when a model of the same shapes has compiled every executable it
needs (it shares them: no XLA compilation), else on the registry's compile thread, one model
after another, while the service goes on serving.

At start-up `restore` rebuilds every stored model; one whose dataset no longer validates (or
whose spec this version cannot build) is kept as failed, with the reason, not fatal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgpack
import numpy as np
from pydantic import ValidationError

from service.batcher import Batcher, QueueSpec
from service.engine import Engine
from service.evaluation import UnknownModel
from service.metrics import Metrics
from service.models import default_buckets
from service.registry.store import NameTaken, RegistryStore, StoredModel
from service.registry.uploads import ARRAYS, Registration
from service.settings import ModelSpec
from service.wire import pack_array, unpack_array, validation_message

logger = logging.getLogger(__name__)

BuildModel = Callable[[ModelSpec, object], object]  # (spec, likelihood.Imaging) -> LensModel


class InvalidRegistration(ValueError):
    """The dataset or spec cannot make a model; the message names what is wrong (422)."""


class RegistryFull(Exception):
    """The registry holds `max_models` models (409)."""


class RateLimited(Exception):
    """Over `max_registrations_per_minute` (429); `retry_after` seconds until one is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RegistryLimits:
    """`max_models` registered at once, `per_minute` registration requests (None: no limit)."""

    max_models: int | None = None
    per_minute: int | None = None


class ConfiguredModel(Exception):
    """The model comes from the service's configuration, not the registry (409 on delete)."""


@dataclass(frozen=True)
class Restored:
    """What `restore` found: every record, the models it built and their specs, and why the
    others failed."""

    records: dict[str, StoredModel]
    models: dict[str, object]
    specs: dict[str, ModelSpec]
    failures: dict[str, str]


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """The dataset's arrays as stored: a msgpack map of packed arrays (`service.wire`), in
    `ARRAYS` order, so the same arrays always give the same bytes and sha256."""
    return msgpack.packb({what: pack_array(arrays[what]) for what in ARRAYS}, use_bin_type=True)


def decode_arrays(blob: bytes) -> dict[str, np.ndarray]:
    packed = msgpack.unpackb(blob, raw=False)
    return {what: unpack_array(packed[what], what) for what in ARRAYS}


def _model_spec(spec, name: str, ladder: tuple[int, ...]) -> ModelSpec:
    """A registration's spec (`schemas.RegistrationSpec`) as a configured model's, named, with
    its buckets spelled out (stored so, a restart serves the same ones)."""
    try:
        model_spec = ModelSpec(**spec.model_dump(exclude={"name"}), name=name)
    except ValidationError as error:
        raise InvalidRegistration(validation_message(error)) from None
    if model_spec.buckets is None:
        model_spec.buckets = default_buckets(spec.kind, ladder)
    return model_spec


def checked_model(spec: ModelSpec, arrays: dict[str, np.ndarray], build: BuildModel):
    """The model of `spec` on `arrays`, the dataset checked as `load_imaging` checks one;
    raises `InvalidRegistration` naming the problem."""
    from likelihood.dataset import DEFAULT_MASK_RADIUS, imaging_from_arrays

    try:
        dataset = imaging_from_arrays(arrays["data"], arrays["noise_map"], arrays["psf"],
                                      spec.pixel_scale, spec.mask_radius or DEFAULT_MASK_RADIUS,
                                      name=spec.name)
        return build(spec, dataset)
    except (TypeError, ValueError) as error:  # DatasetError, ParameterError, unknown kind...
        raise InvalidRegistration(str(error)) from None


def restore(store: RegistryStore, build: BuildModel, taken: set[str]) -> Restored:
    """Rebuild every stored model; `taken` are names the configuration serves already."""
    records, models, specs, failures = {}, {}, {}, {}
    for record in store.all():
        records[record.name] = record
        try:
            if record.name in taken:
                raise InvalidRegistration("the configuration serves a model of this name")
            blob = store.arrays(record.dataset_sha256)
            if hashlib.sha256(blob).hexdigest() != record.dataset_sha256:
                raise InvalidRegistration("the stored dataset does not match its sha256")
            spec = ModelSpec.model_validate(record.spec)
            models[record.name] = checked_model(spec, decode_arrays(blob), build)
            specs[record.name] = spec
        except Exception as error:  # noqa: BLE001 - one bad model must not stop the service
            failures[record.name] = str(error) or type(error).__name__
            logger.error("registered model %s cannot be restored: %s", record.name,
                         failures[record.name])
    return Restored(records, models, specs, failures)


class LensRegistry:
    """The registered models: their records, and what registering and retiring does to the
    store, the engine and the batcher. Called on the event loop; slow steps go to threads."""

    def __init__(self, store: RegistryStore, engine: Engine, batcher: Batcher,
                 build: BuildModel, queue_spec: Callable[[str], QueueSpec],
                 ladder: tuple[int, ...], restored: Restored, retire_timeout_s: float,
                 limits: RegistryLimits = RegistryLimits(), metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.engine = engine
        self.batcher = batcher
        self._build = build
        self._queue_spec = queue_spec
        self._ladder = ladder
        self.records = dict(restored.records)
        self.failures = dict(restored.failures)  # restored models that could not be built
        self._retire_timeout_s = retire_timeout_s
        self.limits = limits
        self._metrics = metrics or Metrics()
        self._metrics.max_registered_models.set(limits.max_models or 0)
        self._metrics.max_registrations_per_minute.set(limits.per_minute or 0)
        self._metrics.registered_models.set(len(self.records))
        self._clock = clock
        self._recent: deque[float] = deque()  # when the last minute's registrations came
        self._claimed: set[str] = set()  # names being registered
        # One model compiles at a time, beside the dispatchers: compiling takes a core.
        self._compiler = ThreadPoolExecutor(1, thread_name_prefix="lensserve-register")

    def close(self) -> None:
        """Stop compiling (the engine stops the running compilation) and close the store."""
        self._compiler.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    def __contains__(self, name: str) -> bool:
        return name in self.records

    async def register(self, registration: Registration) -> StoredModel:
        """Check, store and serve a model; it is compiled (or shares executables) when this
        returns, or compiling on the registry's thread. Raises `InvalidRegistration`,
        `NameTaken` or `RegistryFull`; then nothing has changed."""
        spec = registration.spec
        name = spec.name or f"lens-{uuid.uuid4().hex[:12]}"
        if self.limits.max_models is not None and (
                len(self.records) + len(self._claimed) >= self.limits.max_models):
            raise RegistryFull(f"the registry holds max_models = {self.limits.max_models} "
                               "models; delete one first")
        if name in self.engine.models or name in self.records or name in self._claimed:
            raise NameTaken(f"a model named {name!r} is served already")
        self._claimed.add(name)
        try:
            model_spec = _model_spec(spec, name, self._ladder)
            model = await asyncio.to_thread(checked_model, model_spec, registration.arrays,
                                            self._build)
            blob = encode_arrays(registration.arrays)
            record = await asyncio.to_thread(
                self.store.add, name, model_spec.model_dump(mode="json", exclude={"dataset"}),
                hashlib.sha256(blob).hexdigest(), blob)
            self.records[name] = record
            try:
                await asyncio.to_thread(self._serve, name, model, model_spec.buckets)
            except BaseException:
                await asyncio.to_thread(self._unserve, name)
                raise
        finally:
            self._claimed.discard(name)
            self._metrics.registered_models.set(len(self.records))
        logger.info("registered model %s (%s, dataset %s): %s", name, spec.kind,
                    record.dataset_sha256[:12], self.engine.model_state(name))
        return record

    def admit(self) -> None:
        """Count one registration request against `max_registrations_per_minute`; raises
        `RateLimited` over it. Called before the body is read: refused ones cost nothing."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if self.limits.per_minute is not None and len(self._recent) >= self.limits.per_minute:
            wait = math.ceil(60.0 - (now - self._recent[0]))
            raise RateLimited(f"over max_registrations_per_minute = {self.limits.per_minute}; "
                              f"retry in {wait} s", wait)
        self._recent.append(now)

    def _serve(self, name: str, model, buckets: tuple[int, ...]) -> None:
        self.engine.add(name, model, buckets)
        self.batcher.add_queue(name, self._queue_spec(name))
        if not self.engine.share_executables(name):
            self._compiler.submit(self.engine.compile_model, name)

    def _unserve(self, name: str) -> None:
        """Undo a registration that could not be served."""
        self.store.remove(name)
        self.records.pop(name, None)
        if self.batcher.has_queue(name):
            self.batcher.retire(name, 0.0)
        self.engine.remove(name)

    def failure(self, name: str) -> str | None:
        """Why a registered model could not even be built at start-up (None: it was)."""
        return self.failures.get(name)

    async def retire(self, name: str) -> bool:
        """Stop serving a registered model and forget it: new requests get 404 at once, those
        queued are answered (within the retire timeout), then its memory is freed. Whether every
        queued request was answered."""
        if name not in self.records:
            if name in self.engine.models:
                raise ConfiguredModel(f"model {name} comes from the service's configuration; "
                                      "change the configuration to stop serving it")
            raise UnknownModel(f"no registered model named {name!r}")
        record = self.records.pop(name)  # first: a second DELETE meanwhile finds nothing (404)
        try:
            await asyncio.to_thread(self.store.remove, name)
        except BaseException:
            self.records[name] = record
            raise
        self._metrics.registered_models.set(len(self.records))
        if self.failures.pop(name, None) is not None:
            return True
        drained = await asyncio.to_thread(self.batcher.retire, name, self._retire_timeout_s)
        self.engine.remove(name)
        logger.info("deleted model %s%s", name, "" if drained else
                    " (requests still queued after the timeout were refused)")
        return drained
