"""One atomic structure and its neighbour list, built once per step.

A rotation leaves interatomic distances unchanged, so the neighbour list of every
rotated copy is the neighbour list of the original: pairs ``(i, j)`` and integer
cell shifts ``S`` are shared, and the pair vectors of copy ``g`` are
``(r_j - r_i + S H) R_g^T``.
"""

from dataclasses import dataclass, field

import ase
import ase.io
import numpy as np
import vesin
from ase.data import atomic_masses

from mdsym.core.defaults import structure_path
from mdsym.core.errors import MdsymError


@dataclass(frozen=True)
class NeighbourList:
    """Pairs ``i -> j`` within the cutoff, with the integer cell shift of ``j``."""

    first: np.ndarray  # (P,) int64
    second: np.ndarray  # (P,) int64
    shifts: np.ndarray  # (P, 3) int64
    cutoff: float
    full: bool


@dataclass
class System:
    positions: np.ndarray  # (N, 3), Angstrom
    numbers: np.ndarray  # (N,), atomic numbers
    cell: np.ndarray  # (3, 3), rows are lattice vectors; zeros when not periodic
    pbc: np.ndarray  # (3,), bool
    masses: np.ndarray = None  # (N,), amu; defaults to ASE's atomic masses
    _neighbours: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_atoms(cls, atoms: ase.Atoms) -> "System":
        positions = np.array(atoms.positions, dtype=np.float64)
        if not np.all(np.isfinite(positions)):
            raise MdsymError("the structure has NaN or infinite positions")
        pbc = np.array(atoms.pbc, dtype=bool)
        cell = np.array(atoms.cell.array, dtype=np.float64)
        if pbc.any() and not pbc.all():
            raise MdsymError(
                "mixed periodic boundary conditions are not supported: "
                "use pbc=True in all directions or none"
            )
        if pbc.all() and abs(np.linalg.det(cell)) < 1e-6:
            raise MdsymError("the structure is periodic but its cell has zero volume")
        if not pbc.any():
            cell = np.zeros((3, 3))
        if len(positions) == 0:
            raise MdsymError("the structure has no atoms")
        masses = np.array(atoms.get_masses(), dtype=np.float64)
        return cls(positions, np.array(atoms.numbers, dtype=np.int64), cell, pbc, masses)

    def __post_init__(self):
        if self.masses is None:
            self.masses = atomic_masses[self.numbers]

    @property
    def periodic(self) -> bool:
        return bool(self.pbc.all())

    def __len__(self) -> int:
        return len(self.numbers)

    def neighbours(self, cutoff: float, full: bool = True) -> NeighbourList:
        """The neighbour list at ``cutoff`` (vesin), computed once and cached."""
        key = (float(cutoff), bool(full))
        if key not in self._neighbours:
            calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=full)
            first, second, shifts = calculator.compute(
                points=self.positions,
                box=self.cell,
                periodic=self.periodic,
                quantities="ijS",
                copy=True,
            )
            self._neighbours[key] = NeighbourList(
                first.astype(np.int64),
                second.astype(np.int64),
                shifts.astype(np.int64),
                float(cutoff),
                bool(full),
            )
        return self._neighbours[key]


def read_structure(path, index=-1) -> ase.Atoms:
    """Read one structure with ASE (a file, or the name of a shipped structure:
    ``mdsym.core.defaults.structure_path``); any failure is one clear line."""
    path = structure_path(path)
    if path.is_dir():
        raise MdsymError(f"structure {path} is a folder, not a structure file")
    try:
        atoms = ase.io.read(path, index=index)
    except FileNotFoundError:
        raise MdsymError(f"structure file not found: {path}") from None
    except Exception as error:  # ASE raises many kinds for unreadable files
        raise MdsymError(f"cannot read structure file {path}: {error}") from None
    if isinstance(atoms, list):
        if not atoms:
            raise MdsymError(f"structure file {path} contains no frame")
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise MdsymError(f"structure file {path} contains no atoms")
    if not np.all(np.isfinite(atoms.positions)):
        raise MdsymError(f"structure file {path} has NaN or infinite positions")
    return atoms
