"""Equipartition: kinetic temperatures of separate degrees of freedom, over frames.

- Per species: ``T_s = 2 K_s / (3 N_s k_B)``.
- Isolated systems (molecules, clusters): the atoms are split into molecules
  (``mdsym.core.molecules``: connected components of the bond graph of the run's
  structure, bonds closer than 1.2 times the sum of covalent radii), and the
  kinetic energy of each into translation of its centre of mass, rigid rotation
  ``1/2 L . I^-1 L`` and the internal rest, with 3, 3 (2 if linear) and
  ``3 n - 6`` (``3 n - 5``) degrees of freedom, counted in the first frame. In
  equilibrium all three temperatures agree; a model that leaks energy into rotation
  shows it here.

Velocities in Angstrom/ps and masses in amu; temperatures in K. ``Equipartition``
streams a trajectory (temperatures per frame in ``_single_frame``, means in
``_conclude``); ``kinetic_temperatures`` does the same on frames held in arrays.
Molecules of one size are computed together (``MoleculeBlocks``).
"""

import numpy as np
from ase import units
from ase.data import chemical_symbols
from MDAnalysis.analysis.base import AnalysisBase

from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2, frame_velocities
from mdsym.core.mechanics import angular_momentum, centre_of_mass, inertia_tensor, rotational_energy


def _temperature(kinetic_amu, dof):
    return 2.0 * kinetic_amu / EV_IN_AMU_A2_PS2 / (dof * units.kB) if dof > 0 else np.nan * kinetic_amu


class MoleculeBlocks:
    """The molecules grouped by size: one index array ``(K_s, s)`` per size ``s``, so
    that L and the inertia tensor of all molecules of a size are one call of
    ``mdsym.core.mechanics`` per frame (a lone atom, ``s = 1``, does not rotate)."""

    def __init__(self, groups, masses):
        self.masses = np.asarray(masses, dtype=np.float64)
        self.count = len(groups)
        sizes = sorted({len(group) for group in groups})
        self.blocks = [np.array([group for group in groups if len(group) == size]) for size in sizes]

    def degrees_of_freedom(self, positions) -> tuple:
        """(translational, rotational, internal) degrees of freedom at ``positions``
        ``(N, 3)``: 3 per molecule, the rank of its inertia tensor (0 for an atom, 2 if
        linear, else 3), and the rest."""
        rotational = internal = 0
        for index in self.blocks:
            if index.shape[1] > 1:
                inertia = inertia_tensor(positions[index], self.masses[index])
                trace = np.trace(inertia, axis1=-2, axis2=-1)
                rank = (np.linalg.eigvalsh(inertia) > 1e-6 * trace[:, None]).sum(axis=1)
                rotational += int(rank.sum())
                internal += int((3 * index.shape[1] - 3 - rank).sum())
        return 3 * self.count, rotational, internal

    def kinetic_energies(self, positions, velocities) -> tuple:
        """(translational, rotational) kinetic energies, amu Angstrom^2/ps^2, ``(...)``
        of frames ``(..., N, 3)``."""
        translational = rotational = 0.0
        for index in self.blocks:
            x, v, m = positions[..., index, :], velocities[..., index, :], self.masses[index]
            vcom = centre_of_mass(v, m)
            translational = translational + 0.5 * (m.sum(axis=-1) * (vcom * vcom).sum(axis=-1)).sum(axis=-1)
            if index.shape[1] > 1:
                L, inertia = angular_momentum(x, v, m), inertia_tensor(x, m)
                rotational = rotational + rotational_energy(L, inertia).sum(axis=-1)
        return translational, rotational


def _temperatures(velocities, positions, masses, numbers, molecules_by_size, dof) -> dict:
    """Kinetic temperatures of frames ``(..., N, 3)``; see ``kinetic_temperatures``."""
    per_atom = 0.5 * masses * (velocities * velocities).sum(axis=-1)
    total = per_atom.sum(axis=-1)
    out = {"total": _temperature(total, 3 * len(masses))}
    for z in np.unique(numbers):
        pick = numbers == z
        out[f"species:{chemical_symbols[z]}"] = _temperature(per_atom[..., pick].sum(axis=-1), 3 * pick.sum())
    if molecules_by_size is None:
        return out
    translational, rotational = molecules_by_size.kinetic_energies(positions, velocities)
    dof_trans, dof_rot, dof_int = dof
    out["translational"] = _temperature(translational, dof_trans)
    out["rotational"] = _temperature(rotational, dof_rot)
    out["internal"] = _temperature(total - translational - rotational, dof_int)
    return out


def kinetic_temperatures(positions, velocities, masses, numbers, groups=None) -> dict:
    """Series ``(F,)`` of kinetic temperatures, keyed ``species:<symbol>``, and for
    isolated systems (``groups`` given: molecules' index arrays) ``translational``,
    ``rotational``, ``internal``, plus ``total``; degrees of freedom counted in the
    first frame."""
    molecules_by_size = None if groups is None else MoleculeBlocks(groups, masses)
    dof = None if groups is None else molecules_by_size.degrees_of_freedom(positions[0])
    return _temperatures(velocities, positions, masses, numbers, molecules_by_size, dof)


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


class Equipartition(AnalysisBase):
    """``Equipartition(universe, masses, numbers, groups=None).run()``: kinetic temperatures.

    ``results.temperatures``: series ``(F,)`` keyed as ``kinetic_temperatures``' (NaN
    in a frame without velocities); ``results.figures``: their means
    (``summarize``), with the number of molecules when ``groups`` is given.
    """

    def __init__(self, universe, masses, numbers, groups=None, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.masses = np.asarray(masses, dtype=np.float64)
        self.numbers = np.asarray(numbers)
        self.groups = groups
        self.molecules_by_size = None if groups is None else MoleculeBlocks(groups, self.masses)

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)

    def _prepare(self):
        self.dof = None
        self.results.temperatures = {}

    def _single_frame(self):
        velocities = frame_velocities(self._ts)
        if velocities is None:
            return
        positions = np.asarray(self._ts.positions, dtype=np.float64)
        if self.molecules_by_size is not None and self.dof is None:
            self.dof = self.molecules_by_size.degrees_of_freedom(positions)
        temperatures = _temperatures(velocities, positions, self.masses, self.numbers,
                                     self.molecules_by_size, self.dof)
        series = self.results.temperatures
        for key, value in temperatures.items():
            series.setdefault(key, np.full(self.n_frames, np.nan))[self._frame_index] = value

    def _conclude(self):
        self.results.figures = summarize(self.results.temperatures)
        if self.groups is not None:
            self.results.figures["molecules"] = len(self.groups)
