"""Any ASE calculator as an mdsym model, evaluated once per rotated copy.

There is no batching here (an ASE calculator takes one ``Atoms`` at a time), but
the rotations, the back-rotation and the statistics are the same as for every
other model, so any calculator can be symmetrized and measured.
"""

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from mdsym.core.errors import MdsymError
from mdsym.core.rotations import rotate_vectors
from mdsym.models.base import Model, check_finite


class ASECalculatorModel(Model):
    def __init__(self, calculator, name=None, forces_kind="conservative"):
        self.calculator = calculator
        self.name = name or type(calculator).__name__
        self.forces_kind = forces_kind
        self.has_stress = "stress" in getattr(calculator, "implemented_properties", ["stress"])

    def evaluate(self, system, rotations, properties) -> dict:
        self.check_system(system)
        positions = rotate_vectors(system.positions, rotations)
        cells = rotate_vectors(system.cell, rotations)
        out = {key: [] for key in properties if key != "stress" or system.periodic}
        for g in range(len(rotations)):
            atoms = Atoms(numbers=system.numbers, positions=positions[g], cell=cells[g], pbc=system.pbc)
            atoms.calc = self.calculator
            try:
                out["energy"].append(atoms.get_potential_energy())
                if "forces" in out:
                    out["forces"].append(atoms.get_forces())
                if "stress" in out:
                    out["stress"].append(voigt_6_to_full_3x3_stress(atoms.get_stress()))
            except Exception as error:
                raise MdsymError(f"ASE calculator {self.name} failed: {error}") from None
        results = {key: np.asarray(values, dtype=np.float64) for key, values in out.items()}
        check_finite(results, self.name)
        return results
