"""What an ASE-engine run records at every step, each an observer attached to the
integrator (``MolecularDynamics.attach``), as ASE's own trajectory writers and loggers:

- ``StepRecord``: the current step's thermo row and forces, computed once, read by
  the observers attached after it;
- ``ThermoWriter``: the row into thermo.csv;
- ``FrameWriter``: a trajectory frame every ``stride`` steps (and at the last);
- ``CheckpointWriter``: the full-precision checkpoint with the frames;
- ``ProgressReporter``: the progress bar;
- ``DegreeLogger``: ``o3:auto``'s choices, with the step they were made at;
- ``StabilityCheck``: the stability monitors; a verdict stops the run (``StopRun``).
"""

import numpy as np

from mdsym.md.checkpoint import write_checkpoint
from mdsym.md.thermo import thermo_row


class StopRun(Exception):
    """A stability monitor's verdict: the run stops at this step."""

    def __init__(self, reason: str, time_fs: float):
        super().__init__(reason)
        self.reason, self.time_fs = reason, time_fs


class StepRecord:
    """The step an observer sees: ``step``, ``row`` (None for the first step of a
    resumed segment, already written by the segment before, unless that row was cut
    off) and ``forces``."""

    def __init__(self, dynamics, start_step: int, timestep_fs: float, resume: bool, symmetrized,
                 results, first_row_missing: bool = False):
        """``symmetrized``: the ``SymmetrizedModel`` behind the forces (its degree);
        ``results``: a function giving the current step's energy and forces;
        ``first_row_missing``: a resumed segment writes its first row again (the
        checkpoint's step, whose row a kill cut off)."""
        self.dynamics, self.atoms = dynamics, dynamics.atoms
        self.start_step, self.timestep_fs, self.resume = start_step, timestep_fs, resume
        self.first_row_missing = first_row_missing
        self.symmetrized, self.results = symmetrized, results
        self.masses = self.atoms.get_masses()
        self.step, self.row, self.forces = start_step, None, None

    def __call__(self) -> None:
        self.step = self.start_step + self.dynamics.nsteps
        if self.resumed_start and not self.first_row_missing:
            self.row = None
            return
        atoms, results = self.atoms, self.results()
        potential, kinetic = results["energy"], atoms.get_kinetic_energy()
        self.forces = results["forces"]
        degree = self.symmetrized.degree
        self.row = thermo_row(
            self.step, self.step * self.timestep_fs, potential, kinetic,
            potential + kinetic - self.dynamics.transferred_energy, atoms.get_temperature(),
            atoms.positions, atoms.get_velocities(), self.forces, self.masses,
            energy_rot_std_eV=results.get("energy_rot_std", 0.0),
            forces_rot_std_eVA=float(np.sqrt(np.mean(results["forces_rot_std"] ** 2))),
            symmetrize_degree=degree if degree is not None else float("nan"),
            energy_uncertainty_eV=float(results.get("energy_uncertainty", float("nan"))))

    @property
    def resumed_start(self) -> bool:
        """The first step of a resumed segment: its frame and checkpoint exist already."""
        return self.resume and self.step == self.start_step


class ThermoWriter:
    def __init__(self, record: StepRecord, rundir):
        self.record, self.rundir = record, rundir

    def __call__(self) -> None:
        if self.record.row is not None:
            self.rundir.append_thermo(self.record.row)


class FrameWriter:
    """A frame every ``stride`` steps and at step ``total``."""

    def __init__(self, record: StepRecord, rundir, stride: int, total: int):
        self.record, self.rundir, self.stride, self.total = record, rundir, stride, total

    def due(self) -> bool:
        record = self.record
        return (record.row is not None and not record.resumed_start
                and (record.step % self.stride == 0 or record.step == self.total))

    def __call__(self) -> None:
        if self.due():
            record, atoms = self.record, self.record.atoms
            self.rundir.append_frame(record.step, record.row["time_fs"], atoms.positions,
                                     atoms.get_velocities(), record.forces, atoms.cell.array,
                                     bool(atoms.pbc.all()))


class CheckpointWriter(FrameWriter):
    """The checkpoint, with every frame: positions, momenta and what the integrator holds."""

    def __init__(self, record: StepRecord, rundir, stride: int, total: int, mts: bool):
        super().__init__(record, rundir, stride, total)
        self.mts = mts

    def __call__(self) -> None:
        if self.due():
            dynamics = self.record.dynamics
            write_checkpoint(self.rundir, self.record.atoms, self.record.step,
                             dynamics.transferred_energy, dynamics.state() if self.mts else None)


class ProgressReporter:
    def __init__(self, record: StepRecord, progress, total: int):
        self.record, self.progress, self.total = record, progress, total

    def __call__(self) -> None:
        if self.progress is not None and self.record.step > self.record.start_step:
            self.progress(self.record.step, self.total)


class DegreeLogger:
    """``o3:auto``: each new entry of the model's degree log, with its step, into ``log``."""

    def __init__(self, record: StepRecord, log: list):
        self.record, self.log = record, log

    def __call__(self) -> None:
        for entry in self.record.symmetrized.degree_log[len(self.log):]:
            self.log.append({"step": self.record.step, **entry})


class StabilityCheck:
    def __init__(self, record: StepRecord, monitor):
        self.record, self.monitor = record, monitor

    def __call__(self) -> None:
        record = self.record
        if record.row is None:
            return
        atoms = record.atoms
        reason = self.monitor.check(atoms.positions, atoms.cell.array, record.row["potential_eV"],
                                    record.forces, record.row["temperature_K"])
        if reason:
            raise StopRun(reason, record.row["time_fs"])
