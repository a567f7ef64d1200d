"""mdsym.analysis: drift, angular momentum, equivariance along a trajectory, reports."""

import json
import os
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import units
from ase.md.verlet import VelocityVerlet
from click.testing import CliRunner

from mdsym import MdsymCalculator, load_model
from mdsym.analysis.angular_momentum import AngularMomentum
from mdsym.analysis.drift import energy_drift
from mdsym.analysis.equipartition import kinetic_temperatures
from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2, load_run
from mdsym.cli.main import main
from mdsym.core.mechanics import angular_momentum, torque
from mdsym.md.rundir import RunDirectory
from mdsym.workflows.analyze import analyze_run

STRUCTURES = Path(__file__).resolve().parent.parent / "mdsym" / "data" / "structures"
CLUSTER = STRUCTURES / "cu-cluster-55.xyz"
BULK = STRUCTURES / "cu-fcc-108.xyz"


def make_run(path, model="analytic:vector1=0.05", symmetrize="none", steps=20, dt_fs=2.0,
             structure=CLUSTER, velocities=None, temperature=300.0, seed=0, stride=1):
    """A small NVE run directory written through RunDirectory by ASE's VelocityVerlet."""
    atoms = ase.io.read(structure)
    atoms.calc = MdsymCalculator(load_model(model), symmetrize=symmetrize, seed=seed)
    if velocities is None:
        rng = np.random.default_rng(seed)
        sigma = np.sqrt(units.kB * temperature / atoms.get_masses())[:, None]
        velocities = rng.normal(size=(len(atoms), 3)) * sigma
        velocities -= atoms.get_masses() @ velocities / atoms.get_masses().sum()
    atoms.set_velocities(velocities)
    run = RunDirectory(path)
    run.create(atoms)
    dyn = VelocityVerlet(atoms, dt_fs * units.fs)

    def record(step):
        forces = atoms.get_forces()
        energy = atoms.get_potential_energy()
        kinetic = atoms.get_kinetic_energy()
        if step % stride == 0:
            run.append_frame(step, step * dt_fs, atoms.positions, atoms.get_velocities(), forces,
                             atoms.cell.array, all(atoms.pbc))
        run.append_thermo({"step": step, "time_fs": step * dt_fs, "potential_eV": energy,
                           "kinetic_eV": kinetic, "conserved_eV": energy + kinetic,
                           "temperature_K": atoms.get_temperature()})

    record(0)
    for step in range(1, steps + 1):
        dyn.run(1)
        record(step)
    run.write_info({"config": {"model": model, "symmetrize": symmetrize, "forces": "auto",
                               "engine": "ase", "ensemble": "nve",
                               "timestep_fs": dt_fs, "steps": steps, "seed": seed, "stride": stride,
                               "structure": str(structure)},
                    "status": "completed", "steps_done": steps, "steps_per_s": 100.0})
    return run


@pytest.fixture(scope="module")
def aniso_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "aniso", steps=30)


# ------------------------------------------------------------------------------- drift


def test_drift_recovers_known_slope():
    t = np.linspace(0.0, 5.0, 5001)  # ps
    n_atoms, slope = 50, 0.37  # slope in meV/atom/ps
    kinetic = 3.0 + 0.2 * np.sin(40 * t)
    conserved = -100.0 + slope * 1e-3 * n_atoms * t + 1e-4 * np.cos(300 * t)
    d = energy_drift(t, conserved, kinetic, n_atoms)
    assert d["slope_meV_atom_ps"] == pytest.approx(slope, rel=1e-3)
    assert d["drift_over_run_eV"] == pytest.approx(slope * 1e-3 * n_atoms * 5.0, rel=1e-3)
    assert d["ratio"] == pytest.approx(abs(d["drift_over_run_eV"]) / np.std(kinetic), rel=1e-9)


def test_drift_zero_for_exact_integrator():
    # the exact solution of a harmonic oscillator: total energy constant to round-off
    m, k, t = 2.0, 3.0, np.linspace(0.0, 10.0, 2001)
    w = np.sqrt(k / m)
    x, v = 0.3 * np.cos(w * t), -0.3 * w * np.sin(w * t)
    kinetic, potential = 0.5 * m * v**2, 0.5 * k * x**2
    d = energy_drift(t, kinetic + potential, kinetic, 1)
    assert abs(d["slope_meV_atom_ps"]) < 1e-9
    assert d["ratio"] < 1e-10


