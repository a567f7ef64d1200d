"""``mdsym run --engine ipi --average-in ipi``: i-PI's own ``<ffrotations>`` spreads the
rotations of every step over raw ``mdsym serve`` clients (issue 13, item 5).

The runs use an analytic model whose spurious anisotropy (degree 1 and 2) the degree-2
grid averages out exactly, on the 55-atom copper cluster, a few steps each; every
process started is stopped by the supervisor or in ``finally``.
"""

import socket
import subprocess

import ase.io
import numpy as np
import pytest
from click.testing import CliRunner

from mdsym.core.system import System
from mdsym.md.config import CONFIG_VERSION, RunConfig
from mdsym.md.ipi_engine import input as ipi_input
from mdsym.md.ipi_engine.rotation_grid import RotationGrid, ipi_rotation_grid, rotation_grid
from mdsym.md.ipi_engine.run import run_ipi
from mdsym.md.processes import mdsym_command, stop
from mdsym.md.rundir import RunDirectory
from mdsym.models import load_model
from mdsym.symmetry.averaging import average
from mdsym.symmetry.spec import SymmetrizeSpec

from .test_ipi import CLUSTER, cluster_with_velocities

pytest.importorskip("ipi")
pytestmark = pytest.mark.timeout(240)

MODEL = "analytic:bond2=0.05,vector1=0.05"


def config(rundir, **extra) -> dict:
    settings = dict(model=MODEL, structure=str(rundir.structure), engine="ipi", ensemble="nve",
                    timestep_fs=2.0, steps=12, stride=4, seed=1, symmetrize="o3:2",
                    average_in="ipi", socket="tcp")
    return {**settings, **extra}


def new_rundir(path) -> RunDirectory:
    rundir = RunDirectory(path)
    rundir.create(cluster_with_velocities())
    return rundir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


# --- which grid ------------------------------------------------------------------------


@pytest.mark.parametrize("spec,order,size", [("o3:1", 3, 36), ("o3:2", 3, 36), ("o3:3", 5, 140),
                                             ("so3:3", 5, 70), ("o3:4:rotated", 5, 140)])
def test_the_smallest_exact_ipi_grid_is_chosen(spec, order, size):
    """i-PI's grid of order o is exact to o - 1 (measured): the smallest exact to L is
    taken, and the next smaller one is not exact to L."""
    from mdsym.symmetry.quadrature import worst_error

    parsed = SymmetrizeSpec.parse(spec)
    grid = RotationGrid.for_spec(parsed)
    assert (grid.grid_order, len(grid.quadrature)) == (order, size)
    assert grid.degree >= parsed.degree and grid.random == parsed.rotated
    smaller = ipi_rotation_grid("lebedev", order - 2, parsed.inversion)
    assert worst_error(smaller.rotations, smaller.weights, parsed.degree, parsed.inversion) > 1e-3


# --- 1 and 2 drivers, and clients started by hand ----------------------------------------


@pytest.fixture(scope="module")
def one_driver(tmp_path_factory):
    rundir = new_rundir(tmp_path_factory.mktemp("average-in-ipi") / "one")
    result = run_ipi(config(rundir, drivers=1), rundir)
    assert result["status"] == "completed", result
    return rundir, result


def assert_same_run(rundir, reference):
    thermo, expected = rundir.read_thermo(), reference.read_thermo()
    assert list(thermo["step"]) == list(expected["step"]) == list(range(13))
    for column in ("potential_eV", "kinetic_eV", "conserved_eV", "Lx", "fnet_x", "energy_rot_std_eV"):
        np.testing.assert_allclose(thermo[column], expected[column], rtol=1e-9, atol=1e-12)
    frames = [ts.positions.copy() for ts in rundir.universe().trajectory]
    expected_frames = [ts.positions.copy() for ts in reference.universe().trajectory]
    assert len(frames) == len(expected_frames) == 4
    np.testing.assert_allclose(frames, expected_frames, atol=1e-6)  # TRR: single precision


