"""The elliptical power-law mass profile (autogalaxy `PowerLaw`; lenstronomy and herculens `EPL`).

Convergence kappa = (3 - gamma) / (1 + q) (theta_E / xi)^(gamma - 1) with the slope gamma and the
elliptical radius xi = sqrt(x^2 + y^2 / q^2) in the profile frame (x along the major axis); at
gamma = 2 it is the isothermal ellipsoid of `mass.isothermal_deflections`.

Deflections are Tessore & Metcalf (2015, A&A 580, A79), eq. 13 with the series of their eq. 29.
With t = gamma - 1, R = sqrt(q^2 x^2 + y^2), R e^(i phi) = q x + i y and f = (1 - q) / (1 + q):

    alpha_x + i alpha_y = 2 b^t / (1 + q) R^(1 - t) omega(phi),
    omega(phi) = e^(i phi) 2F1(1, t/2; 2 - t/2; -f e^(2 i phi)) = e^(i phi) sum_n c_n w^n,
    w = -f e^(2 i phi),  c_0 = 1,  c_n = c_(n-1) (2n - 2 + t) / (2n + 2 - t),

where b^t = theta_E^t q^t 2 / (1 + q) (TM15's kappa = (2 - t)/2 (b/R)^t written in the
convergence above). The series is summed to a fixed `SERIES_TERMS` terms, static under jit.

Truncation: the largest relative error of omega with N terms against mpmath's 2F1 (30 digits),
over slopes 1.5 to 2.98 (t = 0.5 ... 1.98) and 33 angles phi in [0, pi/2], measured by
`benchmarks/power_law_series.py`. f = |ell_comps| (clamped at 0.999, `geometry`); q = (1-f)/(1+f).

    f    q      N=20   30     40     50     60     80     100    120    150    200    300
    0.1  0.82  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16
    0.2  0.67  1e-14  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16
    0.3  0.54  3e-11  4e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16  2e-16
    0.4  0.43  1e-08  1e-12  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16
    0.5  0.33  9e-07  9e-10  8e-13  1e-15  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16
    0.6  0.25  3e-05  2e-07  1e-09  8e-12  5e-14  3e-16  3e-16  3e-16  3e-16  3e-16  3e-16
    0.7  0.18  8e-04  2e-05  6e-07  2e-08  5e-10  4e-13  5e-16  4e-16  4e-16  4e-16  4e-16
    0.8  0.11  1e-02  1e-03  1e-04  1e-05  1e-06  2e-08  2e-10  2e-12  3e-15  4e-16  4e-16
    0.9  0.05  1e-01  4e-02  1e-02  5e-03  2e-03  2e-04  3e-05  3e-06  1e-07  7e-10  2e-14

The reference's JAX path sums 20 terms (1e-14 at q = 0.67, 3e-11 at q = 0.54). `SERIES_TERMS` =
150 converges to 1e-12 for every axis ratio q >= 0.11 (f <= 0.8, |ell_comps| <= 0.8: 99.7% of
the default ell_comps prior); flatter lenses are truncated (1e-7 at q = 0.05). The terms cost
150 complex multiply-adds per point (see the benchmark row in README); the series' derivative
(`hypergeometric_series`' custom JVP) costs 150 more, for the slope, and dS/dw comes in closed
form from the sum itself.

Singular points, all finite with finite gradients: R carries the reference's 1e-16 floor under
the square root; at the exact centre (q x = y = 0) the direction e^(i phi) is taken as +x, as the
reference does (so there the deflection is 2 b^t / (1 + q) R_floor^(1 - t) along x, unlike the
isothermal profile's zero); theta_E = 0 gives zero deflections through a double-where.
"""

from functools import partial

import jax
import jax.numpy as jnp

from likelihood.geometry import (
    axis_ratio_and_angle,
    from_reference_frame_vectors,
    to_reference_frame,
)

SERIES_TERMS = 150
# Horner steps per loop iteration: XLA fuses them into one pass over the points (measured 1.5-2x
# faster than 1 for the value and its gradient on 20,000 points; 10 is no faster).
_UNROLL = 5


