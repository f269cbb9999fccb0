"""The truncation table of the power law's hypergeometric series (`likelihood/power_law.py`).

For each f = (1 - q) / (1 + q) and number of terms N, the largest relative error of
omega(phi) = e^(i phi) 2F1(1, t/2; 2 - t/2; -f e^(2 i phi)) summed to N terms in float64 against
mpmath's 2F1 at 30 digits, over slopes 1.5 to 2.98 (t = slope - 1) and 33 angles in [0, pi/2].

    python benchmarks/power_law_series.py            # the table in the module's docstring
    python benchmarks/power_law_series.py --smoke    # two rows, three columns
"""

import argparse

import mpmath
import numpy as np

SLOPES_MINUS_ONE = (0.5, 0.7, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 1.98)


def truncated(f: float, t: float, phi: float, terms: int) -> complex:
    n = np.arange(1, terms)
    coefficients = np.concatenate([[1.0], np.cumprod((2 * n - 2 + t) / (2 * n + 2 - t))])
    return np.exp(1j * phi) * np.polyval(coefficients[::-1], -f * np.exp(2j * phi))


def largest_error(f: float, terms: list[int], angles: np.ndarray) -> list[float]:
    mpmath.mp.dps = 30
    exact = {(t, phi): complex(mpmath.exp(1j * phi) * mpmath.hyp2f1(
        1, t / 2, 2 - t / 2, -f * mpmath.exp(2j * phi))) for t in SLOPES_MINUS_ONE for phi in angles}
    return [max(abs(truncated(f, t, phi, n) - value) / abs(value)
                for (t, phi), value in exact.items()) for n in terms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two rows, three columns")
    smoke = parser.parse_args().smoke
    fs = [0.3, 0.8] if smoke else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    terms = [20, 150, 300] if smoke else [20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 300]
    angles = np.linspace(0.0, np.pi / 2, 5 if smoke else 33)
    print("f    q     " + " ".join(f"N={n:<4d}" for n in terms))
    for f in fs:
        errors = largest_error(f, terms, angles)
        print(f"{f:<4} {(1 - f) / (1 + f):.2f}  " + " ".join(f"{e:.0e} " for e in errors))


if __name__ == "__main__":
    main()
