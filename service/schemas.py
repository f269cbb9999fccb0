"""Request and response schemas of the HTTP API (pydantic: validated at the boundary, in OpenAPI)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
)

# The documentation's example points: the embedded dataset's true parameters (`default_truth()`)
# in the order of each kind's parameter_names, the pixelized kinds' regularization coefficient at
# its prior median. Literal, since the service's schemas do not load `likelihood`;
# tests/service/test_examples.py checks them against it.
EXAMPLE_MGE_POINT = [0.0, 0.0, 0.05, 0.08, 0.0, 0.0, 0.05, 0.12, 1.6, 0.03, -0.02,
                     0.05, 0.08, 0.1, -0.06]
EXAMPLE_PIXELIZED_POINT = [*EXAMPLE_MGE_POINT[:11], 1.0]


class LogEvidenceRequest(BaseModel):
    """Points to evaluate: `parameters` is (n, P), one row per point (a flat list is one point).

    Values must be numbers: strict, so "0.05" or true is refused rather than read as 0.05 or 1.
    """

    model_config = ConfigDict(extra="forbid")

    parameters: list[list[StrictFloat]] = Field(
        description="(n, P) parameter vectors in the order of the model's parameter_names; "
        "numbers only",
        examples=[[EXAMPLE_MGE_POINT]],
    )
    gradient: StrictBool = Field(
        default=False, description="also return d log-evidence / d parameters"
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _one_point_as_row(cls, value: Any) -> Any:
        # Any list without lists in it, so a bad value in a flat point is named by its column.
        if isinstance(value, list) and value and not any(isinstance(v, list) for v in value):
            return [value]
        return value


class LogEvidenceResponse(BaseModel):
    """Answers row-aligned with the request. Non-finite numbers travel as null (JSON)."""

    log_evidence: list[float | None] = Field(description="(n,) log-evidence, null if not finite")
    gradient: list[list[float | None] | None] | None = Field(
        default=None, description="(n, P) gradient when asked for; a row is null if not computed"
    )
    status: list[str] = Field(
        description='per point: "ok", "invalid: <reason>" (not computed) or '
        '"non_finite: <what>" (computed, not finite)'
    )


class ExecutionInfo(BaseModel):
    """How the model's batches run (`likelihood.execution.Execution`), resolved at start-up."""

    lanes: str = Field(description="`sequential` (lane after lane) or `vectorized` (one batched "
                       "computation)")
    formulation: str = Field(description="the pixelized kinds' linear system: `sparse` (the CPU "
                             "host kernel) or `dense` (blurred mapping matrix, one product)")
    kernel_threads: int = Field(description="threads of the sparse kernel per evaluation")


class ModelInfo(BaseModel):
    """A served model, as `likelihood.LensModel.describe()` tells it, plus serving state."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: str
    parameter_names: list[str]
    priors: dict[str, dict[str, Any]] = Field(
        description="the prior of each parameter in the vector (the model spec's, else the default)")
    fixed: dict[str, float] = Field(
        default_factory=dict, description="parameters held fixed at these values (not in the vector)")
    dataset: dict[str, Any]
    execution: ExecutionInfo
    ready: bool = Field(description="the model answers (at least its smallest bucket is compiled)")
    state: str = Field(description="`compiling` (no bucket yet), `serving` (some buckets), "
                       "`ready` (every bucket) or `failed: <reason>`")
    gradient: bool = Field(description="value-and-gradient requests are accepted")
    buckets: list[int] = Field(description="this model's batch sizes")
    compiled_buckets: list[int] = Field(description="the batch sizes compiled so far")
    dropped_buckets: list[int] = Field(
        description="batch sizes dropped at start-up: over the device_memory_budget")
    working_memory_bytes: dict[int, int] = Field(
        description="per compiled bucket, the device memory one batch needs besides the "
        "models' data (XLA's memory analysis of its executable; the larger variant's)")
    registration: Registered | None = Field(
        default=None, description="for a model registered at runtime (POST /v1/models); None "
        "for the configured ones")


class Limits(BaseModel):
    """Sizes a client must respect (larger requests get 413)."""

    max_request_points: int
    max_body_bytes: int
    max_batch_size: int
    buckets: list[int]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: Limits


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong, in words")


class RegistrationSpec(BaseModel):
    """A model to register (`POST /v1/models`) besides its dataset's arrays: what a
    `ServiceSettings.models` entry says, its dataset sent in the request instead of named."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$",
        description="URL name: /v1/models/{name}; None: one is made up (`lens-<12 hex>`)")
    kind: str = Field(description="likelihood model kind: mge, rectangular or delaunay")
    pixel_scale: float = Field(gt=0, description="arcsec per pixel")
    mask_radius: float | None = Field(
        default=None, gt=0, description="circular mask radius in arcsec; None: 3.5")
    mass: Literal["isothermal", "power_law"] = Field(
        default="isothermal", description="the lens mass profile (with external shear)")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of likelihood.ModelSettings")
    priors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="priors replacing the defaults, by parameter name, "
        "as in /v1/models")
    fixed: dict[str, float] = Field(
        default_factory=dict, description="parameters held fixed at these values, by name")
    buckets: list[Annotated[StrictInt, Field(gt=0)]] | None = Field(
        default=None, min_length=1,
        description="this model's batch sizes; None: the service's ladder")


class Registered(BaseModel):
    """A registered model's registration: its dataset and when."""

    dataset_sha256: str = Field(description="sha256 of the dataset's arrays as stored")
    created: datetime.datetime


class ModelStatus(BaseModel):
    """Where a registered model stands (the answer to `POST /v1/models`, and to
    `GET /v1/models/{name}` for a model that failed before it could be built)."""

    name: str
    state: str = Field(description="`compiling`, `serving` (some buckets), `ready` or "
                       "`failed: <reason>`")
    ready: bool = Field(description="the model answers (at least its smallest bucket is compiled)")
    status_url: str = Field(description="GET it for the model and its state")
    registration: Registered


class Retired(BaseModel):
    name: str
    drained: bool = Field(description="every point queued when it was deleted was answered")
