"""Synthetic NNLS problems ``(Q, q, keep)`` for the tests (NumPy, not traced; the benchmark uses
the likelihood's real matrices).

Every problem is the normal-equation form of a regularized least-squares fit,
``Q = B^T W B + H`` (K, K) and ``q = B^T W d`` (K,), so that ``1/2 s^T Q s - q^T s`` is the
chi-squared (plus regularization) up to a constant. None of this is used at run time.
"""

import numpy as np
import scipy.sparse as sp

MESH_SHAPE = (35, 35)
N_GAUSSIANS = 60
# PyAutoArray adds this to the curvature diagonal of unregularized (linear light profile) columns.
DIAGONAL_FLOOR = 1e-3


def random_problem(rng: np.random.Generator, k: int, log10_cond: float) -> tuple[np.ndarray, np.ndarray]:
    """Q (k, k) with log-spaced eigenvalues in [10^-log10_cond, 1] and random eigenvectors; q (k,)
    such that about half of the constraints are active at the solution."""
    eigenvectors, _ = np.linalg.qr(rng.normal(size=(k, k)))
    eigenvalues = np.logspace(-log10_cond, 0.0, k)
    Q = (eigenvectors * eigenvalues) @ eigenvectors.T
    Q = 0.5 * (Q + Q.T)
    truth = np.where(rng.random(k) < 0.5, rng.random(k), 0.0)
    q = Q @ truth + 1e-2 * rng.normal(size=k) * np.sqrt(np.diag(Q))
    return Q, q


def gaussian_images(
    x: np.ndarray, y: np.ndarray, sigmas: np.ndarray, axis_ratio: float, angle: float
) -> np.ndarray:
    """Unit-flux elliptical Gaussians centred at the origin, sampled at (x, y).

    Returns shape (len(x), len(sigmas)).
    """
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    r2 = u[:, None] ** 2 + (v[:, None] / axis_ratio) ** 2
    return np.exp(-0.5 * r2 / sigmas**2) / (2 * np.pi * sigmas**2 * axis_ratio)


def mge_problem(rng: np.random.Generator, k: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A multi-Gaussian-expansion fit: k Gaussian images (two axis ratios, log-spaced widths) on a
    60 x 60 image with the 1e-3 diagonal floor. Nearly collinear columns: condition ~1e10."""
    grid = (np.arange(60) - 29.5) * 0.05
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    sigmas = np.logspace(-1.5, 0.3, k // 2)
    B = np.hstack([gaussian_images(x, y, sigmas, 0.85, 0.3), gaussian_images(x, y, sigmas, 0.6, 1.1)])
    truth = np.where(rng.random(k) < 0.3, rng.random(k), 0.0)
    noise = 0.05
    data = B @ truth + noise * rng.normal(size=x.size)
    Q = B.T @ B / noise**2 + DIAGONAL_FLOOR * np.eye(k)
    return 0.5 * (Q + Q.T), B.T @ data / noise**2


def _bilinear_mapping(points: np.ndarray, edges_x: np.ndarray, edges_y: np.ndarray) -> sp.csr_matrix:
    """(N, nx*ny) bilinear weights of each point onto the four nearest pixel centres of a
    rectangular mesh with the given cell edges (the adaptive rectangular mesh's mapper)."""
    nx, ny = len(edges_x) - 1, len(edges_y) - 1
    fx = np.interp(points[:, 0], 0.5 * (edges_x[1:] + edges_x[:-1]), np.arange(nx))
    fy = np.interp(points[:, 1], 0.5 * (edges_y[1:] + edges_y[:-1]), np.arange(ny))
    ix, iy = np.minimum(fx.astype(int), nx - 2), np.minimum(fy.astype(int), ny - 2)
    wx, wy = fx - ix, fy - iy
    rows = np.repeat(np.arange(len(points)), 4)
    cols = np.stack([iy * nx + ix, iy * nx + ix + 1, (iy + 1) * nx + ix, (iy + 1) * nx + ix + 1], 1)
    vals = np.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy], 1)
    return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(len(points), nx * ny))


def _psf_operator(mask: np.ndarray, sigma_pixels: float, half_width: int = 5) -> sp.csr_matrix:
    """(N, N) sparse convolution with a normalised Gaussian PSF, restricted to the masked pixels."""
    index = -np.ones(mask.shape, dtype=int)
    index[mask] = np.arange(mask.sum())
    offsets = np.arange(-half_width, half_width + 1)
    kernel = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / sigma_pixels**2)
    kernel /= kernel.sum()
    rows, cols, vals = [], [], []
    iy, ix = np.nonzero(mask)
    for dy in offsets:
        for dx in offsets:
            jy, jx = iy + dy, ix + dx
            inside = (jy >= 0) & (jy < mask.shape[0]) & (jx >= 0) & (jx < mask.shape[1])
            target = np.full(iy.shape, -1)
            target[inside] = index[jy[inside], jx[inside]]
            ok = target >= 0
            rows.append(index[iy[ok], ix[ok]])
            cols.append(target[ok])
            vals.append(np.full(ok.sum(), kernel[dy + half_width, dx + half_width]))
    n = int(mask.sum())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n, n))


