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

from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.md.ipi_engine import input as ipi_input
from mdsym.md.ipi_engine.outputs import SegmentReader
from mdsym.md.ipi_engine.supervisor import run_input
from mdsym.md.processes import command_for, mdsym_command, stop
from mdsym.md.rundir import RunDirectory
from mdsym.models import load_model
from mdsym.serving import ipi_protocol as p
from mdsym.serving.ipi_client import Potential
from mdsym.symmetry.averaging import average

from .helpers import serve_processes

pytest.importorskip("ipi")

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "mdsym" / "data" / "structures" / "cu-cluster-55.xyz"
PES = ROOT / "drivers" / "mdsym_pes.py"
SERVE = [*mdsym_command(), "serve"]

pytestmark = pytest.mark.timeout(180)


def unique_name(tag="t") -> str:
    return f"mdsym-{tag}-{os.getpid()}-{secrets.token_hex(3)}"


def cluster_with_velocities(seed=1, temperature=300.0):
    from mdsym.md.ipi_engine.segment_input import initial_velocities

    atoms = ase.io.read(CLUSTER)
    atoms.set_velocities(initial_velocities(atoms, temperature, seed))
    return atoms


def run_ipi_input(tmp_path, xml, clients, timeout=120.0, settle=0.0):
    """Run i-PI on ``xml`` with the client commands (mdsym's supervisor); return their logs.
    ``settle``: seconds the clients get to start (import torch) before i-PI opens."""
    finished = run_input(tmp_path, xml, clients, timeout=timeout, settle=settle)
    assert finished.returncode is not None, "i-PI did not finish in time"
    log = finished.log
    assert finished.returncode == 0 and "Traceback" not in log, log[-2000:]
    return finished.client_logs


def first_step(tmp_path, atoms, prefix="seg0"):
    """Step 0 as i-PI wrote it (atomic units): frame arrays, and ``thermo`` in the
    order of ``ipi_input.THERMO``."""
    reader = SegmentReader(tmp_path, prefix, atoms.get_chemical_symbols(), extras=False)
    step = dict(reader.poll())[0]
    return {**step.arrays, "thermo": [step.thermo[name] for name in ipi_input.THERMO]}


def md_input(atoms, forcefield, total_steps, prefix="seg0", extras=False) -> str:
    """An NVE input from the structure's velocities (mdsym's input builder)."""
    outputs = ipi_input.Outputs(prefix=prefix, extras=extras)
    return ipi_input.to_text(ipi_input.simulation(atoms, atoms.get_velocities(), forcefield,
                                                  total_steps, outputs=outputs))


# --- the engine: same trajectory as ASE ---------------------------------------------


def nve_config(rundir, **extra):
    config = dict(model="analytic", symmetrize="none", forces="auto", structure=str(rundir.structure),
                  ensemble="nve", thermostat="svr", timestep_fs=2.0, steps=50, temperature_K=300.0,
                  seed=1, stride=10, socket="unix", port=None, batch_size=64)
    config.update(extra)
    return config


def test_ipi_engine_matches_ase_velocity_verlet(tmp_path):
    from ase.md.verlet import VelocityVerlet

    from mdsym.md.ipi_engine.run import run_ipi
    from mdsym.serving.ase_calculator import MdsymCalculator

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


def test_ipi_engine_logs_the_degree_behind_every_row_as_ase_does(tmp_path):
    """The clients return the degree of their quadrature with the rotational std: a
    fixed grid writes its degree in every row; o3:auto writes the degree it chose, and
    run.json logs each choice, as the ASE engine does (the analytic model's bond2 term
    needs degree 2 to meet 1e-3 eV/A)."""
    from mdsym.md.ipi_engine.run import run_ipi
    from mdsym.md.run import run_md

    for spec, expected in (("o3:1", 1), ("o3:auto:0.001:100", 2)):
        rundir = RunDirectory(tmp_path / spec.replace(":", "_"))
        rundir.create(cluster_with_velocities())
        model = "analytic:bond2=0.02"
        result = run_ipi(nve_config(rundir, model=model, symmetrize=spec, steps=10), rundir)
        assert result["status"] == "completed", result
        degrees = rundir.read_thermo()["symmetrize_degree"]
        assert np.all(degrees == expected), degrees
        reference = run_md(nve_config(rundir, model=model, symmetrize=spec, steps=10, engine="ase",
                                      structure=str(CLUSTER)), tmp_path / f"ase-{expected}")
        assert np.all(RunDirectory(tmp_path / f"ase-{expected}").read_thermo()["symmetrize_degree"]
                      == degrees)
        if spec.startswith("o3:auto"):
            ase_log = reference["segments"][0]["degree_log"]
            assert [(e["step"], e["degree"]) for e in result["degree_log"]] == \
                [(e["step"], e["degree"]) for e in ase_log] == [(0, 2)]
        else:
            assert "degree_log" not in result


