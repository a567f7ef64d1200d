"""The i-PI engine of ``mdsym run``: i-PI integrates, ``mdsym serve`` computes forces.

``run_ipi`` renders an i-PI input from the templates in ``mdsym/data/ipi``
(``inputs/ipi``), starts ``i-pi`` in ``RUN/ipi/`` and one ``mdsym serve`` client
(unix socket by default, TCP on request), follows i-PI's output files while it
runs, and turns them into the run directory format as they appear: one
``thermo.csv`` row per step, one ``trajectory.trr`` frame every ``stride`` steps.
Both processes are stopped (process groups, SIGTERM then SIGKILL) and the socket
file removed on completion, failure, a stability monitor tripping, or Ctrl-C.

Every number in the input is in atomic units converted with ASE's constants
(``mdsym.ipi.protocol``), masses come from the structure, and ``fixcom`` is off:
with the same initial velocities and timestep, i-PI's NVE run is ASE's
``VelocityVerlet`` run to round-off.

i-PI writes, per segment ``K`` (one per start or resume), ``RUN/ipi/segK.*``:
``thermo`` (properties, every step), ``pos/vel/frc_0.bin`` (binary trajectories,
every step: the thermo columns need velocities and forces), ``extras_0`` (the
rotational std sent by ``mdsym serve``, when symmetrizing) and ``RESTART``
(checkpoint every ``checkpoint_stride`` steps and at exit). ``--resume`` restarts
i-PI from the newest RESTART, first converting what the previous segment wrote
up to that checkpoint and cutting the run directory back to it (no duplicates).

Monitors are enforced here, on each step as it is converted: non-finite energy or
forces, temperature above ``max_temperature_factor`` times the target, two atoms
closer than ``min_distance_A``. ``mdsym serve`` itself fails (and the run with
it) when the model returns NaN/inf. The run stops at the first trip: every step
up to it is in the run directory, and ``status``/``reason``/``time_to_failure_fs``
say what happened.
"""

import ast
import os
import secrets
import signal
import socket
import string
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ase import units

from ..errors import MdsymError
from ..ipi import protocol as p
from ..ipi.client import DEFAULT_SOCKETS_PREFIX, unix_path
from ..monitors import MonitorSettings, StabilityMonitor
from ..processes import command_for, mdsym_command
from ..processes import start as start_process
from ..processes import stop as stop_process
from ..rundir import RunDirectory, mechanics

TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "ipi"
TRAJECTORIES = (("pos", "positions"), ("vel", "velocities"), ("frc", "forces"))
NONPERIODIC_BOX_A = 1000.0  # i-PI needs a cell; clusters get a large one, and pbc off


def template(name: str) -> string.Template:
    return string.Template((TEMPLATES / f"{name}.xml").read_text())


def xml_array(values) -> str:
    return "[ " + ", ".join(repr(float(x)) for x in np.ravel(values)) + " ]"


def ipi_version() -> str:
    try:
        from importlib.metadata import version

        return version("ipi")
    except Exception:
        return "unknown"


# --- the input ------------------------------------------------------------------


def initial_velocities(atoms, temperature_K, seed) -> np.ndarray:
    """The velocities the ASE engine would start from (``ase_md.initial_velocities``):
    the structure's own if it has any, else Maxwell-Boltzmann at ``temperature_K``
    from ``seed``, without net momentum (nor rotation if isolated)."""
    from .ase_md import initial_velocities as start_velocities

    copy = atoms.copy()
    start_velocities(copy, temperature_K, seed)
    velocities = copy.get_velocities()
    return np.zeros((len(atoms), 3)) if velocities is None else velocities


def socket_block(kind: str, *, name, mode, address, port, pbc, batch_size=1,
                 latency=1e-4, grid_mode="lebedev", grid_order=1, inversion=False) -> str:
    """A ``<ffsocket>`` or ``<ffrotations>`` (around an ``<ffsocket>``) block."""
    return template(kind).substitute(
        name=name, mode=mode, address=address, port=port or 65535, pbc=str(bool(pbc)).lower(),
        batch_size=int(batch_size), latency=latency, timeout=0,
        grid_mode=grid_mode, grid_order=int(grid_order), inversion=str(bool(inversion)),
    )


