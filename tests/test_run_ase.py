"""`mdsym run` with the ASE engine: conservation, run directories, monitors, resume."""

import json
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
from ase.cluster import Icosahedron

from mdsym.md.run import resume_md, run_md
from mdsym.md.rundir import RunDirectory, complete_frames


@pytest.fixture
def small_cluster(tmp_path):
    atoms = Icosahedron("Cu", 2)  # 13 atoms
    atoms.rattle(0.05, seed=2)
    path = tmp_path / "cu13.xyz"
    ase.io.write(path, atoms)
    return path


def config(structure, **changes):
    base = dict(model="analytic:bond2=0.05", structure=str(structure), engine="ase",
                ensemble="nve", thermostat="svr", timestep_fs=2.0, steps=1000,
                temperature_K=300.0, seed=1, symmetrize="none", forces="auto",
                batch_size=64, stride=50, connectivity=True)
    base.update(changes)
    return base


def test_nve_conserves_energy_over_1000_steps(small_cluster, tmp_path):
    """Velocity Verlet, 2 fs, conservative analytic model: |E(t) - E(0)| < 1e-4 eV/atom."""
    info = run_md(config(small_cluster), tmp_path / "nve")
    assert info["status"] == "completed" and info["steps_done"] == 1000
    thermo = RunDirectory(tmp_path / "nve").read_thermo()
    assert len(thermo["step"]) == 1001
    energy = thermo["conserved_eV"]
    assert np.abs(energy - energy[0]).max() / 13 < 1e-4
    # and the model really moves the atoms: kinetic energy exchanges with potential
    assert thermo["kinetic_eV"].std() > 100 * np.abs(energy - energy[0]).max()
    # an isotropic model conserves angular momentum; this anisotropic one must not
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    assert np.linalg.norm(L[-1] - L[0]) > 1e-3


def test_symmetrized_run_conserves_angular_momentum(small_cluster, tmp_path):
    info = run_md(config(small_cluster, steps=200, symmetrize="o3:2"), tmp_path / "sym")
    assert info["status"] == "completed"
    thermo = RunDirectory(tmp_path / "sym").read_thermo()
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    assert np.abs(L - L[0]).max() < 1e-8 * (1 + np.abs(L).max())
    assert thermo["energy_rot_std_eV"][5] > 0


def test_run_directory_is_readable_by_mdanalysis(small_cluster, tmp_path):
    run_md(config(small_cluster, steps=100, stride=10, ensemble="nvt"), tmp_path / "run")
    rundir = RunDirectory(tmp_path / "run")
    universe = rundir.universe()
    assert len(universe.trajectory) == 11
    ts = universe.trajectory[-1]
    assert ts.has_velocities and ts.has_forces
    assert ts.time == pytest.approx(0.2)  # ps
    info = json.loads(rundir.info.read_text())
    assert info["config"]["seed"] == 1 and info["versions"]["ase"]
    assert info["steps_per_s"] > 0 and info["wall_time_s"] > 0
    # conserved quantity of NVT includes the thermostat's exchanged energy
    thermo = rundir.read_thermo()
    total = thermo["potential_eV"] + thermo["kinetic_eV"]
    assert np.abs(thermo["conserved_eV"] - thermo["conserved_eV"][0]).max() < 0.1 * np.ptp(total) + 1e-4


def test_monitor_trips_on_a_model_built_to_blow_up(small_cluster, tmp_path):
    # a strong non-conservative force pumps energy in until the temperature runs away
    info = run_md(config(small_cluster, model="analytic:direct1=3.0", steps=2000, stride=10),
                  tmp_path / "boom")
    assert info["status"] == "failed"
    assert "temperature" in info["reason"] or "bond" in info["reason"] or "apart" in info["reason"]
    assert 0 < info["time_to_failure_fs"] < 4000
    # everything written before the failure is there
    thermo = RunDirectory(tmp_path / "boom").read_thermo()
    assert thermo["time_fs"][-1] == pytest.approx(info["time_to_failure_fs"])
    with pytest.raises(Exception, match="failed"):
        resume_md(tmp_path / "boom")


def test_killed_run_keeps_its_frames_and_resume_completes_it(small_cluster, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mdsym", "run", "--model", "analytic", "--structure",
               str(small_cluster), "--steps", "3000", "--stride", "20", "--timestep", "2", "--temperature", "100",
               "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(complete_frames(out / "trajectory.trr")) < 5:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    rundir = RunDirectory(out)
    frames = complete_frames(rundir.trajectory)
    assert len(frames) >= 5
    assert len(rundir.universe().trajectory) >= len(frames) - 1  # a torn last frame at most
    info = resume_md(out)
    assert info["status"] == "completed" and info["steps_done"] == 3000
    steps = [f[2] for f in complete_frames(rundir.trajectory)]
    assert steps == list(range(0, 3001, 20))
    thermo = rundir.read_thermo()
    assert list(thermo["step"]) == list(range(3001))
    assert len(rundir.read_info()["segments"]) == 2


def test_resume_extends_a_finished_run(small_cluster, tmp_path):
    out = tmp_path / "extend"
    run_md(config(small_cluster, steps=100, stride=20), out)
    info = resume_md(out, steps=200)
    assert info["status"] == "completed" and info["steps_done"] == 200
    thermo = RunDirectory(out).read_thermo()
    assert list(thermo["step"]) == list(range(201))
    energy = thermo["conserved_eV"]
    assert np.abs(energy - energy[0]).max() / 13 < 1e-4  # NVE continues seamlessly


@pytest.mark.parametrize("args,fragment", [
    (["--structure", "missing.xyz"], "structure file not found"),
    (["--model", "missing.pt"], "model file not found"),
    (["--timestep", "0"], "'--timestep': 0.0 is not in the range x>0"),
    (["--symmetrize", "o3:200"], "outside what mdsym provides"),
    (["--symmetrize", "nettorque", "--structure", "cu-fcc-108", "--model", "analytic"], "isolated"),
    (["--structure", "cu-fcc-108"], "does not know species Cu"),
])
def test_bad_run_inputs_are_one_line(tmp_path, args, fragment):
    result = subprocess.run([sys.executable, "-m", "mdsym", "run", "--steps", "5", "--no-progress",
                             "--out", str(tmp_path / "bad"), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_existing_run_directory_is_not_overwritten(small_cluster, tmp_path):
    run_md(config(small_cluster, steps=10), tmp_path / "once")
    with pytest.raises(Exception, match="already holds a run"):
        run_md(config(small_cluster, steps=10), tmp_path / "once")