# --- ffrotations over two mdsym serve processes --------------------------------------


def test_ffrotations_over_two_serves_matches_in_driver_averaging(tmp_path):
    from mdsym.md.ipi_engine.rotation_grid import ipi_rotation_grid

    atoms = cluster_with_velocities()
    model = "analytic:bond2=0.05,vector1=0.05,vector3-=0.02"
    grid = ipi_rotation_grid("lebedev", 3, inversion=True)

    # in-driver averaging on the same quadrature, in this process
    expected = average(load_model(model), System.from_atoms(atoms), grid)

    name = unique_name("rot")
    block = ipi_input.rotations("mdsym", ipi_input.socket("mdsym", "unix", name),
                                grid_mode="lebedev", grid_order=3, inversion=True)
    xml = md_input(atoms, block, total_steps=1)
    ase.io.write(tmp_path / "structure.xyz", atoms)
    serve = SERVE + ["--model", model, "--structure", str(tmp_path / "structure.xyz"),
                     "--unix", name, "--wait", "60"]
    # both clients must be up before i-PI starts, or one may serve the whole single step
    logs = run_ipi_input(tmp_path, xml, [serve, serve], settle=15.0)
    step = first_step(tmp_path, atoms)
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
    block = ipi_input.socket("mdsym", "unix", name)
    xml = md_input(atoms, block, total_steps=1, prefix="one", extras=True)
    run_ipi_input(tmp_path, xml, [SERVE + ["--model", model, "--structure",
                                            str(tmp_path / "structure.xyz"), "--unix", name,
                                            "--quadrature", str(tmp_path / "grid.npz"),
                                            "--wait", "60"]])
    step = first_step(tmp_path, atoms, prefix="one")
    np.testing.assert_allclose(step["forces"] * p.AU_FORCE, expected["forces"], atol=1e-10)
    extras = (tmp_path / "one.extras_0").read_text()
    assert "energy_rot_std" in extras and "forces_rot_std" in extras


# --- i-PI's own driver and ffdirect with the PES plugin ----------------------------------


def test_ipi_py_driver_and_ffdirect_use_the_pes_plugin(tmp_path):
    atoms = cluster_with_velocities()
    ase.io.write(tmp_path / "structure.xyz", atoms)
    potential = Potential(load_model("analytic"), atoms, "o3:2")
    energy, forces, _, extras = potential.evaluate(
        np.eye(3) * 1000 / p.BOHR, atoms.positions / p.BOHR)
    assert set(json.loads(extras)) == {"energy_rot_std", "forces_rot_std", "symmetrize_degree"}
    assert json.loads(extras)["symmetrize_degree"] == 2

    name = unique_name("pes")
    block = ipi_input.socket("mdsym", "unix", name)
    xml = md_input(atoms, block, total_steps=2)
    driver = [*command_for("i-pi-py_driver"), "-m", "custom", "-P", str(PES), "-u", "-a", name,
              "-o", f"template={tmp_path / 'structure.xyz'},model=analytic,symmetrize=o3:2"]
    run_ipi_input(tmp_path, xml, [driver])
    step = first_step(tmp_path, atoms)
    np.testing.assert_allclose(step["forces"], forces, atol=1e-12)
    assert abs(step["thermo"][2] - energy) < 1e-12

    block = ipi_input.direct("mdsym", PES, {"template": tmp_path / "structure.xyz",
                                            "model": "analytic", "symmetrize": "o3:2"})
    xml = md_input(atoms, block, total_steps=2, prefix="direct")
    run_ipi_input(tmp_path, xml, [])
    step = first_step(tmp_path, atoms, prefix="direct")
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
                              text=True, timeout=180)
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
    from mdsym.md.ipi_engine import run as ipi_md

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
    from mdsym.md import processes

    monkeypatch.setattr(processes, "_script_dirs", lambda: [tmp_path / "nowhere"])
    monkeypatch.setattr(processes.shutil, "which", lambda name: None)
    with pytest.raises(MdsymError, match="cannot find 'i-pi'.*pip install ipi"):
        ipi_md.run_ipi(nve_config(rundir), rundir)


# --- interruption, resume, monitors ---------------------------------------------------


def test_interrupted_run_keeps_frames_and_resumes_without_duplicates(tmp_path):
    from mdsym.md.ipi_engine.run import run_ipi

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
    from mdsym.md.ipi_engine.run import run_ipi

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


