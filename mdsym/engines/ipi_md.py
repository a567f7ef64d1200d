"""The i-PI engine of ``mdsym run``: i-PI integrates, ``mdsym serve`` clients compute forces.

``run_ipi`` builds i-PI's input (``mdsym.ipi.input``), starts ``i-pi`` in
``RUN/ipi/`` with ``drivers`` ``mdsym serve`` clients (``mdsym.ipi.supervisor``;
unix socket by default, TCP on request), follows i-PI's output files as they grow
(``mdsym.ipi.outputs``) and turns them into the run directory as they appear: one
``thermo.csv`` row per step, one ``trajectory.trr`` frame every ``stride`` steps.
With ``beads`` > 1 (path-integral MD) i-PI sends every bead's forces as a separate
request and spreads them over its clients; the run directory holds the centroid.
More clients can join from other hosts over TCP (``mdsym serve --address HOST
--port P``, README).

Segments. i-PI writes, per segment ``K`` (one per start, resume or recovery),
``RUN/ipi/segK.*`` (``mdsym.ipi.input.output_files``), its log ``segK.ipi.log``
and one log per client, ``segK.serve{k}.log``. ``--resume`` restarts i-PI from the
newest checkpoint, first converting what the previous segment wrote up to it and
cutting the run directory back to it (no step twice). The same happens within a
run when i-PI stalls because a client was lost (``supervisor.IpiProcesses.problem``):
i-PI is stopped (it checkpoints the last step) and continues from there with the
clients left; ``restarts`` in the result says when and why.

Monitors (``mdsym.monitors``) are enforced here, on each step as it is converted:
non-finite energy or forces, temperature above ``max_temperature_factor`` times the
target, two atoms closer than ``min_distance_A``, bonds of a molecule broken or
formed. ``mdsym serve`` itself fails (and the run with
it) when the model returns NaN/inf. The run stops at the first trip: every step
up to it is in the run directory, and ``status``/``reason``/``time_to_failure_fs``
say what happened.
"""

import os
import secrets
import socket as sockets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units

from ..errors import MdsymError
from ..ipi import input as ipi_input
from ..ipi import protocol as p
from ..ipi.client import DEFAULT_SOCKETS_PREFIX, unix_path
from ..ipi.outputs import SegmentReader
from ..ipi.supervisor import IpiProcesses, last_line, terminate_as_interrupt
from ..monitors import StabilityMonitor
from ..processes import command_for, mdsym_command
from ..rundir import RunDirectory, mechanics
from ..run_config import RunConfig
from .context import RunContext

#: hosts on which i-PI listens on every interface; local clients connect to localhost
EVERY_INTERFACE = ("", "0.0.0.0", "::")


def ipi_version() -> str:
    try:
        from importlib.metadata import version

        return version("ipi")
    except Exception:
        return "unknown"


def initial_velocities(atoms, temperature_K, seed) -> np.ndarray:
    """The velocities the ASE engine would start from (``ase_md.initial_velocities``):
    the structure's own if it has any, else Maxwell-Boltzmann at ``temperature_K``
    from ``seed``, without net momentum (nor rotation if isolated)."""
    from .ase_md import initial_velocities as start_velocities

    copy = atoms.copy()
    start_velocities(copy, temperature_K, seed)
    velocities = copy.get_velocities()
    return np.zeros((len(atoms), 3)) if velocities is None else velocities


# --- the socket ------------------------------------------------------------------------


def check_unix_socket(name: str, prefix: str = DEFAULT_SOCKETS_PREFIX) -> str:
    path = unix_path(name, prefix)
    if os.path.exists(path):
        raise MdsymError(
            f"the unix socket {path} is in use (another i-PI run, or a stale file from a "
            "killed one: remove it if no i-PI is running)"
        )
    return path


