"""Molecular dynamics in-process with ASE's own integrators.

- ``nve``: ``ase.md.verlet.VelocityVerlet``;
- ``nvt`` + ``svr``: ``ase.md.bussi.Bussi`` (stochastic velocity rescaling); the energy
  it exchanges is ASE's ``transferred_energy``;
- ``nvt`` + ``langevin``: ``ase.md.langevinbaoab.LangevinBAOAB``; the energy its
  Ornstein-Uhlenbeck step exchanges is tracked here (ASE does not).

Under ``--symmetrize mts:K+...`` the integrator is mdsym's
``mdsym.md.mts.MultipleTimeStepVerlet`` (ASE has no RESPA), with the NVT
thermostat at the outer level.

The conserved quantity written to thermo.csv is ``E_pot + E_kin - exchanged``
(under ``mts:K``, see ``mdsym.md.mts`` for which energy: on rows with
``step % K == 0`` the symmetrized model's total energy).
Every step is a thermo row; every ``stride`` steps a frame and a full-precision
checkpoint (``checkpoint.traj``, with momenta and the thermostat's bookkeeping)
from which ``resume`` continues.
"""

import time

import numpy as np
from ase import units
from ase.md.bussi import Bussi
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.velocitydistribution import Stationary, ZeroRotation, force_temperature, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from mdsym.core.system import System, read_structure
from mdsym.md.checkpoint import read_checkpoint
from mdsym.md.config import RunConfig
from mdsym.md.context import RunContext
from mdsym.md.mts import MultipleTimeStepVerlet
from mdsym.md.observers import (
    CheckpointWriter,
    DegreeLogger,
    FrameWriter,
    ProgressReporter,
    StabilityCheck,
    StepRecord,
    StopRun,
    ThermoWriter,
)
from mdsym.md.rundir import RunDirectory
from mdsym.models.base import NonFiniteOutput
from mdsym.serving.ase_calculator import MdsymCalculator
from mdsym.symmetry.symmetrized import SymmetrizedModel


class TrackedLangevinBAOAB(LangevinBAOAB):
    """LangevinBAOAB that adds up the kinetic energy its thermostat step exchanges."""

    transferred_energy = 0.0

    def _BAOAB_OU(self, drag_gamma_mod=0.0):
        before = self.atoms.get_kinetic_energy()
        super()._BAOAB_OU(drag_gamma_mod)
        self.transferred_energy += self.atoms.get_kinetic_energy() - before


def initial_velocities(atoms, temperature_K, seed) -> None:
    """Maxwell-Boltzmann at ``temperature_K``, no net momentum (nor rotation if isolated)."""
    if atoms.has("momenta") and np.any(atoms.get_momenta()):
        return  # the structure brings its own velocities
    if not temperature_K:
        return
    thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    # Stationary/ZeroRotation lower the temperature: restore the requested one
    force_temperature(atoms, temperature_K)


def make_integrator(atoms, config: RunConfig, seed, mts=None):
    """ASE's integrator for the ensemble, or under ``mts:K`` mdsym's
    ``MultipleTimeStepVerlet`` with the thermostat, built for a time step of
    ``K dt / 2``, at the outer level; ``mts`` holds its keyword arguments."""
    dt = config.timestep_fs * units.fs
    if mts is not None:
        thermostat = None
        if config.ensemble == "nvt":
            outer = make_thermostat(atoms, config, mts["interval"] * dt / 2, seed)
            thermostat = outer.scale_velocities if isinstance(outer, Bussi) else outer._BAOAB_OU
        return MultipleTimeStepVerlet(atoms, dt, thermostat=thermostat, **mts)
    if config.ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    return make_thermostat(atoms, config, dt, seed)


def make_thermostat(atoms, config: RunConfig, dt, seed):
    """The NVT integrator of ``config`` (its velocity update serves MTS too)."""
    tau = config.thermostat_tau_fs * units.fs
    rng = np.random.default_rng(seed)
    if config.thermostat == "svr":
        return Bussi(atoms, dt, temperature_K=config.temperature_K, taut=tau, rng=rng)
    return TrackedLangevinBAOAB(atoms, dt, temperature_K=config.temperature_K, T_tau=tau, rng=rng)


