"""Quadratures of SO(3) and O(3): weighted sets of rotations with an exactness degree.

A quadrature of degree ``L`` averages every Wigner-D component of degree ``<= L``
exactly (to the group average: 1 for the trivial representation, 0 otherwise). For
O(3), both parities of every degree are included. ``tests/test_quadrature.py``
checks each declared degree numerically: degree ``L`` exact, ``L + 1`` not.

Families, all built from scipy:

- ``lebedev``: Lebedev nodes of the sphere (``scipy.integrate.lebedev_rule``) for the
  axis, times ``L + 1`` equispaced in-plane angles;
- ``gauss-legendre``: Euler-angle product grid, ``L + 1`` equispaced angles for alpha
  and gamma, Gauss-Legendre nodes in ``cos(beta)``;
- finite rotation groups (``Rotation.create_group``): D2 (degree 1, 4 elements),
  T (degree 2, 12), O (degree 3, 24), I (degree 5, 60): a group average kills every
  irreducible representation without an invariant vector;
- ``random``: one Haar-distributed element per call (exact only on average);
- O(3) versions add the inversion ``-R`` of every element with half the weight.
"""

from dataclasses import dataclass

import numpy as np
from scipy.integrate import lebedev_rule
from scipy.spatial.transform import Rotation

from mdsym.core.defaults import MAX_QUADRATURE_DEGREE
from mdsym.symmetry.wigner import sector_characters, wigner_d

# orders accepted by scipy.integrate.lebedev_rule
LEBEDEV_ORDERS = (
    3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 35, 41,
    47, 53, 59, 65, 71, 77, 83, 89, 95, 101, 107, 113, 119, 125, 131,
)  # fmt: skip
MAX_DEGREE = LEBEDEV_ORDERS[-1]
assert MAX_DEGREE == MAX_QUADRATURE_DEGREE  # the help text's bound, read without scipy

# finite rotation groups: (scipy name, exactness degree over SO(3))
FINITE_GROUPS = {"D2": 1, "T": 2, "O": 3, "I": 5}


@dataclass(frozen=True)
class Quadrature:
    """A weighted set of O(3) elements, exact for Wigner-D degrees ``<= degree``."""

    name: str
    rotations: np.ndarray  # (G, 3, 3) orthogonal matrices acting as r' = r R^T
    weights: np.ndarray  # (G,), summing to one
    degree: int
    inversion: bool  # True: a quadrature of O(3); False: of SO(3)

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def group(self) -> str:
        return "O(3)" if self.inversion else "SO(3)"

    def describe(self) -> dict:
        return {
            "name": self.name,
            "group": self.group,
            "size": len(self),
            "degree": self.degree,
        }


class QuadratureError(ValueError):
    """A quadrature was asked for a degree or name mdsym does not provide."""


def _check_degree(degree: int) -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise QuadratureError(f"the quadrature degree must be an integer, got {degree!r}")
    if degree < 0 or degree > MAX_DEGREE:
        raise QuadratureError(
            f"quadrature degree {degree} is outside what mdsym provides (0 to {MAX_DEGREE})"
        )
    return int(degree)


def _with_inversion(quadrature: Quadrature) -> Quadrature:
    return Quadrature(
        name=quadrature.name,
        rotations=np.concatenate([quadrature.rotations, -quadrature.rotations]),
        weights=np.concatenate([quadrature.weights, quadrature.weights]) / 2.0,
        degree=quadrature.degree,
        inversion=True,
    )


def _finish(name, rotations, weights, degree, inversion) -> Quadrature:
    weights = np.asarray(weights, dtype=np.float64)
    quadrature = Quadrature(
        name=name,
        rotations=np.ascontiguousarray(rotations, dtype=np.float64),
        weights=weights / weights.sum(),
        degree=degree,
        inversion=False,
    )
    return _with_inversion(quadrature) if inversion else quadrature


def _euler_zyz(alpha, beta, gamma) -> np.ndarray:
    angles = np.stack([alpha, beta, gamma], axis=-1)
    return Rotation.from_euler("ZYZ", angles).as_matrix()


def identity(inversion: bool = True) -> Quadrature:
    """Degree 0: the identity (and the inversion for O(3))."""
    return _finish("identity", np.eye(3)[None], [1.0], 0, inversion)


