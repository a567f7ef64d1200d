"""Multiple time stepping in the i-PI engine: i-PI's ``<nmts>`` with the raw model
inside and an ``mdsym serve --correction`` client (symmetrized minus raw) outside.

The reference is mdsym's own RESPA for ASE (``mdsym.md.mts``), tested on its
own in ``tests/test_mts.py``.
"""

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import units
from ase.md.verlet import VelocityVerlet

from mdsym import MdsymCalculator, MdsymError, SymmetrizedModel, SymmetrizeSpec, System, load_model
from mdsym.core.defaults import STRUCTURES
from mdsym.md.ase_engine import initial_velocities
from mdsym.md.config import RunConfig
from mdsym.md.ipi_engine.outputs import SegmentReader
from mdsym.md.mts import MultipleTimeStepVerlet
from mdsym.md.processes import mdsym_command
from mdsym.md.rundir import RunDirectory, complete_frames
from mdsym.serving import ipi_protocol as p
from mdsym.serving.serve import serving_potential

from .helpers import serve_processes

pytest.importorskip("ipi")
pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = STRUCTURES / "cu-cluster-55.xyz"
DT_FS = 2.0  # copper: vibrational periods of ~200 fs
K = 4
# spurious terms of degree 1 and 2: o3:2 removes both, the raw model keeps a torque
ANISOTROPIC = "analytic:vector1=0.01,bond2=0.02"


def cluster(path=CLUSTER, seed=1):
    """The structure with the velocities both engines start from (``seed``)."""
    atoms = ase.io.read(path)
    initial_velocities(atoms, 300.0, seed)
    return atoms


def config(**changes) -> dict:
    base = dict(model=ANISOTROPIC, structure=str(CLUSTER), engine="ipi", ensemble="nve",
                timestep_fs=DT_FS, steps=40, temperature_K=300.0, seed=1,
                symmetrize=f"mts:{K}+o3:2", stride=K, checkpoint_stride=2 * K)
    base.update(changes)
    return base


def ipi_run(tmp_path, name="run", progress=None, **changes):
    from mdsym.md.ipi_engine.run import run_ipi

    rundir = RunDirectory(tmp_path / name)
    rundir.create(ase.io.read(CLUSTER))
    result = run_ipi(config(**changes), rundir, progress=progress)
    return rundir, result


