"""i-PI: mdsym's socket client, ``mdsym serve``, the PES plugin and the i-PI engine.

Every test that needs i-PI starts a real ``i-pi`` server and real clients over unix
sockets with unique names, and stops every process it started in ``finally``.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import units

from mdsym.errors import MdsymError
from mdsym.ipi import protocol as p
from mdsym.ipi.client import Potential
from mdsym.models import load_model
from mdsym.processes import command_for, mdsym_command
from mdsym.rundir import RunDirectory
from mdsym.symmetrize import average
from mdsym.system import System

pytest.importorskip("ipi")

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "mdsym" / "data" / "structures" / "cu-cluster-55.xyz"
PES = ROOT / "drivers" / "mdsym_pes.py"
SERVE = [*mdsym_command(), "serve"]

pytestmark = pytest.mark.timeout(180)


def unique_name(tag="t") -> str:
    return f"mdsym-{tag}-{os.getpid()}-{secrets.token_hex(3)}"


def stop(process, timeout=10.0):
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def start(command, cwd, log_name):
    log = open(Path(cwd) / log_name, "w")
    return subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def cluster_with_velocities(seed=1, temperature=300.0):
    from mdsym.engines.ipi_md import initial_velocities

    atoms = ase.io.read(CLUSTER)
    atoms.set_velocities(initial_velocities(atoms, temperature, seed))
    return atoms


def run_ipi_input(tmp_path, xml, clients, timeout=120.0):
    """Run i-PI on ``xml`` with the client commands; return their logs."""
    (tmp_path / "input.xml").write_text(xml)
    processes = []
    try:
        # clients first: they retry until i-PI opens its socket, so all are there at step 0
        for k, command in enumerate(clients):
            processes.append(start(command, tmp_path, f"client{k}.log"))
        ipi = start([*command_for("i-pi"), "input.xml"], tmp_path, "ipi.log")
        processes.append(ipi)
        deadline = time.monotonic() + timeout
        while ipi.poll() is None:
            assert time.monotonic() < deadline, "i-PI did not finish in time"
            time.sleep(0.1)
        log = (tmp_path / "ipi.log").read_text()
        assert ipi.returncode == 0 and "Traceback" not in log, log[-2000:]
        for process in processes[:-1]:
            process.wait(timeout=30)  # clients leave on i-PI's EXIT
        return [(tmp_path / f"client{k}.log").read_text() for k in range(len(clients))]
    finally:
        for process in processes:
            stop(process)


def first_step(tmp_path, natoms, prefix="seg0"):
    from mdsym.engines.ipi_md import IpiOutputs

    steps = dict(IpiOutputs(tmp_path, prefix, natoms, extras=False).poll())
    return steps[0]


# --- the engine: same trajectory as ASE ---------------------------------------------


def nve_config(rundir, **extra):
    config = dict(model="analytic", symmetrize="none", forces="auto", structure=str(rundir.structure),
                  ensemble="nve", thermostat="svr", timestep_fs=2.0, steps=50, temperature_K=300.0,
                  seed=1, stride=10, socket="unix", port=None, batch_size=64)
    config.update(extra)
    return config


def test_ipi_engine_matches_ase_velocity_verlet(tmp_path):
    from ase.md.verlet import VelocityVerlet

    from mdsym.calculator import MdsymCalculator
    from mdsym.engines.ipi_md import run_ipi

    rundir = RunDirectory(tmp_path / "run")
    rundir.create(cluster_with_velocities())
    result = run_ipi(nve_config(rundir), rundir)
    assert result["status"] == "completed", result
    thermo = rundir.read_thermo()
    assert list(thermo["step"]) == list(range(51))

    atoms = ase.io.read(rundir.structure)
    atoms.calc = MdsymCalculator(load_model("analytic"))
    dynamics = VelocityVerlet(atoms, 2.0 * units.fs)
    universe = rundir.universe()
    assert len(universe.trajectory) == 6
    potentials, frames = [], {}
    for step in range(51):
        if step:
            dynamics.run(1)
        potentials.append(atoms.get_potential_energy())
        if step % 10 == 0:
            frames[step] = (atoms.positions.copy(), atoms.get_velocities() * 1000 * units.fs)
    # energies are written at full precision: the two integrators agree to round-off
    np.testing.assert_allclose(thermo["potential_eV"], potentials, rtol=0, atol=1e-8)
    for ts in universe.trajectory:  # TRR is single precision
        positions, velocities = frames[int(ts.data["step"])]
        np.testing.assert_allclose(ts.positions, positions, atol=2e-5)
        np.testing.assert_allclose(ts.velocities, velocities, rtol=1e-5, atol=1e-4)
        assert ts.has_forces and np.isfinite(ts.forces).all()
    # NVE with a conservative model conserves energy (2 fs, 50 steps)
    assert np.ptp(thermo["conserved_eV"]) < 5e-3
    # the thermo columns the i-PI engine derives itself
    assert np.abs(thermo["fnet_x"]).max() < 1e-8  # pairwise model: no net force
    assert np.isfinite(thermo["Lx"]).all()


# --- ffrotations over two mdsym serve processes --------------------------------------


def test_ffrotations_over_two_serves_matches_in_driver_averaging(tmp_path):
    from mdsym.engines.ipi_md import ipi_rotation_grid, render_input, socket_block

    atoms = cluster_with_velocities()
    model = "analytic:bond2=0.05,vector1=0.05,vector3-=0.02"
    grid = ipi_rotation_grid("lebedev", 3, inversion=True)

    # in-driver averaging on the same quadrature, in this process
    expected = average(load_model(model), System.from_atoms(atoms), grid)

    name = unique_name("rot")
    block = socket_block("ffrotations", name="mdsym", mode="unix", address=name, port=None,
                         pbc=False, grid_mode="lebedev", grid_order=3, inversion=True)
    xml = render_input(atoms, atoms.get_velocities(), forcefield=block, total_steps=1)
    ase.io.write(tmp_path / "structure.xyz", atoms)
    serve = SERVE + ["--model", model, "--structure", str(tmp_path / "structure.xyz"),
                     "--unix", name, "--wait", "60"]
    logs = run_ipi_input(tmp_path, xml, [serve, serve])
    step = first_step(tmp_path, len(atoms))
    forces = step["forces"] * p.AU_FORCE
    energy = step["thermo"][2] * p.HARTREE
    np.testing.assert_allclose(forces, expected["forces"], rtol=0, atol=1e-10)
    assert abs(energy - expected["energy"]) < 1e-9
    # the spurious terms were there to average out
    raw = load_model(model).evaluate(System.from_atoms(atoms), np.eye(3)[None], ("energy", "forces"))
    assert np.abs(raw["forces"][0] - forces).max() > 1e-3
    # both processes did part of the 36 rotations
    counts = [int(log.split("after ")[1].split()[0]) for log in logs]
    assert all(c > 0 for c in counts) and sum(counts) >= 2 * len(grid), logs

    # and one `mdsym serve --quadrature` with the same grid gives the same through i-PI
    np.savez(tmp_path / "grid.npz", rotations=grid.rotations, weights=grid.weights)
    name = unique_name("quad")
    block = socket_block("ffsocket", name="mdsym", mode="unix", address=name, port=None, pbc=False)
    xml = render_input(atoms, atoms.get_velocities(), forcefield=block, total_steps=1,
                       prefix="one", extras=True)
    run_ipi_input(tmp_path, xml, [SERVE + ["--model", model, "--structure",
                                            str(tmp_path / "structure.xyz"), "--unix", name,
                                            "--quadrature", str(tmp_path / "grid.npz"),
                                            "--wait", "60"]])
    step = first_step(tmp_path, len(atoms), prefix="one")
    np.testing.assert_allclose(step["forces"] * p.AU_FORCE, expected["forces"], atol=1e-10)
    extras = (tmp_path / "one.extras_0").read_text()
    assert "energy_rot_std" in extras and "forces_rot_std" in extras


# --- i-PI's own driver and ffdirect with the PES plugin ----------------------------------


def test_ipi_py_driver_and_ffdirect_use_the_pes_plugin(tmp_path):
    from mdsym.engines.ipi_md import render_input, socket_block, template

    atoms = cluster_with_velocities()
    ase.io.write(tmp_path / "structure.xyz", atoms)
    potential = Potential(load_model("analytic"), atoms, "o3:2")
    energy, forces, _, extras = potential.evaluate(
        np.eye(3) * 1000 / p.BOHR, atoms.positions / p.BOHR)
    assert set(json.loads(extras)) == {"energy_rot_std", "forces_rot_std"}

    name = unique_name("pes")
    block = socket_block("ffsocket", name="mdsym", mode="unix", address=name, port=None, pbc=False)
    xml = render_input(atoms, atoms.get_velocities(), forcefield=block, total_steps=2)
    driver = [*command_for("i-pi-py_driver"), "-m", "custom", "-P", str(PES), "-u", "-a", name,
              "-o", f"template={tmp_path / 'structure.xyz'},model=analytic,symmetrize=o3:2"]
    run_ipi_input(tmp_path, xml, [driver])
    step = first_step(tmp_path, len(atoms))
    np.testing.assert_allclose(step["forces"], forces, atol=1e-12)
    assert abs(step["thermo"][2] - energy) < 1e-12

    block = template("ffdirect").substitute(
        name="mdsym", pbc="false", pes_path=str(PES),
        parameters=f"template: {tmp_path / 'structure.xyz'}, model: analytic, symmetrize: o3:2")
    xml = render_input(atoms, atoms.get_velocities(), forcefield=block, total_steps=2,
                       prefix="direct")
    run_ipi_input(tmp_path, xml, [])
    step = first_step(tmp_path, len(atoms), prefix="direct")
    np.testing.assert_allclose(step["forces"], forces, atol=1e-12)


# --- mdsym serve against a scripted server: EXIT, closed socket, batches, refused ----------


def cpu_seconds(pid) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ScriptedServer:
    """A unix-socket server that plays i-PI's side of the protocol step by step."""

    def __init__(self, tmp_path):
        self.name = unique_name("srv")
        self.path = "/tmp/ipi_" + self.name
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.listener.settimeout(60)
        self.conn = None

    def accept(self):
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(60)

    def ask(self, message) -> bytes:
        self.conn.sendall(message)
        return bytes(p.recv_exact(self.conn, p.HEADER_LENGTH))

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def start_serve(tmp_path, name, *extra):
    return subprocess.Popen(SERVE + ["--model", "analytic", "--structure", str(CLUSTER),
                                     "--unix", name, "--wait", "30",
                                     *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_serve_protocol_exit_closed_socket_and_batches(tmp_path):
    atoms = ase.io.read(CLUSTER)
    h = np.eye(3) * 1000 / p.BOHR
    q = atoms.positions / p.BOHR
    reference = Potential(load_model("analytic"), atoms, "none")
    server = ScriptedServer(tmp_path)
    serve = None
    try:
        serve = start_serve(tmp_path, server.name)
        server.accept()
        assert server.ask(p.STATUS) == p.NEEDINIT
        server.conn.sendall(p.INIT + np.int32(0).tobytes() + np.int32(0).tobytes())
        assert server.ask(p.STATUS) == p.READY
        server.conn.sendall(p.POSDATA + h.tobytes() + np.linalg.inv(h).tobytes()
                            + np.int32(len(q)).tobytes() + q.tobytes())
        assert server.ask(p.STATUS) == p.HAVEDATA
        assert server.ask(p.GETFORCE) == p.FORCEREADY
        energy = p.recv_array(server.conn, ())
        assert p.recv_int(server.conn) == len(q)
        forces = p.recv_array(server.conn, (len(q), 3))
        p.recv_array(server.conn, (3, 3))
        assert p.recv_int(server.conn) == 0  # no extras without symmetrization
        e_ref, f_ref, _, _ = reference.evaluate(h, q)
        assert abs(energy - e_ref) < 1e-12 and np.abs(forces - f_ref).max() < 1e-12

        # idle: the client sleeps in recv, it does not spin
        before = cpu_seconds(serve.pid)
        time.sleep(2.0)
        assert cpu_seconds(serve.pid) - before < 0.2
        server.conn.sendall(p.EXIT)
        serve.wait(timeout=20)
        assert serve.returncode == 0 and "EXIT" in serve.stderr.read()
    finally:
        stop(serve)
        server.close()

    # batched requests (i-PI's <batch_size>), then a server that leaves without EXIT
    server = ScriptedServer(tmp_path)
    serve = None
    try:
        serve = start_serve(tmp_path, server.name, "--symmetrize", "o3:1")
        server.accept()
        assert server.ask(p.STATUS) == p.NEEDINIT
        init = b"batch_size:3"
        server.conn.sendall(p.INIT + np.int32(0).tobytes() + np.int32(len(init)).tobytes() + init)
        assert server.ask(p.STATUS) == p.READY
        rng = np.random.default_rng(0)
        batch = [q + rng.normal(scale=0.05, size=q.shape) for _ in range(3)]
        payload = p.POSDATA + np.int32(len(q)).tobytes()
        for _ in batch:
            payload += h.tobytes() + np.linalg.inv(h).tobytes()
        payload += np.array(batch).tobytes() + p.GETFORCE
        server.conn.sendall(payload)
        assert bytes(p.recv_exact(server.conn, p.HEADER_LENGTH)) == p.FORCEREADY
        energies = p.recv_array(server.conn, (3,))
        assert p.recv_int(server.conn) == len(q)
        forces = p.recv_array(server.conn, (3, len(q), 3))
        p.recv_array(server.conn, (3, 3, 3))
        extras = [json.loads(p.recv_exact(server.conn, p.recv_int(server.conn)).decode())
                  for _ in range(3)]
        symmetrized = Potential(load_model("analytic"), atoms, "o3:1")
        for k, positions in enumerate(batch):
            e_ref, f_ref, _, x_ref = symmetrized.evaluate(h, positions)
            assert abs(energies[k] - e_ref) < 1e-12 and np.abs(forces[k] - f_ref).max() < 1e-12
            for key, value in json.loads(x_ref).items():
                assert extras[k][key] == pytest.approx(value, rel=1e-9)
        server.close()  # no EXIT: a failure (tests/test_ipi_paths.py has the exit codes)
        serve.wait(timeout=20)
        assert serve.returncode != 0 and "without EXIT" in serve.stderr.read()
    finally:
        stop(serve)
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_serve_bad_inputs_are_one_line(tmp_path):
    def run(*args):
        done = subprocess.run(SERVE + ["--model", "analytic"] + list(args), capture_output=True,
                              text=True, timeout=60)
        lines = done.stderr.strip().splitlines()
        return done.returncode, lines

    code, lines = run("--structure", str(CLUSTER), "--port", str(free_port()))
    assert code == 2 and len(lines) == 1 and "cannot connect" in lines[0] and "refused" in lines[0]
    code, lines = run("--structure", str(CLUSTER), "--unix", unique_name("none"))
    assert code == 2 and len(lines) == 1 and "cannot connect" in lines[0]
    (tmp_path / "bad.xyz").write_text("this is not a structure\n")
    code, lines = run("--structure", str(tmp_path / "bad.xyz"), "--unix", "x")
    assert code == 2 and len(lines) == 1 and "bad.xyz" in lines[0]
    code, lines = run("--structure", str(CLUSTER))
    assert code == 2 and len(lines) == 1 and "--unix" in lines[0]
    code, lines = run("--structure", str(CLUSTER), "--unix", "x", "--symmetrize", "o3:banana")
    assert code == 2 and len(lines) == 1
    # a model that does not know the species (the last --model wins)
    from mdsym.models import shipped

    if "pet-ethanol" in shipped.names():
        code, lines = run("--structure", str(CLUSTER), "--unix", "x", "--model", "pet-ethanol")
        assert code == 2 and len(lines) == 1 and "species" in lines[0]


def test_engine_bad_inputs_are_mdsym_errors(tmp_path, monkeypatch):
    from mdsym.engines import ipi_md

    rundir = RunDirectory(tmp_path / "run")
    rundir.create(ase.io.read(CLUSTER))
    name = unique_name("busy")
    busy = Path("/tmp/ipi_" + name)
    busy.write_text("")
    try:
        with pytest.raises(MdsymError, match="in use"):
            ipi_md.run_ipi(nve_config(rundir, address=name), rundir)
    finally:
        busy.unlink()
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(MdsymError, match="in use"):
            ipi_md.run_ipi(nve_config(rundir, socket="tcp", port=port), rundir)
    with pytest.raises(MdsymError, match="Python object"):
        ipi_md.run_ipi(nve_config(rundir, model=load_model("analytic")), rundir)
    from mdsym import processes

    monkeypatch.setattr(processes, "_script_dirs", lambda: [tmp_path / "nowhere"])
    monkeypatch.setattr(processes.shutil, "which", lambda name: None)
    with pytest.raises(MdsymError, match="cannot find 'i-pi'.*pip install ipi"):
        ipi_md.run_ipi(nve_config(rundir), rundir)


# --- interruption, resume, monitors ---------------------------------------------------


def test_interrupted_run_keeps_frames_and_resumes_without_duplicates(tmp_path):
    from mdsym.engines.ipi_md import run_ipi

    atoms = cluster_with_velocities()
    reference = RunDirectory(tmp_path / "reference")
    reference.create(atoms)
    assert run_ipi(nve_config(reference, steps=40, stride=5), reference)["status"] == "completed"

    rundir = RunDirectory(tmp_path / "run")
    rundir.create(atoms)

    def interrupt(step, total):
        if step == 25:
            raise KeyboardInterrupt

    config = nve_config(rundir, steps=40, stride=5, checkpoint_stride=10)
    result = run_ipi(config, rundir, progress=interrupt)
    assert result["status"] == "interrupted"
    kept = rundir.read_thermo()["step"]
    assert kept[-1] >= 25 and list(kept) == list(range(len(kept)))
    assert not list(Path("/tmp").glob(f"ipi_mdsym-{os.getpid()}-*"))  # socket removed

    result = run_ipi(config, rundir, resume=True)
    assert result["status"] == "completed", result
    thermo = rundir.read_thermo()
    assert list(thermo["step"]) == list(range(41))
    steps = [int(ts.data["step"]) for ts in rundir.universe().trajectory]
    assert steps == list(range(0, 41, 5))
    # NVE is deterministic: the resumed run is the uninterrupted one
    np.testing.assert_allclose(thermo["potential_eV"], reference.read_thermo()["potential_eV"],
                               atol=1e-9)


def test_monitor_stops_a_run_that_blows_up(tmp_path):
    from mdsym.engines.ipi_md import run_ipi

    rundir = RunDirectory(tmp_path / "run")
    rundir.create(cluster_with_velocities())
    # a huge non-conservative term pumps energy in: the temperature explodes
    config = nve_config(rundir, model="analytic:direct1=50", forces="direct", steps=400,
                        max_temperature_factor=5.0, min_distance_A=0.5)
    result = run_ipi(config, rundir)
    assert result["status"] == "failed", result
    assert "temperature" in result["reason"] or "apart" in result["reason"]
    assert result["time_to_failure_fs"] > 0
    thermo = rundir.read_thermo()
    assert thermo["step"][-1] == result["steps_done"] < 400
