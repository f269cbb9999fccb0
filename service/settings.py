"""Service settings: one pydantic-settings class read from `LENSSERVE_*` variables and a TOML file.

Precedence, highest first: explicit keyword arguments (the CLI's --host/--port), environment
variables, the TOML config file, the defaults below. Nested values (the `models` list) come from the
TOML file or from an environment variable holding JSON, e.g.
`LENSSERVE_MODELS='[{"name": "mge", "kind": "mge"}]'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from service.environment import usable_cores

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# `likelihood.execution`'s choices, spelled out here: the settings do not load `likelihood`.
Lanes = Literal["sequential", "vectorized"]
Formulation = Literal["sparse", "dense"]
LANES_HELP = ("how a batch's lanes run: 'sequential' (one after another) or 'vectorized' (one "
              "batched computation)")
FORMULATION_HELP = ("the pixelized kinds' linear system: 'sparse' (the CPU host kernel) or "
                    "'dense' (the blurred mapping matrix and one matrix product)")


def sorted_buckets(buckets: tuple[int, ...]) -> tuple[int, ...]:
    if not buckets or any(b < 1 for b in buckets):
        raise ValueError("buckets must be a non-empty list of positive batch sizes")
    return tuple(sorted(set(buckets)))


class ModelSpec(BaseModel):
    """One served model: a dataset, a model kind and its `likelihood.ModelSettings` overrides."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="URL name: /v1/models/{name}")
    kind: str = Field(description="likelihood model kind, one of likelihood.KINDS")
    dataset: Path | None = Field(
        default=None, description="an .npz file or FITS directory; None: the embedded dataset"
    )
    pixel_scale: float | None = Field(default=None, gt=0, description="arcsec/pixel (FITS)")
    mask_radius: float | None = Field(default=None, gt=0, description="arcsec; None: default")
    mass: Literal["isothermal", "power_law"] = Field(
        default="isothermal", description="the lens mass profile (with external shear)"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of likelihood.ModelSettings"
    )
    priors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='priors replacing the defaults, by parameter name: {"type": "Uniform", '
        '"lower": ..., "upper": ...}, LogUniform likewise, Gaussian {"mean", "sigma"}, '
        'TruncatedGaussian {"mean", "sigma", "lower", "upper"}',
    )
    fixed: dict[str, float] = Field(
        default_factory=dict,
        description="parameters held fixed at these values, by name; they leave the vector",
    )
    buckets: tuple[int, ...] | None = Field(
        default=None, description="this model's batch sizes; None: the service's ladder"
    )
    lanes: Lanes | None = Field(
        default=None, description=f"{LANES_HELP}; None: the service's `lanes`")
    formulation: Formulation | None = Field(
        default=None, description=f"{FORMULATION_HELP}; None: the service's `formulation`")

    @field_validator("buckets")
    @classmethod
    def _buckets_sorted_positive(cls, buckets: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if buckets is None else sorted_buckets(buckets)

    @model_validator(mode="after")
    def _one_mass(self) -> ModelSpec:
        if self.settings.get("mass", self.mass) != self.mass:
            raise ValueError(f"model {self.name}: mass {self.mass!r} and settings.mass "
                             f"{self.settings['mass']!r} disagree (set `mass` only)")
        return self


class ServiceSettings(BaseSettings):
    """Everything an operator can set. Environment variable: `LENSSERVE_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="LENSSERVE_", extra="forbid", toml_file=None)

    host: str = Field(default="127.0.0.1", description="bind address (loopback by default)")
    port: int = Field(default=8000, ge=0, le=65535)
    models: list[ModelSpec] | None = Field(
        default=None, description="served models; None: the embedded dataset with every kind"
    )
    buckets: tuple[int, ...] = Field(
        default=DEFAULT_BUCKETS, description="batch sizes compiled per model (the bucket ladder)"
    )
    max_batch_size: int | None = Field(
        default=None, ge=1,
        description="points per batch (at most a model's largest bucket); None: the largest bucket",
    )
    max_wait_ms: float = Field(
        default=2.0, ge=0, description="longest a queued point waits for its batch to fill"
    )
    max_queue_points: int = Field(
        default=4096, ge=1, description="points queued per model before new requests get 503"
    )
    max_request_points: int = Field(default=4096, ge=1, description="points per request, else 413")
    max_body_bytes: int = Field(default=16 * 2**20, ge=1, description="request body size, else 413")
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="a request still queued after this is dropped (504)"
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After sent with 503")
    gradient: bool = Field(default=False, description="also compile value-and-gradient per bucket")
    dispatchers: int | None = Field(
        default=None, ge=1,
        description="threads evaluating batches side by side; None: one per CPU core on a CPU "
        "backend, 1 on an accelerator",
    )
    max_connections: int | None = Field(
        default=None, ge=1,
        description="open client connections; one more is answered 503 and closed. None: what "
        "the file-descriptor limit (raised to its hard limit at start-up) leaves",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0,
        description="a connection that has not sent a request's headers this long after opening "
        "or after the request's first byte is closed",
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="a request whose body is not in this long after its "
        "headers is dropped and its connection closed",
    )
    kernel_threads: int = Field(
        default_factory=usable_cores, ge=1,
        description="threads among which the pixelized kinds' CPU curvature kernel shares out the "
        "image's tiles, per evaluation; default: the cores the process may use",
    )
    lanes: Lanes | None = Field(
        default=None, description=f"{LANES_HELP}; None: from the device, sequential on a CPU, "
        "vectorized on an accelerator",
    )
    formulation: Formulation | None = Field(
        default=None, description=f"{FORMULATION_HELP}; None: from the device, sparse on a CPU, "
        "dense on an accelerator",
    )
    device_memory_budget: int | None = Field(
        default=None, ge=1,
        description="bytes of device memory the service may use: at start-up, buckets whose "
        "executables (XLA's memory analysis) would not fit beside the models' data are dropped "
        "and logged; None: no limit",
    )
    watchdog_floor_s: float = Field(
        default=30.0, gt=0,
        description="a batch running longer than this, and than watchdog_factor times its "
        "bucket's median compute time, is stuck: logged with every stack, its requests 503",
    )
    watchdog_factor: float = Field(
        default=10.0, ge=1, description="multiple of a bucket's median compute time (watchdog)"
    )
    shutdown_grace_s: float = Field(
        default=30.0, gt=0,
        description="on SIGTERM/SIGINT, how long to finish what is in flight before exiting "
        "(non-zero if a batch is still running then)",
    )
    compilation_cache_dir: Path | None = Field(
        default=Path.home() / ".cache" / "lensserve" / "jax",
        description="JAX persistent compilation cache; None disables it",
    )
    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "lensserve",
        description="where the service keeps its state: the registry's SQLite file "
        "(registry.sqlite) unless registry_url names another database",
    )
    registry_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry of models registered at runtime, e.g. "
        "postgresql+psycopg://user@host/lensserve (several replicas share one); None: SQLite in "
        "data_dir",
    )
    max_dataset_bytes: int = Field(
        default=64 * 2**20, ge=1,
        description="body size of a model registration (POST /v1/models, its dataset), else 413",
    )
    max_models: int | None = Field(
        default=None, ge=1,
        description="models registered at runtime the registry may hold; one more is refused "
        "(409) until one is deleted. None: no limit",
    )
    max_registrations_per_minute: int | None = Field(
        default=None, ge=1,
        description="registration requests (POST /v1/models, refused ones included) per minute; "
        "more get 429 with Retry-After. None: no limit",
    )
    token: SecretStr | None = Field(
        default=None, description="bearer token required by every endpoint except /healthz"
    )
    log_level: str = Field(default="info", pattern="^(critical|error|warning|info|debug)$")

    @field_validator("buckets")
    @classmethod
    def _buckets_sorted_positive(cls, buckets: tuple[int, ...]) -> tuple[int, ...]:
        return sorted_buckets(buckets)

    @property
    def registry_database(self) -> str:
        """The registry's SQLAlchemy URL: `registry_url`, else a SQLite file in `data_dir`."""
        return self.registry_url or f"sqlite:///{self.data_dir / 'registry.sqlite'}"

    @model_validator(mode="after")
    def _batch_fits_buckets(self) -> ServiceSettings:
        if self.max_batch_size is None:
            self.max_batch_size = self.buckets[-1]
        if self.max_batch_size > self.buckets[-1]:
            raise ValueError(
                f"max_batch_size {self.max_batch_size} exceeds the largest bucket {self.buckets[-1]}"
            )
        if self.max_request_points > self.max_queue_points:
            raise ValueError(
                f"max_request_points {self.max_request_points} exceeds max_queue_points "
                f"{self.max_queue_points}: such a request could never be queued"
            )
        if self.models is not None:
            names = [m.name for m in self.models]
            if len(set(names)) != len(names):
                raise ValueError(f"model names must be unique, got {names}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> ServiceSettings:
    """Settings from the environment and, if given, a TOML file; `overrides` win over both."""
    if config_file is None:
        return ServiceSettings(**overrides)
    path = Path(config_file)
    if path.suffix != ".toml":
        raise ValueError(f"config file must be TOML (.toml), got {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no config file at {path}")
    # A subclass carries the file name: pydantic-settings reads `toml_file` from the class config.
    with_file = type(
        "ServiceSettings",
        (ServiceSettings,),
        {"model_config": {**ServiceSettings.model_config, "toml_file": path}},
    )
    return with_file(**overrides)
