"""Molecular dynamics in-process with ASE's own integrators.

- ``nve``: ``ase.md.verlet.VelocityVerlet``;
- ``nvt`` + ``svr``: ``ase.md.bussi.Bussi`` (stochastic velocity rescaling); the energy
  it exchanges is ASE's ``transferred_energy``;
- ``nvt`` + ``langevin``: ``ase.md.langevinbaoab.LangevinBAOAB``; the energy its
  Ornstein-Uhlenbeck step exchanges is tracked here (ASE does not).

Under ``--symmetrize mts:K+...`` the integrator is mdsym's
``mdsym.engines.mts.MultipleTimeStepVerlet`` (ASE has no RESPA), with the NVT
thermostat at the outer level.

The conserved quantity written to thermo.csv is ``E_pot + E_kin - exchanged``
(under ``mts:K``, see ``mdsym.engines.mts`` for which energy: on rows with
``step % K == 0`` the symmetrized model's total energy).
Every step is a thermo row; every ``stride`` steps a frame and a full-precision
checkpoint (``checkpoint.traj``, with momenta and the thermostat's bookkeeping)
from which ``resume`` continues.
"""

import time

import ase.io
import numpy as np
from ase import units
from ase.md.bussi import Bussi
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.velocitydistribution import Stationary, ZeroRotation, force_temperature, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from ..calculator import MdsymCalculator
from ..errors import MdsymError
from ..models.base import NonFiniteOutput
from ..rundir import RunDirectory, mechanics
from ..run_config import RunConfig
from ..symmetrize import Symmetrizer
from ..system import System, read_structure
from .context import RunContext
from .mts import MultipleTimeStepVerlet

