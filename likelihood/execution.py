"""How a model's numerics run: chosen once, where the model is built, never while tracing.

`formulation`: how the pixelized kinds form their mesh's linear system
(`likelihood.curvature`): "sparse", the host kernel exploiting the sparsity of the mapping matrix
and the PSF (a CPU's: about 40x fewer operations), or "dense", the FFT-blurred mapping matrix and
one matrix product (an accelerator's: no host round trip). Both give the same numbers.
`kernel_threads`: among how many threads the sparse kernel shares out the image's tiles per call.
`lanes`: how every kind's inversion runs under `vmap` (`likelihood.lanes`): "sequential", lane
after lane (a CPU's: bound by memory traffic, a vectorized batch multiplies every stage's working
set by the batch size), or "vectorized", as one batched computation (an accelerator's: the
parallelism batching exists for). Both give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from likelihood.kernel import thread_count

FORMULATIONS = ("sparse", "dense")
LANES = ("sequential", "vectorized")


@dataclass(frozen=True)
class Execution:
    """See the module docstring. ValueError for an unknown formulation or lanes policy, or a
    thread count that is not a whole number >= 1."""

    formulation: str = "sparse"
    kernel_threads: int = 1
    lanes: str = "sequential"

    def __post_init__(self) -> None:
        if self.formulation not in FORMULATIONS:
            raise ValueError(f"formulation must be one of {FORMULATIONS}, got {self.formulation!r}")
        if self.lanes not in LANES:
            raise ValueError(f"lanes must be one of {LANES}, got {self.lanes!r}")
        thread_count(self.kernel_threads)

    def describe(self) -> dict:
        """{"formulation", "lanes", "kernel_threads"}: what a served model reports."""
        return {"formulation": self.formulation, "lanes": self.lanes,
                "kernel_threads": self.kernel_threads}


def execution_for(backend: str, kernel_threads: int) -> Execution:
    """The execution that runs fastest on `backend` (a JAX platform name: "cpu", "gpu", "tpu"):
    the sparse formulation lane after lane on "cpu", the dense one with vectorized lanes on an
    accelerator. The caller asks JAX once, where it builds the model (the service:
    `service.models.service_execution`)."""
    if backend == "cpu":
        return Execution("sparse", kernel_threads, "sequential")
    return Execution("dense", kernel_threads, "vectorized")
