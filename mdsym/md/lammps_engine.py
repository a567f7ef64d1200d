"""The LAMMPS engine of ``mdsym run``: LAMMPS integrates, mdsym's model computes the forces.

``run_lammps`` writes LAMMPS' input into ``RUN/lammps/`` (``mdsym.md.lammps_input``),
drives LAMMPS from its Python module in this process, and answers each of its force
calls (``fix external pf/callback``) with the run's ``SymmetrizedModel``: forces,
energy and, for periodic systems, the virial. mdsym issues one ``run 1`` per step and
writes every step's thermo.csv row (``mdsym.md.thermo.thermo_row``, as the ASE and i-PI
engines do), a frame and a checkpoint every ``stride`` steps; LAMMPS writes its own
``log.lammps`` and dump beside them (``log.K.lammps``, ``dump.K.lammpstrj`` for the
K-th resumed segment).

Resume: at every frame LAMMPS writes a restart file (``write_restart``) and mdsym the
step and the energy the thermostat had exchanged (``restart.json``); ``--resume``
reads that restart in a fresh LAMMPS, drops the rows and frames after its step, and
continues. The thermostat's random stream is seeded by the step a segment starts at,
as in the ASE engine; a segment of N new steps counts N.

The conserved quantity is ``E_pot + E_kin + ecouple`` (LAMMPS' ``econserve``; ecouple
is the energy the thermostat took out). This is a single-process coupling: for
domain-decomposed LAMMPS at scale, export the model (``pair_style metatomic``).
"""

import json
import os
import time

import numpy as np
from ase import units

from mdsym.core.errors import MdsymError
from mdsym.core.system import System, read_structure
from mdsym.md.ase_engine import initial_velocities
from mdsym.md.context import RunContext
from mdsym.md.lammps_input import (
    THERMOSTAT_FIXES,
    check_structure,
    input_text,
    load_lammps,
    shift_of,
    write_data,
)
from mdsym.md.observers import StopRun
from mdsym.md.rundir import RunDirectory
from mdsym.md.thermo import VELOCITY_TO_A_PS, thermo_row
from mdsym.models.base import NonFiniteOutput

RESTART, STATE = "restart.lammps", "restart.json"


class ForceField:
    """The callback of ``fix external``: the model's forces, energy and virial at
    LAMMPS' positions (ids sorted, the isolated shift taken off)."""

    def __init__(self, lmp, symmetrized, atoms, shift):
        self.lmp, self.symmetrized, self.atoms, self.shift = lmp, symmetrized, atoms, shift
        self.periodic = bool(atoms.pbc.all())
        self.results, self.error = None, None

    def positions(self) -> np.ndarray:
        """Unwrapped positions in mdsym's frame, by atom id."""
        x = np.array(self.lmp.gather_atoms("x", 1, 3), dtype=np.float64).reshape(-1, 3)
        if self.periodic:
            image = np.array(self.lmp.gather_atoms("image", 0, 3), dtype=np.float64).reshape(-1, 3)
            return x + image @ self.atoms.cell.array
        return x - self.shift

    def __call__(self, caller, step, nlocal, tag, x, f):
        """LAMMPS ignores what a callback raises: it is kept and raised after the step."""
        try:
            self.compute(tag, f)
        except BaseException as error:  # noqa: BLE001 (re-raised by ``check``)
            self.error = error
            f[:] = 0.0

    def check(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def compute(self, tag, f):
        order = np.argsort(np.asarray(tag))
        system = System.from_atoms(self.atoms_at(self.positions()))
        wanted = ("energy", "forces", "stress") if self.periodic and self.symmetrized.has_stress \
            else ("energy", "forces")
        results = self.symmetrized(system, wanted)
        f[order] = results["forces"]
        self.lmp.fix_external_set_energy_global("mdsym", float(results["energy"]))
        if "stress" in results:
            s = 0.5 * (results["stress"] + results["stress"].T) * -self.atoms.get_volume()
            self.lmp.fix_external_set_virial_global(
                "mdsym", [s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]])
        self.results = results

    def atoms_at(self, positions):
        atoms = self.atoms.copy()
        atoms.positions = positions
        return atoms