def test_ipi_averages_the_grid_mdsym_records(one_driver):
    """Step 0's energy and forces are mdsym's own average over i-PI's grid (and not the
    raw model's); the whole trajectory is ASE's velocity Verlet on mdsym's average over
    the same grid; run.json's grid is that grid; the energy's rotational std is i-PI's
    grid energies' (the forces' is NaN: i-PI keeps no per-rotation forces)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mdsym.serving.ase_calculator import MdsymCalculator

    rundir, result = one_driver
    grid = ipi_rotation_grid("lebedev", 3, inversion=True)
    assert result["ipi"]["average_in"] == "ipi"
    assert result["ipi"]["rotations"] == {"name": grid.name, "size": 36, "degree": 2,
                                          "grid_mode": "lebedev", "grid_order": 3,
                                          "inversion": True, "random": False}
    atoms = ase.io.read(rundir.structure)
    expected = average(load_model(MODEL), System.from_atoms(atoms), grid)
    thermo = rundir.read_thermo()
    assert abs(thermo["potential_eV"][0] - expected["energy"]) < 1e-9
    assert abs(thermo["energy_rot_std_eV"][0] - expected["energy_rot_std"]) < 1e-9
    assert expected["energy_rot_std"] > 1e-3  # the model is anisotropic: there was work to do
    assert np.isnan(thermo["forces_rot_std_eVA"]).all()
    first = next(iter(rundir.universe().trajectory))
    kj_per_mol = units.kJ / units.mol  # MDAnalysis reads TRR forces in kJ/mol/A
    np.testing.assert_allclose(first.forces * kj_per_mol, expected["forces"], atol=1e-5)  # single precision

    atoms.calc = MdsymCalculator(load_model(MODEL))
    atoms.calc.symmetrizer.quadrature = grid  # spec none: this grid every call
    dynamics = VelocityVerlet(atoms, 2.0 * units.fs)
    potentials = [atoms.get_potential_energy()]
    for _ in range(12):
        dynamics.run(1)
        potentials.append(atoms.get_potential_energy())
    np.testing.assert_allclose(thermo["potential_eV"], potentials, rtol=0, atol=1e-8)
    # the clients were raw: one evaluation per rotation
    logs = [f.read_text() for f in (rundir.path / "ipi").glob("seg0.serve*.log")]
    assert "[none]" in logs[0] and "after 468 evaluations" in logs[0], logs  # 13 steps x 36


def test_two_tcp_drivers_and_hand_started_clients_give_the_one_driver_trajectory(tmp_path, one_driver):
    reference, _ = one_driver
    rundir = new_rundir(tmp_path / "two")
    result = run_ipi(config(rundir, drivers=2), rundir)
    assert result["status"] == "completed", result
    assert_same_run(rundir, reference)
    # both clients evaluated rotations, 13 steps x 36 between them
    logs = [f.read_text() for f in sorted((rundir.path / "ipi").glob("seg0.serve*.log"))]
    counts = [int(log.split("EXIT after ")[1].split()[0]) for log in logs]
    assert len(counts) == 2 and min(counts) > 0 and sum(counts) == 13 * 36, logs

    # --drivers 0: i-PI waits for clients started by hand (another host's, here this one's)
    rundir = new_rundir(tmp_path / "remote")
    port = free_port()
    client = subprocess.Popen(
        [*mdsym_command(), "serve", "--model", MODEL, "--structure", str(rundir.structure),
         "--address", "localhost", "--port", str(port), "--wait", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        result = run_ipi(config(rundir, drivers=0, port=port), rundir)
        assert client.wait(timeout=60) == 0  # it left on i-PI's EXIT
    finally:
        stop(client)
    assert result["status"] == "completed", result
    assert not list((rundir.path / "ipi").glob("seg0.serve*.log"))  # mdsym started none
    assert_same_run(rundir, reference)


def test_rotated_grid_is_ipis_random_option(tmp_path, one_driver):
    """``o3:2:rotated``: i-PI turns its grid by a fresh random element each step (the
    energies of the rotations differ from the fixed grid's), and the average, exact to
    degree 2 however turned, is the same as the fixed grid's for this degree-2 model."""
    reference, _ = one_driver
    rundir = new_rundir(tmp_path / "rotated")
    result = run_ipi(config(rundir, drivers=1, symmetrize="o3:2:rotated", steps=2, stride=1), rundir)
    assert result["status"] == "completed", result
    assert result["ipi"]["rotations"]["random"] is True
    thermo, expected = rundir.read_thermo(), reference.read_thermo()
    np.testing.assert_allclose(thermo["potential_eV"], expected["potential_eV"][:3], rtol=0, atol=1e-9)

    def grid_energies(run):
        text = (run.path / "ipi" / "seg0.extras_0").read_text().splitlines()
        return np.array([float(x) for x in text[1].split()])

    turned, fixed = grid_energies(rundir), grid_energies(reference)
    assert turned.shape == fixed.shape == (36,)
    assert np.abs(np.sort(turned) - np.sort(fixed)).max() > 1e-6


# --- bad inputs: one line, exit 2, nothing written ----------------------------------------


@pytest.mark.parametrize("args,fragment", [
    (["--symmetrize", "o3:2"], "add --engine ipi"),  # the ASE engine
    (["--engine", "ipi", "--symmetrize", "none"], "no rotations to average"),
    (["--engine", "ipi", "--symmetrize", "random"], "not random"),
    (["--engine", "ipi", "--symmetrize", "o3:auto"], "o3:auto picks its degree in the client"),
    (["--engine", "ipi", "--symmetrize", "o3:2+nettorque"], "cannot be applied after i-PI's average"),
    (["--engine", "ipi", "--symmetrize", "o3:2+netforce"], "cannot be applied after i-PI's average"),
    (["--engine", "ipi", "--symmetrize", "mts:4+o3:2"], "multiple time stepping"),
    (["--engine", "ipi", "--symmetrize", "o3:2:gauss-legendre"], "Lebedev"),
    (["--engine", "ipi", "--symmetrize", "o3:40", "--yes"], "goes up to degree 12"),
    (["--engine", "ipi", "--symmetrize", "o3:12"], "1924 model evaluations per step"),
])
def test_what_ipi_cannot_average_is_one_line(tmp_path, args, fragment):
    from mdsym.cli.main import main

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--model", "analytic", "--structure", "cu-cluster-55",
                                       "--steps", "2", "--out", str(out), "--average-in", "ipi",
                                       *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("mdsym: error:") and fragment in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize("args,fragment", [
    (["--socket", "tcp"], "give i-PI a fixed --port"),
    (["--socket", "unix"], "--address NAME"),
])
def test_remote_only_needs_an_address_clients_can_know(tmp_path, args, fragment):
    from mdsym.cli.main import main

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--model", "analytic", "--structure", "cu-cluster-55",
                                       "--engine", "ipi", "--drivers", "0", "--out", str(out), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and fragment in lines[0], result.stderr
    assert not out.exists()


def test_a_run_json_written_before_average_in_averaged_in_the_driver():
    written = RunConfig(model="analytic", structure=str(CLUSTER), engine="ipi",
                        symmetrize="o3:2").to_json()
    assert written["config_version"] == CONFIG_VERSION and written["average_in"] == "driver"
    written.pop("average_in")
    assert RunConfig.from_json(written).average_in == "driver"
    assert rotation_grid(RunConfig.from_json(written)) is None
    with pytest.raises(Exception, match="missing: beads"):  # other fields are still required
        RunConfig.from_json({k: v for k, v in written.items() if k != "beads"})


def test_ipi_grid_energies_give_mdsyms_rotational_std():
    """The weighted std of i-PI's per-rotation energies is ``symmetrize.average``'s."""
    grid = RotationGrid.for_spec(SymmetrizeSpec.parse("o3:2"))
    atoms = ase.io.read(CLUSTER)
    model = load_model(MODEL)
    system = System.from_atoms(atoms)
    raw = model.evaluate(system, grid.quadrature.rotations, ("energy",))["energy"]
    expected = average(model, system, grid.quadrature)["energy_rot_std"]
    from mdsym.serving import ipi_protocol as p

    assert abs(grid.energy_rot_std(np.asarray(raw) / p.HARTREE) * p.HARTREE - expected) < 1e-10
    assert np.isnan(grid.energy_rot_std(np.zeros(3)))  # not this grid's energies: NaN, not a guess
    assert ipi_input.IPI_GRID_ENERGIES == ("o3grid_pots",)


def test_remote_only_run_survives_a_lost_client(tmp_path, one_driver):
    """``--drivers 0`` with two clients started by hand, each in the README's loop: one
    is killed mid-run, i-PI stalls, mdsym restarts it from its last step, the loop brings
    the other back, and the trajectory is the one-driver one, every step once."""
    import os
    import shlex
    import signal

    reference, _ = one_driver
    rundir = new_rundir(tmp_path / "remote")
    port = free_port()
    serve = shlex.join([*mdsym_command(), "serve", "--model", MODEL, "--structure",
                        str(rundir.structure), "--address", "localhost", "--port", str(port),
                        "--wait", "20", "--quiet"])
    loops = [subprocess.Popen(["bash", "-c", f"while {serve}; do :; done"], cwd=tmp_path,
                              stdout=open(tmp_path / f"loop{k}.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True) for k in range(2)]
    killed = []

    def kill_one_client(step, total):
        if step >= 4 and not killed:
            children = subprocess.run(["pgrep", "-P", str(loops[1].pid)], capture_output=True,
                                      text=True).stdout.split()
            os.kill(int(children[0]), signal.SIGKILL)  # the serve, not its loop
            killed.append(step)

    try:
        result = run_ipi(config(rundir, drivers=0, port=port), rundir, progress=kill_one_client)
    finally:
        for loop in loops:
            stop(loop)
    # i-PI stalls when the client dies in the middle of a request (then one restart or
    # more), not when it dies between two: every step once either way
    assert killed and result["status"] == "completed", result
    assert all(r["clients"] == 0 for r in result["restarts"]), result["restarts"]
    assert_same_run(rundir, reference)


def test_a_restart_puts_the_socket_back_inside_ffrotations(tmp_path, one_driver, monkeypatch):
    """i-PI 3.3's checkpoint of ``<ffrotations>`` keeps only the inner socket's name and
    port; the restarted input has the run's socket again (TCP, no pbc), the grid and
    i-PI's random state, and i-PI's own parser builds it."""
    from ipi.inputs.simulation import InputSimulation
    from ipi.utils.io.inputs import io_xml

    from mdsym.md.ipi_engine.prepare import IpiRun
    from mdsym.md.ipi_engine.segment_input import restart_input
    from mdsym.md.ipi_engine.sockets import Socket

    reference, _ = one_driver
    checkpoint = reference.path / "ipi" / "RESTART"
    assert "<address>" not in checkpoint.read_text().split("<ffrotations")[1]  # what i-PI wrote
    settings = RunConfig(**config(reference))
    run = IpiRun(settings, reference, ase.io.read(reference.structure), False, None,
                 Socket("inet", "localhost", 31999), True, rotation_grid(settings))
    xml = restart_input(run, checkpoint, "seg1")
    monkeypatch.chdir(tmp_path)
    simulation = InputSimulation()
    simulation.parse(io_xml.xml_parse_string(xml).fields[0][1])
    (ff,) = simulation.fetch().fflist.values()
    assert type(ff).__name__ == "FFRotations" and ff.grid_order == 3 and ff.inversion
    assert type(ff.ff).__name__ == "FFSocket" and not ff.ff.dopbc
    assert (ff.ff.socket.mode, ff.ff.socket.port) == ("inet", 31999)