def ase_mts(steps, spec="o3:2", interval=K, model=ANISOTROPIC):
    """mdsym's ASE RESPA from the same start (the run directory's structure.xyz is
    the structure, to the digits extxyz keeps): positions, velocities (A/fs), the
    reported (symmetrized) potential and kinetic energy at every outer step."""
    atoms = cluster()
    model = load_model(model)
    atoms.calc = MdsymCalculator(model, SymmetrizeSpec.parse(spec).inner())  # the spec's fixes
    dynamics = MultipleTimeStepVerlet(atoms, DT_FS * units.fs, SymmetrizedModel(model, spec), interval)
    out = {"positions": [], "velocities": [], "potential": [], "kinetic": []}
    for outer in range(steps // interval + 1):
        if outer:
            dynamics.run(interval)
        out["positions"].append(atoms.positions.copy())
        out["velocities"].append(atoms.get_velocities() * units.fs)
        out["potential"].append(dynamics.reported_results()["energy"])
        out["kinetic"].append(atoms.get_kinetic_energy())
    return {key: np.array(value) for key, value in out.items()}


def ipi_frames(rundir, extras=True) -> dict:
    """i-PI's own full-precision frames (``format='bin'``) by i-PI step, in A and A/fs
    (``extras``: the run averaged over rotations, so i-PI wrote the rotational std)."""
    reader = SegmentReader(rundir.path / "ipi", "seg0", cluster().get_chemical_symbols(),
                           extras=extras)
    steps = dict(reader.poll())
    return {n: (s.arrays["positions"] * p.BOHR, s.arrays["velocities"] * p.AU_VELOCITY * units.fs)
            for n, s in steps.items()}


# --- i-PI's <nmts> is mdsym's RESPA ----------------------------------------------------


def test_ipi_and_ase_run_the_same_mts_trajectory(tmp_path):
    """Same structure, velocities and seed, NVE, mts:4+o3:2, 40 inner steps.

    Tolerance: both integrate the same splitting in float64; they differ only in
    round-off (i-PI works in atomic units, converted with ASE's constants, and
    drifts each inner step in two halves), measured at ~1e-14 A after 40 steps.
    1e-10 A (and A/fs x 1e-12) leaves four orders of margin and is still six below
    what a wrong splitting, a missing kick or a correction at the wrong level moves
    (the raw trajectory is > 1e-4 A away; a kick of the wrong length > 1e-6 A)."""
    rundir, result = ipi_run(tmp_path)
    assert result["status"] == "completed", result
    assert result["ipi"]["mts_interval"] == K
    reference = ase_mts(40)
    frames = ipi_frames(rundir)
    assert sorted(frames) == list(range(11))  # i-PI counts outer steps
    positions = np.array([frames[n][0] for n in range(11)])
    velocities = np.array([frames[n][1] for n in range(11)])
    np.testing.assert_allclose(positions, reference["positions"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(velocities, reference["velocities"], rtol=0, atol=1e-12)

    # thermo.csv: a row per outer step, labelled by inner step, with the symmetrized
    # model's energy (i-PI sums both forces) and its total energy as conserved_eV
    thermo = rundir.read_thermo()
    assert list(thermo["step"]) == list(range(0, 41, K))
    np.testing.assert_allclose(thermo["time_fs"], thermo["step"] * DT_FS, rtol=1e-12)
    np.testing.assert_allclose(thermo["potential_eV"], reference["potential"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(thermo["conserved_eV"], reference["potential"] + reference["kinetic"],
                               rtol=0, atol=1e-9)
    symmetrized = SymmetrizedModel(load_model(ANISOTROPIC), "o3:2")
    last = cluster()
    last.positions = positions[-1]
    assert thermo["potential_eV"][-1] == pytest.approx(
        symmetrized(System.from_atoms(last))["energy"], abs=1e-9)
    # the rotational std comes back from the correction client
    assert np.all(thermo["energy_rot_std_eV"] > 0)
    # frames at every stride (here every outer step) and the run's speed in inner steps
    assert [int(ts.data["step"]) for ts in rundir.universe().trajectory] == list(range(0, 41, K))
    assert result["new_steps"] == 40  # the steps run, as the ASE engine counts them (issue 20: was 41)

    # the test can fail: the raw model, or a kick of the wrong length, is far away
    raw = cluster()
    raw.calc = MdsymCalculator(load_model(ANISOTROPIC), "none")
    VelocityVerlet(raw, DT_FS * units.fs).run(40)
    assert np.abs(raw.positions - positions[-1]).max() > 1e-4
    assert np.abs(ase_mts(40, interval=2)["positions"][20] - positions[-1]).max() > 1e-6


def test_the_correction_client_and_the_raw_clients_each_serve_their_part(tmp_path):
    """NVE mts:4+o3:2+nettorque over TCP with two raw clients: the raw clients carry
    the fix, and the whole is the ASE engine's trajectory; angular momentum is then
    conserved at every outer step."""
    rundir, result = ipi_run(tmp_path, symmetrize=f"mts:{K}+o3:2+nettorque", steps=24, drivers=2,
                             socket="tcp")
    assert result["status"] == "completed", result
    ports = result["ipi"]["port"], result["ipi"]["correction_port"]
    assert all(ports) and ports[0] != ports[1], result["ipi"]  # two TCP sockets
    logs = sorted((rundir.path / "ipi").glob("seg0.serve*.log"))
    texts = [log.read_text() for log in logs]
    assert len(texts) == 3 and all("EXIT after" in text for text in texts), texts
    assert sum("minus" in text for text in texts) == 1  # one correction client
    reference = ase_mts(24, spec="o3:2+nettorque")
    frames = ipi_frames(rundir)
    np.testing.assert_allclose(frames[6][0], reference["positions"][6], rtol=0, atol=1e-10)
    thermo = rundir.read_thermo()
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    assert np.abs(L - L[0]).max() < 1e-8


def test_nvt_conserves_the_symmetrized_energy_minus_the_thermostat_work(tmp_path):
    """NVT (SVR) under mts:4: i-PI's thermostat acts at the outer level (dt_out/2 on
    each side, as the ASE engine's); its conserved quantity, the symmetrized total
    energy minus what the thermostat took, holds as in NVE (the bound of
    tests/test_mts.py), while the total energy itself moves by far more."""
    rundir, result = ipi_run(tmp_path, ensemble="nvt", thermostat="svr", thermostat_tau_fs=20.0,
                             temperature_K=600.0, steps=80, symmetrize=f"mts:{K}+o3:1")
    assert result["status"] == "completed", result
    thermo = rundir.read_thermo()
    conserved = thermo["conserved_eV"]
    assert np.abs(conserved - conserved[0]).max() / 55 < 1e-4
    total = thermo["potential_eV"] + thermo["kinetic_eV"]
    assert np.ptp(total) > 10 * np.abs(conserved - conserved[0]).max()


# --- the correction served alone ---------------------------------------------------------


def test_served_correction_is_symmetrized_minus_raw_with_virial(tmp_path, small_crystal,
                                                                one_torch_thread):
    structure = tmp_path / "crystal.xyz"
    ase.io.write(structure, small_crystal)
    model_spec = "analytic:bond2=0.05"
    potential = serving_potential(model_spec, structure, "o3:2", correction="raw")
    h = small_crystal.cell.array.T / p.BOHR
    energy, forces, virial, extras = potential.evaluate(h, small_crystal.positions / p.BOHR)

    model = load_model(model_spec)
    system = System.from_atoms(small_crystal)
    symmetrized = SymmetrizedModel(model, "o3:2")(system, ["energy", "forces", "stress"])
    raw = SymmetrizedModel(model, "none")(system, ["energy", "forces", "stress"])
    volume = small_crystal.get_volume()
    assert energy * p.HARTREE == pytest.approx(symmetrized["energy"] - raw["energy"], abs=1e-10)
    np.testing.assert_allclose(forces * p.AU_FORCE, symmetrized["forces"] - raw["forces"],
                               rtol=0, atol=1e-10)
    # i-PI's virial: -stress V, transposed as i-PI's own ASE driver does
    expected_virial = -(symmetrized["stress"] - raw["stress"]).T * volume
    np.testing.assert_allclose(virial * p.HARTREE, expected_virial, rtol=0, atol=1e-9)
    assert np.abs(expected_virial).max() > 1e-3  # a correction there is, in the virial too
    assert np.abs(forces).max() * p.AU_FORCE > 1e-3
    assert '"energy_rot_std"' in extras

    # the PES plugin serves the same difference (one serving_potential)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mdsym_pes", ROOT / "drivers" / "mdsym_pes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    driver = module.MdsymDriver(template=str(structure), model=model_spec, symmetrize="o3:2",
                                correction="raw")
    plugin = driver.compute_structure(h, small_crystal.positions / p.BOHR)
    assert plugin[0] == energy
    np.testing.assert_array_equal(plugin[1].reshape(-1, 3), forces)


def test_served_direct_correction_is_conservative_minus_direct(tmp_path, one_torch_thread):
    """mts:K:direct: the correction client serves the conservative forces (symmetrized
    as the spec says, here not at all) minus the direct ones, with the spec's fixes."""
    atoms = cluster()
    model_spec = "analytic:direct1=0.3"
    potential = serving_potential(model_spec, CLUSTER, "nettorque", correction="direct")
    _, forces, _, _ = potential.evaluate(np.eye(3) * 100, atoms.positions / p.BOHR)
    system = System.from_atoms(atoms)
    conservative = SymmetrizedModel(load_model(model_spec, forces="conservative"), "nettorque")(system)
    direct = SymmetrizedModel(load_model(model_spec, forces="direct"), "nettorque")(system)
    np.testing.assert_allclose(forces * p.AU_FORCE, conservative["forces"] - direct["forces"],
                               rtol=0, atol=1e-10)
    assert np.abs(forces).max() * p.AU_FORCE > 1e-2
    with pytest.raises(MdsymError, match="drop --forces conservative"):
        serving_potential(model_spec, CLUSTER, "none", forces="conservative", correction="direct")
    with pytest.raises(MdsymError, match="serves zero"):
        serving_potential(model_spec, CLUSTER, "nettorque", correction="raw")


def test_direct_forces_inside_conservative_outside_in_ipi(tmp_path):
    """mts:K:direct falls out of the same machinery: the i-PI run is the ASE one."""
    model_spec = "analytic:direct1=0.3"
    rundir, result = ipi_run(tmp_path, model=model_spec, symmetrize=f"mts:{K}:direct", steps=16)
    assert result["status"] == "completed", result
    atoms = cluster()
    atoms.calc = MdsymCalculator(load_model(model_spec, forces="direct"), "none")
    conservative = SymmetrizedModel(load_model(model_spec, forces="conservative"))
    MultipleTimeStepVerlet(atoms, DT_FS * units.fs, conservative, K).run(16)
    np.testing.assert_allclose(ipi_frames(rundir, extras=False)[4][0], atoms.positions, rtol=0, atol=1e-10)


# --- resume and stall recovery -------------------------------------------------------------


def serve_pids(address: str) -> list:
    """``(pid, is_correction)`` of the ``mdsym serve`` clients on socket ``address``."""
    return [(pid, b"--correction" in argv)
            for pid, argv in serve_processes(address, f"{address}-correction")]


def test_killed_clients_and_an_interrupted_run_lose_no_step(tmp_path):
    """Stall recovery restarts from i-PI's checkpoint with the raw clients left and a
    fresh correction client (whichever kind was lost); a resumed run continues from the last checkpoint. Both
    give the uninterrupted run (NVE, deterministic)."""
    from mdsym.md.ipi_engine.run import run_ipi

    steps = 128
    reference, result = ipi_run(tmp_path, "reference", steps=steps, symmetrize=f"mts:{K}+o3:1")
    assert result["status"] == "completed", result
    name = f"mdsym-mts-{os.getpid()}"
    killed, done = [], threading.Event()
    workdir = tmp_path / "killed" / "ipi"

    def ipi_rows(segment) -> int:
        """Steps i-PI has written in ``segment`` (it runs ahead of the conversion)."""
        try:
            text = (workdir / f"seg{segment}.thermo").read_text()
        except FileNotFoundError:
            return 0
        return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))

    def kill_clients():
        """The correction client once i-PI is past its first checkpoint (step 2): i-PI
        cannot go on without it; then one of the two raw clients once the restarted
        segment is past a checkpoint of its own (every 2 i-PI steps)."""
        while not done.wait(0.01) and len(killed) < 2:
            clients = serve_pids(name)
            correction = [pid for pid, is_correction in clients if is_correction]
            raw = [pid for pid, is_correction in clients if not is_correction]
            if not killed and ipi_rows(0) >= 4 and len(raw) == 2 and correction:
                os.kill(correction[0], signal.SIGKILL)
                killed.append(correction[0])
            elif (len(killed) == 1 and ipi_rows(1) >= 3 and len(raw) == 2 and correction
                  and correction[0] != killed[0]):
                os.kill(raw[-1], signal.SIGKILL)
                killed.append(raw[-1])

    killer = threading.Thread(target=kill_clients, daemon=True)
    killer.start()
    try:
        rundir, result = ipi_run(tmp_path, "killed", steps=steps, drivers=2, address=name,
                                 symmetrize=f"mts:{K}+o3:1")
    finally:
        done.set()
        killer.join()
    assert len(killed) == 2 and result["status"] == "completed", result
    # i-PI stalls without its one correction client: continued with both raw clients
    # and a fresh correction client; then with the raw client left (i-PI may or may
    # not have stalled on that one: the supervisor restarts either way)
    restarts = result["restarts"]
    assert [r["clients"] for r in restarts] == [2, 1], restarts
    assert restarts[0]["step"] < restarts[1]["step"] <= steps, restarts
    assert all(r["step"] % K == 0 for r in restarts), restarts
    expected = reference.read_thermo()
    thermo = rundir.read_thermo()
    assert list(thermo["step"]) == list(range(0, steps + 1, K))
    for column in ("potential_eV", "conserved_eV", "Lx"):
        np.testing.assert_allclose(thermo[column], expected[column], rtol=0, atol=1e-9)
    assert not serve_pids(name)

    # interrupted mid-run, then resumed (the checkpoint is at an outer step)
    interrupted = RunDirectory(tmp_path / "interrupted")
    interrupted.create(ase.io.read(CLUSTER))
    settings = config(steps=steps, symmetrize=f"mts:{K}+o3:1")

    def interrupt(step, total):
        if step == 20:
            raise KeyboardInterrupt

    assert run_ipi(settings, interrupted, progress=interrupt)["status"] == "interrupted"
    # as a SIGKILL between a row and its frame leaves it: the last row's frame is missing
    frames = complete_frames(interrupted.trajectory)
    interrupted.truncate_after(frames[-1][2])
    with open(interrupted.trajectory, "r+b") as handle:
        handle.truncate(frames[-1][0])
    assert interrupted.read_thermo()["step"][-1] == frames[-1][2]
    assert run_ipi(settings, interrupted, resume=True)["status"] == "completed"
    thermo = interrupted.read_thermo()
    assert list(thermo["step"]) == list(range(0, steps + 1, K))
    assert [step for _, _, step in complete_frames(interrupted.trajectory)] == list(range(0, steps + 1, K))
    np.testing.assert_allclose(thermo["conserved_eV"], expected["conserved_eV"], rtol=0, atol=1e-9)


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("option,value", [("steps", 42), ("stride", 10)])
def test_steps_and_stride_must_be_whole_outer_steps(option, value):
    with pytest.raises(MdsymError, match=f"--{option} {value} is not a multiple of K = 4"):
        RunConfig(**config(**{option: value}))
    RunConfig(**config(**{option: value}, engine="ase"))  # the ASE engine has every step


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    commands = [
        (["run", "--engine", "ipi", "--model", "analytic", "--structure", str(CLUSTER),
          "--symmetrize", "mts:4+o3:1", "--steps", "10", "--stride", "4", "--out", "x"],
         "--steps 10 is not a multiple of K = 4"),
        (["serve", "--model", "analytic", "--structure", str(CLUSTER), "--correction", "raw",
          "--unix", "nobody"], "serves zero"),
    ]
    for args, message in commands:
        done = subprocess.run([*mdsym_command(), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("mdsym: error:") and message in lines[0], lines
    assert not (tmp_path / "x").exists()


def test_defaults_the_user_did_not_give_round_up_to_whole_outer_steps(tmp_path):
    """`mdsym run --engine ipi --symmetrize mts:8+...` with the default --stride (10):
    the stride becomes 16, the next multiple of K, instead of an error; a --steps the
    user gave is kept as given."""
    done = subprocess.run([*mdsym_command(), "run", "--engine", "ipi", "--model", "analytic",
                           "--structure", str(CLUSTER), "--symmetrize", "mts:8+o3:1",
                           "--steps", "32", "--no-progress", "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["config"]["stride"], info["config"]["steps"]) == (16, 32)
    assert list(RunDirectory(tmp_path / "run").read_thermo()["step"]) == [0, 8, 16, 24, 32]
