"""The i-PI engine of ``mdsym run``: i-PI integrates, ``mdsym serve`` clients compute forces.

``run_ipi`` builds i-PI's input (``mdsym.md.ipi_engine.input``), starts ``i-pi`` in
``RUN/ipi/`` with ``drivers`` ``mdsym serve`` clients (``mdsym.md.ipi_engine.supervisor``;
unix socket by default, TCP on request), follows i-PI's output files as they grow
(``mdsym.md.ipi_engine.outputs``) and turns them into the run directory as they appear: one
``thermo.csv`` row per step, one ``trajectory.trr`` frame every ``stride`` steps.
With ``beads`` > 1 (path-integral MD) i-PI sends every bead's forces as a separate
request and spreads them over its clients; the run directory holds the centroid.
More clients can join from other hosts over TCP (``mdsym serve --address HOST
--port P``, README).

Segments. i-PI writes, per segment ``K`` (one per start, resume or recovery),
``RUN/ipi/segK.*`` (``mdsym.md.ipi_engine.input.output_files``), its log ``segK.ipi.log``
and one log per client, ``segK.serve{k}.log``. ``--resume`` restarts i-PI from the
newest checkpoint, first converting what the previous segment wrote up to it and
cutting the run directory back to it (no step twice). The same happens within a
run when i-PI stalls because a client was lost (``supervisor.IpiProcesses.problem``):
i-PI is stopped (it checkpoints the last step) and continues from there with the
clients left; ``restarts`` in the result says when and why.

Multiple time stepping (``--symmetrize mts:K+SPEC``) runs through i-PI's own
``<nmts>`` (``mdsym.md.ipi_engine.input.multiple_time_step``) with two forcefields on two
sockets: ``mdsym`` (the inner force: the raw model with SPEC's netforce/nettorque
fixes, the model's direct forces under ``mts:K:direct``), served by the
``--drivers`` clients, and ``mdsym-correction`` (the outer force: SPEC minus that,
energy, forces and virial), served by one ``mdsym serve --correction`` client.
The correction's socket is the raw one's unix name with ``-correction``
appended, or, over TCP, the next port (``--port P``: P + 1) or a free one.
mdsym's step semantics hold in both engines: ``--timestep`` is the inner step and
``--steps`` counts inner steps, so i-PI runs ``steps / K`` outer steps of ``K dt``
(``--steps`` and ``--stride`` must be multiples of K, ``RunConfig``). i-PI writes
at outer steps only: ``thermo.csv`` has a row per outer step, labelled by its inner
step (``step = K x`` i-PI's step), where the potential is the symmetrized model's
and ``conserved_eV`` its total energy (the physics of ``mdsym.md.mts``). A
restart (resume or stall) starts the raw clients left and a fresh correction client.

Monitors (``mdsym.md.monitors``) are enforced here, on each step as it is converted:
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

from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.md.context import RunContext
from mdsym.md.ipi_engine import input as ipi_input
from mdsym.md.ipi_engine.outputs import SegmentReader
from mdsym.md.ipi_engine.supervisor import IpiProcesses, last_line, terminate_as_interrupt
from mdsym.md.monitors import StabilityMonitor
from mdsym.md.processes import command_for, mdsym_command
from mdsym.md.rundir import RunDirectory, complete_frames
from mdsym.md.thermo import thermo_row
from mdsym.serving import ipi_protocol as p
from mdsym.serving.ipi_client import DEFAULT_SOCKETS_PREFIX, unix_path

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
    from mdsym.md.ase_engine import initial_velocities as start_velocities

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
    name: str = "mdsym"  # i-PI's forcefield

    @classmethod
    def open(cls, config: RunConfig) -> "Socket":
        """The run's socket, checked free now (one clear line if not)."""
        if config.socket == "unix":
            name = config.address or f"mdsym-{os.getpid()}-{secrets.token_hex(4)}"
            return cls("unix", name, None, check_unix_socket(name))
        address = config.address or "localhost"
        return cls("inet", address, check_port(config.port, address))

    def correction(self, config: RunConfig) -> "Socket":
        """The socket of the correction forcefield of a multiple-time-step run, beside
        this one: the unix name with ``-correction``, or over TCP the next port when
        ``--port`` was given (below 65535), else a free one (checked free now)."""
        name = f"{self.name}-correction"
        if self.mode == "unix":
            address = f"{self.address}-correction"
            return Socket("unix", address, None, check_unix_socket(address), name)
        wanted = self.port + 1 if config.port and self.port < 65535 else None
        port = check_port(wanted, self.address or "localhost")
        while port == self.port:  # a free port, not the one just taken for the raw clients
            port = check_port(None, self.address or "localhost")
        return Socket("inet", self.address, port, None, name)

    def client_args(self) -> list:
        if self.mode == "unix":
            return ["--unix", self.address]
        host = "localhost" if self.address in EVERY_INTERFACE else self.address
        return ["--address", host, "--port", str(self.port)]

    def forcefield(self, pbc: bool, latency: float):
        return ipi_input.socket(self.name, self.mode, self.address, self.port, pbc=pbc,
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
    """The ``<ffrotations>`` grid when i-PI averages (``mdsym.md.ipi_engine.input.RotationGrid``),
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
    correction: Socket = None  # mts:K: the outer force's socket

    @property
    def interval(self) -> int:
        """K of ``mts:K`` (inner steps per i-PI step), 1 without multiple time stepping."""
        return self.config.symmetrize.mts_interval or 1

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
        from mdsym.core.system import read_structure

        config = context.config
        atoms = read_structure(rundir.structure)  # where the ASE engine would start too
        # the same monitors as the ASE engine, bonds judged against the initial structure
        monitor = context.monitor(atoms, config.temperature_K)
        socket = Socket.open(config)
        correction = socket.correction(config) if config.symmetrize.mts_interval else None
        return cls(config, rundir, atoms, context.system.periodic, monitor, socket,
                   config.symmetrize.mode != "none", grid=rotation_grid(config),
                   correction=correction)


def dynamics(config: RunConfig) -> ipi_input.Dynamics:
    return ipi_input.Dynamics.of(config)


def first_input(run: IpiRun, prefix: str) -> str:
    if run.correction is not None:
        return mts_first_input(run, prefix)
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
    if run.correction is not None:
        return mts_restart_input(run, checkpoint, prefix)
    inner = run.socket.forcefield(run.periodic, run.config.latency_s) if run.grid else None
    root = ipi_input.restarted(checkpoint.read_text(), prefix, run.total,
                               address=run.socket.address, port=run.socket.port,
                               rotations_socket=inner)
    return ipi_input.to_text(root)


# --- multiple time stepping (mts:K) -----------------------------------------------------


def mts_first_input(run: IpiRun, prefix: str) -> str:
    """The input of an ``mts:K`` run: i-PI's ``<nmts>`` over the raw and correction
    forcefields; i-PI counts outer steps (its checkpoints too)."""
    velocities = initial_velocities(run.atoms, run.config.temperature_K, run.config.seed)
    latency = run.config.latency_s
    outputs = ipi_input.Outputs(prefix=prefix, extras=run.extras,
                                checkpoint_stride=max(1, run.config.checkpoint_stride // run.interval))
    root = ipi_input.multiple_time_step(
        run.atoms, velocities, run.socket.forcefield(run.periodic, latency),
        run.correction.forcefield(run.periodic, latency), run.interval, run.total,
        dynamics(run.config), outputs)
    return ipi_input.to_text(root)


def mts_restart_input(run: IpiRun, checkpoint: Path, prefix: str) -> str:
    root = ipi_input.restarted(checkpoint.read_text(), prefix, run.total // run.interval)
    ipi_input.readdressed(root, {s.name: (s.address, s.port) for s in (run.socket, run.correction)})
    return ipi_input.to_text(root)


def mts_serve_commands(run: IpiRun, clients: int) -> list:
    """``clients`` raw clients (the inner force: SPEC's fixes only; the direct forces
    under ``mts:K:direct``) on the run's socket, then one correction client (SPEC
    minus that) on the correction socket."""
    config, spec, structure = run.config, run.config.symmetrize, run.rundir.structure
    inner = config.replace(symmetrize=str(spec.inner()),
                           forces="direct" if spec.mts_direct else config.forces)
    raw = serve_command(inner, structure, run.socket)
    outer = serve_command(config.replace(symmetrize=str(spec.outer())), structure, run.correction)
    outer += ["--correction", "direct" if spec.mts_direct else "raw"]
    return [raw] * clients + [outer]


class OuterSteps:
    """A ``SegmentReader`` of an ``mts:K`` run: i-PI's step n is inner step K n."""

    def __init__(self, reader: SegmentReader, interval: int):
        self.reader, self.interval = reader, interval

    def poll(self) -> list:
        return [(step * self.interval, data) for step, data in self.reader.poll()]


