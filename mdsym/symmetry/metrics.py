"""The two metrics of Domina et al. (2026) for one model and one structure.

A, equivariance error: the RMS over the group of the back-rotated prediction's
deviation from its group average, ``sqrt( sum_g w_g |y(g) - <y>|^2 / n )`` with
``n`` the number of components (1 for the energy, 3N for forces, 9 for stress);
zero for an exactly equivariant model. Units of the output (eV, eV/Angstrom,
eV/Angstrom^3).

B, symmetry content: the direct response ``f(g) = y(g x)`` (in the rotated frame,
not brought back) is a function on O(3); its squared norm
``|f|^2 = sum_g w_g |f(g)|^2`` splits over the irreducible sectors
``(lambda, sigma)``, ``|P f|^2 = (2 lambda + 1) sum_{m m'} |sum_g w_g f(g)
conj(D^{lambda sigma}_{m m'}(g))|^2``. B is the fraction in each sector. An exactly
invariant energy has all of it in ``(0, +1)``; exactly equivariant forces in
``(1, +1)``; ``residual`` is what lies above the largest degree computed.

Both integrals are exact when the quadrature is exact to twice the degree of the
response: ``metrics_quadrature(L)`` is exact to ``2 L + 1``.
"""

import numpy as np

from mdsym.core.defaults import MAX_CONTENT_DEGREE  # noqa: F401  (the bound of --degree)
from mdsym.core.rotations import rotate_copies, rotate_tensor_copies
from mdsym.symmetry import quadrature as quad
from mdsym.symmetry.averaging import evaluate_back_rotated
from mdsym.symmetry.wigner import sector_characters, wigner_d


def metrics_quadrature(max_degree: int, inversion: bool = True) -> quad.Quadrature:
    """The cheapest quadrature for A and for B up to ``max_degree``."""
    return quad.cheapest(2 * max_degree + 1, inversion)


def equivariance_error(back_rotated: np.ndarray, weights: np.ndarray) -> float:
    """A for one output: ``back_rotated`` is ``(G, ...)`` in the input frame."""
    values = back_rotated.reshape(len(weights), -1)
    mean = weights @ values
    variance = weights @ ((values - mean) ** 2)
    return float(np.sqrt(max(variance.mean(), 0.0)))


def symmetry_content(direct: np.ndarray, quadrature: quad.Quadrature, max_degree: int,
                     d_matrices=None) -> list:
    """B for one output: ``direct`` is ``(G, ...)`` with the response f(g x)."""
    values = direct.reshape(len(quadrature), -1)
    weights = quadrature.weights
    total = float(weights @ (values**2).sum(axis=1))
    if d_matrices is None:
        d_matrices = wigner_d(quadrature.rotations, max_degree)
    sigmas = (1, -1) if quadrature.inversion else (1,)
    content = []
    for lam in range(max_degree + 1):
        for sigma in sigmas:
            d = sector_characters(quadrature.rotations, lam, sigma, d_matrices[lam])
            coefficients = (2 * lam + 1) * np.einsum("g,gk,gab->kab", weights, values, d.conj())
            norm = float(np.sum(np.abs(coefficients) ** 2) / (2 * lam + 1))
            fraction = norm / total if total > 0 else 0.0
            content.append({"lambda": lam, "sigma": sigma, "fraction": fraction})
    return content


def measure(model, system, max_degree: int = 3, inversion: bool = True, batch_size=None) -> dict:
    """A and B of energy, forces (and stress when periodic) for ``model`` at ``system``."""
    quadrature = metrics_quadrature(max_degree, inversion)
    properties = ("energy", "forces", "stress") if system.periodic else ("energy", "forces")
    back = evaluate_back_rotated(model, system, quadrature, properties, batch_size)
    direct = {"energy": back["energy"]}
    if "forces" in back:
        direct["forces"] = rotate_copies(back["forces"], quadrature.rotations)
    if "stress" in back:
        direct["stress"] = rotate_tensor_copies(back["stress"], quadrature.rotations)
    d_matrices = wigner_d(quadrature.rotations, max_degree)
    report = {}
    for key in direct:
        B = symmetry_content(direct[key], quadrature, max_degree, d_matrices)
        report[key] = {
            "A": equivariance_error(back[key], quadrature.weights),
            "B": B,
            "residual": max(0.0, 1.0 - sum(item["fraction"] for item in B)),
        }
    # the group average of the energy: the prediction of the symmetrized model
    report["energy"]["mean"] = float(quadrature.weights @ back["energy"])
    report["quadrature"] = quadrature.describe()
    report["max_degree"] = max_degree
    return report
