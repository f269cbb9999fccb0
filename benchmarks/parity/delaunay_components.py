"""Record the reference's Delaunay mesh components for our component parity tests.

Run with the reference interpreter (never part of our package):

    /opt/refvenv/bin/python benchmarks/parity/delaunay_components.py \
        --params benchmarks/parity/params_slacs2303_delaunay.json \
        --out tests/data/delaunay_components.npz

On the embedded dataset in a 1.5" mask with a 15 x 15 overlay and 10 lens Gaussians, for each
parameter point it stores the reference's image-plane mesh grid, its source-plane (relocated)
vertices and pixel centres, their mappings and barycentric weights, and its ConstantSplit matrix,
so our tests can feed identical vertices to our code, and every log-evidence term of the fit.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import reference  # noqa: E402, I001  (must import autolens before jax)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

DATASET = Path(__file__).parents[2] / "likelihood" / "data" / "default.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mask-radius", type=float, default=1.5)
    parser.add_argument("--overlay", type=int, default=15)
    parser.add_argument("--lens-gaussians", type=int, default=10)
    args = parser.parse_args()
    reference.OVERLAY_SHAPE = (args.overlay, args.overlay)
    reference.LENS_MGE_TOTAL = args.lens_gaussians
    ref = reference.Reference(DATASET, "delaunay", mask_radius=args.mask_radius)
    # AdaptImages matches galaxies by str(path) (autogalaxy `updated_via_instance_from`).
    grids = ref.analysis.adapt_images.galaxy_name_image_plane_mesh_grid_dict
    for key in list(grids):
        grids[str(key)] = grids.pop(key)
    record = {"image_mesh_grid": ref.mesh_grid, "mask_radius": args.mask_radius,
              "overlay": args.overlay, "lens_gaussians": args.lens_gaussians}
    for i, params in enumerate(json.loads(Path(args.params).read_text())):
        instance = ref.model.instance_from_vector(
            vector=ref.vector(params), ignore_assertions=True, xp=jnp)
        fit = ref.analysis.fit_from(instance=instance)
        mapper = next(m for m in fit.inversion.linear_obj_list if hasattr(m, "interpolator"))
        interpolator = mapper.interpolator
        mappings, _, weights = interpolator._mappings_sizes_weights
        record |= {
            f"{i}_coefficient": params["source.pixelization.coefficient"],
            f"{i}_vertices": np.asarray(interpolator.mesh_grid.array),
            f"{i}_points": np.asarray(interpolator.data_grid.over_sampled.array),
            f"{i}_mappings": np.asarray(mappings),
            f"{i}_weights": np.asarray(weights),
            f"{i}_regularization": np.asarray(mapper.regularization_matrix),
            f"{i}_parameters": np.array([params[name] for name in reference.param_names("delaunay")]),
            f"{i}_terms": json.dumps(ref.fit_terms(params)[0]),
        }
    np.savez_compressed(args.out, **record)


if __name__ == "__main__":
    main()
