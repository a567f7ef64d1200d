"""Wigner-D matrices of O(3) elements, from the maintained ``wigners`` package.

For an irreducible representation ``(lambda, sigma)`` of O(3), a proper rotation
``R`` acts with ``D^lambda(R)`` and an improper element ``-R`` acts with
``sigma (-1)^lambda D^lambda(R)``: ``sigma = +1`` are proper tensors (positions,
forces, the energy), ``sigma = -1`` pseudo-tensors (angular momentum, chirality).
Everything here depends on the convention only through squared norms, which are
basis independent, so the complex matrices of ``wigners`` are used as they are.
"""

import warnings

import numpy as np
from scipy.spatial.transform import Rotation
from wigners import wigner_D_array


def proper_parts(elements: np.ndarray):
    """Split O(3) elements into proper rotations and a +1/-1 determinant sign."""
    elements = np.asarray(elements, dtype=np.float64)
    sign = np.where(np.linalg.det(elements) < 0.0, -1.0, 1.0)
    return elements * sign[:, None, None], sign


def wigner_d(elements: np.ndarray, max_degree: int) -> list:
    """``D^lambda`` of the proper part of each element, for lambda = 0..max_degree.

    Returns a list of complex arrays of shape ``(G, 2 lambda + 1, 2 lambda + 1)``.
    """
    proper, _ = proper_parts(elements)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock: the angles are still valid
        angles = Rotation.from_matrix(proper).as_euler("ZYZ")
    per_element = [wigner_D_array(max_degree, *abc) for abc in angles]
    return [np.stack([d[lam] for d in per_element]) for lam in range(max_degree + 1)]


def sector_characters(elements: np.ndarray, lam: int, sigma: int, d_lambda: np.ndarray):
    """``D^{lambda, sigma}(g)`` for every element, given ``D^lambda`` of proper parts."""
    _, sign = proper_parts(elements)
    parity = np.where(sign < 0.0, sigma * (-1.0) ** lam, 1.0)
    return parity[:, None, None] * d_lambda
