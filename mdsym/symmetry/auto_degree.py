"""``o3:auto``: the lowest quadrature degree whose predicted force error is below a tolerance.

What a quadrature of degree ``L`` cannot average is what the forces carry above
degree ``L``. The forces brought back to the input frame, ``h(g) = F(g x) R_g``
(``mdsym.core.rotations``), are a function on O(3) whose group mean is the symmetrized
force; a quadrature exact to degree ``L`` averages its components of degree
``<= L`` exactly and leaves at most what lies above. So the symmetry content of
``h``, measured with ``mdsym.symmetry.metrics.symmetry_content`` on the quadrature of
``mdsym.symmetry.metrics.metrics_quadrature``, predicts the error of every degree at once:

    predicted_error(L) = sqrt( |h|^2 * (sum_{lambda > L} B_lambda + residual) / n )

eV/Angstrom, RMS over the ``n = 3 N`` components, with ``B_lambda`` the fraction
of ``|h|^2`` in degree ``lambda`` and ``residual`` the fraction above
``AUTO_MAX_DEGREE``. Over O(3), every mdsym grid holds each rotation ``R`` with its
inversion ``-R`` at equal weight, which cancels at any degree the sectors odd
under inversion (``sigma (-1)^lambda = -1``: odd proper, even pseudo degrees); only
the even sectors count in ``B_lambda`` (an odd-degree proper term such as the
analytic ``vector3`` needs ``o3:0``, but ``so3:3``). The prediction is the RMS over
rotations of the part left, what one random rotation of it would leave; a grid's
aliasing leaves about as much or, mostly, less (pet-ethanol-noaug on ethanol:
0.0018 eV/A predicted at L = 2, 7e-5 measured; 0.025 and 0.018 at L = 1; a
non-band-limited test model: 0.227 and 0.228 at L = 0, 0.227 and 0.106 at L = 1).

Why ``h`` and not the direct response ``f(g) = F(g x)`` that ``mdsym.symmetry.metrics.measure``
decomposes (B of the paper): ``f = h R_g^T``, so a degree-``l`` part of ``h`` spreads
over degrees ``l - 1 .. l + 1`` of ``f`` and the exactly equivariant part of the
forces sits in ``(1, +)``: from ``f`` alone the degree a grid needs is only known
to within one. The content of ``h`` is the same measurement (same quadrature,
same projector) on the function the quadrature actually averages.
"""

import numpy as np

from mdsym.core.defaults import AUTO_MAX_DEGREE
from mdsym.symmetry.averaging import evaluate_back_rotated
from mdsym.symmetry.metrics import metrics_quadrature, symmetry_content


def predicted_force_errors(model, system, inversion: bool = True, batch_size=None,
                           max_degree: int = AUTO_MAX_DEGREE) -> list:
    """``predicted_error(L)`` for ``L = 0 .. max_degree`` (see the module docstring)."""
    quadrature = metrics_quadrature(max_degree, inversion)
    back = evaluate_back_rotated(model, system, quadrature, ("energy", "forces"), batch_size)["forces"]
    values = back.reshape(len(quadrature), -1)
    total = float(quadrature.weights @ (values**2).sum(axis=1))
    per_degree, measured = np.zeros(max_degree + 1), 0.0
    for sector in symmetry_content(back, quadrature, max_degree):
        measured += sector["fraction"]
        # over O(3), the +-R pairs of every grid cancel the sectors odd under inversion
        if not inversion or sector["sigma"] * (-1) ** sector["lambda"] == 1:
            per_degree[sector["lambda"]] += sector["fraction"]
    residual = max(0.0, 1.0 - measured)
    above = [per_degree[degree + 1:].sum() + residual for degree in range(max_degree + 1)]
    return [float(np.sqrt(max(a, 0.0) * total / values.shape[1])) for a in above]


def choose_degree(errors: list, tolerance: float) -> tuple:
    """``(degree, met)``: the lowest degree with ``errors[degree] <= tolerance``, or
    the largest one with ``met = False`` when none is."""
    for degree, error in enumerate(errors):
        if error <= tolerance:
            return degree, True
    return len(errors) - 1, False