#: ASE's binary trajectory format keeps positions and momenta bit for bit (extxyz rounds
#: to 8 decimals, so a resumed run would drift from an uninterrupted one at 1e-8).
CHECKPOINT = "checkpoint.traj"
OLD_CHECKPOINT = "checkpoint.extxyz"  # written by earlier versions: still read
# the correction an MTS run holds between outer steps, kept in the checkpoint's info
MTS_ENERGY, MTS_FORCES = "mts_correction_energy_eV", "mts_correction_forces"


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
    total, stride, seed = config.steps, config.stride, config.seed
    if resume:
        atoms, start_step, exchanged = read_checkpoint(rundir)
        forces = atoms.info.pop(MTS_FORCES, None)  # .traj checkpoints
        if forces is None:
            forces = atoms.arrays.pop(MTS_FORCES, None)  # extxyz checkpoints of earlier versions
        held = {"energy": atoms.info.pop(MTS_ENERGY, None), "forces": forces}
        rundir.truncate_after(start_step)
    else:
        atoms = read_structure(rundir.structure)
        start_step, exchanged, held = 0, 0.0, {"energy": None}
        initial_velocities(atoms, config.temperature_K, seed)

    model = context.model
    model.check_system(System.from_atoms(atoms))
    # the random streams of a resumed segment are seeded by the step it starts at
    segment_seed = seed + start_step
    spec, batch_size = config.symmetrize, config.batch_size
    mts = None
    if spec.mts_interval:  # the raw model drives every step, the symmetrizer corrects
        inner, outer = model, model
        if spec.mts_direct:  # direct forces inside, conservative ones (the context's) outside
            inner = context.direct_model
        atoms.calc = MdsymCalculator(inner, spec.inner(), batch_size=batch_size, seed=segment_seed)
        mts = {"symmetrizer": Symmetrizer(outer, spec.outer(), batch_size=batch_size, seed=segment_seed),
               "interval": spec.mts_interval, "phase": start_step % spec.mts_interval,
               "correction": held if held["energy"] is not None else None}
    else:
        atoms.calc = context.calculator(segment_seed)
    dynamics = make_integrator(atoms, config, segment_seed, mts)
    symmetrizer = dynamics.symmetrizer if mts else atoms.calc.symmetrizer
    dynamics.transferred_energy = exchanged
    reference_temperature = config.temperature_K or atoms.get_temperature()
    # bonds are judged against the run's initial structure, also after a resume
    monitor = context.monitor(read_structure(rundir.structure), reference_temperature)
    masses = atoms.get_masses()
    dt_fs = config.timestep_fs
    result = {"status": "running", "reason": None, "time_to_failure_fs": None, "start_step": start_step,
              "device": str(model.device)}
    if spec.mode == "auto":
        result["degree_log"] = []  # o3:auto's choices, with the step they were made at
    started = time.monotonic()

    class StopRun(Exception):
        pass

    def record():
        step = start_step + dynamics.nsteps
        if step == start_step and resume:
            return  # already written by the segment before
        results = dynamics.reported_results() if mts else atoms.calc.results
        potential = results["energy"]
        forces = results["forces"]
        kinetic = atoms.get_kinetic_energy()
        temperature = atoms.get_temperature()
        row = {
            "step": step, "time_fs": step * dt_fs, "potential_eV": potential,
            "kinetic_eV": kinetic, "conserved_eV": potential + kinetic - dynamics.transferred_energy,
            "temperature_K": temperature,
            "energy_rot_std_eV": results.get("energy_rot_std", 0.0),
            "forces_rot_std_eVA": float(np.sqrt(np.mean(results["forces_rot_std"] ** 2))),
            "symmetrize_degree": symmetrizer.degree if symmetrizer.degree is not None else float("nan"),
        }
        if "degree_log" in result:
            for entry in symmetrizer.degree_log[len(result["degree_log"]):]:
                result["degree_log"].append({"step": step, **entry})
        row.update(mechanics(atoms.positions, atoms.get_velocities(), forces, masses))
        rundir.append_thermo(row)
        if step % stride == 0 or step == total:
            rundir.append_frame(step, row["time_fs"], atoms.positions, atoms.get_velocities(),
                                forces, atoms.cell.array, bool(atoms.pbc.all()))
            write_checkpoint(rundir, atoms, step, dynamics.transferred_energy,
                             dynamics.state() if mts else None)
        if progress is not None and step > start_step:
            progress(step, total)
        reason = monitor.check(atoms.positions, atoms.cell.array, potential, forces, temperature)
        if reason:
            result.update(status="failed", reason=reason, time_to_failure_fs=row["time_fs"])
            raise StopRun

    dynamics.attach(record, interval=1)
    steps_to_run = total - start_step
    try:
        if steps_to_run > 0:
            dynamics.run(steps_to_run)
        else:
            record()
        result["status"] = "completed"
    except StopRun:
        pass
    except NonFiniteOutput as error:
        step = start_step + dynamics.nsteps
        result.update(status="failed", reason=str(error), time_to_failure_fs=step * dt_fs)
    except KeyboardInterrupt:
        result.update(status="interrupted", reason="interrupted by the user")
    wall = time.monotonic() - started
    done = dynamics.nsteps
    result.update(steps_done=start_step + done, new_steps=done, wall_time_s=wall,
                  steps_per_s=done / wall if wall > 0 and done else None)
    return result


def write_checkpoint(rundir: RunDirectory, atoms, step: int, exchanged: float, mts_state=None) -> None:
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


def read_checkpoint(rundir: RunDirectory):
    path = rundir.path / CHECKPOINT
    if not path.exists() and (rundir.path / OLD_CHECKPOINT).exists():
        path = rundir.path / OLD_CHECKPOINT
    if not path.exists():
        raise MdsymError(f"{rundir.path} has no {CHECKPOINT} to resume from")
    try:
        atoms = ase.io.read(path)
    except Exception as error:
        raise MdsymError(f"cannot read {path}: {error}") from None
    return atoms, int(atoms.info["step"]), float(atoms.info.get("transferred_energy_eV", 0.0))
