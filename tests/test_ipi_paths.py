"""The i-PI paths behave like ``mdsym serve`` (issue 11): the PES plugin's defaults and
threads, ``mdsym serve``'s exit codes, the spec's quadrature, bit-identical model
calls, one timestep default.

``mdsym serve`` is driven by a fake server below that plays i-PI's side of the
protocol over a unix socket (``mdsym.serving.ipi_protocol`` frames the messages).
"""

import importlib.util
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from mdsym import MdsymCalculator, MdsymError, load_model
from mdsym.core.defaults import DEFAULT_MODEL, DEFAULT_STRUCTURE, structure_path
from mdsym.core.system import System
from mdsym.md.processes import command_for, mdsym_command
from mdsym.serving import ipi_protocol as p

pytest.importorskip("ipi")

ROOT = Path(__file__).resolve().parent.parent
PES = ROOT / "drivers" / "mdsym_pes.py"
SERVE = [*mdsym_command(), "serve"]
SYMMETRIZED_MODEL = "analytic:bond2=0.05,vector1=0.05,vector3-=0.02"

pytestmark = pytest.mark.timeout(300)


def ethanol():
    return ase.io.read(structure_path(DEFAULT_STRUCTURE))


def load_plugin():
    spec = importlib.util.spec_from_file_location("mdsym_pes_under_test", PES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after a test that lets mdsym set it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --- the PES plugin shares mdsym serve's defaults and thread rule ----------------------


def test_plugin_defaults_are_the_cli_defaults(torch_threads):
    torch.set_num_threads(2)  # as on a 2-core machine: the plugin must bring it to 1
    driver = load_plugin().MdsymDriver()  # no options at all, as `-m custom -P ...` alone
    assert torch.get_num_threads() == 1  # ethanol has 9 atoms, below 256
    assert driver.potential.model.name == DEFAULT_MODEL == "pet-ethanol"
    assert str(driver.potential.symmetrizer.spec) == "none"
    assert driver.potential.symmetrizer.batch_size is None  # auto: chosen from the model

    atoms = ethanol()
    energy, forces, virial, extras = driver.compute_structure(
        np.eye(3) * 100.0, atoms.positions / p.BOHR)
    expected = load_model("pet-ethanol").evaluate(System.from_atoms(atoms), np.eye(3)[None],
                                                  ("energy", "forces"))
    assert energy == pytest.approx(expected["energy"][0] / p.HARTREE, rel=0, abs=1e-9)
    np.testing.assert_allclose(forces, expected["forces"][0] / p.AU_FORCE, rtol=0, atol=1e-9)
    assert extras == ""  # nothing averaged: no rotational std to report
    # a PET model near its training data, not the analytic default it used to fall back to
    assert -400 < energy * p.HARTREE < -200


def test_plugin_options_and_bad_values(torch_threads):
    module = load_plugin()
    driver = module.MdsymDriver(model="analytic:bond2=0.05;vector1=0.05",
                                symmetrize="o3:1", batch_size=3, seed=5, threads=2)
    assert driver.potential.symmetrizer.batch_size == 3
    assert len(driver.potential.symmetrizer.quadrature) == 8
    assert torch.get_num_threads() == 2
    with pytest.raises(MdsymError, match="batch_size must be auto or a number"):
        module.MdsymDriver(model="analytic", batch_size="many")


# --- mdsym serve's exit codes, against a fake i-PI ---------------------------------------


class FakeIpi:
    """A unix-socket server speaking i-PI's side of the protocol, one message at a time."""

    def __init__(self):
        self.name = f"mdsym-paths-{os.getpid()}-{secrets.token_hex(3)}"
        self.path = "/tmp/ipi_" + self.name
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.listener.settimeout(120)
        self.conn = None

    def accept(self):
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(120)

    def ask(self, message) -> bytes:
        self.conn.sendall(message)
        return bytes(p.recv_exact(self.conn, p.HEADER_LENGTH))

    def init(self):
        assert self.ask(p.STATUS) == p.NEEDINIT
        self.conn.sendall(p.INIT + np.int32(0).tobytes() + np.int32(0).tobytes())
        assert self.ask(p.STATUS) == p.READY

    def evaluate(self, h, q):
        """One POSDATA/GETFORCE round trip: energy (Ha), forces (Ha/Bohr), extras."""
        self.conn.sendall(p.POSDATA + h.tobytes() + np.linalg.inv(h).tobytes()
                          + np.int32(len(q)).tobytes() + q.tobytes())
        assert self.ask(p.STATUS) == p.HAVEDATA
        assert self.ask(p.GETFORCE) == p.FORCEREADY
        energy = float(p.recv_array(self.conn, ()))
        assert p.recv_int(self.conn) == len(q)
        forces = p.recv_array(self.conn, (len(q), 3))
        p.recv_array(self.conn, (3, 3))
        extras = bytes(p.recv_exact(self.conn, p.recv_int(self.conn))).decode()
        return energy, forces, json.loads(extras) if extras else {}

    def reset(self):
        """Close with a TCP-style reset where the kernel offers one (SO_LINGER 0)."""
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        self.conn = self.listener = None
        if os.path.exists(self.path):
            os.unlink(self.path)


def start_serve(name, *extra):
    return subprocess.Popen(SERVE + ["--model", "analytic", "--unix", name, "--wait", "60",
                                     *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(serve):
    """Return code and stderr lines of a serve process (killed if it does not end)."""
    try:
        _, err = serve.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
        _, err = serve.communicate(timeout=10)
    return serve.returncode, err.strip().splitlines()


@pytest.mark.parametrize("ending", ["exit", "close after init", "reset before init"])
def test_serve_exit_code_says_how_ipi_left(ending):
    server = FakeIpi()
    serve = start_serve(server.name, "--quiet")
    try:
        server.accept()
        if ending == "reset before init":
            assert server.ask(p.STATUS) == p.NEEDINIT
            server.reset()
        else:
            server.init()
            atoms = ethanol()
            server.evaluate(np.eye(3) * 100.0, atoms.positions / p.BOHR)
            if ending == "exit":
                server.conn.sendall(p.EXIT)
            else:
                server.close()
        code, lines = finish(serve)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        server.close()
    if ending == "exit":
        assert code == 0 and lines == []
    else:
        assert code != 0 and len(lines) == 1 and lines[0].startswith("mdsym: error:"), lines
        expected = "before initialising" if ending == "reset before init" else "without EXIT after 1"
        assert expected in lines[0]


# --- a symmetrized serve averages over its spec's quadrature ------------------------------


def test_symmetrized_serve_uses_the_spec_quadrature():
    atoms = ethanol()
    results = {}
    for spec in ("o3:1", "o3:3"):
        server = FakeIpi()
        serve = start_serve(server.name, "--model", SYMMETRIZED_MODEL, "--symmetrize", spec,
                            "--quiet")
        try:
            server.accept()
            server.init()
            results[spec] = server.evaluate(np.eye(3) * 100.0, atoms.positions / p.BOHR)
            server.conn.sendall(p.EXIT)
            assert finish(serve)[0] == 0
        finally:
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGKILL)
            server.close()
    for spec, (energy, forces, extras) in results.items():
        copy = atoms.copy()
        copy.calc = MdsymCalculator(load_model(SYMMETRIZED_MODEL), symmetrize=spec)
        assert energy * p.HARTREE == pytest.approx(copy.get_potential_energy(), abs=1e-9)
        assert extras["energy_rot_std"] == pytest.approx(
            copy.calc.results["energy_rot_std"], rel=1e-9)
    # the two quadratures see different spreads: the check tells them apart
    assert abs(results["o3:1"][2]["energy_rot_std"] - results["o3:3"][2]["energy_rot_std"]) > 1e-3


def test_an_explicit_quadrature_does_not_replace_a_spec_silently():
    from mdsym.serving.ipi_client import Potential
    from mdsym.symmetry import quadrature as quad

    model = load_model(SYMMETRIZED_MODEL)
    grid = quad.by_name("cheapest", 2, True)
    potential = Potential(model, ethanol(), "nettorque", quadrature=grid)
    assert potential.symmetrizer.quadrature is grid and potential.extras
    with pytest.raises(MdsymError, match="explicit quadrature"):
        Potential(model, ethanol(), "o3:3", quadrature=grid)
    with pytest.raises(MdsymError, match="explicit quadrature"):
        Potential(model, ethanol(), "random", quadrature=grid)


# --- the same input, the same bits, from the first call on --------------------------------


def test_first_and_second_pet_call_are_bit_identical_in_a_fresh_process():
    script = (
        "import numpy as np, mdsym\n"
        "from mdsym.core.defaults import DEFAULT_STRUCTURE\n"
        "from mdsym.core.system import System, read_structure\n"
        "model = mdsym.load_model('pet-ethanol')\n"
        "system = System.from_atoms(read_structure(DEFAULT_STRUCTURE))\n"
        "rotations = np.eye(3)[None]\n"
        "calls = [model.evaluate(system, rotations, ('energy', 'forces')) for _ in range(3)]\n"
        "print(max(float(np.abs(c[k] - calls[0][k]).max()) for c in calls[1:]"
        " for k in ('energy', 'forces')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) == 0.0


def test_pimd_with_one_and_two_plugin_clients_is_bit_identical(tmp_path):
    """4-bead PIMD of ethanol, i-PI's python driver running the plugin with no options:
    one client, then two sharing the beads, give the same trajectory bit for bit."""
    from mdsym.md.ipi_engine.input import Dynamics, simulation, socket, to_text
    from mdsym.md.ipi_engine.segment_input import initial_velocities
    from mdsym.md.processes import start, stop

    atoms = ethanol()
    velocities = initial_velocities(atoms, 300.0, 1)
    beads = 4
    trajectories = {}
    for clients in (1, 2):
        workdir = tmp_path / f"clients{clients}"
        workdir.mkdir()
        name = f"mdsym-pimd-{os.getpid()}-{secrets.token_hex(3)}"
        # every bead starts from the same positions and velocities
        xml = to_text(simulation(atoms, velocities, socket("mdsym", "unix", name), total_steps=3,
                                 dynamics=Dynamics(beads=beads)))
        (workdir / "input.xml").write_text(xml)
        driver = [*command_for("i-pi-py_driver"), "-m", "custom", "-P", str(PES), "-u",
                  "-a", name]
        processes = []
        try:
            ipi = start([*command_for("i-pi"), "input.xml"], workdir, workdir / "ipi.log")
            processes.append(ipi)
            for k in range(clients):
                processes.append(start(driver, workdir, workdir / f"client{k}.log"))
            ipi.wait(timeout=240)
            assert ipi.returncode == 0, (workdir / "ipi.log").read_text()[-2000:]
        finally:
            for process in processes:  # i-PI's driver may linger after EXIT: never leave it
                stop(process)
        for k in range(clients):
            log = (workdir / f"client{k}.log").read_text()
            assert "serving pet-ethanol [none]" in log and "(1 torch thread)" in log, log
        # the centroid frames (mdsym's outputs) depend on every bead's positions and forces
        trajectories[clients] = {what: (workdir / f"seg0.{what}.bin").read_bytes()
                                 for what in ("pos", "frc")}
        thermo = np.loadtxt(workdir / "seg0.thermo", ndmin=2)
        if clients == 1:
            # the potential is pet-ethanol's (per bead, all beads alike at step 0)
            expected = load_model("pet-ethanol").evaluate(
                System.from_atoms(atoms), np.eye(3)[None], ("energy",))["energy"][0]
            assert thermo[0, 2] * p.HARTREE == pytest.approx(expected, abs=1e-6)
    assert trajectories[1] == trajectories[2]


# --- one timestep default ----------------------------------------------------------------


def test_ipi_input_timestep_default_is_the_cli_default():
    import re

    from ase import units

    from mdsym.cli.main import run
    from mdsym.md.ipi_engine.input import simulation, socket, to_text

    cli_default = next(o.default for o in run.params if o.name == "timestep_fs")
    atoms = ethanol()
    xml = to_text(simulation(atoms, np.zeros((len(atoms), 3)), socket("x", "unix", "x"),
                             total_steps=1))
    timestep_au = float(re.search(r"<timestep units=\"atomic_unit\">\s*(\S+)", xml).group(1))
    assert timestep_au * p.AU_TIME / units.fs == pytest.approx(cli_default, rel=1e-12)