# --- scale-out: several drivers, beads, a lost client ----------------------------------


def pimd_config(rundir, **extra):
    """Path-integral MD (4 beads) under a seeded thermostat (PILE-G)."""
    settings = dict(ensemble="nvt", beads=4, steps=40, stride=5, thermostat_tau_fs=50.0,
                    checkpoint_stride=10)
    return nve_config(rundir, **{**settings, **extra})


@pytest.fixture(scope="module")
def pimd_one_driver(tmp_path_factory):
    from mdsym.md.ipi_engine.run import run_ipi

    rundir = RunDirectory(tmp_path_factory.mktemp("pimd") / "one-driver")
    rundir.create(cluster_with_velocities())
    result = run_ipi(pimd_config(rundir, drivers=1), rundir)
    assert result["status"] == "completed", result
    return rundir


def assert_same_run(rundir, reference):
    thermo, expected = rundir.read_thermo(), reference.read_thermo()
    assert list(thermo["step"]) == list(range(41)) == list(expected["step"])
    for column in ("potential_eV", "kinetic_eV", "conserved_eV", "Lx", "fnet_x"):
        np.testing.assert_allclose(thermo[column], expected[column], rtol=1e-9, atol=1e-9)
    frames = [ts.positions.copy() for ts in rundir.universe().trajectory]
    expected_frames = [ts.positions.copy() for ts in reference.universe().trajectory]
    assert len(frames) == len(expected_frames) == 9
    np.testing.assert_allclose(frames, expected_frames, atol=1e-5)  # TRR: single precision


def test_two_tcp_drivers_give_the_one_driver_trajectory(tmp_path, pimd_one_driver):
    from mdsym.md.ipi_engine.run import run_ipi

    rundir = RunDirectory(tmp_path / "two-drivers")
    rundir.create(cluster_with_velocities())
    result = run_ipi(pimd_config(rundir, drivers=2, socket="tcp"), rundir)
    assert result["status"] == "completed", result
    assert result["ipi"]["beads"] == 4 and result["ipi"]["drivers"] == 2
    # the beads moved apart (PIMD proper, not classical MD four times)
    thermo = rundir.read_thermo()
    assert np.ptp(thermo["temperature_K"][-10:]) > 0
    assert_same_run(rundir, pimd_one_driver)
    # both clients computed forces
    logs = [path.read_text() for path in sorted((rundir.path / "ipi").glob("seg0.serve*.log"))]
    assert len(logs) == 2 and all("EXIT after" in log for log in logs), logs


def client_pids(address: str) -> list:
    """The ``mdsym serve`` processes connected to ``address`` (Linux /proc)."""
    return [pid for pid, _ in serve_processes(address)]


def test_a_killed_client_costs_no_step(tmp_path, pimd_one_driver):
    from mdsym.md.ipi_engine.run import run_ipi

    rundir = RunDirectory(tmp_path / "killed")
    rundir.create(cluster_with_velocities())
    name = unique_name("kill")
    killed = []

    def kill_one_client(step, total):
        if step == 15 and not killed:
            pids = client_pids(name)
            assert len(pids) == 2, pids
            os.kill(pids[-1], signal.SIGKILL)
            killed.append(pids[-1])

    result = run_ipi(pimd_config(rundir, drivers=2, address=name), rundir,
                     progress=kill_one_client)
    assert killed and result["status"] == "completed", result
    restart = result["restarts"][0]
    assert restart["clients"] == 1 and 10 <= restart["step"] <= 40, result["restarts"]
    # every step once, and the same steps as the run that lost nothing
    assert_same_run(rundir, pimd_one_driver)
    assert not client_pids(name)


def test_a_lost_remote_client_costs_no_step(tmp_path):
    """A client mdsym did not start (another host's) dies: i-PI's socket thread dies
    with it, the supervisor reads that in i-PI's log and continues with the local one."""
    from mdsym.md.ipi_engine.run import run_ipi
    from mdsym.md.processes import start

    rundir = RunDirectory(tmp_path / "run")
    rundir.create(cluster_with_velocities())
    name = unique_name("remote")
    remote = start(SERVE + ["--model", "analytic", "--structure", str(CLUSTER), "--unix", name,
                            "--wait", "60"], tmp_path, tmp_path / "remote.log")
    killed = []

    def kill_the_remote_client(step, total):
        if step >= 15 and not killed:
            deadline = time.monotonic() + 60
            while "initialised" not in (tmp_path / "remote.log").read_text():
                assert time.monotonic() < deadline, "the remote client never joined"
                time.sleep(0.1)
            os.kill(remote.pid, signal.SIGKILL)
            killed.append(step)

    try:
        result = run_ipi(pimd_config(rundir, drivers=1, address=name, steps=120), rundir,
                         progress=kill_the_remote_client)
    finally:
        stop(remote)
    assert killed and result["status"] == "completed", result
    # Whether i-PI stalls depends on when the client dies: between two requests i-PI
    # drops it and carries on with the local one; during one, its socket thread dies
    # and the supervisor restarts from the checkpoint. Either way, every step once.
    for restart in result["restarts"]:
        assert "socket thread" in restart["reason"], result["restarts"]
    assert list(rundir.read_thermo()["step"]) == list(range(121))