def check_port(port: int, address: str = "localhost") -> int:
    """``port`` if free (a free one if ``None``), else one clear line."""
    with sockets.socket(sockets.AF_INET, sockets.SOCK_STREAM) as probe:
        try:
            probe.bind((address, int(port or 0)))
        except OSError as error:
            raise MdsymError(f"TCP port {port} on {address} is in use ({error.strerror})") from None
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Socket:
    """Where i-PI listens (``mode`` unix: ``address`` is the socket's name; inet: the
    host, with ``port``) and how the local clients reach it."""

    mode: str
    address: str
    port: int = None
    file: str = None  # the unix socket file, removed when the run ends

    @classmethod
    def open(cls, config: RunConfig) -> "Socket":
        """The run's socket, checked free now (one clear line if not)."""
        if config.socket == "unix":
            name = config.address or f"mdsym-{os.getpid()}-{secrets.token_hex(4)}"
            return cls("unix", name, None, check_unix_socket(name))
        address = config.address or "localhost"
        return cls("inet", address, check_port(config.port, address))

    def client_args(self) -> list:
        if self.mode == "unix":
            return ["--unix", self.address]
        host = "localhost" if self.address in EVERY_INTERFACE else self.address
        return ["--address", host, "--port", str(self.port)]

    def forcefield(self, pbc: bool, latency: float):
        return ipi_input.socket("mdsym", self.mode, self.address, self.port, pbc=pbc,
                                latency=latency)

    def details(self) -> dict:
        return {"socket": self.mode, "address": self.address, "port": self.port}


def serve_command(config: RunConfig, structure, socket: Socket) -> list:
    """The ``mdsym serve`` client of a run on ``structure`` (the run's structure.xyz)."""
    model = config.model
    if Path(model).exists():  # the client runs in RUN/ipi: make file paths absolute
        model = str(Path(model).resolve())
    command = [
        *mdsym_command(), "serve",
        "--model", model, "--structure", str(Path(structure).resolve()),
        "--symmetrize", client_symmetrize(config), "--forces", config.forces,
        "--seed", str(config.seed), "--wait", "120", "--threads", config.threads,
        "--device", config.device,
    ]
    if config.dtype is not None:
        command += ["--dtype", config.dtype]
    if config.batch_size is not None:
        command += ["--batch-size", str(config.batch_size)]
    return command + socket.client_args()


def client_symmetrize(config: RunConfig) -> str:
    """What each client averages: the spec, or nothing when i-PI averages
    (``--average-in ipi``: every client evaluates one rotation per request)."""
    return "none" if config.average_in == "ipi" else str(config.symmetrize)


def rotation_grid(config: RunConfig):
    """The ``<ffrotations>`` grid when i-PI averages (``mdsym.ipi.input.RotationGrid``),
    else None."""
    return ipi_input.RotationGrid.for_spec(config.symmetrize) if config.average_in == "ipi" else None


# --- the run -----------------------------------------------------------------------------


@dataclass
class IpiRun:
    """Everything a segment needs, checked before anything starts."""

    config: RunConfig
    rundir: RunDirectory
    atoms: object
    periodic: bool
    monitor: StabilityMonitor
    socket: Socket
    extras: bool  # the rotational std comes back (from mdsym serve, or i-PI's grid energies)
    grid: object = None  # i-PI's <ffrotations> grid (--average-in ipi), else None

    @property
    def workdir(self) -> Path:
        return self.rundir.path / "ipi"

    total = property(lambda self: self.config.steps)
    stride = property(lambda self: self.config.stride)
    drivers = property(lambda self: self.config.drivers)

    @classmethod
    def prepare(cls, context: RunContext, rundir: RunDirectory) -> "IpiRun":
        """``context`` has checked the model on the system; the model itself runs in
        the ``mdsym serve`` clients."""
        from ..system import read_structure

        config = context.config
        atoms = read_structure(rundir.structure)  # where the ASE engine would start too
        # the same monitors as the ASE engine, bonds judged against the initial structure
        monitor = context.monitor(atoms, config.temperature_K)
        return cls(config, rundir, atoms, context.system.periodic, monitor, Socket.open(config),
                   config.symmetrize.mode != "none", rotation_grid(config))


def dynamics(config: RunConfig) -> ipi_input.Dynamics:
    return ipi_input.Dynamics.of(config)


