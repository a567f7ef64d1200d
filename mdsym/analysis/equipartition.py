"""Equipartition: kinetic temperatures of separate degrees of freedom, over frames.

- Per species: ``T_s = 2 K_s / (3 N_s k_B)``.
- Isolated systems (molecules, clusters): the atoms are split into molecules
  (``mdsym.molecules``: connected components of the bond graph of the run's
  structure, bonds closer than 1.2 times the sum of covalent radii), and the
  kinetic energy of each into translation of its centre of mass, rigid rotation
  ``1/2 L . I^-1 L`` and the internal rest, with 3, 3 (2 if linear) and
  ``3 n - 6`` (``3 n - 5``) degrees of freedom, counted in the first frame. In
  equilibrium all three temperatures agree; a model that leaks energy into rotation
  shows it here.

Velocities in Angstrom/ps and masses in amu; temperatures in K. ``Equipartition``
streams a trajectory (``FrameChunks``: temperatures per frame, computed on chunks of
frames; means in ``_conclude``); ``kinetic_temperatures`` does the same on frames
held in arrays.
The molecules are padded to one size with massless atoms, so that L and the inertia
tensor of all of them are one call of ``mdsym.mechanics`` per frame.
"""

import numpy as np
from ase import units
from ase.data import chemical_symbols

from ..mechanics import angular_momentum, centre_of_mass, inertia_tensor, rotational_energy
from ..molecules import molecules  # noqa: F401 (the equipartition's molecules)
from .trajectory import EV_IN_AMU_A2_PS2, FrameChunks


def _temperature(kinetic_amu, dof):
    return 2.0 * kinetic_amu / EV_IN_AMU_A2_PS2 / (dof * units.kB) if dof > 0 else np.nan * kinetic_amu


class PaddedMolecules:
    """Molecules as one ``(K, n)`` index array; atoms past a molecule's end repeat its
    first atom with zero mass, so they add nothing to any mass-weighted sum."""

    def __init__(self, groups, masses):
        size = max(len(group) for group in groups)
        self.index = np.array([np.pad(group, (0, size - len(group)), constant_values=group[0])
                               for group in groups])
        self.masses = np.array([np.pad(masses[group], (0, size - len(group))) for group in groups])
        # a lone atom has no rotation (its inertia tensor is round-off about itself)
        self.rotates = np.array([len(group) > 1 for group in groups])

    def degrees_of_freedom(self, positions) -> tuple:
        """(translational, rotational, internal) degrees of freedom at ``positions``
        ``(N, 3)``: 3 per molecule, the rank of its inertia tensor (0 for an atom, 2 if
        linear, else 3), and the rest."""
        inertia = inertia_tensor(positions[self.index], self.masses)
        eigenvalues = np.linalg.eigvalsh(inertia)
        trace = np.trace(inertia, axis1=-2, axis2=-1)
        rank = np.where(self.rotates, (eigenvalues > 1e-6 * trace[:, None]).sum(axis=1), 0)
        sizes = (self.masses > 0).sum(axis=1)
        return 3 * len(sizes), int(rank.sum()), int((3 * sizes - 3 - rank).sum())

    def kinetic_energies(self, positions, velocities) -> tuple:
        """(translational, rotational) kinetic energies, amu Angstrom^2/ps^2, ``(...)``
        of frames ``(..., N, 3)``."""
        x, v, m = positions[..., self.index, :], velocities[..., self.index, :], self.masses
        vcom = centre_of_mass(v, m)
        translational = 0.5 * (m.sum(axis=-1) * (vcom * vcom).sum(axis=-1)).sum(axis=-1)
        rotation = rotational_energy(angular_momentum(x, v, m), inertia_tensor(x, m))
        rotational = np.where(self.rotates, rotation, 0.0).sum(axis=-1)
        return translational, rotational


def _temperatures(velocities, positions, masses, numbers, padded, dof) -> dict:
    """Kinetic temperatures of frames ``(..., N, 3)``; see ``kinetic_temperatures``."""
    per_atom = 0.5 * masses * (velocities * velocities).sum(axis=-1)
    total = per_atom.sum(axis=-1)
    out = {"total": _temperature(total, 3 * len(masses))}
    for z in np.unique(numbers):
        pick = numbers == z
        out[f"species:{chemical_symbols[z]}"] = _temperature(per_atom[..., pick].sum(axis=-1), 3 * pick.sum())
    if padded is None:
        return out
    translational, rotational = padded.kinetic_energies(positions, velocities)
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
    padded = None if groups is None else PaddedMolecules(groups, masses)
    dof = None if groups is None else padded.degrees_of_freedom(positions[0])
    return _temperatures(velocities, positions, masses, numbers, padded, dof)


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


class Equipartition(FrameChunks):
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
        self.padded = None if groups is None else PaddedMolecules(groups, self.masses)

    def _prepare(self):
        super()._prepare()
        self.dof = None
        self.results.temperatures = {}

    def _chunk(self, frames, positions, velocities, forces):
        if self.padded is not None and self.dof is None:
            self.dof = self.padded.degrees_of_freedom(positions[0])
        temperatures = _temperatures(velocities, positions, self.masses, self.numbers, self.padded, self.dof)
        series = self.results.temperatures
        for key, values in temperatures.items():
            series.setdefault(key, np.full(self.n_frames, np.nan))[frames] = values

    def _conclude(self):
        super()._conclude()
        self.results.figures = summarize(self.results.temperatures)
        if self.groups is not None:
            self.results.figures["molecules"] = len(self.groups)