# -------------------------------------------------------------------- angular momentum


def rigid_rotation(atoms, omega=(0.0, 0.0, 0.05)):
    """Velocities (ASE units) of a rigid rotation about the centre of mass."""
    centred = atoms.positions - atoms.get_center_of_mass()
    return np.cross(np.asarray(omega), centred)


def test_rigid_rotor_isotropic_potential_conserves_L(tmp_path):
    atoms = ase.io.read(CLUSTER)
    run = make_run(tmp_path / "rotor", model="analytic:bond2=0.0", steps=40,
                   velocities=rigid_rotation(atoms))
    data = load_run(run.path)
    L = angular_momentum(data.positions, data.velocities, data.masses)
    assert np.linalg.norm(L[0]) > 1e3
    # float32 trajectory: round-off ~1e-7 relative
    assert np.max(np.linalg.norm(L - L[0], axis=1)) < 2e-6 * np.linalg.norm(L[0])
    assert np.max(np.abs(torque(data.positions, data.forces, data.masses))) < 1e-5


def test_anisotropic_model_dL_dt_equals_torque(aniso_run):
    data = load_run(aniso_run.path)
    L = angular_momentum(data.positions, data.velocities, data.masses)
    tau = torque(data.positions, data.forces, data.masses)  # eV
    dt = np.diff(data.time_ps)[:, None]
    dL_dt = np.diff(L, axis=0) / dt / EV_IN_AMU_A2_PS2  # eV
    midpoint = 0.5 * (tau[1:] + tau[:-1])  # velocity Verlet: exact trapezoid rule
    scale = np.abs(tau).max()
    assert scale > 0.1  # the model really has a torque
    assert np.max(np.abs(dL_dt - midpoint)) < 5e-4 * scale
    # a left-point rule is worse by the change of torque over a step: O(dt)
    assert np.max(np.abs(dL_dt - tau[:-1])) > 10 * np.max(np.abs(dL_dt - midpoint))


def test_angular_momentum_analysis_base(aniso_run):
    data = load_run(aniso_run.path)
    analysis = AngularMomentum(data.universe, masses=data.masses).run()
    np.testing.assert_allclose(analysis.results.L, angular_momentum(data.positions, data.velocities, data.masses))
    assert analysis.results.figures["max_dL"] == pytest.approx(analysis.results.dL.max())


def test_L_from_ase_and_ipi_runs_agree(tmp_path):
    from mdsym.md.ipi_engine import run as ipi_md
    from mdsym.md.ipi_engine.segment_input import initial_velocities
    model, steps, dt_fs, seed, temperature = "analytic:vector1=0.05", 10, 1.0, 3, 300.0
    atoms = ase.io.read(CLUSTER)
    velocities = initial_velocities(atoms, temperature, seed)
    ase_run = make_run(tmp_path / "ase", model=model, steps=steps, dt_fs=dt_fs, velocities=velocities)
    rundir = RunDirectory(tmp_path / "ipi")
    rundir.create(atoms)
    config = {"model": model, "symmetrize": "none", "forces": "auto", "structure": str(CLUSTER),
              "ensemble": "nve", "timestep_fs": dt_fs, "steps": steps, "temperature_K": temperature,
              "seed": seed, "stride": 1}
    info = ipi_md.run_ipi(config, rundir)
    rundir.write_info({"config": config, **info})
    a, b = load_run(ase_run.path), load_run(rundir.path)
    n = min(a.n_frames, b.n_frames)
    assert n >= steps
    La = angular_momentum(a.positions[:n], a.velocities[:n], a.masses)
    Lb = angular_momentum(b.positions[:n], b.velocities[:n], b.masses)
    np.testing.assert_allclose(Lb, La, atol=1e-5 * np.abs(La).max())


# ------------------------------------------------------------------------ equipartition


