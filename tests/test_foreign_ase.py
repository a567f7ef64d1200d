"""Trajectories an ASE script wrote (issue 21, 4a), and the same frames written by
MDAnalysis as TRR (with velocities) and XTC (without) with a topology (4d): mdsym
analyze reads them with the libraries that own them and finds the numbers a direct
computation on the files gives. No mock: ASE's VelocityVerlet and Bussi with
metatomic-ase's MetatomicCalculator on the shipped pet-ethanol.pt, in this process."""

import json
import warnings

import ase.io
import MDAnalysis as mda
import numpy as np
import pytest
from ase import units
from ase.md.bussi import Bussi
from ase.md.verlet import VelocityVerlet
from click.testing import CliRunner

from mdsym.analysis.sources import open_trajectory
from mdsym.cli.main import main
from mdsym.core import mechanics
from mdsym.core.defaults import STRUCTURES
from mdsym.models import shipped
from mdsym.workflows.analyze import analyze_run

pytestmark = pytest.mark.timeout(300)

DT_FS, STEPS, INTERVAL = 0.5, 20, 2


def velocity_verlet_script(folder, thermostat=False):
    """What a user's ASE script does: MD with metatomic-ase's calculator, a trajectory
    and an MDLogger log every INTERVAL steps, extended XYZ frames beside them."""
    import torch
    from metatomic_ase import MetatomicCalculator

    torch.set_num_threads(1)
    atoms = ase.io.read(STRUCTURES / "ethanol.xyz")
    atoms.calc = MetatomicCalculator(str(shipped.path("pet-ethanol")))
    rng = np.random.default_rng(7)
    atoms.set_velocities(rng.normal(0.0, 0.01, (len(atoms), 3)))
    kind = Bussi if thermostat else VelocityVerlet
    extra = {"temperature_K": 300.0, "taut": 10 * units.fs, "rng": rng} if thermostat else {}
    dynamics = kind(atoms, DT_FS * units.fs, trajectory=str(folder / "md.traj"),
                    logfile=str(folder / "md.log"), loginterval=INTERVAL, **extra)
    dynamics.attach(lambda: ase.io.write(folder / "md.xyz", atoms, format="extxyz", append=True),
                    interval=INTERVAL)
    dynamics.run(STEPS)
    return folder


@pytest.fixture(scope="module")
def nve(tmp_path_factory):
    return velocity_verlet_script(tmp_path_factory.mktemp("ase-nve"))


def direct_fit(time_ps, energy_eV, n_atoms) -> float:
    """meV/atom/ps: numpy's least-squares slope of the engine's own energy."""
    return float(np.polyfit(time_ps, np.asarray(energy_eV) / n_atoms, 1)[0] * 1000.0)


def analyse(path, tmp_path, **options):
    run = open_trajectory(path, **options)
    report = analyze_run(path, out=tmp_path / f"analysis-{path.name}", run=run,
                         model=options.get("model"), every=5, plots=False)
    return run, report


def test_traj_drift_is_a_direct_fit_of_its_total_energy_and_L_of_its_momenta(nve, tmp_path):
    frames = ase.io.read(nve / "md.traj", ":")
    time_ps = np.arange(len(frames)) * INTERVAL * DT_FS / 1000.0
    total = [a.get_potential_energy() + a.get_kinetic_energy() for a in frames]
    run, report = analyse(nve / "md.traj", tmp_path)
    assert report["source"]["kind"] == "ase" and report["source"]["energy"]["kind"] == "total"
    assert report["source"]["timestep_fs"] == DT_FS and report["source"]["stride"] == INTERVAL
    assert report["drift"]["slope_meV_atom_ps"] == pytest.approx(direct_fit(time_ps, total, 9), rel=1e-6)
    velocities = np.array([a.get_velocities() for a in frames]) * 1000 * units.fs  # A/ps
    positions, masses = np.array([a.positions for a in frames]), frames[0].get_masses()
    L = mechanics.angular_momentum(positions, velocities, masses)
    dL = np.linalg.norm(L - L[0], axis=1)
    # MDAnalysis holds frames in float32: L from them agrees to ~1e-7 of |L|
    assert report["angular_momentum"]["max_dL"] == pytest.approx(dL.max(), rel=1e-5)
    # thermo's L columns come from the file's float64 momenta
    assert run.thermo["Lx"] == pytest.approx(L[:, 0], rel=1e-12, abs=1e-12)
    assert "equivariance" in report and "skipped" in report["equivariance"]
    assert any("--model" in note for note in report["notes"])
    for key in ("drift", "angular_momentum", "field", "equipartition", "structure", "source"):
        assert key in report


def test_mdlogger_log_and_extxyz_give_the_engine_figures(nve, tmp_path):
    log = np.loadtxt(nve / "md.log", skiprows=1)
    _, report = analyse(nve / "md.traj", tmp_path, log=nve / "md.log")
    assert report["source"]["energy"]["column"] == "Etot[eV]"
    assert report["drift"]["slope_meV_atom_ps"] == pytest.approx(direct_fit(log[:, 0], log[:, 1], 9), rel=1e-6)
    frames = ase.io.read(nve / "md.xyz", ":")
    total = [a.get_potential_energy() + a.get_kinetic_energy() for a in frames]
    xyz = open_trajectory(nve / "md.xyz", timestep_fs=DT_FS, stride=INTERVAL)
    assert xyz.source["energy"]["kind"] == "total"
    assert xyz.thermo["conserved_eV"] == pytest.approx(total, rel=1e-12)
    assert xyz.thermo["time_fs"] == pytest.approx(np.arange(len(frames)) * INTERVAL * DT_FS)


