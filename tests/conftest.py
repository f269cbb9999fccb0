"""Test-wide settings: float64 everywhere, warnings as errors (evidence differences of 1e-4 matter)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "error")
