"""The stability figures of the public MLIP audits, computed on mdsym's arrays.

People who choose a machine-learned potential compare models with public audits.
mdsym computes their figures, as they define them, from plain arrays (a run's
``thermo.csv`` columns and frames), so that ``mdsym analyze`` and ``mdsym compare``
can show mdsym's verdict in the field's units. Every function is written from the
published definition (cited in its docstring); no code is taken from the packages. Sources read (2026-11):

- MLIP Audit (InstaDeep, ``mlipaudit`` 0.1.8 on PyPI): ``mlipaudit.scoring``,
  ``mlipaudit.benchmarks.nve_energy_conservation``, ``mlipaudit.benchmarks.stability``
  and ``mlipaudit.utils.stability``;
- ml-peg (``ddmms/ml-peg``): the rotational-symmetry test
  (``ml_peg.calcs/analysis.physicality.rotational_symmetry``, ml-peg 0.7.0) and the
  NVE drift in meV/atom/ps (issue #851 / pull request #852, "the fitted slope per
  atom gives the drift in meV/atom/ps");
- MLIP Arena (``atomind-ai/mlip-arena``, ``benchmarks/force_equivariance/run.py``):
  force MAE and cosine similarity between rotated predictions;
- NVIDIA nvalchemi-toolkit 0.3.0: ``nvalchemi.dynamics.hooks.StabilityMonitor.metrics``
  and its record ``StabilityMetrics``.

MLIP Audit's benchmark classes themselves cannot run here: they download their
structures from HuggingFace at run time and run MD through the JAX ``mlip``
library (their ASE path still needs the downloaded structures), and nothing may be
downloaded at run time. So the definitions are reproduced, and the tests compare
``mlipaudit_score`` with ``mlipaudit.scoring.compute_metric_score`` when that
module imports.

The definitions, one module per audit: ``mdsym.analysis.field_mlipaudit`` (MLIP
Audit), ``mdsym.analysis.field_mlpeg_arena`` (ml-peg and MLIP Arena) and
``mdsym.analysis.field_nvalchemi`` (nvalchemi); this module applies them to one run
directory (``of_run``).

Units: energies eV, times ps (fs where a source uses steps and a timestep),
positions Angstrom, momenta amu Angstrom/ps (thermo.csv's).
"""

import numpy as np

from mdsym.analysis.field_mlipaudit import (
    heavy_hydrogen_bonds,
    mlipaudit_explosion_frame,
    mlipaudit_hydrogen_drift,
    mlipaudit_nve,
    mlipaudit_stability_score,
)
from mdsym.analysis.field_mlpeg_arena import mlpeg_drift
from mdsym.analysis.field_nvalchemi import nvalchemi_stability
from mdsym.analysis.trajectory import energy_rows


def of_run(run, config) -> dict:
    """Every figure of the public audits for one run (a ``trajectory.RunData``) made with
    ``config`` (its ``RunConfig``; None: another mdsym wrote it, and they are skipped).

    Energies and momenta come from thermo.csv (every step), positions from the
    frames (every ``stride`` steps), temperatures at the frames' steps. For NVT the
    energy figures use thermo.csv's conserved quantity (potential + kinetic minus
    the energy the thermostat exchanged): MLIP Audit and nvalchemi define them for
    NVE, where it is the total energy.

    mdsym's own monitors stop a run long before MLIP Audit's 10,000 K criterion (at
    5 times the target temperature, a broken bond or atoms closer than 0.5 A). A run
    they stopped before MLIP Audit's criteria fired is scored as exploded at its last
    frame (``stopped_by_mdsym``), the stricter reading.
    """
    if config is None:
        return {"skipped": "run.json's configuration is not readable by this mdsym"}
    thermo = run.thermo
    out = {"ensemble": config.ensemble}
    if thermo is None or len(thermo["step"]) < 2:
        out["skipped"] = "no thermo.csv rows to fit"
        return out
    rows = energy_rows(thermo, config)  # mts:K: the outer steps, where conserved_eV is conserved
    t_ps = np.asarray(thermo["time_fs"], float)[rows] / 1000.0
    total = np.asarray(thermo["conserved_eV"], float)[rows]
    kinetic = np.asarray(thermo["kinetic_eV"], float)[rows]
    momenta = np.stack([thermo[k] for k in ("px", "py", "pz")], axis=1)[rows]
    finite = np.isfinite(total) & np.isfinite(np.asarray(thermo["potential_eV"], float)[rows])
    out["mlipaudit_nve"] = mlipaudit_nve(t_ps[finite], total[finite], kinetic[finite])
    out["mlpeg_drift_meV_atom_ps"] = mlpeg_drift(t_ps, total, run.n_atoms)
    out["nvalchemi"] = nvalchemi_stability(np.asarray(thermo["step"])[rows], total, momenta,
                                           run.n_atoms, config.timestep_fs, finite)
    out["mlipaudit_stability"] = _stability_of_run(run, config)
    return out


def _stability_of_run(run, config) -> dict:
    if run.n_frames == 0:
        return {"skipped": "no frames"}
    expected = config.steps // config.stride + 1
    steps = np.asarray(run.thermo["step"]).astype(int)
    temperature = np.asarray(run.thermo["temperature_K"], float)
    at_step = dict(zip(steps.tolist(), temperature.tolist()))
    frame_temps = np.array([at_step.get(int(s), np.nan) for s in run.step])
    target = config.temperature_K or float(frame_temps[0])
    explosion = mlipaudit_explosion_frame(frame_temps, target)
    drift_frame, hydrogen = -1, -1
    cell = run.atoms.cell.array if run.periodic else None
    pbc = run.atoms.pbc if run.periodic else None
    bonds = heavy_hydrogen_bonds(run.numbers, _frame_positions(run, 0), cell, pbc)
    if explosion == -1 and len(bonds):
        drift_frame, hydrogen = _hydrogen_drift_of_run(run, bonds, cell, pbc)
    stopped = run.status == "failed" and explosion == -1 and drift_frame == -1
    if stopped:
        explosion = run.n_frames - 1
    return {"explosion_frame": explosion, "hydrogen_drift_frame": drift_frame,
            "detached_hydrogen": hydrogen, "heavy_hydrogen_bonds": int(len(bonds)),
            "frames": run.n_frames, "expected_frames": expected, "stopped_by_mdsym": stopped,
            "score": mlipaudit_stability_score(explosion, drift_frame, expected)}


def _frame_positions(run, k):
    """Frame ``k``'s positions, from the arrays when loaded, else streamed."""
    if len(run.positions):
        return run.positions[k]
    return run.universe.trajectory[k].positions.astype(float)


def _hydrogen_drift_of_run(run, bonds, cell, pbc) -> tuple:
    """``mlipaudit_hydrogen_drift`` on the run's frames. When they are streamed, only
    the atoms the test looks at (heavy atoms and bonded hydrogens) are read into memory."""
    numbers = np.asarray(run.numbers)
    if len(run.positions):
        return mlipaudit_hydrogen_drift(run.positions, numbers, bonds, cell, pbc)
    wanted = np.union1d(np.flatnonzero(numbers != 1), np.asarray(bonds).ravel())
    positions = np.empty((run.n_frames, len(wanted), 3), dtype=np.float32)
    for k, ts in enumerate(run.universe.trajectory):
        positions[k] = ts.positions[wanted]
    frame, hydrogen = mlipaudit_hydrogen_drift(positions, numbers[wanted],
                                               np.searchsorted(wanted, bonds), cell, pbc)
    return frame, (int(wanted[hydrogen]) if hydrogen >= 0 else -1)