def run_ase(context: RunContext, rundir: RunDirectory, resume: bool = False, progress=None) -> dict:
    """Run (or continue) MD in-process; returns the segment's status for run.json.
    ``context``: the run's ``RunContext`` (or its configuration, to build one)."""
    context = RunContext.of(context, "ase")
    config = context.config
    initial = read_structure(rundir.structure)  # read once: the start and the bonds' reference
    atoms, start_step, exchanged, held, notes = start_state(context, rundir, resume, initial)
    # the random streams of a resumed segment are seeded by the step it starts at
    segment_seed = config.seed + start_step
    dynamics, symmetrized, results = integrator(context, atoms, start_step, held, segment_seed)
    dynamics.transferred_energy = exchanged
    result = {"status": "running", "reason": None, "time_to_failure_fs": None,
              "start_step": start_step, "device": str(context.model.device), "notes": notes}
    record = StepRecord(dynamics, start_step, config.timestep_fs, resume, symmetrized, results,
                        first_row_missing=bool(notes))
    # bonds are judged against the run's initial structure (structure.xyz), also after a resume
    monitor = context.monitor(initial, config.temperature_K or atoms.get_temperature())
    observers = [record, ThermoWriter(record, rundir),
                 FrameWriter(record, rundir, config.stride, config.steps),
                 CheckpointWriter(record, rundir, config.stride, config.steps, config.symmetrize.mts_interval > 0),
                 ProgressReporter(record, progress, config.steps)]
    if config.symmetrize.mode == "auto":
        result["degree_log"] = []  # o3:auto's choices, with the step they were made at
        observers.append(DegreeLogger(record, result["degree_log"]))
    observers.append(StabilityCheck(record, monitor))
    for observer in observers:
        dynamics.attach(observer, interval=1)
    started = time.monotonic()
    try:
        steps_to_run = config.steps - start_step
        if steps_to_run > 0:
            dynamics.run(steps_to_run)
        else:
            dynamics.call_observers()
        result["status"] = "completed"
    except StopRun as stop:
        result.update(status="failed", reason=stop.reason, time_to_failure_fs=stop.time_fs)
    except NonFiniteOutput as error:
        step = start_step + dynamics.nsteps
        result.update(status="failed", reason=str(error), time_to_failure_fs=step * config.timestep_fs)
    except KeyboardInterrupt:
        result.update(status="interrupted", reason="interrupted by the user")
    wall = time.monotonic() - started
    done = dynamics.nsteps
    result.update(steps_done=start_step + done, new_steps=done, wall_time_s=wall,
                  steps_per_s=done / wall if wall > 0 and done else None)
    return result


def start_state(context: RunContext, rundir: RunDirectory, resume: bool, initial):
    """``(atoms, start step, exchanged energy, held MTS correction, notes)``: the
    checkpoint's (the rows and frames after it dropped), or the run's structure with
    initial velocities. A note says when the checkpoint's own row was cut off (it is
    written again from the checkpoint)."""
    notes = []
    if resume:
        atoms, start_step, exchanged, held = read_checkpoint(rundir)
        last_row = rundir.truncate_after(start_step)
        if last_row != start_step:
            notes.append(f"thermo.csv's row of step {start_step} was cut off (last whole row: "
                         f"{last_row}): written again from the checkpoint")
            if last_row is not None and last_row < start_step - 1:
                notes.append(f"thermo.csv lacks the rows of steps {last_row + 1} to {start_step - 1}: "
                             "the file was cut further back than a kill leaves it")
    else:
        atoms, start_step, exchanged, held = initial.copy(), 0, 0.0, None
        initial_velocities(atoms, context.config.temperature_K, context.config.seed)
    context.model.check_system(System.from_atoms(atoms))
    return atoms, start_step, exchanged, held, notes


def integrator(context: RunContext, atoms, start_step: int, held, seed: int):
    """``(dynamics, symmetrized model behind the forces, results of the current step)``:
    ASE's integrator with the run's calculator, or under ``mts:K`` mdsym's RESPA with the
    raw (or direct) model inside and the symmetrized (or conservative) one outside."""
    config = context.config
    spec, batch_size = config.symmetrize, config.batch_size
    if not spec.mts_interval:
        atoms.calc = context.calculator(seed)
        dynamics = make_integrator(atoms, config, seed)
        return dynamics, atoms.calc.symmetrizer, lambda: atoms.calc.results
    # direct forces inside, conservative ones (the context's model) outside
    inner = context.direct_model if spec.mts_direct else context.model
    atoms.calc = MdsymCalculator(inner, spec.inner(), batch_size=batch_size, seed=seed)
    mts = {"symmetrizer": SymmetrizedModel(context.model, spec.outer(), batch_size=batch_size, seed=seed),
           "interval": spec.mts_interval, "phase": start_step % spec.mts_interval, "correction": held}
    dynamics = make_integrator(atoms, config, seed, mts)
    return dynamics, dynamics.symmetrizer, dynamics.reported_results
