"""Rigid-body mechanics about the centre of mass: the one definition mdsym uses.

Every function takes atoms along the second-to-last axis: ``vectors`` ``(..., N, 3)``
and ``masses`` ``(..., N)`` broadcast against them, so the same code serves one
structure ``(N, 3)``, a trajectory ``(F, N, 3)`` and a set of molecules padded to
one size ``(F, K, n, 3)`` with masses ``(K, n)`` (padding atoms carry zero mass and
so add nothing). The units are those of the inputs: positions in Angstrom,
velocities in Angstrom/ps and masses in amu give L in amu Angstrom^2/ps; forces in
eV/Angstrom give the torque in eV.

Used by the engines' thermo.csv columns (``mdsym.rundir.mechanics``), the net-torque
fix (``mdsym.symmetrize.remove_net_torque``) and the analyses (angular momentum,
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
