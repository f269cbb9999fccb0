"""A test-only server whose model blocks forever on chosen points: `python -m
tests.service.blocking_server PORT CACHE_DIR` serves `blocking`, the small MGE model of the service
tests, except that a point with `lens.mass.einstein_radius` above BLOCK_ABOVE never returns (a host
callback that sleeps), as a deadlocked batch would. Used to trip the watchdog and to check that
SIGTERM still ends the process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from service.environment import set_default_environment

set_default_environment()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

BLOCK_ABOVE = 5.0


class BlockingModel:
    """A real lens model whose evaluation hangs where the Einstein radius exceeds BLOCK_ABOVE."""

    def __init__(self, model) -> None:
        self._model = model
        self.parameter_names = model.parameter_names
        self.reference_parameters = model.reference_parameters
        self.invalid_reason = model.invalid_reason
        self.describe = model.describe
        self.kind, self.execution = model.kind, model.execution  # logged at start-up
        self.core = model.core
        self._radius = model.parameter_names.index("lens.mass.einstein_radius")

    def evidence_function(self, core, theta):
        delay = jax.pure_callback(_hang_if_asked, jax.ShapeDtypeStruct((), jnp.float64),
                                  theta[self._radius], vmap_method="sequential")
        return self._model.evidence_function(core, theta) + delay


def _hang_if_asked(radius) -> np.ndarray:
    while float(radius) > BLOCK_ABOVE:
        time.sleep(1.0)
    return np.zeros(())


def main(port: int, cache_dir: Path) -> None:
    from service.app import create_app
    from service.engine import configure_jax
    from service.models import load_models
    from service.serve import run_app
    from tests.service.conftest import small_settings

    settings = small_settings(port=port, compilation_cache_dir=cache_dir, gradient=False,
                              buckets=(1, 2), watchdog_floor_s=2.0, shutdown_grace_s=5.0,
                              log_level="warning")
    configure_jax(settings.compilation_cache_dir)
    (model,) = load_models(settings.models).values()
    run_app(create_app(settings, {"blocking": BlockingModel(model)}), settings)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
