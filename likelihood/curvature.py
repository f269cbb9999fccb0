"""The linear system of a mesh source plus lens-light Gaussians, in two formulations.

A mesh enters the inversion through its mapping matrix M (N x S, k <= 4 non-zeros per row: the
interpolation weights of each traced pixel; autoarray `mapper_util.mapping_matrix_from` with
sub-size 1) and its blurred mapping matrix B = P M, P the PSF convolution restricted to the mask
(`Convolver`). The lens light enters as L = B_light^T W^(1/2) (n x N, `light_rows`).

- `dense_mesh_system` (the accelerator's): A = B^T W^(1/2) (K x N) is made by S + n FFT
  convolutions, then D = A b and F = A A^T (`inversion.dense_system`): N K^2 flops, which a GPU
  does at speed; on this CPU 0.5 s at the fiducial (N = 15,361, K = 1,285) at the core's peak.
- `sparse_mesh_system` (the CPU's): F_mesh = M^T P^T W P M from the sparsity of M and the PSF
  (`curvature_kernel`, a host kernel, 40x fewer operations); the data vector and the mesh-light
  block through P^T (a correlation: n + 1 FFTs) and M^T; the model image as P (M s) plus the
  light. No K x N matrix is formed. Its derivative is the dense formulation's (`_curvature_vjp`).

Both give the same numbers (tests/likelihood/test_curvature.py); `mesh_and_light_system` picks by
the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.convolution import Convolver, convolver
from likelihood.curvature_kernel import PixelStencil
from likelihood.inversion import LinearSystem, dense_system, gram
from likelihood.mesh.rectangular import Mapping


@dataclass(frozen=True, eq=False)
class MeshOperator:
    """The PSF on a fixed mask, as both formulations need it: `blur` (P, FFTs), `correlate`
    (P^T: the flipped PSF), and the sparse kernel's `stencil`."""

    blur: Convolver
    correlate: Convolver
    stencil: PixelStencil


def mesh_operator(mask: np.ndarray, blurring: np.ndarray, psf: np.ndarray) -> MeshOperator:
    return MeshOperator(convolver(mask, blurring, psf), convolver(mask, blurring, psf[::-1, ::-1]),
                        PixelStencil(mask, psf))


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


def mesh_and_light_rows(mapping: Mapping, pixels: int, light_rows, operator: MeshOperator, noise):
    """(S + n, N) A = B^T W^(1/2): the S mesh pixels' rows, then the weighted lens-light rows."""
    return jnp.concatenate(
        [weighted_mapping_rows(mapping, pixels, operator.blur, 1.0 / noise), light_rows])


def dense_mesh_system(mapping: Mapping, pixels: int, light_rows, operator: MeshOperator, data,
                      noise) -> LinearSystem:
    """The system of the S mesh pixels followed by the lens-light rows, through A."""
    return dense_system(mesh_and_light_rows(mapping, pixels, light_rows, operator, noise), data,
                        noise)


def sparse_mesh_system(mapping: Mapping, pixels: int, light_rows, operator: MeshOperator, data,
                       noise) -> LinearSystem:
    """The same system as `dense_mesh_system`, without forming B (see the module docstring)."""
    inverse_noise = 1.0 / noise
    # P^T W d and P^T W B_light, scattered by M^T: the data vector's and F's mesh-light block.
    correlated = operator.correlate.blur(
        lambda row: row, jnp.concatenate([(data * inverse_noise**2)[None],
                                          light_rows * inverse_noise]),
        operator.correlate.mask_index)
    mesh_rows = mapping_rows(mapping, pixels) @ correlated.T
    light_curvature = gram(light_rows)
    curvature = jnp.block([
        [sparse_mesh_curvature(operator, pixels, mapping.indices, mapping.weights, noise),
         mesh_rows[:, 1:]],
        [mesh_rows[:, 1:].T, light_curvature],
    ])
    data_vector = jnp.concatenate([mesh_rows[:, 0], light_rows @ (data * inverse_noise)])

    def image(amplitudes):
        mesh_image = jnp.sum(mapping.weights * amplitudes[:pixels][mapping.indices], axis=1)
        return (operator.blur.convolve(mesh_image[:, None])[:, 0]
                + (amplitudes[pixels:] @ light_rows) * noise)

    return LinearSystem(data_vector, curvature, image)


def mesh_and_light_system(mapping: Mapping, pixels: int, light_rows, operator: MeshOperator, data,
                          noise) -> LinearSystem:
    """The system of S mesh pixels followed by weighted lens-light rows (n, N): D (S + n,),
    F (S + n, S + n) and the blurred model image of amplitudes s, in the backend's formulation."""
    system = sparse_mesh_system if jax.default_backend() == "cpu" else dense_mesh_system
    return system(mapping, pixels, light_rows, operator, data, noise)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def sparse_mesh_curvature(operator: MeshOperator, pixels: int, indices, weights, noise):
    """(S, S) M^T P^T W P M by the host kernel; one call per lane under vmap. Differentiable in
    the weights (the noise is data: no derivative)."""
    return jax.pure_callback(partial(_host_curvature, operator, pixels),
                             jax.ShapeDtypeStruct((pixels, pixels), weights.dtype),
                             indices, weights, noise, vmap_method="sequential")


def _host_curvature(operator, pixels, indices, weights, noise):
    return operator.stencil.curvature(indices, weights, 1.0 / np.asarray(noise) ** 2, pixels)


def _curvature_forward(operator, pixels, indices, weights, noise):
    return (sparse_mesh_curvature(operator, pixels, indices, weights, noise),
            (indices, weights, noise))


def _curvature_vjp(operator, pixels, residuals, cotangent):
    """The dense formulation's derivative (B^T W^(1/2) by FFTs, then (G + G^T) A): one
    derivative for both formulations; a gradient costs on the CPU what it did before."""
    indices, weights, noise = residuals

    def dense(weights):
        return gram(weighted_mapping_rows(Mapping(indices, weights), pixels, operator.blur,
                                          1.0 / noise))

    (weights_cotangent,) = jax.vjp(dense, weights)[1](cotangent)
    return None, weights_cotangent, None


sparse_mesh_curvature.defvjp(_curvature_forward, _curvature_vjp)
