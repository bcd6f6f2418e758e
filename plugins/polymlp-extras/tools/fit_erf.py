"""Regenerate the Chebyshev coefficients of ``polymlp_extras/_special.py``.

Run ``python tools/fit_erf.py`` (needs mpmath) and paste its output over the
two tuples in ``_special.py``.  The error function is not in the Array API
standard, so the exact GELU evaluates it from two Chebyshev expansions,
fitted here to 40-digit values:

- ``erf(a) / a`` as a function of ``u = a**2`` on ``[0, SPLIT**2]``;
- ``a * exp(a**2) * erfc(a)`` as a function of ``w = 1 / a**2`` on
  ``[0, 1 / SPLIT**2]`` (it tends to ``1 / sqrt(pi)`` as ``a`` grows).

Degree 18 gives a relative error of about 3e-15 on both pieces.
"""

import mpmath
import numpy
from numpy.polynomial import chebyshev

SPLIT = 2.5
DEGREE = 18
mpmath.mp.dps = 40


def erf_over_a(u):
    if u == 0:
        return 2 / mpmath.sqrt(mpmath.pi)
    a = mpmath.sqrt(mpmath.mpf(u))
    return mpmath.erf(a) / a


def scaled_erfc(w):
    if w == 0:
        return 1 / mpmath.sqrt(mpmath.pi)
    a = 1 / mpmath.sqrt(mpmath.mpf(w))
    return a * mpmath.exp(a * a) * mpmath.erfc(a)


def fit(func, upper):
    def on_unit(t):  # Chebyshev variable t in [-1, 1] -> [0, upper]
        return numpy.array([float(func((ti + 1) * upper / 2)) for ti in numpy.atleast_1d(t)])
    coeffs = chebyshev.chebinterpolate(on_unit, DEGREE)
    grid = numpy.linspace(-1, 1, 4001)
    exact = on_unit(grid)
    err = numpy.max(numpy.abs(chebyshev.chebval(grid, coeffs) - exact) / numpy.abs(exact))
    return coeffs, err


def main():
    for name, func, upper in (("_ERF_SMALL", erf_over_a, SPLIT ** 2),
                              ("_ERFC_LARGE", scaled_erfc, 1 / SPLIT ** 2)):
        coeffs, err = fit(func, upper)
        print(f"# max relative error {err:.1e}")
        print(f"{name} = (")
        for c in coeffs:
            print(f"    {float(c)!r},")
        print(")")


if __name__ == "__main__":
    main()
