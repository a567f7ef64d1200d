"""i-PI's steps into the run directory, in mdsym's units: the rows of ``thermo.csv`` and
the frames of ``trajectory.trr``, written as the ASE engine writes them.

``segment_reader`` follows one segment's outputs (``mdsym.md.ipi_engine.outputs``),
its steps labelled as mdsym counts them (inner steps under ``mts:K``). ``step_row``
converts one step from i-PI's atomic units (``mdsym.serving.ipi_protocol``'s
constants) and makes its row with the shared ``mdsym.md.thermo.thermo_row``;
``StepWriter`` writes each step once, in order, through the same
``RunDirectory.append_thermo`` (and ``append_frame`` every ``stride`` steps) as the
ASE engine, checks the monitors on it, and remembers the first failure.
``last_step`` / ``last_whole_step`` say how far the run directory goes.
"""

import numpy as np
from ase import units

from mdsym.md.ipi_engine.outputs import OuterSteps, SegmentReader
from mdsym.md.ipi_engine.prepare import IpiRun
from mdsym.md.ipi_engine.rotation_grid import grid_extras
from mdsym.md.rundir import RunDirectory, complete_frames
from mdsym.md.thermo import thermo_row
from mdsym.serving import ipi_protocol as p


def segment_reader(run: IpiRun, prefix: str):
    """What follows i-PI's outputs under ``prefix``, steps labelled as mdsym counts them."""
    reader = SegmentReader(run.workdir, prefix, run.atoms.get_chemical_symbols(), run.extras)
    return OuterSteps(reader, run.interval) if run.interval > 1 else reader


def step_row(step, data, masses) -> tuple:
    """A ``thermo.csv`` row (``mdsym.md.thermo.thermo_row``) and the frame arrays of one
    i-PI step (``mdsym.md.ipi_engine.outputs.Step``), converted from atomic units here."""
    thermo, arrays, extras = data.thermo, data.arrays, data.extras
    positions = arrays["positions"] * p.BOHR
    velocities = arrays["velocities"] * p.AU_VELOCITY
    forces = arrays["forces"] * p.AU_FORCE
    nan = float("nan")
    row = thermo_row(step, thermo["time"] * p.AU_TIME / units.fs, thermo["potential"] * p.HARTREE,
                     thermo["kinetic_md"] * p.HARTREE, thermo["conserved"] * p.HARTREE,
                     thermo["temperature"] * p.AU_TEMPERATURE, positions, velocities, forces, masses,
                     energy_rot_std_eV=extras.get("energy_rot_std", nan),
                     forces_rot_std_eVA=extras.get("forces_rot_std", nan),
                     symmetrize_degree=extras.get("symmetrize_degree", nan))
    return row, positions, velocities, forces


class StepWriter:
    """Writes i-PI's steps into the run directory once each, in order, and checks the
    monitors on each; remembers the first failure."""

    def __init__(self, run: IpiRun, progress=None):
        self.run = run
        self.progress = progress
        self.masses = run.atoms.get_masses()
        self.cell = run.atoms.cell.array if run.periodic else None
        self.last = last_step(run.rundir)
        self.new_steps = 0
        self.reason = None
        self.time_to_failure_fs = None
        # o3:auto: every change of degree seen in the rows (run.json's degree_log)
        self.degree_log = [] if run.config.symmetrize.mode == "auto" else None

    def write(self, steps, up_to=None) -> bool:
        """Write the ``[(step, Step)]`` not written yet (up to ``up_to``); False once a
        monitor has tripped."""
        for step, data in steps:
            if self.reason or step <= self.last or (up_to is not None and step > up_to):
                continue
            if self.run.grid is not None:
                data.extras = grid_extras(data.extras, self.run.grid)
            row, positions, velocities, forces = step_row(step, data, self.masses)
            self.log_degree(step, row["symmetrize_degree"])
            self.run.rundir.append_thermo(row)
            if step % self.run.stride == 0:
                self.run.rundir.append_frame(step, row["time_fs"], positions, velocities, forces,
                                             cell=self.cell, pbc=self.run.periodic)
            # inner steps: one per row, K per row of mts:K; the first row (step 0) is the
            # start, not a step (so a segment of N steps counts N, as in the ASE engine)
            increment = step - self.last if self.last >= 0 else 0
            self.new_steps += increment
            self.last = step
            _report(self.progress, step, self.run.total, increment)
            self.reason = self.run.monitor.check(positions, self.cell, row["potential_eV"],
                                                 forces, row["temperature_K"])
            if self.reason:
                self.time_to_failure_fs = row["time_fs"]
        return self.reason is None

    def log_degree(self, step: int, degree: float) -> None:
        """o3:auto: the degree the clients chose, logged at the first row it appears in
        (the clients' own log stays in their process; this is what drove the run)."""
        if self.degree_log is None or not np.isfinite(degree):
            return
        previous = self.degree_log[-1]["degree"] if self.degree_log else None
        if degree != previous:
            self.degree_log.append({"step": int(step), "degree": int(degree), "previous": previous})

    def cut_back(self, step: int):
        """Forget what was written after ``step`` (it will be written again)."""
        self.run.rundir.truncate_after(step)
        self.last = last_step(self.run.rundir)


def last_whole_step(rundir: RunDirectory, stride: int) -> int:
    """The last step written whole: a row at a frame step is not when a kill came
    between the row and its frame (the row is written first)."""
    last = last_step(rundir)
    if last >= 0 and last % stride == 0:
        frames = complete_frames(rundir.trajectory)
        if not frames or frames[-1][2] != last:
            return last - 1
    return last


def last_step(rundir: RunDirectory) -> int:
    steps = rundir.read_thermo()["step"]
    return int(steps.max()) if len(steps) else -1


def _report(progress, step, total, increment=1):
    if progress is None:
        return
    if hasattr(progress, "update"):
        progress.update(increment)
    else:
        progress(step, total)
