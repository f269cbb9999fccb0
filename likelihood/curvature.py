"""The linear system of a mesh source plus lens-light Gaussians, in two formulations.

A mesh enters the inversion through its mapping matrix M (N x S, k <= 4 non-zeros per row: the
interpolation weights of each traced pixel; autoarray `mapper_util.mapping_matrix_from` with
sub-size 1) and its blurred mapping matrix B = P M, P the PSF convolution restricted to the mask
(`Convolver`). The lens light enters as L = B_light^T W^(1/2) (n x N, `light_rows`).

- `dense_mesh_system` (the accelerator's): A = B^T W^(1/2) (K x N) is made by S + n FFT
  convolutions, then D = A b and F = A A^T (`inversion.dense_system`): N K^2 flops, which a GPU
  does at speed; on this CPU 0.5 s at the fiducial (N = 15,361, K = 1,285) at the core's peak.
- `sparse_mesh_system` (the CPU's): F_mesh = M^T P^T W P M, the mesh part of D and the
  mesh-light block of F from the sparsity of M and the PSF (`likelihood.kernel`, a host kernel,
  40x fewer operations), and its derivative by the same kernel's reverse; the model image as
  P (M s) plus the light. No K x N matrix is formed.

Both give the same numbers (tests/likelihood/test_curvature.py); `mesh_and_light_system` runs the
one the operator was built for (`likelihood.execution.Execution.formulation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.convolution import Convolver
from likelihood.execution import Execution
from likelihood.inversion import LinearSystem, dense_system, gram
from likelihood.kernel import PixelStencil
from likelihood.mesh.mesh import Mapping
from likelihood.pytree import pytree_dataclass


@pytree_dataclass(static=("stencil", "formulation"))
@dataclass(frozen=True, eq=False)
class MeshOperator:
    """The PSF on a fixed mask, as both formulations need it: `blur` (P, FFTs), the sparse
    kernel's `stencil` (the mask's geometry and the kernel's threads), `psf` (kh, kw), the
    kernel's operand (a pytree leaf, not a constant of the host callback), and `formulation`,
    "sparse" or "dense" (`likelihood.execution`)."""

    blur: Convolver
    stencil: PixelStencil
    psf: np.ndarray
    formulation: str


def mesh_operator(blur: Convolver, mask: np.ndarray, psf: np.ndarray,
                  execution: Execution) -> MeshOperator:
    """The model's convolver `blur` (on `mask`) with the sparse kernel's stencil of the same PSF,
    run as `execution` says."""
    psf = np.asarray(psf, dtype=np.float64)
    return MeshOperator(blur, PixelStencil(mask, psf.shape, execution.kernel_threads), psf,
                        execution.formulation)


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
    weighted_data = data * (1.0 / noise)
    targets = jnp.concatenate([weighted_data[None], light_rows])
    mesh_curvature, projections = sparse_mesh_terms(operator, pixels, mapping.indices,
                                                    mapping.weights, targets, noise)
    curvature = jnp.block([
        [mesh_curvature, projections[:, 1:]],
        [projections[:, 1:].T, gram(light_rows)],
    ])
    data_vector = jnp.concatenate([projections[:, 0], light_rows @ weighted_data])

    def image(amplitudes):
        mesh_image = jnp.sum(mapping.weights * amplitudes[:pixels][mapping.indices], axis=1)
        return (operator.blur.convolve(mesh_image[:, None])[:, 0]
                + (amplitudes[pixels:] @ light_rows) * noise)

    return LinearSystem(data_vector, curvature, image)


def mesh_and_light_system(mapping: Mapping, pixels: int, light_rows, operator: MeshOperator, data,
                          noise) -> LinearSystem:
    """The system of S mesh pixels followed by weighted lens-light rows (n, N): D (S + n,),
    F (S + n, S + n) and the blurred model image of amplitudes s, in the operator's formulation."""
    system = sparse_mesh_system if operator.formulation == "sparse" else dense_mesh_system
    return system(mapping, pixels, light_rows, operator, data, noise)


def sparse_mesh_terms(operator: MeshOperator, pixels: int, indices, weights, targets, noise):
    """(M^T P^T W P M (S, S), M^T P^T W^(1/2) targets^T (S, R)) for R images `targets` (R, N), by
    the host kernel; one call per lane under vmap. Differentiable in the weights and targets
    (the noise and the PSF are data: no derivative). The PSF and the noise are operands of the
    host callback, not constants of it: the callback holds only the stencil's geometry."""
    return _sparse_terms(operator.stencil, pixels, indices, weights, targets, noise,
                         jnp.asarray(operator.psf))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _sparse_terms(stencil: PixelStencil, pixels: int, indices, weights, targets, noise, psf):
    shapes = (jax.ShapeDtypeStruct((pixels, pixels), weights.dtype),
              jax.ShapeDtypeStruct((pixels, targets.shape[0]), weights.dtype))
    return jax.pure_callback(partial(_host_terms, stencil, pixels), shapes, indices, weights,
                             targets, noise, psf, vmap_method="sequential")


def _host_terms(stencil, pixels, indices, weights, targets, noise, psf):
    return stencil.terms(indices, weights, 1.0 / np.asarray(noise), targets, psf, pixels)


def _terms_forward(stencil, pixels, indices, weights, targets, noise, psf):
    return (_sparse_terms(stencil, pixels, indices, weights, targets, noise, psf),
            (indices, weights, targets, noise, psf))


def _terms_vjp(stencil, pixels, residuals, cotangents):
    indices, weights, targets, noise, psf = residuals
    shapes = (jax.ShapeDtypeStruct(weights.shape, weights.dtype),
              jax.ShapeDtypeStruct(targets.shape, targets.dtype))
    weights_cotangent, targets_cotangent = jax.pure_callback(
        partial(_host_terms_vjp, stencil, pixels), shapes, indices, weights, targets, noise, psf,
        *cotangents, vmap_method="sequential")
    return None, weights_cotangent, targets_cotangent, None, None


def _host_terms_vjp(stencil, pixels, indices, weights, targets, noise, psf, *cotangents):
    return stencil.terms_vjp(indices, weights, 1.0 / np.asarray(noise), targets, psf, pixels,
                             cotangents)


_sparse_terms.defvjp(_terms_forward, _terms_vjp)
