"""The linear system of a mesh source plus dense columns (lens light): D, F and the model image.

A mesh enters the inversion through its mapping matrix M (N x S, k <= 4 non-zeros per row: the
interpolation weights of each traced pixel; autoarray `mapper_util.mapping_matrix_from` with
sub-size 1) and its blurred mapping matrix B = P M, P the PSF convolution restricted to the mask
(`Convolver`). With W = 1 / sigma^2 and the dense columns L (N x n, already blurred):

    B_all = [B | L],  D = B_all^T W d,  F = B_all^T W B_all,  model image = B_all s.

Cost: scattering M is k N; the blurred columns are S FFT convolutions; the Gram matrix
B_all^T W B_all is N (S + n)^2 flops, computed as its upper blocks only (F is symmetric). With a
PSF of realistic support (21 x 21 at the fiducial, 61 x 61 for SLACS) B is not sparse (7% of its
entries are non-zero at the fiducial, 45% of F), so the dense Gram matrix is the exact CPU and GPU
formulation; the mapping's sparsity is used where it pays: building M and the model image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from likelihood.mesh.rectangular import Mapping

# Columns per block of the symmetric Gram product: large enough for an efficient GEMM, small
# enough that the skipped lower blocks save most of the redundant half.
GRAM_BLOCK = 256
# Mesh columns per FFT batch of the blurred mapping matrix.
CONVOLUTION_CHUNK = 128


def mapping_matrix(mapping: Mapping, pixels: int):
    """(N, S) dense M with M[i, indices[i, j]] += weights[i, j] (sub-size 1)."""
    rows = jnp.arange(mapping.indices.shape[0])[:, None]
    matrix = jnp.zeros((mapping.indices.shape[0], pixels), mapping.weights.dtype)
    return matrix.at[rows, mapping.indices].add(mapping.weights)


def blurred_mapping_matrix(mapping: Mapping, pixels: int, convolver, chunk: int = CONVOLUTION_CHUNK):
    """(N, S) B = P M: every mesh column PSF-convolved inside the mask (no blurring region).

    Convolved `chunk` columns at a time (`lax.map`), which bounds the FFT workspace (the padded box
    times the columns) per lane instead of holding it for all S columns at once.
    """
    matrix = mapping_matrix(mapping, pixels)
    n, chunks = matrix.shape[0], -(-pixels // chunk)
    blocks = jnp.pad(matrix, ((0, 0), (0, chunks * chunk - pixels)))
    blocks = blocks.reshape(n, chunks, chunk).transpose(1, 0, 2)
    blurred = jax.lax.map(convolver.convolve, blocks)
    return blurred.transpose(1, 0, 2).reshape(n, chunks * chunk)[:, :pixels]


def symmetric_gram(matrix):
    """(K, K) matrix^T matrix from its upper blocks of GRAM_BLOCK columns (about half the flops).

    Block row i is [lower blocks mirrored from the rows above | block_i^T matrix[:, start_i:]].
    """
    starts = list(range(0, matrix.shape[1], GRAM_BLOCK))
    uppers = [matrix[:, s : s + GRAM_BLOCK].T @ matrix[:, s:] for s in starts]
    rows = []
    for i, start in enumerate(starts):
        width = uppers[i].shape[0]
        mirrored = [uppers[j][:, start - starts[j] : start - starts[j] + width].T for j in range(i)]
        rows.append(jnp.concatenate(mirrored + [uppers[i]], axis=1))
    return jnp.concatenate(rows, axis=0)


def linear_system(blurred_columns, data, noise):
    """D (K,) and F (K, K) of blurred columns (N, K): D = B^T W d, F = B^T W B."""
    weighted = blurred_columns / noise[:, None]
    return weighted.T @ (data / noise), symmetric_gram(weighted)