def test_A_with_model_equals_mdsym_equivariance_on_the_same_frame(nve, tmp_path):
    run, report = analyse(nve / "md.traj", tmp_path, model="pet-ethanol")
    frame = run.atoms.copy()
    frame.positions = run.universe.trajectory[5].positions.astype(float)  # what the series read
    ase.io.write(tmp_path / "frame5.traj", frame)
    result = CliRunner().invoke(main, ["equivariance", "--model", "pet-ethanol", "--structure",
                                       str(tmp_path / "frame5.traj"), "--degree", "2", "--json"])
    assert result.exit_code == 0, result.output
    single = json.loads(result.output[result.output.index("{"):])
    series = report["equivariance"]
    assert series["every"] == 5
    assert series["A_forces"]["max"] >= single["forces"]["A"] * (1 - 1e-9)
    analysis = np.load(tmp_path / "analysis-md.traj" / "series.npz")
    assert analysis["eq_A_forces"][1] == pytest.approx(single["forces"]["A"], rel=1e-6)
    assert analysis["eq_A_energy"][1] == pytest.approx(single["energy"]["A"], rel=1e-6)


def test_thermostat_run_has_no_drift_and_says_why(tmp_path):
    folder = velocity_verlet_script(tmp_path, thermostat=True)
    result = CliRunner().invoke(main, ["analyze", str(folder / "md.traj"), "--log",
                                       str(folder / "md.log"), "--no-equivariance"])
    assert result.exit_code == 0, result.output
    assert "drift not computed: Bussi is a thermostat" in result.output
    report = json.loads((folder / "md-analysis" / "analysis.json").read_text())
    assert report["source"]["energy"]["kind"] is None
    assert report["drift"]["points"] == 0 and "no thermostat work" in report["drift"]["why_not"]


def test_trr_with_velocities_and_xtc_without(nve, tmp_path):
    """4d: MDAnalysis writes the ASE frames as TRR and XTC; analysed with a topology."""
    source = open_trajectory(nve / "md.traj")
    ase.io.write(tmp_path / "top.xyz", source.atoms, format="extxyz")
    universe = source.universe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("md.trr", "md.xtc"):
            with mda.Writer(str(tmp_path / name), len(universe.atoms)) as writer:
                for _ in universe.trajectory:
                    writer.write(universe.atoms)
    _, reference = analyse(nve / "md.traj", tmp_path)
    trr, report = analyse(tmp_path / "md.trr", tmp_path, topology=tmp_path / "top.xyz",
                          model="pet-ethanol")
    # the same frames, float32 in both: the same L, and the model's energies
    assert report["angular_momentum"]["max_dL"] == pytest.approx(
        reference["angular_momentum"]["max_dL"], rel=1e-6)
    assert "re-evaluated" in report["source"]["energy"]["column"]
    assert trr.thermo["potential_eV"] == pytest.approx(source.thermo["potential_eV"], abs=2e-5)
    assert report["drift"]["slope_meV_atom_ps"] == pytest.approx(
        direct_fit(trr.thermo["time_fs"] / 1000, trr.thermo["conserved_eV"], 9), rel=1e-6)
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "md.xtc"), "--topology",
                                       str(tmp_path / "top.xyz"), "--no-equivariance"])
    assert result.exit_code == 0, result.output
    assert "has no velocities: no kinetic energy, no L(t)" in result.output
    assert "drift not computed" in result.output


def one_line(args):
    result = CliRunner().invoke(main, args)
    text = result.output.strip()
    assert "Traceback" not in text
    return result.exit_code, text


def test_bad_ase_inputs_are_one_line(nve, tmp_path):
    lines = (nve / "md.xyz").read_text().splitlines(keepends=True)
    (tmp_path / "torn.xyz").write_text("".join(lines[:-3]))  # the last frame cut mid-way
    torn = open_trajectory(tmp_path / "torn.xyz", timestep_fs=DT_FS, stride=INTERVAL)
    assert torn.n_frames == 10 and any("truncated frame" in n for n in torn.notes)
    frames = ase.io.read(nve / "md.xyz", ":")
    frames[4].positions[2] = np.nan
    ase.io.write(tmp_path / "nan.xyz", frames, format="extxyz")
    nan = open_trajectory(tmp_path / "nan.xyz", timestep_fs=DT_FS)
    assert nan.n_frames == 4 and any("NaN" in n for n in nan.notes)
    ase.io.write(tmp_path / "grow.xyz", frames[:3] + [frames[3][:-1]], format="extxyz")
    code, text = one_line(["analyze", str(tmp_path / "grow.xyz"), "--timestep", "0.5"])
    assert code == 2 and "changing atom count" in text and len(text.splitlines()) == 1
    code, text = one_line(["analyze", str(tmp_path / "torn.xyz")])
    assert code == 2 and "--timestep" in text and len(text.splitlines()) == 1
    frames[0].positions[0] = np.inf
    ase.io.write(tmp_path / "first.xyz", frames[:2], format="extxyz")
    code, text = one_line(["analyze", str(tmp_path / "first.xyz"), "--timestep", "0.5"])
    assert code == 2 and "first frame has NaN" in text
    code, text = one_line(["analyze", str(tmp_path / "md.unknown")])
    assert code == 2 and "does not exist" in text
