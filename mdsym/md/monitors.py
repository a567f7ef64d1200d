"""Stability monitors: the reasons a stability test stops a run.

A run fails, with the first reason found, when

- the energy, forces or positions are NaN or infinite;
- the temperature exceeds ``max_temperature_factor`` times the target (NVT) or the
  initial temperature (NVE);
- two atoms come closer than ``min_distance_A``;
- (molecules: isolated systems made of non-metal elements only) the bonded
  connectivity changes (``mdsym.core.molecules``): a bond of the initial structure
  (closer than 1.2 times the sum of covalent radii) stretches beyond
  ``bond_break_factor`` (1.6) times the sum of covalent radii, or two atoms not
  bonded at the start come within the sum of covalent radii. Metal clusters are
  left out: their atoms exchange neighbours at room temperature without anything
  breaking.
"""

from dataclasses import dataclass

import numpy as np

# elements whose bonds are covalent enough for a fixed bond graph to mean something
NON_METALS = frozenset([1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54])

from mdsym.core.molecules import BREAK_FACTOR, bonds, connectivity_change
from mdsym.core.system import System
from mdsym.md.config import DEFAULT_CONNECTIVITY, DEFAULT_MAX_TEMPERATURE_FACTOR, DEFAULT_MIN_DISTANCE_A


@dataclass
class MonitorSettings:
    min_distance_A: float = DEFAULT_MIN_DISTANCE_A
    max_temperature_factor: float = DEFAULT_MAX_TEMPERATURE_FACTOR
    connectivity: bool = DEFAULT_CONNECTIVITY
    bond_break_factor: float = BREAK_FACTOR

    @classmethod
    def from_config(cls, config) -> "MonitorSettings":
        """The monitors a ``RunConfig`` asks for."""
        return cls(min_distance_A=config.min_distance_A,
                   max_temperature_factor=config.max_temperature_factor,
                   connectivity=config.connectivity)


class StabilityMonitor:
    def __init__(self, atoms, reference_temperature_K, settings: MonitorSettings):
        self.settings = settings
        self.reference_temperature = reference_temperature_K
        self.periodic = bool(np.all(atoms.pbc))
        self.numbers = atoms.numbers.copy()
        self.bonds = None
        molecular = set(atoms.numbers.tolist()) <= NON_METALS
        if settings.connectivity and molecular and not self.periodic and len(atoms) > 1:
            self.bonds = bonds(atoms.positions, atoms.numbers)

    def check(self, positions, cell, energy, forces, temperature_K):
        """The reason to stop now, or None."""
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            return "non-finite energy or forces"
        if not np.all(np.isfinite(positions)):
            return "non-finite positions"
        factor = self.settings.max_temperature_factor
        if self.reference_temperature and factor and temperature_K > factor * self.reference_temperature:
            return (f"temperature {temperature_K:.0f} K exceeds {factor:g} x "
                    f"{self.reference_temperature:g} K")
        threshold = self.settings.min_distance_A
        if threshold:
            close = self._closest_pair(positions, cell, threshold)
            if close is not None:
                i, j, d = close
                return f"atoms {i} and {j} are {d:.3f} A apart (threshold {threshold:g} A)"
        if self.bonds is not None:
            broken, formed = connectivity_change(self.bonds, positions, self.numbers,
                                                 self.settings.bond_break_factor)
            if broken:
                i, j = broken[0]
                return f"bond {i}-{j} broke ({self._distance(positions, i, j):.2f} A)"
            if formed:
                i, j = formed[0]
                return f"new bond {i}-{j} formed ({self._distance(positions, i, j):.2f} A)"
        return None

    @staticmethod
    def _distance(positions, i, j):
        return float(np.linalg.norm(positions[j] - positions[i]))

    def _closest_pair(self, positions, cell, threshold):
        pbc = np.array([self.periodic] * 3)
        system = System(np.asarray(positions, float), np.zeros(len(positions), np.int64),
                        np.asarray(cell, float) if self.periodic else np.zeros((3, 3)), pbc,
                        np.ones(len(positions)))
        pairs = system.neighbours(threshold, full=False)
        if len(pairs.first) == 0:
            return None
        vectors = positions[pairs.second] - positions[pairs.first] + pairs.shifts @ system.cell
        d = np.linalg.norm(vectors, axis=1)
        k = int(np.argmin(d))
        return int(pairs.first[k]), int(pairs.second[k]), float(d[k])