def test_equipartition_rigid_motion_has_no_internal_temperature():
    atoms = ase.io.read(CLUSTER)
    v = rigid_rotation(atoms, (0.01, -0.02, 0.03)) + np.array([0.01, 0.0, -0.02])
    v_ps = v * 1000 * units.fs
    x, m = atoms.positions[None], atoms.get_masses()
    temps = kinetic_temperatures(x, v_ps[None], m, atoms.numbers, [np.arange(len(atoms))])
    assert temps["internal"][0] == pytest.approx(0.0, abs=1e-6 * temps["rotational"][0])
    total = 1.5 * len(atoms) * units.kB * temps["total"][0]
    atoms.set_velocities(v)
    assert total == pytest.approx(atoms.get_kinetic_energy(), rel=1e-10)
    parts = (3 * temps["translational"][0] + 3 * temps["rotational"][0]) * 0.5 * units.kB
    assert parts == pytest.approx(total, rel=1e-8)


# ----------------------------------------------------------- equivariance along a run


def test_A_and_B_along_trajectory_match_mdsym_equivariance(aniso_run, tmp_path):
    report = analyze_run(aniso_run.path, every=15, degree=2, content=True, plots=False)
    eq = report["equivariance"]
    series = np.load(aniso_run.path / "analysis" / "series.npz")
    frames = series["eq_frame"]
    assert list(frames) == [0, 15, 30]
    data = load_run(aniso_run.path)
    runner = CliRunner()
    for k, frame in enumerate(frames):
        atoms = data.atoms.copy()
        atoms.positions = data.positions[frame]
        path = tmp_path / f"frame{frame}.traj"  # binary: the positions exactly
        ase.io.write(path, atoms)
        out = runner.invoke(main, ["equivariance", "-m", "analytic:vector1=0.05", "-s", str(path),
                                   "-L", "2", "--json"])
        assert out.exit_code == 0, out.output
        ref = json.loads(out.output)
        assert series["eq_A_energy"][k] == pytest.approx(ref["energy"]["A"], rel=1e-9)
        assert series["eq_A_forces"][k] == pytest.approx(ref["forces"]["A"], rel=1e-9)
        for key in ("energy", "forces"):
            np.testing.assert_allclose(series[f"eq_B_{key}"][k], [b["fraction"] for b in ref[key]["B"]],
                                       rtol=1e-8, atol=1e-14)
    assert eq["A_forces"]["mean"] > 1e-3


def test_symmetrized_run_reports_raw_and_symmetrized_A(tmp_path):
    run = make_run(tmp_path / "sym", symmetrize="o3:2", steps=4)
    report = analyze_run(run.path, every=2, degree=1, plots=False)
    eq = report["equivariance"]
    assert eq["A_forces"]["mean"] > 1e-2
    assert eq["A_forces_sym"]["mean"] < 1e-10 * max(1.0, eq["A_forces"]["mean"])


# ------------------------------------------------------------- reports, partial runs


def test_analyze_cli_writes_report_and_plots(aniso_run, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["analyze", str(aniso_run.path), "--out", str(out), "--every", "10"])
    assert result.exit_code == 0, result.output
    assert "drift" in result.output and "max |L(t)-L(0)|" in result.output
    for name in ("analysis.json", "series.npz", "report.md", "energy.png", "angular_momentum.png",
                 "equivariance.png", "equipartition.png", "structure.png"):
        assert (out / name).exists(), name
    report = json.loads((out / "analysis.json").read_text())
    assert report["drift"]["points"] == 31 and report["angular_momentum"]["conserved"]
    assert "## Energy drift" in (out / "report.md").read_text()


def test_partial_run_with_truncated_trajectory(tmp_path):
    run = make_run(tmp_path / "partial", steps=6)
    info = run.read_info()
    info["status"] = "running"
    run.write_info(info)
    size = run.trajectory.stat().st_size
    os.truncate(run.trajectory, size - 300)
    result = CliRunner().invoke(main, ["analyze", str(run.path), "--no-equivariance"])
    assert result.exit_code == 0, result.output
    report = json.loads((run.path / "analysis" / "analysis.json").read_text())
    assert report["frames"] == 6
    notes = " ".join(report["notes"])
    assert "partial" in notes and "trajectory.trr" in notes and "truncated" in notes
    assert "trajectory.trr ends with a truncated frame" in (run.path / "analysis" / "report.md").read_text()