def render_input(atoms, velocities, *, forcefield: str, forcefield_name="mdsym", prefix="seg0",
                 ensemble="nve", thermostat="svr", timestep_fs=1.0, total_steps=100,
                 temperature_K=300.0, tau_fs=100.0, seed=0, trajectories=True, extras=False,
                 checkpoint_stride=100, thermo_stride=1, verbosity="low") -> str:
    """The i-PI input for an MD run of ``atoms`` (ASE units in, atomic units out).

    ``verbosity`` is i-PI's: at ``high`` it logs its wall time of every MD step."""
    if ensemble not in ("nve", "nvt"):
        raise MdsymError(f"unknown ensemble {ensemble!r}: use nve or nvt")
    thermostat_xml = ""
    if ensemble == "nvt":
        if thermostat not in ("svr", "langevin"):
            raise MdsymError(f"the i-PI engine offers thermostats svr and langevin, not {thermostat!r}")
        if not temperature_K or temperature_K <= 0:
            raise MdsymError("nvt needs a positive --temperature")
        tau = tau_fs * units.fs / p.AU_TIME
        thermostat_xml = (f"        <thermostat mode='{thermostat}'>"
                          f"<tau units='atomic_unit'> {tau!r} </tau></thermostat>")
    if atoms.pbc.all():
        h = np.array(atoms.cell.array).T  # i-PI: lattice vectors as columns
    elif not atoms.pbc.any():
        h = np.eye(3) * NONPERIODIC_BOX_A
    else:
        raise MdsymError("mixed periodic boundary conditions are not supported")
    lines = []
    if trajectories:
        for filename, what in TRAJECTORIES:
            lines.append(f"    <trajectory filename='{filename}' stride='{thermo_stride}' "
                         f"format='bin' flush='1'> {what} </trajectory>")
    if extras:
        lines.append(f"    <trajectory filename='extras' stride='{thermo_stride}' flush='1'> "
                     "extras </trajectory>")
    labels = "[ " + ", ".join(f"'{s}'" for s in atoms.get_chemical_symbols()) + " ]"
    return template("md").substitute(
        verbosity=verbosity, safe_stride=1, prefix=prefix, thermo_stride=thermo_stride,
        trajectories="\n".join(lines), checkpoint_stride=int(checkpoint_stride),
        total_steps=int(total_steps), seed=int(seed), forcefield=forcefield,
        forcefield_name=forcefield_name,
        labels=labels,
        masses=xml_array(atoms.get_masses() / p.AU_MASS),
        cell=xml_array(h / p.BOHR),
        positions=xml_array(atoms.positions / p.BOHR),
        velocities=xml_array(np.asarray(velocities) / p.AU_VELOCITY),
        ensemble=ensemble, timestep=repr(timestep_fs * units.fs / p.AU_TIME),
        thermostat=thermostat_xml,
        temperature=repr((temperature_K or 0.0) / p.AU_TEMPERATURE),
    )


# --- sockets ----------------------------------------------------------------------


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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, int(port or 0)))
        except OSError as error:
            raise MdsymError(f"TCP port {port} on {address} is in use ({error.strerror})") from None
        return probe.getsockname()[1]


# --- reading i-PI's outputs as they grow ----------------------------------------------


