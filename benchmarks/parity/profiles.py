"""Record PyAutoLens profile values (deflections, Gaussian images) for the unit tests.

The power law is recorded on its own grid: the shared one plus points around its centre (at
1e-3" and more: nearer, the 1e-16 floor of the radius, placed slightly differently by each
implementation, shows at more than 1e-10).

Run with the reference's own interpreter (never a dependency of lensserve):
    /opt/refvenv/bin/python benchmarks/parity/profiles.py tests/data/reference_profiles.json
"""

# ruff: noqa: I001  (autolens must be imported before anything that imports jax)
import json
import sys

import autolens as al  # noqa: F401  (imported before jax so float64 is enabled)
import autogalaxy as ag
import numpy as np

GRID = [[0.0, 0.0], [1.0, 0.5], [-0.7, 1.3], [0.05, -2.1], [1e-9, 0.0], [2.5, -0.3]]
CASES = [
    {"centre": [0.0, 0.0], "ell_comps": [0.0, 0.0], "einstein_radius": 1.6},
    {"centre": [0.1, -0.05], "ell_comps": [0.05, 0.12], "einstein_radius": 1.4},
    {"centre": [-0.02, 0.03], "ell_comps": [-0.3, 0.2], "einstein_radius": 0.9},
    {"centre": [0.0, 0.0], "ell_comps": [0.003, -0.002], "einstein_radius": 1.2},
]
SHEARS = [[0.0, 0.0], [0.05, -0.02], [-0.1, 0.07]]
# The centre, its neighbourhood (1e-3" to 2e-2") and the shared grid, around each case's centre.
POWER_LAW_OFFSETS = [[0.0, 0.0], [1e-3, 2e-3], [-2e-3, 1e-3], [0.02, 0.01], [0.0, 0.01],
                     [-0.01, 0.0], *GRID[1:4], GRID[5]]
POWER_LAWS = [
    {"centre": [0.0, 0.0], "ell_comps": [0.0, 0.0], "einstein_radius": 1.6, "slope": 2.0},
    {"centre": [0.1, -0.05], "ell_comps": [0.05, 0.12], "einstein_radius": 1.4, "slope": 1.7},
    {"centre": [0.1, -0.05], "ell_comps": [0.05, 0.12], "einstein_radius": 1.4, "slope": 2.0},
    {"centre": [0.1, -0.05], "ell_comps": [0.05, 0.12], "einstein_radius": 1.4, "slope": 2.4},
    {"centre": [-0.02, 0.03], "ell_comps": [-0.3, 0.2], "einstein_radius": 0.9, "slope": 1.5},
    {"centre": [-0.02, 0.03], "ell_comps": [-0.3, 0.2], "einstein_radius": 0.9, "slope": 2.9},
    {"centre": [0.0, 0.0], "ell_comps": [0.003, -0.002], "einstein_radius": 1.2, "slope": 2.2},
]
GAUSSIANS = [
    {"centre": [0.0, 0.0], "ell_comps": [0.0, 0.0], "sigma": 0.5},
    {"centre": [0.1, -0.2], "ell_comps": [0.15, -0.1], "sigma": 0.8},
]


def main(output: str) -> None:
    grid = ag.Grid2DIrregular(values=GRID)
    record = {"grid": GRID, "isothermal": [], "shear": [], "gaussian": [], "power_law": []}
    for case in CASES:
        mass = ag.mp.Isothermal(centre=tuple(case["centre"]), ell_comps=tuple(case["ell_comps"]),
                                einstein_radius=case["einstein_radius"])
        record["isothermal"].append({**case, "deflections": np.asarray(
            mass.deflections_yx_2d_from(grid=grid)).tolist()})
    for case in POWER_LAWS:
        points = (np.array(case["centre"]) + np.array(POWER_LAW_OFFSETS)).tolist()
        mass = ag.mp.PowerLaw(centre=tuple(case["centre"]), ell_comps=tuple(case["ell_comps"]),
                              einstein_radius=case["einstein_radius"], slope=case["slope"])
        record["power_law"].append({**case, "grid": points, "deflections": np.asarray(
            mass.deflections_yx_2d_from(grid=ag.Grid2DIrregular(values=points))).tolist()})
    for gamma in SHEARS:
        shear = ag.mp.ExternalShear(gamma_1=gamma[0], gamma_2=gamma[1])
        record["shear"].append({"gamma": gamma, "deflections": np.asarray(
            shear.deflections_yx_2d_from(grid=grid)).tolist()})
    for case in GAUSSIANS:
        light = ag.lp.Gaussian(centre=tuple(case["centre"]), ell_comps=tuple(case["ell_comps"]),
                               intensity=1.0, sigma=case["sigma"])
        record["gaussian"].append({**case, "image": np.asarray(
            light.image_2d_from(grid=grid)).tolist()})
    with open(output, "w") as file:
        json.dump(record, file, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