def test_failed_run_is_analysed_and_said(tmp_path):
    run = make_run(tmp_path / "failed", steps=4)
    info = run.read_info()
    info.update(status="failed", reason="temperature above 10x target", time_to_failure_fs=8.0)
    run.write_info(info)
    report = analyze_run(run.path, equivariance=False, plots=False)
    assert report["status"] == "failed"
    assert any("failed after 8 fs" in note for note in report["notes"])
    assert "temperature above" in (run.path / "analysis" / "report.md").read_text()


def test_unreadable_files_give_one_line_naming_the_file(tmp_path):
    run = make_run(tmp_path / "broken", steps=2)
    run.thermo.write_text("garbage\n")
    report = analyze_run(run.path, equivariance=False, plots=False)
    assert "drift" not in report and any("thermo.csv" in n for n in report["notes"])
    run.trajectory.write_bytes(b"\x00not a trr file at all" * 10)
    result = CliRunner().invoke(main, ["analyze", str(run.path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "trajectory.trr" in lines[0]
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere does not exist" in result.output  # PATH: a run directory or a file
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "run.json" in result.output


# -------------------------------------------------------------------- structure, compare


def test_periodic_run_rdf_and_net_force(tmp_path):
    run = make_run(tmp_path / "bulk", structure=BULK, steps=3, model="analytic:bond2=0.02")
    report = analyze_run(run.path, equivariance=False, plots=False)
    assert report["angular_momentum"]["conserved"] is False
    assert "not a conserved quantity" in report["angular_momentum"]["note"]
    st = report["structure"]
    assert st["kind"] == "rdf"
    peak = st["bins"][int(np.argmax(st["rdf"]))]
    assert 2.3 < peak < 2.8  # fcc copper nearest neighbours


def test_compare_cli_table_and_plots(aniso_run, tmp_path):
    other = make_run(tmp_path / "other", steps=10, seed=1)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", str(aniso_run.path), str(other.path), "--out", str(out),
                                       "--no-equivariance", "--reanalyze"])
    assert result.exit_code == 0, result.output
    assert "drift (meV/atom/ps)" in result.output
    data = json.loads((out / "comparison.json").read_text())
    assert len(data["runs"]) == 2
    first = data["runs"][0]["structure_distance"]
    assert first["bonds_A"] == pytest.approx(0.0, abs=1e-12)
    assert data["runs"][1]["structure_distance"]["bonds_A"] >= 0.0
    assert (out / "comparison.png").exists() and (out / "comparison.md").exists()


# -------------------------------------------------------------------------- hidden layers


class EdgeMLP(torch.nn.Module):
    """A tiny unconstrained model: an MLP of raw Cartesian pair vectors."""

    cutoff: float = 3.0

    def __init__(self, invariant=False):
        super().__init__()
        torch.manual_seed(0)
        self.invariant = invariant
        self.embed = torch.nn.Linear(1 if invariant else 3, 8, bias=False, dtype=torch.float64)
        self.act = torch.nn.Tanh()
        self.out = torch.nn.Linear(8, 1, dtype=torch.float64)

    def forward(self, positions, cells, numbers, edge_index, edges):
        features = edges.norm(dim=-1, keepdim=True) if self.invariant else edges
        fc = 0.5 * (1 + torch.cos(torch.pi * edges.norm(dim=-1) / self.cutoff)).unsqueeze(-1)
        return {"energy": (self.out(self.act(self.embed(features))) * fc).sum(dim=(1, 2))}


def test_hidden_layer_content():
    from mdsym.analysis.hidden_layers import hidden_layer_content
    from mdsym.core.system import System

    system = System.from_atoms(ase.io.read(CLUSTER))
    layers = {layer["layer"]: layer for layer in hidden_layer_content(load_model(EdgeMLP()), system, 3)}
    first = {(b["lambda"], b["sigma"]): b["fraction"] for b in layers["embed"]["B"]}
    assert first[(1, 1)] == pytest.approx(1.0, abs=1e-10)  # linear in the pair vectors
    after = {(b["lambda"], b["sigma"]): b["fraction"] for b in layers["act"]["B"]}
    assert after[(1, 1)] < 0.99 and after[(3, 1)] > 1e-3  # tanh spreads it to lambda 3
    invariant = hidden_layer_content(load_model(EdgeMLP(invariant=True)), system, 2)
    for layer in invariant:
        assert layer["B"][0]["fraction"] == pytest.approx(1.0, abs=1e-10), layer["layer"]