def start_lammps(context, rundir, resume, start_step, velocities):
    """LAMMPS with the run's input (``in.lammps``, or ``resume.K.lammps``) loaded."""
    lammps = load_lammps()
    config = context.config
    folder = rundir.path / "lammps"
    folder.mkdir(exist_ok=True)
    atoms = read_structure(rundir.structure)
    check_structure(atoms)
    segment = len(list(folder.glob("resume.*.lammps"))) + 1 if resume else 0
    suffix = f".{segment}" if segment else ""
    if resume:
        start, name = f"read_restart {RESTART}", f"resume{suffix}.lammps"
    else:
        write_data(folder / "data.lammps", atoms, velocities)
        start, name = "read_data data.lammps", "in.lammps"
    text = input_text(config, atoms, start, config.seed + start_step, f"log{suffix}.lammps",
                      f"dump{suffix}.lammpstrj", append=False)
    (folder / name).write_text(text)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.file(name)
    except Exception as error:
        lmp.close()
        raise MdsymError(f"LAMMPS refused {folder / name}: {str(error).splitlines()[0]}") from None
    return lmp, atoms, folder


def start_state(context, rundir, resume):
    """``(start step, exchanged energy before this segment, velocities, notes)``."""
    notes = []
    if not resume:
        atoms = read_structure(rundir.structure)
        initial_velocities(atoms, context.config.temperature_K, context.config.seed)
        velocities = atoms.get_velocities()
        return 0, 0.0, np.zeros((len(atoms), 3)) if velocities is None else velocities, notes
    path = rundir.path / "lammps" / STATE
    if not path.exists():
        raise MdsymError(f"{rundir.path} has no lammps/{STATE} to resume from")
    state = json.loads(path.read_text())
    start_step = int(state["step"])
    last_row = rundir.truncate_after(start_step)
    if last_row != start_step:
        notes.append(f"thermo.csv's row of step {start_step} was cut off (last whole row: "
                     f"{last_row}): written again from the checkpoint")
    return start_step, float(state["exchanged_eV"]), None, notes


class Stepper:
    """One LAMMPS step at a time: its thermo row, frames, checkpoints and monitors."""

    def __init__(self, context, rundir, lmp, forcefield, start_step, exchanged, monitor, progress):
        self.context, self.config, self.rundir, self.lmp = context, context.config, rundir, lmp
        self.forcefield, self.step, self.offset = forcefield, start_step, exchanged
        self.per_run_tally = self.config.ensemble == "nvt" and self.config.thermostat == "langevin"
        self.tally = 0.0
        self.monitor, self.progress = monitor, progress
        self.masses = forcefield.atoms.get_masses()
        self.folder = rundir.path / "lammps"

    def state(self):
        """Positions (Angstrom) and velocities (ASE units) by id, exchanged energy (eV)."""
        v = np.array(self.lmp.gather_atoms("v", 1, 3), dtype=np.float64).reshape(-1, 3)
        return self.forcefield.positions(), v / VELOCITY_TO_A_PS, self.exchanged()

    def exchanged(self) -> float:
        """The energy the thermostat put in since the run began (eV): minus LAMMPS'
        ``ecouple``. ``fix temp/csvr`` tallies over the whole simulation; ``fix langevin
        ... tally yes`` over each ``run`` command (measured: its per-run tallies of
        ``run 1`` steps add up to the tally of one long run), so those are summed."""
        ecouple = self.lmp.get_thermo("ecouple")
        if self.per_run_tally:
            self.tally += ecouple
            return self.offset - self.tally
        return self.offset - ecouple

    def record(self, write_row=True):
        positions, velocities, exchanged = self.state()
        results = self.forcefield.results
        kinetic = 0.5 * float(self.masses @ (velocities * velocities).sum(axis=1))
        potential = float(results["energy"])
        degree = self.forcefield.symmetrized.degree
        row = thermo_row(self.step, self.step * self.config.timestep_fs, potential, kinetic,
                         potential + kinetic - exchanged, 2 * kinetic / (3 * len(self.masses) * units.kB),
                         positions, velocities, results["forces"], self.masses,
                         energy_rot_std_eV=results.get("energy_rot_std", 0.0),
                         forces_rot_std_eVA=float(np.sqrt(np.mean(results["forces_rot_std"] ** 2))),
                         symmetrize_degree=degree if degree is not None else float("nan"))
        if write_row:
            self.rundir.append_thermo(row)
        atoms = self.forcefield.atoms
        reason = self.monitor.check(positions, atoms.cell.array, potential, results["forces"],
                                    row["temperature_K"])
        if reason:
            raise StopRun(reason, row["time_fs"])
        return row, positions, velocities, exchanged

    def checkpoint(self, row, positions, velocities, exchanged):
        atoms = self.forcefield.atoms
        self.rundir.append_frame(self.step, row["time_fs"], positions, velocities,
                                 self.forcefield.results["forces"], atoms.cell.array, bool(atoms.pbc.all()))
        self.lmp.command(f"write_restart {self.folder / RESTART}")
        (self.folder / STATE).write_text(json.dumps({"step": self.step, "exchanged_eV": exchanged}))

    def advance(self):
        self.lmp.command("run 1 pre no post no")
        self.forcefield.check()
        self.step += 1
        row, positions, velocities, exchanged = self.record()
        if self.step % self.config.stride == 0 or self.step == self.config.steps:
            self.checkpoint(row, positions, velocities, exchanged)
        if self.progress is not None:
            self.progress(self.step, self.config.steps)