class _Stream:
    """New complete records of a file that another process appends to."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def new_bytes(self) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                return handle.read()
        except FileNotFoundError:
            return b""


class _Lines(_Stream):
    def read(self) -> list:
        data = self.new_bytes()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode("utf-8", errors="replace").splitlines()


class _BinaryTrajectory(_Stream):
    """i-PI's ``format='bin'`` trajectory: per frame the cell ``h`` (9 float64), the
    atom count (int64), 3N float64, the length (int64) and text (UTF-32) of the
    ``|``-joined names, then a fixed-width UTF-32 title ``Step: ... Bead: ... key{unit}``."""

    def __init__(self, path: Path, key: str, natoms: int):
        super().__init__(path)
        title = ("Step:  %10d  Bead:   %5d " % (0, 0)) + f"{key}{{atomic_unit}}  cell{{atomic_unit}}"
        self.title_length = len(title)
        self.natoms = natoms
        self.record = None

    def read(self) -> list:
        data = self.new_bytes()
        if self.record is None:
            head = 72 + 8 + 24 * self.natoms
            if len(data) < head + 8:
                return []
            names_length = int(np.frombuffer(data, np.int64, 1, head)[0])
            self.record = head + 8 + 4 * names_length + 4 * self.title_length
        frames = []
        count = len(data) // self.record
        for k in range(count):
            base = k * self.record
            h = np.frombuffer(data, np.float64, 9, base).reshape(3, 3)
            values = np.frombuffer(data, np.float64, 3 * self.natoms, base + 80).reshape(-1, 3)
            title = data[base + self.record - 4 * self.title_length : base + self.record]
            step = int(title.decode("utf-32-le").split()[1])
            frames.append((step, h.copy(), values.copy()))
        self.offset += count * self.record
        return frames


class IpiOutputs:
    """Follows one segment's output files and yields whole steps, in order."""

    def __init__(self, workdir: Path, prefix: str, natoms: int, extras: bool):
        self.thermo = _Lines(workdir / f"{prefix}.thermo")
        self.trajectories = {
            key: _BinaryTrajectory(workdir / f"{prefix}.{name}_0.bin", what, natoms)
            for (name, what), key in zip(TRAJECTORIES, ("positions", "velocities", "forces"))
        }
        self.extras = _Lines(workdir / f"{prefix}.extras_0") if extras else None
        self.pending = {}
        self._extras_step = None

    def _slot(self, step):
        return self.pending.setdefault(step, {})

    def poll(self) -> list:
        """Steps complete in every stream since the last call: ``[(step, data)]``."""
        for line in self.thermo.read():
            if line.startswith("#") or not line.strip():
                continue
            values = [float(x) for x in line.split()]
            self._slot(int(round(values[0])))["thermo"] = values
        for key, stream in self.trajectories.items():
            for step, h, values in stream.read():
                self._slot(step)[key] = values
                self._slot(step)["h"] = h
        if self.extras is not None:
            for line in self.extras.read():
                text = line.strip()
                if text.startswith("#EXTRAS"):
                    self._extras_step = int(text.split("Step:")[1].split()[0])
                elif text and self._extras_step is not None:
                    self._slot(self._extras_step)["extras"] = _parse_extras(text)
                    self._extras_step = None
        wanted = {"thermo", "positions", "velocities", "forces"} | (
            {"extras"} if self.extras is not None else set())
        done = []
        for step in sorted(self.pending):
            if not wanted <= set(self.pending[step]):
                break
            done.append((step, self.pending.pop(step)))
        return done


