"""The ASE engine's checkpoint: full-precision positions and momenta, the thermostat's
bookkeeping and, under ``mts:K``, the correction held between outer steps.

ASE's binary trajectory format keeps positions and momenta bit for bit (extxyz rounds
to 8 decimals, so a resumed run would drift from an uninterrupted one at 1e-8).
"""

import ase.io
import numpy as np

from mdsym.core.errors import MdsymError

CHECKPOINT = "checkpoint.traj"
OLD_CHECKPOINT = "checkpoint.extxyz"  # written by earlier versions: still read
# the correction an MTS run holds between outer steps, kept in the checkpoint's info
MTS_ENERGY, MTS_FORCES = "mts_correction_energy_eV", "mts_correction_forces"


def write_checkpoint(rundir, atoms, step: int, exchanged: float, mts_state=None) -> None:
    """Full-precision positions and momenta (and the correction an MTS run holds),
    replaced atomically."""
    path = rundir.path / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    snapshot = atoms.copy()
    snapshot.calc = None
    snapshot.info.update(step=int(step), transferred_energy_eV=float(exchanged))
    if mts_state is not None:
        snapshot.info[MTS_ENERGY] = mts_state["energy"]
        snapshot.info[MTS_FORCES] = np.asarray(mts_state["forces"])  # .traj keeps info arrays
    ase.io.write(tmp, snapshot, format="traj")
    tmp.replace(path)


def read_checkpoint(rundir):
    """``(atoms, step, exchanged energy, held MTS correction or None)``."""
    path = rundir.path / CHECKPOINT
    if not path.exists() and (rundir.path / OLD_CHECKPOINT).exists():
        path = rundir.path / OLD_CHECKPOINT
    if not path.exists():
        raise MdsymError(f"{rundir.path} has no {CHECKPOINT} to resume from")
    try:
        atoms = ase.io.read(path)
    except Exception as error:
        raise MdsymError(f"cannot read {path}: {error}") from None
    forces = atoms.info.pop(MTS_FORCES, None)  # .traj checkpoints
    if forces is None:
        forces = atoms.arrays.pop(MTS_FORCES, None)  # extxyz checkpoints of earlier versions
    energy = atoms.info.pop(MTS_ENERGY, None)
    held = {"energy": energy, "forces": forces} if energy is not None else None
    return atoms, int(atoms.info["step"]), float(atoms.info.get("transferred_energy_eV", 0.0)), held
