"""Every declared exactness degree is verified numerically: L exact, L + 1 not."""

import numpy as np
import pytest

from mdsym.symmetry import quadrature as quad
from mdsym.symmetry.wigner import sector_characters, wigner_d


def worst_error(q, degree):
    """Largest deviation of the weighted mean of D^{lambda,sigma} from the group average."""
    d = wigner_d(q.rotations, degree)
    worst = 0.0
    for lam in range(degree + 1):
        for sigma in (1, -1) if q.inversion else (1,):
            mean = np.einsum("g,gab->ab", q.weights, sector_characters(q.rotations, lam, sigma, d[lam]))
            expected = np.zeros_like(mean)
            if lam == 0 and sigma == 1:
                expected[0, 0] = 1.0
            worst = max(worst, np.abs(mean - expected).max())
    return worst


ALL = (
    [quad.lebedev(L, inv) for L in (1, 2, 3, 4, 5, 7, 10) for inv in (True, False)]
    + [quad.gauss_legendre(L, inv) for L in (1, 2, 3, 6) for inv in (True, False)]
    + [quad.finite_group(name, inv) for name in quad.FINITE_GROUPS for inv in (True, False)]
)


@pytest.mark.parametrize("q", ALL, ids=lambda q: f"{q.name}-{q.group}")
def test_declared_degree_is_exact_and_the_next_is_not(q):
    assert abs(q.weights.sum() - 1.0) < 1e-14
    assert np.allclose(q.rotations @ q.rotations.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert worst_error(q, q.degree) < 1e-12
    assert worst_error(q, q.degree + 1) > 1e-3


def test_inversion_doubles_the_group_and_kills_pseudo_scalars():
    so3, o3 = quad.lebedev(3, inversion=False), quad.lebedev(3, inversion=True)
    assert len(o3) == 2 * len(so3)
    # det(g) is the pseudo-scalar (0, -1) character: zero over O(3), one over SO(3)
    assert abs(o3.weights @ np.linalg.det(o3.rotations)) < 1e-14
    assert abs(so3.weights @ np.linalg.det(so3.rotations) - 1.0) < 1e-14


@pytest.mark.parametrize("degree", range(0, 12))
def test_cheapest_is_exact_and_no_larger_than_lebedev(degree):
    q = quad.cheapest(degree)
    assert q.degree >= degree
    assert len(q) <= len(quad.lebedev(degree))
    assert worst_error(q, degree) < 1e-12


def test_finite_groups_beat_the_lebedev_grid_where_they_exist():
    # the icosahedral group is exact to degree 5 with 60 rotations; Lebedev x 6 needs 84
    assert quad.cheapest(5, inversion=False).name == "group-I"
    assert len(quad.cheapest(5, inversion=False)) < len(quad.lebedev(5, inversion=False))
    assert len(quad.cheapest(2, inversion=False)) == 12  # tetrahedral group


def test_random_elements_are_haar_distributed_on_average():
    rng = np.random.default_rng(0)
    samples = np.array([quad.random_element(rng).rotations[0] for _ in range(4000)])
    # the mean of the defining representation over O(3) is zero
    assert np.abs(samples.mean(axis=0)).max() < 0.05
    assert abs(np.mean(np.linalg.det(samples))) < 0.06


@pytest.mark.parametrize("degree", [-1, quad.MAX_DEGREE + 1, 2.5])
def test_degrees_outside_the_provided_range_are_refused(degree):
    with pytest.raises(quad.QuadratureError):
        quad.cheapest(degree)