def first_input(run: IpiRun, prefix: str) -> str:
    velocities = initial_velocities(run.atoms, run.config.temperature_K, run.config.seed)
    forcefield = run.socket.forcefield(run.periodic, run.config.latency_s)
    extras_names = ipi_input.ROTATION_STD
    if run.grid is not None:  # i-PI averages over raw clients and returns the grid's energies
        forcefield = run.grid.forcefield(forcefield.get("name"), forcefield)
        extras_names = ipi_input.IPI_GRID_ENERGIES
    outputs = ipi_input.Outputs(prefix=prefix, extras=run.extras, extras_names=extras_names,
                                checkpoint_stride=run.config.checkpoint_stride)
    root = ipi_input.simulation(run.atoms, velocities, forcefield, run.total,
                                dynamics(run.config), outputs)
    return ipi_input.to_text(root)


def restart_input(run: IpiRun, checkpoint: Path, prefix: str) -> str:
    inner = run.socket.forcefield(run.periodic, run.config.latency_s) if run.grid else None
    root = ipi_input.restarted(checkpoint.read_text(), prefix, run.total,
                               address=run.socket.address, port=run.socket.port,
                               rotations_socket=inner)
    return ipi_input.to_text(root)


# --- steps into the run directory -----------------------------------------------------


def thermo_row(step, data, masses) -> tuple:
    """A ``thermo.csv`` row (the columns of ``mdsym.rundir``) and the frame arrays of one
    i-PI step (``mdsym.ipi.outputs.Step``), converted from atomic units here."""
    thermo, arrays = data.thermo, data.arrays
    positions = arrays["positions"] * p.BOHR
    velocities = arrays["velocities"] * p.AU_VELOCITY
    forces = arrays["forces"] * p.AU_FORCE
    row = {
        "step": int(step), "time_fs": thermo["time"] * p.AU_TIME / units.fs,
        "potential_eV": thermo["potential"] * p.HARTREE,
        "kinetic_eV": thermo["kinetic_md"] * p.HARTREE,
        "conserved_eV": thermo["conserved"] * p.HARTREE,
        "temperature_K": thermo["temperature"] * p.AU_TEMPERATURE,
        "energy_rot_std_eV": data.extras.get("energy_rot_std", float("nan")),
        "forces_rot_std_eVA": data.extras.get("forces_rot_std", float("nan")),
    }
    row.update(mechanics(positions, velocities, forces, masses))
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

    def write(self, steps, up_to=None) -> bool:
        """Write the ``[(step, Step)]`` not written yet (up to ``up_to``); False once a
        monitor has tripped."""
        for step, data in steps:
            if self.reason or step <= self.last or (up_to is not None and step > up_to):
                continue
            if self.run.grid is not None:
                data.extras = grid_extras(data.extras, self.run.grid)
            row, positions, velocities, forces = thermo_row(step, data, self.masses)
            self.run.rundir.append_thermo(row)
            if step % self.run.stride == 0:
                self.run.rundir.append_frame(step, row["time_fs"], positions, velocities, forces,
                                             cell=self.cell, pbc=self.run.periodic)
            self.last = step
            self.new_steps += 1
            _report(self.progress, step, self.run.total)
            self.reason = self.run.monitor.check(positions, self.cell, row["potential_eV"],
                                                 forces, row["temperature_K"])
            if self.reason:
                self.time_to_failure_fs = row["time_fs"]
        return self.reason is None

    def cut_back(self, step: int):
        """Forget what was written after ``step`` (it will be written again)."""
        self.run.rundir.truncate_after(step)
        self.last = last_step(self.run.rundir)


def grid_extras(extras: dict, grid) -> dict:
    """The rotational std of ``<ffrotations>``'s step (eV): the energy's from the energies
    i-PI returns for every rotation; the forces' is NaN (i-PI keeps no per-rotation
    forces)."""
    energies = extras.get(ipi_input.IPI_GRID_ENERGIES[0])
    std = float("nan") if energies is None else grid.energy_rot_std(energies) * p.HARTREE
    return {"energy_rot_std": std, "forces_rot_std": float("nan")}


def last_step(rundir: RunDirectory) -> int:
    steps = rundir.read_thermo()["step"]
    return int(steps.max()) if len(steps) else -1


def _report(progress, step, total):
    if progress is None:
        return
    if hasattr(progress, "update"):
        progress.update(1)
    else:
        progress(step, total)


# --- checkpoints and segments ------------------------------------------------------------