def _grid_laplacian(nx: int, ny: int) -> sp.csr_matrix:
    """Graph Laplacian (degree - adjacency) of the 4-neighbour graph of an nx x ny mesh."""
    path = lambda n: sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1])  # noqa: E731
    adjacency = sp.kron(sp.identity(ny), path(nx)) + sp.kron(path(ny), sp.identity(nx))
    return (sp.diags(np.asarray(adjacency.sum(1)).ravel()) - adjacency).tocsr()


def _traced_points(x: np.ndarray, y: np.ndarray, einstein_radius: float, centre, shear):
    """Source-plane positions of image-plane points under a singular isothermal sphere plus shear."""
    dx, dy = x - centre[0], y - centre[1]
    r = np.maximum(np.hypot(dx, dy), 1e-12)
    g1, g2 = shear
    bx = x - einstein_radius * dx / r - (g1 * x + g2 * y)
    by = y - einstein_radius * dy / r - (g2 * x - g1 * y)
    return np.stack([bx, by], 1)


def lens_problem(
    rng: np.random.Generator, variant: str = "near_truth"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pixelized-source lens fit: K = 35*35 + 60 = 1285.

    ~15,000 masked image pixels are ray-traced through an isothermal + shear lens and mapped
    bilinearly onto a 35 x 35 source mesh whose cell edges adapt to the traced points' density;
    the mapping is PSF-blurred; the mesh block is regularized by a graph Laplacian; 60 Gaussian
    (MGE lens light) columns get the 1e-3 diagonal floor. ``variant`` is ``"near_truth"`` (fit with
    the lens that made the data: few or no active constraints) or ``"prior_draw"`` (a wrong lens:
    hundreds active). Returns ``(Q, q, keep)`` with ``keep`` False on the mesh's edge ring.
    """
    n, pixel_scale = 140, 0.05
    grid = (np.arange(n) - (n - 1) / 2) * pixel_scale
    xx, yy = np.meshgrid(grid, grid)
    mask = np.hypot(xx, yy) < 3.45
    x, y = xx[mask], yy[mask]
    psf = _psf_operator(mask, sigma_pixels=1.6)

    true_lens = dict(einstein_radius=1.6, centre=(0.0, 0.0), shear=(0.05, 0.02))
    beta = _traced_points(x, y, **true_lens)
    source = lambda b: (  # noqa: E731  compact bright core on a broad faint disc
        np.exp(-np.hypot(b[:, 0] - 0.05, b[:, 1] - 0.03) / 0.25)
        + 0.5 * np.exp(-np.hypot(b[:, 0] - 0.3, b[:, 1] - 0.2) / 1.5)
    )
    sigmas = np.logspace(-1.5, 0.0, N_GAUSSIANS)
    gaussians = psf @ np.hstack(
        [gaussian_images(x, y, sigmas[::2], 0.8, 0.5), gaussian_images(x, y, sigmas[1::2], 0.6, 0.5)]
    )
    lens_light = gaussians @ (20.0 + 40.0 * np.exp(-((np.log(sigmas) - np.log(0.5)) ** 2)))
    noise = 0.01
    data = psf @ source(beta) + lens_light + noise * rng.normal(size=x.size)

    if variant == "prior_draw":
        lens = dict(einstein_radius=1.3, centre=(0.12, -0.08), shear=(-0.04, 0.06))
        coefficient = 0.3
    elif variant == "near_truth":
        lens, coefficient = true_lens, 30.0
    else:
        raise ValueError(f"unknown variant {variant!r}")
    beta = _traced_points(x, y, **lens)
    # Adaptive edges: half uniform, half following the traced points' quantiles.
    levels = np.linspace(0.0, 1.0, MESH_SHAPE[0] + 1)
    edges = [0.5 * (np.quantile(b, levels) + b.min() + levels * (b.max() - b.min())) for b in beta.T]
    mapping = psf @ _bilinear_mapping(beta, edges[0], edges[1])
    B = sp.hstack([mapping, sp.csr_matrix(gaussians)]).tocsc()
    weight = 1.0 / noise**2
    Q = (B.T @ B).toarray() * weight
    n_mesh = MESH_SHAPE[0] * MESH_SHAPE[1]
    Q[:n_mesh, :n_mesh] += coefficient * _grid_laplacian(*MESH_SHAPE).toarray() + 1e-8 * np.eye(n_mesh)
    Q[n_mesh:, n_mesh:] += DIAGONAL_FLOOR * np.eye(N_GAUSSIANS)
    q = B.T @ data * weight
    ring = np.ones(MESH_SHAPE, dtype=bool)
    ring[1:-1, 1:-1] = False
    keep = np.concatenate([~ring.ravel(), np.ones(N_GAUSSIANS, dtype=bool)])
    return 0.5 * (Q + Q.T), np.asarray(q), keep
