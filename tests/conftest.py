"""Test-wide settings: float64 everywhere, warnings as errors (evidence differences of 1e-4 matter)."""

import os
import tempfile

from service.environment import set_default_environment

# Servers started by the tests, in this process or as `lensserve serve`, keep their registry of
# runtime-registered models here rather than in the user's data directory (restored at start-up).
os.environ.setdefault("LENSSERVE_DATA_DIR", tempfile.mkdtemp(prefix="lensserve-test-data-"))

# The service's thread settings (before JAX, NumPy or SciPy load).
set_default_environment()

import gc  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def free_compiled_programs():
    """Drop JAX's compiled programs after each test module. XLA maps about 26 memory regions per
    executable and keeps them while its caches do: the whole suite in one process passed Linux's
    default 65,530 mappings (`vm.max_map_count`) and aborted in a compilation. Programs a server
    compiled ahead of time stay with the server until its fixture ends."""
    yield
    jax.clear_caches()
    gc.collect()


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "error")