def latest_checkpoint(workdir: Path):
    """``(step, path)`` of i-PI's newest readable checkpoint: ``segK.RESTART`` (periodic)
    or ``RESTART`` (written when i-PI exits); ``(None, None)`` if there is none."""
    files = list(workdir.glob("seg*.RESTART")) + [workdir / "RESTART"]
    found = [(ipi_input.checkpoint_step(f), f) for f in files if f.exists()]
    found = [c for c in found if c[0] >= 0]
    return max(found, key=lambda c: c[0]) if found else (None, None)


def segments(workdir: Path) -> list:
    return sorted(int(f.name[3:].split(".")[0]) for f in workdir.glob("seg*.thermo"))


def names(run: IpiRun) -> list:
    return run.atoms.get_chemical_symbols()


def continue_from_checkpoint(run: IpiRun, writer: StepWriter, reader=None) -> tuple:
    """Write what the last segment wrote up to i-PI's newest checkpoint, cut the run
    directory back to it, and return ``(step, path)`` of the checkpoint."""
    step, path = latest_checkpoint(run.workdir)
    if step is None:
        raise MdsymError(f"cannot continue {run.rundir.path}: no i-PI checkpoint in {run.workdir}")
    done = segments(run.workdir)
    if reader is None and done:
        reader = SegmentReader(run.workdir, f"seg{done[-1]}", names(run), run.extras)
    if reader is not None and writer.last < step:
        writer.write(reader.poll(), up_to=step)
    writer.cut_back(step)
    return step, path


@dataclass
class SegmentEnd:
    """How one i-PI process ended: ``kind`` is completed, failed, stalled, stopped
    (i-PI exited before the end) or interrupted."""

    kind: str
    reason: str = None
    clients_left: int = 0
    reader: object = None


def run_segment(run: IpiRun, writer: StepWriter, segment: int, xml: str, clients: int) -> SegmentEnd:
    """Run i-PI once on ``xml`` with ``clients`` local clients, converting as it goes."""
    prefix = f"seg{segment}"
    (run.workdir / f"{prefix}.input.xml").write_text(xml)
    reader = SegmentReader(run.workdir, prefix, names(run), run.extras)
    with IpiProcesses(run.workdir, run.socket.file) as processes:
        processes.start_server(f"{prefix}.input.xml", f"{prefix}.ipi.log")
        for k in range(clients):
            processes.start_client(serve_command(run.config, run.rundir.structure, run.socket),
                                   f"{prefix}.serve{k}.log")
        end = follow(processes, reader, writer)
        end.clients_left = processes.alive_clients()
    end.reader = reader
    if end.kind == "stalled":
        writer.write(reader.poll())  # what i-PI wrote before it stopped
    return end


def follow(processes: IpiProcesses, reader: SegmentReader, writer: StepWriter) -> SegmentEnd:
    """Convert i-PI's steps as they appear until it exits, a monitor trips, or a
    problem stops it."""
    try:
        while True:
            exited = not processes.server_running()
            if not writer.write(reader.poll()):
                return SegmentEnd("failed", writer.reason)
            if exited:
                return SegmentEnd("stopped", f"(exit code {processes.server.returncode}): "
                                             f"{last_line(processes.server_log)}")
            problem = processes.problem()
            if problem and problem.kind == "failed":
                time.sleep(0.2)  # let i-PI flush what it has, then read it
                writer.write(reader.poll())
                return SegmentEnd("failed", problem.reason)
            if problem:
                return SegmentEnd("stalled", problem.reason)
            time.sleep(0.1)
    except KeyboardInterrupt:
        # Ctrl-C: the processes stop on leaving IpiProcesses; the run can be resumed
        return SegmentEnd("interrupted", "interrupted by the user")


# --- the engine --------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str = "failed"
    reason: str = None
    segment: int = 0
    restarts: list = field(default_factory=list)


