"""The linear system of a mesh source plus lens-light Gaussians, in the rows layout.

A mesh enters the inversion through its mapping matrix M (N x S, k <= 4 non-zeros per row: the
interpolation weights of each traced pixel; autoarray `mapper_util.mapping_matrix_from` with
sub-size 1) and its blurred mapping matrix B = P M, P the PSF convolution restricted to the mask
(`Convolver`). Like the MGE kinds, the system is built from A = B^T W^(1/2) (K x N: one row per
linear object, its blurred image divided by the noise), the layout in which
`inversion.normal_equations` (D = A b, F = A A^T) runs fastest on CPU; the model image is
(s A) sigma.

Cost: scattering M^T is k N; its rows are blurred by S FFT convolutions, a few at a time so that
each stays in cache; F is N K^2 flops. With a PSF of realistic support (21 x 21 at the fiducial,
61 x 61 for SLACS) B is not sparse (7% of its entries are non-zero at the fiducial, 45% of F), so
only a blocked sparse product (tiles of image pixels against the source pixels they reach) could
beat the dense Gram product, which is the GPU's formulation in any case.
"""

from __future__ import annotations

import jax.numpy as jnp

from likelihood.inversion import normal_equations
from likelihood.mesh.rectangular import Mapping


def mapping_rows(mapping: Mapping, pixels: int):
    """(S, N) dense M^T: M[i, indices[i, j]] += weights[i, j] (sub-size 1)."""
    n = mapping.indices.shape[0]
    rows = jnp.zeros((pixels, n), mapping.weights.dtype)
    return rows.at[mapping.indices, jnp.arange(n)[:, None]].add(mapping.weights)


def weighted_mapping_rows(mapping: Mapping, pixels: int, convolver, inverse_noise):
    """(S, N) B^T W^(1/2): each mesh pixel's image PSF-blurred inside the mask (no blurring
    region: the mesh only maps masked pixels) and divided by the noise."""
    return convolver.blur(lambda row: row, mapping_rows(mapping, pixels), convolver.mask_index,
                          inverse_noise)


def mesh_and_light_rows(mapping: Mapping, pixels: int, light_rows, convolver, noise):
    """(S + n, N) A = B^T W^(1/2): the S mesh pixels' rows, then the weighted lens-light rows."""
    return jnp.concatenate(
        [weighted_mapping_rows(mapping, pixels, convolver, 1.0 / noise), light_rows])


def mesh_and_light_system(mapping: Mapping, pixels: int, light_rows, convolver, data, noise):
    """The system of S mesh pixels followed by weighted lens-light rows (n, N).

    Returns (A, D, F): A (S + n, N) = B^T W^(1/2), D (S + n,), F (S + n, S + n); the blurred
    model image of amplitudes s is (s A) noise.
    """
    rows = mesh_and_light_rows(mapping, pixels, light_rows, convolver, noise)
    data_vector, curvature = normal_equations(rows, data * (1.0 / noise))
    return rows, data_vector, curvature
