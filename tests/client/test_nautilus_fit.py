"""End to end: nautilus through the service recovers the simulated Einstein radius.

To stay within about a minute on a 2-core CPU, only `lens.mass.einstein_radius` and
`lens.mass.ell_comps_1` are free (their published priors: Uniform(0, 8) and a truncated Gaussian);
the other 13 parameters are fixed at the truth with `client.FixedParameters`. The dataset is the
self-consistent small one of conftest.py, so the truth is the model's own.
"""

import time

import numpy as np
import pytest

from client import Client, FixedParameters
from client.samplers import nautilus_sampler
from tests.client.conftest import TOKEN

FREE = ["lens.mass.einstein_radius", "lens.mass.ell_comps_1"]


def test_nautilus_recovers_the_einstein_radius(served):
    pytest.importorskip("nautilus")
    with Client(served.url, "mge", token=TOKEN) as client:
        names = served.model.parameter_names
        fixed = FixedParameters(client, {n: v for n, v in zip(names, served.truth, strict=True)
                                         if n not in FREE})
        started = time.monotonic()
        sampler = nautilus_sampler(fixed, n_live=100, n_batch=64, seed=1)
        sampler.run(f_live=0.05, n_eff=300, verbose=False)
        seconds = time.monotonic() - started
        points, log_w, _ = sampler.posterior()
    weights = np.exp(log_w - log_w.max())
    mean = np.average(points, axis=0, weights=weights)
    sigma = np.sqrt(np.average((points - mean) ** 2, axis=0, weights=weights))
    free = fixed.model.parameter_names  # in the model's order
    truth = served.truth[[names.index(n) for n in free]]
    print(f"nautilus: {sampler.n_like} calls in {seconds:.0f} s; (mean, sigma, truth): "
          f"{dict(zip(free, zip(mean, sigma, truth, strict=True), strict=True))}")
    assert np.all(np.abs(mean - truth) < 3 * sigma), (free, mean, sigma, truth)
    assert sigma[free.index("lens.mass.einstein_radius")] < 0.01  # the data do constrain it