def run_segments(run: IpiRun, writer: StepWriter, segment: int, xml: str) -> Outcome:
    """Segment after segment until the run ends; a stall continues from i-PI's last
    checkpoint with the clients left, as long as each continuation gets further."""
    outcome = Outcome(segment=segment)
    clients = run.drivers
    while True:
        end = run_segment(run, writer, outcome.segment, xml, clients)
        # with --drivers 0 every client is remote: their loops reconnect after a restart
        if end.kind != "stalled" or (end.clients_left == 0 and run.drivers > 0):
            return finish(outcome, end, writer, run.total)
        step, checkpoint = continue_from_checkpoint(run, writer, end.reader)
        if outcome.restarts and step <= outcome.restarts[-1]["step"]:
            outcome.reason = f"i-PI stalled twice at step {step}: {end.reason}"
            return outcome
        outcome.restarts.append({"step": step, "segment": outcome.segment,
                                 "reason": end.reason, "clients": end.clients_left})
        outcome.segment += 1
        clients = end.clients_left
        xml = restart_input(run, checkpoint, f"seg{outcome.segment}")


def finish(outcome: Outcome, end: SegmentEnd, writer: StepWriter, total: int) -> Outcome:
    if end.kind == "interrupted":
        outcome.status, outcome.reason = "interrupted", end.reason
    elif end.kind == "failed":
        outcome.reason = end.reason
    elif end.kind == "stalled":
        outcome.reason = f"i-PI stalled and no client is left: {end.reason}"
    elif writer.last >= total:
        outcome.status = "completed"
    else:
        outcome.reason = f"i-PI stopped at step {writer.last} of {total} {end.reason}"
    return outcome


def run_ipi(context, rundir: RunDirectory, resume: bool = False, progress=None) -> dict:
    """Run (or resume) MD with i-PI as the integrator and ``mdsym serve`` as the clients.

    ``context``: the run's ``RunContext``, or its ``RunConfig`` (or a dict of its
    fields) to build one; ``steps`` is the total length of the run, resume included.
    The run starts from ``rundir``'s structure.xyz. ``progress``: an object with
    ``update(n)`` (tqdm-like) or a callable ``progress(step, total)``. Returns status,
    reason, steps, steps_done, new_steps, wall_time_s, steps_per_s,
    time_to_failure_fs, start_step, restarts, ipi details.
    """
    rundir = rundir if isinstance(rundir, RunDirectory) else RunDirectory(rundir)
    command_for("i-pi")  # one clear line now if i-PI is missing
    run = IpiRun.prepare(RunContext.of(context, "ipi"), rundir)
    run.workdir.mkdir(parents=True, exist_ok=True)
    done = segments(run.workdir)
    segment = (done[-1] + 1) if done else 0
    writer = StepWriter(run, progress)
    start, checkpoint = continue_from_checkpoint(run, writer) if resume else (0, None)
    result = {"steps": run.total, "start_step": start, "restarts": [],
              "ipi": {"version": ipi_version(), "workdir": str(run.workdir),
                      "segment": segment, "beads": run.config.beads,
                      "drivers": run.drivers, "average_in": run.config.average_in,
                      **run.socket.details()}}
    if run.grid is not None:  # which grid i-PI averaged over
        result["ipi"]["rotations"] = run.grid.describe()
    if start >= run.total:
        return {**result, "status": "completed", "reason": None, "steps_done": start,
                "new_steps": 0, "wall_time_s": 0.0, "steps_per_s": None,
                "time_to_failure_fs": None}
    xml = (restart_input(run, checkpoint, f"seg{segment}") if resume
           else first_input(run, f"seg{segment}"))
    started = time.monotonic()
    with terminate_as_interrupt():
        outcome = run_segments(run, writer, segment, xml)
    return summary(result, outcome, writer, time.monotonic() - started)


def summary(result: dict, outcome: Outcome, writer: StepWriter, wall: float) -> dict:
    result.update(status=outcome.status, reason=outcome.reason, restarts=outcome.restarts,
                  steps_done=max(writer.last, 0), new_steps=writer.new_steps, wall_time_s=wall,
                  steps_per_s=writer.new_steps / wall if wall > 0 and writer.new_steps else None,
                  time_to_failure_fs=writer.time_to_failure_fs)
    result["ipi"]["segment"] = outcome.segment
    if outcome.status == "failed" and result["time_to_failure_fs"] is None:
        thermo = writer.run.rundir.read_thermo()
        if len(thermo["time_fs"]):
            result["time_to_failure_fs"] = float(thermo["time_fs"][-1])
    return result
