"""Test-wide settings: float64 everywhere, warnings as errors (evidence differences of 1e-4 matter)."""

from service.environment import set_default_environment

# The service's thread settings (before JAX, NumPy or SciPy load).
set_default_environment()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "error")
