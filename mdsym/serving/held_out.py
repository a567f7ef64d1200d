"""Held-out errors of a model against reference data: the figures of a model card.

Used only by training and the tests: ``inputs/training/evaluate.py`` writes them onto
the shipped models' cards and ``tests/test_shipped_models.py`` recomputes them; both
call ``held_out_errors``, which evaluates through the ASE calculator, as a user does.
"""

import numpy as np
from ase.io import read
from ase.stress import voigt_6_to_full_3x3_stress

from mdsym.serving.ase_calculator import MdsymCalculator


def held_out_errors(model, test_file) -> dict:
    """RMSEs of ``model`` (an mdsym ``Model``) on the frames of ``test_file`` (energy per
    atom, forces, and stress as 3x3 tensors for periodic frames) in meV units, with the
    spread of the reference forces (and Voigt stress) for scale."""
    frames = read(test_file, ":")
    calc = MdsymCalculator(model)
    de, df, ds = [], [], []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calc
        de.append((atoms.get_potential_energy() - frame.get_potential_energy()) / len(atoms))
        df.append((atoms.get_forces() - frame.get_forces()).ravel())
        if frame.pbc.all():
            ds.append((voigt_6_to_full_3x3_stress(atoms.get_stress())
                       - voigt_6_to_full_3x3_stress(frame.get_stress())).ravel())
    errors = {
        "n_frames": len(frames),
        "energy_rmse_meV_per_atom": 1e3 * float(np.sqrt(np.mean(np.square(de)))),
        "forces_rmse_meV_per_A": 1e3 * float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
        "forces_reference_std_meV_per_A": 1e3 * float(np.std(np.concatenate(
            [frame.get_forces().ravel() for frame in frames]))),
    }
    if ds:
        errors["stress_rmse_meV_per_A3"] = 1e3 * float(np.sqrt(np.mean(np.square(ds))))
        errors["stress_reference_std_meV_per_A3"] = 1e3 * float(np.std(
            [frame.get_stress() for frame in frames]))
    return errors