def segment_reader(run: IpiRun, prefix: str):
    """What follows i-PI's outputs under ``prefix``, steps labelled as mdsym counts them."""
    reader = SegmentReader(run.workdir, prefix, names(run), run.extras)
    return OuterSteps(reader, run.interval) if run.interval > 1 else reader


def client_commands(run: IpiRun, clients: int) -> list:
    if run.correction is not None:
        return mts_serve_commands(run, clients)
    return [serve_command(run.config, run.rundir.structure, run.socket)] * clients


def clients_left(run: IpiRun, processes: IpiProcesses) -> int:
    """The raw clients still running (a restart adds a fresh correction client)."""
    if run.correction is None:
        return processes.alive_clients()
    return sum(process.poll() is None for process, _ in processes.clients[:-1])


def remove_socket_file(socket: Socket):
    """The correction's unix socket file, which ``IpiProcesses`` does not know."""
    if socket is not None and socket.file and os.path.exists(socket.file):
        try:
            os.unlink(socket.file)
        except OSError:
            pass


# --- steps into the run directory -----------------------------------------------------


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
            increment = step - self.last  # inner steps: one per row, K per row of mts:K
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


def grid_extras(extras: dict, grid) -> dict:
    """The rotational std of ``<ffrotations>``'s step (eV): the energy's from the energies
    i-PI returns for every rotation; the forces' is NaN (i-PI keeps no per-rotation
    forces); the degree is the grid's measured exactness."""
    energies = extras.get(ipi_input.IPI_GRID_ENERGIES[0])
    std = float("nan") if energies is None else grid.energy_rot_std(energies) * p.HARTREE
    return {"energy_rot_std": std, "forces_rot_std": float("nan"),
            "symmetrize_degree": float(grid.degree)}


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
    step *= run.interval  # i-PI counts outer steps
    writer.cut_back(last_whole_step(run.rundir, run.stride))  # written again below
    done = segments(run.workdir)
    if reader is None and done:
        reader = segment_reader(run, f"seg{done[-1]}")
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
    reader = segment_reader(run, prefix)
    with IpiProcesses(run.workdir, run.socket.file) as processes:
        processes.start_server(f"{prefix}.input.xml", f"{prefix}.ipi.log")
        for k, command in enumerate(client_commands(run, clients)):
            processes.start_client(command, f"{prefix}.serve{k}.log")
        end = follow(processes, reader, writer)
        end.clients_left = clients_left(run, processes)
    remove_socket_file(run.correction)
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
    if run.correction is not None:  # mts:K: the correction's socket, i-PI's outer steps
        result["ipi"].update(mts_interval=run.interval, correction_address=run.correction.address,
                             correction_port=run.correction.port)
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
    if writer.degree_log is not None:
        result["degree_log"] = writer.degree_log
    if outcome.status == "failed" and result["time_to_failure_fs"] is None:
        thermo = writer.run.rundir.read_thermo()
        if len(thermo["time_fs"]):
            result["time_to_failure_fs"] = float(thermo["time_fs"][-1])
    return result