def run_lammps(context: RunContext, rundir: RunDirectory, resume: bool = False, progress=None) -> dict:
    """Run (or continue) MD in LAMMPS; returns the segment's status for run.json."""
    context = RunContext.of(context, "lammps")
    rundir = RunDirectory(rundir.path.resolve())
    start_step, exchanged, velocities, notes = start_state(context, rundir, resume)
    (rundir.path / "lammps").mkdir(exist_ok=True)
    here = os.getcwd()
    os.chdir(rundir.path / "lammps")  # LAMMPS opens the input's files (dump, log) where it runs
    try:
        return run_in_lammps(context, rundir, resume, start_step, exchanged, velocities, notes, progress)
    finally:
        os.chdir(here)


def run_in_lammps(context, rundir, resume, start_step, exchanged, velocities, notes, progress) -> dict:
    config = context.config
    lmp, atoms, folder = start_lammps(context, rundir, resume, start_step, velocities)
    symmetrized = context.calculator(config.seed + start_step).symmetrizer
    forcefield = ForceField(lmp, symmetrized, atoms, shift_of(atoms))
    lmp.set_fix_external_callback("mdsym", forcefield)
    monitor = context.monitor(atoms, config.temperature_K or None)
    stepper = Stepper(context, rundir, lmp, forcefield, start_step, exchanged, monitor, progress)
    result = {"status": "running", "reason": None, "time_to_failure_fs": None, "start_step": start_step,
              "device": str(context.model.device), "notes": notes, "lammps": lammps_record(lmp, config)}
    started, done = time.monotonic(), 0
    try:
        lmp.command("run 0 post no")  # the forces of the first step
        forcefield.check()
        # continuity of the exchanged energy: a restart restores temp/csvr's tally
        stepper.offset = exchanged + (0.0 if stepper.per_run_tally else lmp.get_thermo("ecouple"))
        row, *state = stepper.record(write_row=not resume or bool(notes))
        if not resume:
            stepper.checkpoint(row, *state)
        monitor.reference_temperature = monitor.reference_temperature or row["temperature_K"]
        while stepper.step < config.steps:
            stepper.advance()
            done += 1
        result["status"] = "completed"
    except StopRun as stop:
        result.update(status="failed", reason=stop.reason, time_to_failure_fs=stop.time_fs)
    except NonFiniteOutput as error:
        result.update(status="failed", reason=str(error),
                      time_to_failure_fs=stepper.step * config.timestep_fs)
    except KeyboardInterrupt:
        result.update(status="interrupted", reason="interrupted by the user")
    finally:
        lmp.close()
    wall = time.monotonic() - started
    if config.symmetrize.mode == "auto":
        result["degree_log"] = list(symmetrized.degree_log)
    result.update(steps_done=stepper.step, new_steps=done, wall_time_s=wall,
                  steps_per_s=done / wall if wall > 0 and done else None)
    return result


def lammps_record(lmp, config) -> dict:
    """What run.json records of LAMMPS: its version, the fixes that integrate."""
    fixes = ["nve"] + ([THERMOSTAT_FIXES[config.thermostat]] if config.ensemble == "nvt" else [])
    return {"version": int(lmp.version()), "integrator": fixes, "input": "lammps/in.lammps",
            "units": "metal", "coupling": "fix external pf/callback (single process)"}
