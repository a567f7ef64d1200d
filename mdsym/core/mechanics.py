"""Rigid-body mechanics about the centre of mass: the one definition mdsym uses.

Every function takes atoms along the second-to-last axis: ``vectors`` ``(..., N, 3)``
and ``masses`` ``(..., N)`` broadcast against them, so the same code serves one
structure ``(N, 3)``, a trajectory ``(F, N, 3)`` and a set of molecules padded to
one size ``(F, K, n, 3)`` with masses ``(K, n)`` (padding atoms carry zero mass and
so add nothing). The units are those of the inputs: positions in Angstrom,
velocities in Angstrom/ps and masses in amu give L in amu Angstrom^2/ps; forces in
eV/Angstrom give the torque in eV.

Used by the engines' thermo.csv columns (``mdsym.md.rundir.mechanics``), the net-torque
fix (``mdsym.symmetry.fixes.remove_net_torque``) and the analyses (angular momentum,
equipartition).
"""

import numpy as np


def centre_of_mass(vectors, masses):
    """Mass-weighted mean over atoms: ``(..., N, 3)`` -> ``(..., 3)``."""
    weights = np.asarray(masses, dtype=np.float64)[..., None]
    return (weights * vectors).sum(axis=-2) / weights.sum(axis=-2)


def about_centre_of_mass(vectors, masses):
    """``vectors`` minus their centre of mass, same shape."""
    return vectors - centre_of_mass(vectors, masses)[..., None, :]


def angular_momentum(positions, velocities, masses):
    """``L = sum_i m_i (r_i - R) x (v_i - V)`` about the centre of mass, ``(..., 3)``."""
    r = about_centre_of_mass(positions, masses)
    v = about_centre_of_mass(velocities, masses)
    return (np.asarray(masses, dtype=np.float64)[..., None] * np.cross(r, v)).sum(axis=-2)


def torque(positions, forces, masses):
    """``tau = sum_i (r_i - R) x F_i`` about the centre of mass, ``(..., 3)``."""
    return np.cross(about_centre_of_mass(positions, masses), forces).sum(axis=-2)


def net_force(forces):
    """``sum_i F_i``, ``(..., 3)``."""
    return np.asarray(forces).sum(axis=-2)


def inertia_tensor(positions, masses):
    """``I = sum_i m_i (|r_i|^2 1 - r_i r_i^T)``, ``r`` about the centre of mass, ``(..., 3, 3)``."""
    r = about_centre_of_mass(positions, masses)
    weights = np.asarray(masses, dtype=np.float64)[..., None, None]
    second_moment = (weights * r[..., :, None] * r[..., None, :]).sum(axis=-3)
    trace = np.trace(second_moment, axis1=-2, axis2=-1)
    return trace[..., None, None] * np.eye(3) - second_moment


def rotational_energy(L, inertia):
    """``1/2 L . I^+ L``, the kinetic energy of the rigid rotation that carries ``L``
    (``(..., 3)``, inertia ``(..., 3, 3)``): ``I^+`` is the pseudo-inverse with
    ``rcond=1e-8``, so a linear body (one zero moment) or a lone atom (``I = 0``)
    rotates only about the axes it has.

    Written out: numpy inverts a stack of 3x3 matrices one LAPACK call at a time
    (about 4 us each, a million per 10^4 frames of 100 molecules), while the
    adjugate of a symmetric 3x3 matrix is a few array operations over the whole
    stack. Bodies with a near-zero determinant go through ``numpy.linalg.pinv``.
    """
    a, b, c = inertia[..., 0, 0], inertia[..., 1, 1], inertia[..., 2, 2]
    d, e, f = inertia[..., 0, 1], inertia[..., 0, 2], inertia[..., 1, 2]
    adj_00, adj_11, adj_22 = b * c - f * f, a * c - e * e, a * b - d * d
    adj_01, adj_02, adj_12 = e * f - c * d, d * f - b * e, d * e - a * f
    det = a * adj_00 + d * adj_01 + e * adj_02
    x, y, z = L[..., 0], L[..., 1], L[..., 2]
    quadratic = (adj_00 * x * x + adj_11 * y * y + adj_22 * z * z
                 + 2.0 * (adj_01 * x * y + adj_02 * x * z + adj_12 * y * z))
    # the adjugate is exact to round-off x condition number; below 1e-6 of the
    # cube of the mean moment the body is (nearly) linear: the pseudo-inverse decides
    singular = det <= 1e-6 * ((a + b + c) / 3.0) ** 3
    with np.errstate(divide="ignore", invalid="ignore"):
        energy = 0.5 * quadratic / det
    if np.any(singular):
        pinv = np.linalg.pinv(inertia[singular], rcond=1e-8, hermitian=True)
        energy[singular] = 0.5 * np.einsum("...j,...jk,...k->...", L[singular], pinv, L[singular])
    return energy
