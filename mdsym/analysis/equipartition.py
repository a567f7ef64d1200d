"""Equipartition: kinetic temperatures of separate degrees of freedom, over frames.

- Per species: ``T_s = 2 K_s / (3 N_s k_B)``.
- Isolated systems (molecules, clusters): the atoms are split into molecules
  (connected components of ASE's natural-cutoff bond graph in the first frame),
  and the kinetic energy of each into translation of its centre of mass, rigid
  rotation ``1/2 L . I^-1 L`` and the internal rest, with 3, 3 (2 if linear) and
  ``3 n - 6`` (``3 n - 5``) degrees of freedom. In equilibrium all three
  temperatures agree; a model that leaks energy into rotation shows it here.

Velocities in Angstrom/ps and masses in amu; temperatures in K.
"""

import numpy as np
from ase import units

from .angular_momentum import angular_momentum, centre_of_mass
from .trajectory import EV_IN_AMU_A2_PS2


def molecules(atoms, scale: float = 1.2) -> list:
    """Index arrays of the connected components of the bond graph of ``atoms``."""
    from ase.neighborlist import NeighborList, natural_cutoffs
    from scipy.sparse.csgraph import connected_components

    cutoffs = natural_cutoffs(atoms, mult=scale)
    nl = NeighborList(cutoffs, self_interaction=False, bothways=True)
    nl.update(atoms)
    _, labels = connected_components(nl.get_connectivity_matrix(sparse=True), directed=False)
    return [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]


def _temperature(kinetic_amu, dof):
    return 2.0 * kinetic_amu / EV_IN_AMU_A2_PS2 / (dof * units.kB) if dof > 0 else np.nan * kinetic_amu


def kinetic_temperatures(positions, velocities, masses, numbers, groups=None) -> dict:
    """Series ``(F,)`` of kinetic temperatures, keyed ``species:<symbol>``, and for
    isolated systems (``groups`` given: molecules' index arrays) ``translational``,
    ``rotational``, ``internal``, plus ``total``."""
    from ase.data import chemical_symbols

    per_atom = 0.5 * masses[None, :] * np.einsum("fij,fij->fi", velocities, velocities)
    out = {"total": _temperature(per_atom.sum(axis=1), 3 * len(masses))}
    for z in np.unique(numbers):
        pick = numbers == z
        out[f"species:{chemical_symbols[z]}"] = _temperature(per_atom[:, pick].sum(axis=1), 3 * pick.sum())
    if groups is None:
        return out
    trans = np.zeros(len(positions))
    rot = np.zeros(len(positions))
    dof_trans = dof_rot = dof_int = 0
    for group in groups:
        m, x, v = masses[group], positions[:, group], velocities[:, group]
        vcom = centre_of_mass(v, m)
        trans += 0.5 * m.sum() * np.einsum("fj,fj->f", vcom, vcom)
        dof_trans += 3
        if len(group) == 1:
            continue
        r = x - centre_of_mass(x, m)[:, None, :]
        inertia = np.einsum("i,fij,fik->fjk", m, r, r)
        inertia = np.einsum("fii->f", inertia)[:, None, None] * np.eye(3) - inertia
        L = angular_momentum(x, v, m)
        omega = np.einsum("fjk,fk->fj", np.linalg.pinv(inertia, rcond=1e-8, hermitian=True), L)
        rot += 0.5 * np.einsum("fj,fj->f", L, omega)
        rank = np.linalg.matrix_rank(inertia[0], tol=1e-6 * np.trace(inertia[0]))
        dof_rot += int(rank)
        dof_int += 3 * len(group) - 3 - int(rank)
    total = per_atom.sum(axis=1)
    out["translational"] = _temperature(trans, dof_trans)
    out["rotational"] = _temperature(rot, dof_rot)
    out["internal"] = _temperature(total - trans - rot, dof_int)
    return out


def summarize(series: dict) -> dict:
    """Mean temperature (K) of each series, and of the second half alone."""
    figures = {}
    for key, values in series.items():
        values = np.asarray(values)
        if len(values) == 0:
            continue
        half = values[len(values) // 2 :]
        figures[key] = {"mean_K": float(np.nanmean(values)), "mean_second_half_K": float(np.nanmean(half))}
    return figures