def series_coefficients(t, terms: int = SERIES_TERMS):
    """(terms,) c_n of the hypergeometric series, c_0 = 1, for t = slope - 1 (scalar)."""
    n = jnp.arange(1, terms, dtype=jnp.result_type(float))
    ratios = (2.0 * n - 2.0 + t) / (2.0 * n + 2.0 - t)
    return jnp.concatenate([jnp.ones((1,), ratios.dtype), jnp.cumprod(ratios)])


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def hypergeometric_series(w, t, terms: int = SERIES_TERMS):
    """(N,) S(w, t) = sum_(n < terms) c_n(t) w^n (2F1(1, t/2; 2 - t/2; w) truncated) at complex
    (N,) `w` for scalar t, by Horner's rule over the `terms` coefficients."""

    def horner(total, c):
        return total * w + c, None

    total, _ = jax.lax.scan(horner, jnp.zeros_like(w), series_coefficients(t, terms)[::-1],
                            unroll=_UNROLL)
    return total


@hypergeometric_series.defjvp
def _hypergeometric_series_jvp(terms, primals, tangents):
    """dS = dS/dw dw + dS/dt dt, the exact derivatives of the truncated sum.

    dS/dw in closed form: with b = t/2, c = 2 - t/2, the coefficients' recursion
    (n + c - 1) c_n = (n - 1 + b) c_(n-1), summed over n = 1 ... N - 1 (N = `terms`), gives
    (1 - w) dS/dw = b S - (c - 1) Q - (N - 1 + b) c_(N-1) w^(N-1), Q = sum_(n >= 1) c_n w^(n-1)
    (Horner's state before its last step; no division by w, and |w| = f < 1). dS/dt =
    sum_(n >= 1) c_n'(t) w^n is a second Horner sum in the same loop. Autodiff through the loop
    would store every step's partial sum for the reverse pass; this stores two (N,) arrays."""
    w, t = primals
    w_dot, t_dot = tangents
    coefficients, coefficients_dt = jax.jvp(
        lambda t: series_coefficients(t, terms), (t,), (jnp.ones_like(t),))

    def horner(carry, c):
        (partial_sum, d_t), (c, c_dt) = carry, c
        return (partial_sum * w + c, d_t * w + c_dt), None

    zero = jnp.zeros_like(w)
    (q, d_t), _ = jax.lax.scan(
        horner, (zero, zero), (coefficients[:0:-1], coefficients_dt[:0:-1]), unroll=_UNROLL)
    total = q * w + coefficients[0]
    b = t / 2.0
    d_w = (b * total - (1.0 - b) * q
           - (terms - 1.0 + b) * coefficients[-1] * w ** (terms - 1)) / (1.0 - w)
    return total, d_w * w_dot + d_t * w * t_dot


def angular_series(direction, f, t, terms: int = SERIES_TERMS):
    """omega(phi) = e^(i phi) sum_n c_n (-f e^(2 i phi))^n for unit complex `direction` (N,)."""
    t = jnp.asarray(t, jnp.result_type(float))
    return direction * hypergeometric_series(-f * direction**2, t, terms)


def power_law_deflections(grid, centre, ell_comps, einstein_radius, slope,
                          terms: int = SERIES_TERMS):
    """(N, 2) (y, x) deflections of the elliptical power law at (N, 2) (y, x) arcsec `grid`;
    `einstein_radius` in arcsec, `slope` gamma (2: isothermal)."""
    axis_ratio, angle = axis_ratio_and_angle(ell_comps)
    frame = to_reference_frame(grid, centre, angle)
    y, x = frame[:, 0], frame[:, 1]
    t = slope - 1.0
    radius = jnp.sqrt(axis_ratio**2 * x**2 + y**2 + 1e-16)
    at_centre = (x == 0.0) & (y == 0.0)
    direction = jnp.where(at_centre, 1.0 + 0.0j,
                          (axis_ratio * x + 1j * y) / jnp.where(at_centre, 1.0, radius))
    f = (1.0 - axis_ratio) / (1.0 + axis_ratio)
    massless = einstein_radius == 0.0
    log_einstein_radius = jnp.log(jnp.where(massless, 1.0, einstein_radius))
    # 2 b^t / (1 + q) R^(1 - t), in logarithms so that every power is smooth in the slope.
    scale = jnp.where(massless, 0.0, 4.0 / (1.0 + axis_ratio) ** 2 * jnp.exp(
        t * (log_einstein_radius + jnp.log(axis_ratio)) + (1.0 - t) * jnp.log(radius)))
    alpha = scale * angular_series(direction, f, t, terms)
    return from_reference_frame_vectors(jnp.stack([alpha.imag, alpha.real], axis=-1), angle)