def lebedev(degree: int, inversion: bool = True) -> Quadrature:
    """Lebedev nodes for the rotation axis times ``degree + 1`` in-plane angles."""
    degree = _check_degree(degree)
    if degree == 0:
        return identity(inversion)
    order = min(o for o in LEBEDEV_ORDERS if o >= degree)
    nodes, sphere_weights = lebedev_rule(order)
    alpha = np.arctan2(nodes[1], nodes[0])
    beta = np.arccos(np.clip(nodes[2], -1.0, 1.0))
    gamma = 2.0 * np.pi * np.arange(degree + 1) / (degree + 1)
    n_gamma = len(gamma)
    rotations = _euler_zyz(
        np.repeat(alpha, n_gamma), np.repeat(beta, n_gamma), np.tile(gamma, len(alpha))
    )
    weights = np.repeat(sphere_weights, n_gamma)
    return _finish(f"lebedev{order}x{n_gamma}", rotations, weights, degree, inversion)


def gauss_legendre(degree: int, inversion: bool = True) -> Quadrature:
    """Euler-angle product grid, Gauss-Legendre in ``cos(beta)``."""
    degree = _check_degree(degree)
    if degree == 0:
        return identity(inversion)
    n_angle = degree + 1
    n_beta = (degree + 2) // 2  # 2 n - 1 >= degree
    cos_beta, beta_weights = np.polynomial.legendre.leggauss(n_beta)
    angle = 2.0 * np.pi * np.arange(n_angle) / n_angle
    a, b, c = np.meshgrid(angle, np.arccos(cos_beta), angle, indexing="ij")
    w = np.broadcast_to(beta_weights[None, :, None], a.shape)
    rotations = _euler_zyz(a.ravel(), b.ravel(), c.ravel())
    name = f"gauss-legendre{n_angle}x{n_beta}x{n_angle}"
    return _finish(name, rotations, w.ravel(), degree, inversion)


def finite_group(name: str, inversion: bool = True) -> Quadrature:
    """The elements of a finite rotation group with equal weights."""
    if name not in FINITE_GROUPS:
        raise QuadratureError(
            f"unknown finite group {name!r}; known: {', '.join(FINITE_GROUPS)}"
        )
    rotations = Rotation.create_group(name).as_matrix()
    return _finish(
        f"group-{name}", rotations, np.ones(len(rotations)), FINITE_GROUPS[name], inversion
    )


def random_element(rng: np.random.Generator, inversion: bool = True) -> Quadrature:
    """One Haar-distributed element of SO(3), or of O(3) with a fair coin for ``-R``."""
    rotation = Rotation.random(random_state=rng).as_matrix()
    if inversion and rng.random() < 0.5:
        rotation = -rotation
    return Quadrature("random", rotation[None], np.ones(1), 0, inversion)


def candidates(degree: int, inversion: bool = True) -> list:
    """Every deterministic quadrature mdsym knows that is exact to ``degree``."""
    degree = _check_degree(degree)
    found = [lebedev(degree, inversion), gauss_legendre(degree, inversion)]
    if degree == 0:
        found.append(identity(inversion))
    found += [
        finite_group(name, inversion)
        for name, group_degree in FINITE_GROUPS.items()
        if group_degree >= degree
    ]
    return found


def cheapest(degree: int, inversion: bool = True) -> Quadrature:
    """The quadrature with the fewest elements that is exact to ``degree``."""
    return min(candidates(degree, inversion), key=len)


def by_name(name: str, degree: int, inversion: bool = True) -> Quadrature:
    """A named family at a degree: ``cheapest``, ``lebedev``, ``gauss-legendre``."""
    builders = {"cheapest": cheapest, "lebedev": lebedev, "gauss-legendre": gauss_legendre}
    if name not in builders:
        raise QuadratureError(
            f"unknown quadrature {name!r}; known: {', '.join(builders)}"
        )
    return builders[name](degree, inversion)


# --- measured exactness (for grids that declare none, such as i-PI's) -----------------


def worst_error(rotations, weights, degree: int, inversion: bool = True) -> float:
    """Largest deviation, over every Wigner-D sector up to ``degree`` (both parities if
    ``inversion``), of the weighted mean from the group average (1 for the trivial
    sector, 0 otherwise)."""
    rotations, weights = np.asarray(rotations), np.asarray(weights)
    d = wigner_d(rotations, degree)
    worst = 0.0
    for lam in range(degree + 1):
        for sigma in (1, -1) if inversion else (1,):
            mean = np.einsum("g,gab->ab", weights, sector_characters(rotations, lam, sigma, d[lam]))
            if lam == 0 and sigma == 1:
                mean[0, 0] -= 1.0
            worst = max(worst, float(np.abs(mean).max()))
    return worst


def exactness_degree(rotations, weights, inversion: bool = True, up_to: int = 12,
                     tol: float = 1e-10) -> int:
    """The largest degree (at most ``up_to``) to which the weighted rotations average
    every sector exactly, measured with Wigner-D matrices."""
    degree = 0
    while degree < up_to and worst_error(rotations, weights, degree + 1, inversion) < tol:
        degree += 1
    return degree
