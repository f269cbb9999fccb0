"""The accelerator's execution (vectorized lanes, the dense formulation) against the CPU's
(sequential lanes, the sparse host kernel), on the CPU: the same log-evidence (1e-10 relative)
and gradients (1e-8) for every kind at buckets 1, 2 and 8, compiled as the service compiles them
(`jit(vmap(f, in_axes=(None, 0)))` of the core and a batch), with a failed lane in the bucket of
8; and the Delaunay triangulation stays one host call per batch under both."""

import jax
import numpy as np
import pytest

import likelihood.mesh.delaunay as delaunay
from likelihood import KINDS, Execution, ModelSettings, build_model, core
from likelihood.lanes import with_lanes
from tests.likelihood.conftest import truth_vector

SETTINGS = ModelSettings(lens_gaussians=4, source_gaussians=4, mesh_shape=(12, 12),
                         delaunay_overlay=(11, 11))
CPU = Execution("sparse", 1, "sequential")
ACCELERATOR = Execution("dense", 1, "vectorized")
BUCKETS = (1, 2, 8)
FAILED_LANE = 5  # of the bucket of 8: a point with a NaN parameter


@pytest.fixture(scope="module")
def triangulations(request):
    """The batch shapes of every Delaunay host call made by programs traced in this module."""
    calls = []
    host = delaunay._triangulate_host

    def counted(vertices, points):
        calls.append(np.shape(vertices))
        return host(vertices, points)

    patch = pytest.MonkeyPatch()
    patch.setattr(delaunay, "_triangulate_host", counted)
    yield calls
    patch.undo()


def batch(model, bucket: int) -> np.ndarray:
    """(bucket, P): the truth and small perturbations of it, the same first lanes in every bucket;
    in the bucket of 8, lane FAILED_LANE is NaN in the Einstein radius."""
    rng = np.random.default_rng(0)
    points = truth_vector(model) + rng.normal(0.0, 0.01, (8, len(model.parameter_names)))
    points[FAILED_LANE, model.parameter_names.index("lens.mass.einstein_radius")] = np.nan
    return points[:bucket]


def served(model, gradient: bool):
    """The service's program: vmap over the batch with the core as an argument, jitted."""
    function = jax.value_and_grad(core.log_evidence, argnums=1) if gradient else core.log_evidence
    return jax.jit(jax.vmap(function, in_axes=(None, 0)))


@pytest.mark.parametrize("kind", KINDS)
def test_the_accelerators_execution_equals_the_cpus(small_dataset, triangulations, kind):
    """Value and gradient at every bucket; the value alone (the service's other program, where
    the sequential policy runs `lax.map`) at the bucket of 8, its failed lane included."""
    models = {execution: build_model(small_dataset, kind, SETTINGS, execution=execution)
              for execution in (CPU, ACCELERATOR)}
    assert models[CPU].core.lanes == "sequential"
    assert models[ACCELERATOR].core.lanes == "vectorized"
    runs = [(gradient, bucket) for gradient in (False, True)
            for bucket in ((8,) if not gradient else BUCKETS)]
    results = {}
    for execution, model in models.items():
        for gradient, bucket in runs:
            triangulations.clear()
            results[execution, gradient, bucket] = jax.tree_util.tree_map(
                np.asarray, served(model, gradient)(model.core, batch(model, bucket)))
            if kind == "delaunay":
                # One host call for the whole batch, under either policy, with or without the
                # gradient.
                assert len(triangulations) == 1, triangulations
                assert triangulations[0][0] == bucket
    for execution in (CPU, ACCELERATOR):
        values, (gradient_values, gradients) = results[execution, False, 8], results[execution, True, 8]
        # The failed lane is NaN, the others finite; the value alone and with its gradient agree.
        good = np.arange(8) != FAILED_LANE
        assert np.isfinite(values[good]).all() and np.isnan(values[FAILED_LANE])
        np.testing.assert_allclose(gradient_values, values, rtol=1e-12)
        # It touches no other lane: the first two are the bucket of 2's.
        two_values, two_gradients = results[execution, True, 2]
        np.testing.assert_allclose(values[:2], two_values, rtol=1e-12)
        np.testing.assert_allclose(gradients[:2], two_gradients, rtol=1e-10,
                                   atol=1e-10 * np.abs(two_gradients).max())
    for gradient, bucket in runs:
        expected, ours = results[CPU, gradient, bucket], results[ACCELERATOR, gradient, bucket]
        if gradient:
            (expected, expected_gradients), (ours, our_gradients) = expected, ours
        good = np.flatnonzero(np.arange(bucket) != FAILED_LANE)
        np.testing.assert_allclose(ours[good], expected[good], rtol=1e-10, atol=0)
        for lane in good if gradient else ():
            np.testing.assert_allclose(our_gradients[lane], expected_gradients[lane], rtol=1e-8,
                                       atol=1e-8 * np.abs(expected_gradients[lane]).max())


def test_the_lanes_policy_is_validated_where_it_is_chosen():
    with pytest.raises(ValueError, match="lanes"):
        Execution(lanes="parallel")
    with pytest.raises(ValueError, match="lanes"):
        with_lanes("parallel", lambda x: x)
    assert Execution().lanes == "sequential"


def test_the_lanes_policy_is_static_in_the_core(small_dataset):
    """Two models that differ only in their lanes policy have cores of different structure, so
    they never share an executable (`service.engine.shape_signature`)."""
    sequential, vectorized = (build_model(small_dataset, "mge", SETTINGS, execution=execution)
                              for execution in (Execution(lanes="sequential"),
                                                Execution(lanes="vectorized")))
    structure = [jax.tree_util.tree_structure(model.core) for model in (sequential, vectorized)]
    assert structure[0] != structure[1]
    assert vectorized.describe()["execution"] == {"formulation": "sparse", "lanes": "vectorized",
                                                  "kernel_threads": 1}
