"""The CPU kernel of the mesh curvature F = M^T P^T W P M, exploiting that M and the PSF are sparse.

Host code (Numba), called from `likelihood.curvature.sparse_mesh_terms` through
`jax.pure_callback`: `tiles` holds the kernels (the image cut into TILE x TILE tiles, BLAS's dsyrk
for each tile's Gram product), `stencil` the mask's geometry and the threads that share out the
tiles, `blas_threads` the limit that keeps BLAS single-threaded meanwhile. Nothing here reads the
environment: the thread count is the stencil's, given when the model is built.
"""

from likelihood.kernel.stencil import PixelStencil, thread_count
from likelihood.kernel.tiles import TILE

__all__ = ["TILE", "PixelStencil", "thread_count"]