def _parse_extras(text: str) -> dict:
    """i-PI prints the parsed extras as a Python dict of lists (one per bead)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {}
    out = {}
    for key in ("energy_rot_std", "forces_rot_std"):
        item = value.get(key) if isinstance(value, dict) else None
        if isinstance(item, list) and item:
            item = item[0]
        if isinstance(item, (int, float)):
            out[key] = float(item)
    return out


# --- one step into the run directory ---------------------------------------------------


def thermo_row(step, data, masses, periodic) -> tuple:
    """A ``thermo.csv`` row (the columns of ``mdsym.rundir``) and the frame arrays of one
    i-PI step, converted from atomic units here."""
    _, time_au, potential, kinetic, conserved, temperature = data["thermo"][:6]
    positions = data["positions"] * p.BOHR
    velocities = data["velocities"] * p.AU_VELOCITY
    forces = data["forces"] * p.AU_FORCE
    cell = data["h"].T * p.BOHR if periodic else None
    extras = data.get("extras", {})
    row = {
        "step": int(step), "time_fs": time_au * p.AU_TIME / units.fs,
        "potential_eV": potential * p.HARTREE, "kinetic_eV": kinetic * p.HARTREE,
        "conserved_eV": conserved * p.HARTREE, "temperature_K": temperature * p.AU_TEMPERATURE,
        "energy_rot_std_eV": extras.get("energy_rot_std", float("nan")),
        "forces_rot_std_eVA": extras.get("forces_rot_std", float("nan")),
    }
    row.update(mechanics(positions, velocities, forces, masses))
    return row, positions, velocities, forces, cell


# --- processes ----------------------------------------------------------------------


class _TerminateAsInterrupt:
    """While running, SIGTERM and SIGHUP act like Ctrl-C (so cleanup runs)."""

    def __enter__(self):
        self.saved = {}
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                self.saved[signum] = signal.signal(signum, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
        return False


def serve_command(config, socket_args) -> list:
    model = str(config["model"])
    if Path(model).exists():  # the client runs in RUN/ipi: make file paths absolute
        model = str(Path(model).resolve())
    command = [
        *mdsym_command(), "serve",
        "--model", model, "--structure", str(Path(config["structure"]).resolve()),
        "--symmetrize", str(config.get("symmetrize") or "none"),
        "--forces", str(config.get("forces") or "auto"),
        "--seed", str(int(config.get("seed") or 0)), "--wait", "120",
        "--threads", str(config.get("threads") or "auto"),
        "--device", str(config.get("device") or "auto"),
    ]
    if config.get("dtype"):
        command += ["--dtype", str(config["dtype"])]
    if config.get("batch_size"):
        command += ["--batch-size", str(int(config["batch_size"]))]
    return command + socket_args


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else ""


def _restart_step(path: Path) -> int:
    try:
        return int(ET.parse(path).getroot().find("step").text)
    except Exception:
        return -1


def _latest_restart(workdir: Path):
    # seg*.RESTART: the periodic checkpoints; RESTART: what i-PI saves when it exits
    files = list(workdir.glob("seg*.RESTART")) + [workdir / "RESTART"]
    candidates = [(_restart_step(f), f) for f in files if f.exists()]
    candidates = [c for c in candidates if c[0] >= 0]
    return max(candidates, key=lambda c: c[0]) if candidates else (None, None)


def _segments(workdir: Path) -> list:
    return sorted(int(f.name[3:].split(".")[0]) for f in workdir.glob("seg*.thermo"))


# --- the engine ---------------------------------------------------------------------


def run_ipi(config: dict, rundir: RunDirectory, resume: bool = False, progress=None) -> dict:
    """Run (or resume) MD with i-PI as the integrator and ``mdsym serve`` as the client.

    ``config`` keys: model (a name, ``analytic[:...]`` or a file), symmetrize, forces,
    structure (the run directory's structure.xyz), ensemble (nve|nvt), thermostat
    (svr|langevin), timestep_fs, steps (the total length of the run, resume included),
    temperature_K, seed, stride, socket (unix|tcp), port, batch_size, and optional
    thermostat_tau_fs (100), checkpoint_stride (100), latency (i-PI poll, 1e-4 s), min_distance_A,
    max_temperature_factor, address (unix socket name).
    ``progress``: an object with ``update(n)`` (tqdm-like) or a callable
    ``progress(step, total)``. Returns status, reason, steps, steps_done,
    wall_time_s, steps_per_s, time_to_failure_fs, ipi details.
    """
    from ..models import load_model
    from ..system import System, read_structure

    rundir = RunDirectory(rundir) if not isinstance(rundir, RunDirectory) else rundir
    ipi_command = command_for("i-pi")
    if not isinstance(config.get("model"), (str, os.PathLike)):
        raise MdsymError(
            "the i-PI engine runs the model in a separate 'mdsym serve' process, which needs "
            "a model name, 'analytic[:...]' or a model file, not a Python object"
        )
    atoms = read_structure(config["structure"])
    system = System.from_atoms(atoms)
    model = load_model(str(config["model"]), forces=config.get("forces") or "auto")
    model.check_system(system)  # unknown species: one line now, not in the client
    periodic = system.periodic
    masses = system.masses
    # the same monitors as the ASE engine, bonds judged against the initial structure
    monitor = StabilityMonitor(atoms, config.get("temperature_K"), MonitorSettings.from_config(config))
    total = int(config["steps"])
    stride = max(1, int(config.get("stride") or 1))
    symmetrizing = str(config.get("symmetrize") or "none").split("+")[0] not in ("", "none")

    workdir = rundir.path / "ipi"
    workdir.mkdir(parents=True, exist_ok=True)
    segments = _segments(workdir)
    segment = (segments[-1] + 1) if segments else 0
    prefix = f"seg{segment}"

    # the socket
    mode = "unix" if (config.get("socket") or "unix") == "unix" else "inet"
    if mode == "unix":
        name = config.get("address") or f"mdsym-{os.getpid()}-{secrets.token_hex(4)}"
        socket_file = check_unix_socket(name)
        address, port = name, None
        socket_args = ["--unix", name]
    else:
        socket_file = None
        address = "localhost"
        port = check_port(config.get("port"), address)
        socket_args = ["--address", address, "--port", str(port)]
    block = socket_block("ffsocket", name="mdsym", mode=mode, address=address, port=port,
                         pbc=periodic, latency=float(config.get("latency") or 1e-4))

    last_written = -1
    if resume:
        restart_step, restart = _latest_restart(workdir)
        if restart is None:
            raise MdsymError(f"cannot resume {rundir.path}: no i-PI RESTART file in {workdir}")
        # convert what the previous segment wrote up to its checkpoint, then cut back
        written = rundir.read_thermo()["step"]
        last_written = int(written.max()) if len(written) else -1
        if segments and last_written < restart_step:
            old = IpiOutputs(workdir, f"seg{segments[-1]}", len(atoms), symmetrizing)
            for step, data in old.poll():
                if last_written < step <= restart_step:
                    _write_step(rundir, step, data, masses, periodic, stride)
                    last_written = step
        rundir.truncate_after(restart_step)
        written = rundir.read_thermo()["step"]
        last_written = int(written.max()) if len(written) else -1
        if restart_step >= total:
            return {"status": "completed", "reason": None, "steps": total,
                    "steps_done": restart_step, "new_steps": 0, "wall_time_s": 0.0,
                    "steps_per_s": None, "time_to_failure_fs": None,
                    "ipi": {"version": ipi_version(), "workdir": str(workdir)}}
        xml = _resume_input(restart, prefix, total, mode, address, port)
        start_step = restart_step
    else:
        velocities = initial_velocities(atoms, config.get("temperature_K"), config.get("seed") or 0)
        xml = render_input(
            atoms, velocities, forcefield=block, prefix=prefix,
            ensemble=config.get("ensemble") or "nve", thermostat=config.get("thermostat") or "svr",
            timestep_fs=float(config.get("timestep_fs") or 1.0), total_steps=total,
            temperature_K=config.get("temperature_K"),
            tau_fs=float(config.get("thermostat_tau_fs") or 100.0), seed=config.get("seed") or 0,
            extras=symmetrizing, checkpoint_stride=int(config.get("checkpoint_stride") or 100),
        )
        start_step = 0
    input_file = workdir / f"{prefix}.input.xml"
    input_file.write_text(xml)

    outputs = IpiOutputs(workdir, prefix, len(atoms), symmetrizing)
    result = {"status": "failed", "reason": None, "steps": total, "steps_done": max(last_written, 0),
              "time_to_failure_fs": None,
              "ipi": {"version": ipi_version(), "workdir": str(workdir), "segment": segment,
                      "socket": mode, "address": address, "port": port}}
    ipi = serve = None
    started = time.monotonic()
    done_steps = 0
    signals = _TerminateAsInterrupt().__enter__()
    try:
        ipi = start_process([*ipi_command, input_file.name], workdir, workdir / f"{prefix}.ipi.log")
        serve = start_process(serve_command(config, socket_args), workdir,
                              workdir / f"{prefix}.serve.log")
        reason = None
        while True:
            ipi_done = ipi.poll() is not None
            for step, data in outputs.poll():
                if step <= last_written:
                    continue
                row, positions, velocities, forces, cell = _write_step(
                    rundir, step, data, masses, periodic, stride)
                last_written = step
                done_steps += 1
                _report(progress, step, total)
                reason = monitor.check(positions, cell, row["potential_eV"], forces,
                                       row["temperature_K"])
                if reason:
                    result["time_to_failure_fs"] = row["time_fs"]
                    break
            if reason or ipi_done:
                break
            if serve.poll() is not None and serve.returncode != 0:
                time.sleep(0.2)  # let i-PI flush what it has, then read it
                for step, data in outputs.poll():
                    if step > last_written:
                        _write_step(rundir, step, data, masses, periodic, stride)
                        last_written = step
                        done_steps += 1
                reason = f"mdsym serve failed: {_last_line(workdir / f'{prefix}.serve.log')}"
                break
            time.sleep(0.1)
        result["steps_done"] = max(last_written, 0)
        if reason:
            result["reason"] = reason
        elif last_written >= total:
            result["status"] = "completed"
        else:
            result["reason"] = (f"i-PI stopped at step {last_written} of {total} "
                                f"(exit code {ipi.returncode}): "
                                f"{_last_line(workdir / f'{prefix}.ipi.log')}")
    except KeyboardInterrupt:
        # Ctrl-C: stop both processes (below) and report; the run can be resumed
        result["status"] = "interrupted"
        result["reason"] = "interrupted by the user"
        result["steps_done"] = max(last_written, 0)
    finally:
        # i-PI traps SIGTERM/SIGINT and writes its RESTART before leaving
        stop_process(ipi, signal.SIGTERM, wait=10.0)
        stop_process(serve, signal.SIGTERM, wait=5.0)
        signals.__exit__(None, None, None)
        if socket_file and os.path.exists(socket_file):
            try:
                os.unlink(socket_file)
            except OSError:
                pass
        wall = time.monotonic() - started
        result["wall_time_s"] = wall
        result["new_steps"] = done_steps
        result["steps_per_s"] = done_steps / wall if wall > 0 and done_steps else None
        result["start_step"] = start_step
        if result["status"] == "failed" and result["time_to_failure_fs"] is None:
            thermo = rundir.read_thermo() if rundir.thermo.exists() else None
            if thermo is not None and len(thermo["time_fs"]):
                result["time_to_failure_fs"] = float(thermo["time_fs"][-1])
    return result


def _report(progress, step, total):
    if progress is None:
        return
    if hasattr(progress, "update"):
        progress.update(1)
    else:
        progress(step, total)


def _write_step(rundir, step, data, masses, periodic, stride):
    row, positions, velocities, forces, cell = thermo_row(step, data, masses, periodic)
    rundir.append_thermo(row)
    if step % stride == 0:
        rundir.append_frame(step, row["time_fs"], positions, velocities, forces,
                            cell=cell, pbc=periodic)
    return row, positions, velocities, forces, cell


def _resume_input(restart: Path, prefix, total, mode, address, port) -> str:
    """i-PI's RESTART with a new output prefix, run length and socket address."""
    root = ET.parse(restart).getroot()
    root.find("total_steps").text = f" {int(total)} "
    output = root.find("output")
    if output is not None:
        output.set("prefix", prefix)
    for ffsocket in root.iter("ffsocket"):
        ffsocket.set("mode", mode)
        ffsocket.find("address").text = f" {address} "
        if port is not None:
            found = ffsocket.find("port")
            if found is None:
                found = ET.SubElement(ffsocket, "port")
            found.text = f" {int(port)} "
    return ET.tostring(root, encoding="unicode")


def ipi_rotation_grid(grid_mode: str = "lebedev", grid_order: int = 3, inversion: bool = True):
    """The rotations and weights i-PI's ``<ffrotations>`` averages over (``random``
    off), as an mdsym ``Quadrature``: i-PI rotates ``q R^T`` and ``R h``, mdsym's
    convention, and adds ``-R`` with the same weight when ``inversion`` is on."""
    from ipi.utils.mathtools import (get_rotation_quadrature_lebedev,
                                     get_rotation_quadrature_legendre)

    from ..quadrature import Quadrature

    build = {"lebedev": get_rotation_quadrature_lebedev,
             "legendre": get_rotation_quadrature_legendre}[grid_mode]
    rotations, weights = [], []
    for matrix, weight, _ in build(int(grid_order)):
        rotations.append(matrix)
        weights.append(weight)
        if inversion:
            rotations.append(-matrix)
            weights.append(weight)
    weights = np.array(weights, dtype=np.float64)
    return Quadrature(f"ipi-{grid_mode}-{grid_order}", np.array(rotations), weights / weights.sum(),
                      0, bool(inversion))
