"""Sampler adapters against the real server: JAX log-density, UltraNest and dynesty (smoke runs)."""

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from client import Client, FixedParameters
from client.gradients import jax_log_density
from client.samplers import ThreadPool, dynesty_sampler, ultranest_sampler
from tests.client.conftest import TOKEN, points_near

FREE = ["lens.mass.einstein_radius", "lens.shear.gamma_1"]


def served_batches(url: str) -> tuple[float, float]:
    """(sum of points, number of batches) the server has dispatched so far."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    found = {}
    for line in text.splitlines():
        for key in ("sum", "count"):
            if line.startswith(f"lensserve_batch_size_points_{key}{{"):
                found[key] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def fixed_at_truth(client, served) -> FixedParameters:
    return FixedParameters(client, {name: value for name, value in zip(
        served.model.parameter_names, served.truth, strict=True) if name not in FREE})


def test_jax_log_density_value_grad_vmap_jit(served):
    points = points_near(served.truth, served.model, 3, seed=11)
    values, grads = served.reference_value_and_grad(points)
    with Client(served.url, "mge", token=TOKEN) as client:
        log_density = jax_log_density(client)
        np.testing.assert_allclose(float(log_density(jnp.asarray(points[0]))), values[0], rtol=1e-10)
        np.testing.assert_allclose(jax.vmap(log_density)(points), values, rtol=1e-10)
        np.testing.assert_allclose(jax.jit(log_density)(points[1]), values[1], rtol=1e-10)
        grad = jax.grad(log_density)(jnp.asarray(points[2]))
        np.testing.assert_allclose(grad, grads[2], rtol=1e-8, atol=1e-8 * np.abs(grads[2]).max())
        batched = jax.vmap(jax.value_and_grad(log_density))(points)
        np.testing.assert_allclose(batched[1], grads, rtol=1e-8, atol=1e-8 * np.abs(grads).max())
        assert client.stats.calls == 5  # the vmapped calls went as single batched requests


def test_ultranest_runs_vectorized(served):
    pytest.importorskip("ultranest")
    with Client(served.url, "mge", token=TOKEN) as client:
        sampler = ultranest_sampler(fixed_at_truth(client, served), log_dir=None)
        sampler.run(min_num_live_points=40, max_ncalls=400, show_status=False, viz_callback=False)
        assert client.stats.mean_points_per_call > 1


@pytest.mark.filterwarnings("ignore:The sampling was stopped short")  # we stop it on purpose
def test_dynesty_keeps_several_single_point_calls_in_flight(served):
    pytest.importorskip("dynesty")
    before = served_batches(served.url)
    with Client(served.url, "mge", token=TOKEN) as client, ThreadPool(8) as pool:
        sampler = dynesty_sampler(fixed_at_truth(client, served), pool, nlive=40,
                                  rstate=np.random.default_rng(0))
        sampler.run_nested(maxiter=60, print_progress=False)
        assert client.stats.mean_points_per_call == 1
    after = served_batches(served.url)
    mean_batch = (after[0] - before[0]) / (after[1] - before[1])
    assert mean_batch > 1.5, f"the service saw batches of {mean_batch:.2f} points on average"