def test_beads_and_drivers_are_refused_by_the_ase_engine(tmp_path):
    for option in ("--beads", "--drivers"):
        done = subprocess.run([*mdsym_command(), "run", "--engine", "ase", "--model", "analytic",
                               "--structure", str(CLUSTER), option, "2", "--steps", "2",
                               "--no-progress", "--out", str(tmp_path / "run")],
                              capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "i-PI engine" in lines[0] and "--engine ipi" in lines[0]
        assert not (tmp_path / "run").exists()


# --- every input the CLI can ask for is one i-PI accepts -----------------------------


@pytest.mark.parametrize("ensemble,thermostat", [("nve", "svr"), ("nvt", "svr"), ("nvt", "langevin")])
@pytest.mark.parametrize("beads", [1, 4])
@pytest.mark.parametrize("symmetrize,average_in", [
    ("none", "driver"), ("o3:1+nettorque", "driver"), ("random", "driver"),
    ("o3:2", "ipi"), ("so3:1", "ipi"), ("o3:1:rotated", "ipi")])
@pytest.mark.parametrize("socket_kind", ["unix", "tcp"])
def test_every_cli_input_is_accepted_by_ipis_own_parser(tmp_path, monkeypatch, ensemble, thermostat,
                                                       beads, symmetrize, average_in, socket_kind):
    """The engine's input for each (ensemble, thermostat, beads, symmetrization and
    where it is averaged, socket) that ``mdsym run --engine ipi`` allows goes through
    i-PI's own input classes (``InputSimulation.parse`` and ``fetch``, which build
    i-PI's objects and check every option, e.g. the thermostat mode) without error; a
    wrong mode is refused by them. With ``--average-in ipi`` i-PI builds the
    ``<ffrotations>`` grid mdsym chose, of the size mdsym records."""
    from ipi.inputs.simulation import InputSimulation
    from ipi.utils.io.inputs import io_xml

    from mdsym.md.config import RunConfig
    from mdsym.md.ipi_engine.prepare import IpiRun
    from mdsym.md.ipi_engine.rotation_grid import rotation_grid
    from mdsym.md.ipi_engine.segment_input import first_input
    from mdsym.md.ipi_engine.sockets import Socket

    atoms = ase.io.read(CLUSTER)
    config = RunConfig(model="analytic", structure=str(CLUSTER), engine="ipi", ensemble=ensemble,
                       thermostat=thermostat, beads=beads, symmetrize=symmetrize, steps=5,
                       socket=socket_kind, port=31415 if socket_kind == "tcp" else None,
                       average_in=average_in)
    socket = Socket("unix", unique_name("parse")) if socket_kind == "unix" else \
        Socket("inet", "localhost", 31415)
    grid = rotation_grid(config)
    run = IpiRun(config, None, atoms, False, None, socket, config.symmetrize.mode != "none", grid)
    xml = first_input(run, "seg0")
    monkeypatch.chdir(tmp_path)

    def fetched(text):
        simulation = InputSimulation()
        simulation.parse(io_xml.xml_parse_string(text).fields[0][1])
        return simulation.fetch()

    simulation = fetched(xml)
    assert type(simulation).__name__ == "Simulation"
    rotations = [ff for ff in simulation.fflist.values() if type(ff).__name__ == "FFRotations"]
    if average_in == "driver":
        assert not rotations
    else:
        (ff,) = rotations
        assert len(ff._rotations) * (2 if ff.inversion else 1) == grid.describe()["size"]
        assert ff.inversion == symmetrize.startswith("o3") and ff.random == symmetrize.endswith("rotated")
    if ensemble == "nvt":
        wrong = xml.replace('mode="pile_l"', 'mode="banana"').replace('mode="pile_g"', 'mode="banana"')
        wrong = wrong.replace(f'mode="{thermostat}"', 'mode="banana"')
        with pytest.raises(ValueError, match="banana"):
            fetched(wrong)
