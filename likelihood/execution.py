"""How a model's numerics run: chosen once, where the model is built, never while tracing.

`formulation`: how the pixelized kinds form their mesh's linear system
(`likelihood.curvature`): "sparse", the host kernel exploiting the sparsity of the mapping matrix
and the PSF (a CPU's: about 40x fewer operations), or "dense", the FFT-blurred mapping matrix and
one matrix product (an accelerator's: no host round trip). Both give the same numbers.
`kernel_threads`: among how many threads the sparse kernel shares out the image's tiles per call.
"""

from __future__ import annotations

from dataclasses import dataclass

from likelihood.kernel import thread_count

FORMULATIONS = ("sparse", "dense")


@dataclass(frozen=True)
class Execution:
    """See the module docstring. ValueError for an unknown formulation or a thread count that is
    not a whole number >= 1."""

    formulation: str = "sparse"
    kernel_threads: int = 1

    def __post_init__(self) -> None:
        if self.formulation not in FORMULATIONS:
            raise ValueError(f"formulation must be one of {FORMULATIONS}, got {self.formulation!r}")
        thread_count(self.kernel_threads)


def execution_for(backend: str, kernel_threads: int) -> Execution:
    """The formulation that runs fastest on `backend` (a JAX platform name: "cpu", "gpu", "tpu"),
    "sparse" on "cpu", "dense" on an accelerator. The caller asks JAX once, where it builds the
    model (the service: `service.models.service_execution`)."""
    return Execution("sparse" if backend == "cpu" else "dense", kernel_threads)
