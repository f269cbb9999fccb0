"""scipy's NNLS as the oracle, and the checks every test applies."""

import numpy as np
import scipy.linalg
import scipy.optimize


def scipy_solution(Q: np.ndarray, q: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """argmin 1/2 s^T Q s - q^T s, s >= 0 (s = 0 off keep), as scipy's NNLS on ||L^T s - L^-1 q||."""
    keep = np.ones(len(q), bool) if keep is None else keep
    L = np.linalg.cholesky(Q[np.ix_(keep, keep)])
    b = scipy.linalg.solve_triangular(L, q[keep], lower=True)
    s = np.zeros(len(q))
    s[keep] = scipy.optimize.nnls(L.T, b, maxiter=50 * len(q))[0]
    return s


def objective(Q: np.ndarray, q: np.ndarray, s: np.ndarray) -> float:
    """In extended precision: at condition ~1e10 the terms s_i Q_ij s_j exceed the objective by
    ~1e5, and a float64 sum carries rounding of ~1e-10 relative, as large as the tolerance."""
    Q, q, s = (np.asarray(a, np.longdouble) for a in (Q, q, s))
    return float(0.5 * s @ (Q @ s) - q @ s)


def scaled_kkt_violation(Q, q, s, keep=None) -> float:
    """max |min(x, Qs x - qs)| / max|qs| in Jacobi-scaled variables, over kept entries."""
    keep = np.ones(len(q), bool) if keep is None else keep
    d = 1 / np.sqrt(np.diag(Q))
    x, qs = s / d, d * q
    gradient = d * (Q @ s) - qs
    return np.max(np.abs(np.minimum(x, gradient))[keep]) / np.max(np.abs(qs[keep]))


def assert_matches_scipy(Q, q, s, keep=None, relative=1e-10) -> None:
    """s is feasible, no worse than scipy's objective (to ``relative``), and satisfies KKT."""
    s = np.asarray(s)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    if keep is not None:
        assert np.all(s[~keep] == 0)
    ours, theirs = objective(Q, q, s), objective(Q, q, scipy_solution(Q, q, keep))
    assert ours <= theirs + relative * abs(theirs), (ours, theirs)
    assert scaled_kkt_violation(Q, q, s, keep) <= 1e-9
