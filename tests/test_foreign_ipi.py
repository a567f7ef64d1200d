"""i-PI's own files (issue 21, 4b): i-PI with its own metatomic driver (``i-pi-py_driver -m
metatomic``) on the shipped pet-ethanol.pt, no mdsym process in the loop; and mdsym's
i-PI engine, whose run directory and i-PI files are the same physical run. mdsym
analyze reads them with i-PI's input machinery and readers and finds what a direct
computation on the files gives; an input whose outputs are missing is one line."""

import os
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mdsym.analysis.sources import open_trajectory
from mdsym.analysis.trajectory import load_run
from mdsym.cli.main import main
from mdsym.core import mechanics
from mdsym.core.defaults import STRUCTURES
from mdsym.md.processes import command_for, start, stop
from mdsym.md.run import run_md
from mdsym.models import shipped
from mdsym.workflows.analyze import analyze_run

pytest.importorskip("ipi")
pytestmark = pytest.mark.timeout(240)

INPUT = """<simulation verbosity='low' safe_stride='1000'>
  <output prefix='sim'>
    <properties filename='out' stride='1' flush='1'> [ step, time{{picosecond}}, conserved{{electronvolt}},
      potential{{electronvolt}}, kinetic_md{{electronvolt}}, temperature{{kelvin}} ] </properties>
    <trajectory filename='pos' stride='2' format='xyz' flush='1'> positions{{angstrom}} </trajectory>
    <trajectory filename='vel' stride='2' format='xyz' flush='1'> velocities </trajectory>
    <trajectory filename='frc' stride='2' format='xyz' flush='1'> forces </trajectory>
  </output>
  <total_steps> 20 </total_steps>
  <prng><seed> 31415 </seed></prng>
  <ffsocket name='metatomic' mode='unix'><address> {address} </address></ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='xyz' units='angstrom'> ethanol.xyz </file>
      <cell mode='abc' units='angstrom'> [20, 20, 20] </cell>
      <velocities mode='thermal' units='kelvin'> 300 </velocities>
    </initialize>
    <forces><force forcefield='metatomic'/></forces>
    <motion mode='dynamics'>
      <dynamics mode='nve'><timestep units='femtosecond'> 0.5 </timestep></dynamics>
    </motion>
    <ensemble><temperature units='kelvin'> 300 </temperature></ensemble>
  </system>
</simulation>
"""


@pytest.fixture(scope="module")
def ipi_run(tmp_path_factory):
    """i-PI and its metatomic driver, both started here and stopped in ``finally``."""
    folder = tmp_path_factory.mktemp("ipi-metatomic")
    address = f"mdsym-foreign-{os.getpid()}-{secrets.token_hex(3)}"
    shutil.copy(STRUCTURES / "ethanol.xyz", folder / "ethanol.xyz")
    (folder / "input.xml").write_text(INPUT.format(address=address))
    server = driver = None
    try:
        server = start([*command_for("i-pi"), "input.xml"], folder, folder / "ipi.log")
        deadline = time.monotonic() + 60
        while not Path(f"/tmp/ipi_{address}").exists():
            assert server.poll() is None and time.monotonic() < deadline, (folder / "ipi.log").read_text()
            time.sleep(0.2)
        driver = start([*command_for("i-pi-py_driver"), "-m", "metatomic", "-u", "-a", address, "-o",
                        f"template=ethanol.xyz,model={shipped.path('pet-ethanol')}"], folder,
                       folder / "driver.log", env=dict(os.environ, OMP_NUM_THREADS="1"))
        server.wait(timeout=180)
        assert server.returncode == 0, (folder / "ipi.log").read_text()[-2000:]
    finally:
        stop(driver)
        stop(server)
    return folder


def test_ipi_drift_is_a_direct_fit_of_its_conserved_column(ipi_run, tmp_path):
    from ipi.scripting import read_output

    values, info = read_output(str(ipi_run / "sim.out"))
    assert info["conserved"][0] == "electronvolt"
    direct = np.polyfit(values["time"], values["conserved"] / 9, 1)[0] * 1000  # meV/atom/ps
    run = open_trajectory(ipi_run)
    report = analyze_run(ipi_run, out=tmp_path / "a", run=run, equivariance=False, plots=False)
    assert report["source"]["kind"] == "ipi" and report["source"]["energy"]["column"] == "conserved"
    assert report["drift"]["slope_meV_atom_ps"] == pytest.approx(direct, rel=1e-6)
    assert run.n_frames == 11 and run.source["stride"] == 2 and not run.periodic
    assert run.source["timestep_fs"] == pytest.approx(0.5)


def test_L_is_computed_from_ipi_s_velocities(ipi_run, tmp_path):
    from ipi.scripting import read_trajectory

    positions = np.array([f.positions for f in read_trajectory(str(ipi_run / "sim.pos_0.xyz"))])
    velocities = np.array([f.arrays["velocities"] for f in read_trajectory(str(ipi_run / "sim.vel_0.xyz"))])
    run = open_trajectory(ipi_run)
    L = mechanics.angular_momentum(positions, velocities * 1000 * 0.09822694788464063, run.masses)
    # ASE velocity unit (A / (A sqrt(amu/eV))) in A/ps: 1000 fs x ase.units.fs
    report = analyze_run(ipi_run, out=tmp_path / "b", run=run, equivariance=False, plots=False)
    dL = np.linalg.norm(L - L[0], axis=1)
    # MDAnalysis' frames are float32: L = sum m r x v cancels to 1/50 of its terms, so
    # float32 round-off is 1e-5 of max|dL| here; thermo's L columns are float64
    assert report["angular_momentum"]["max_dL"] == pytest.approx(dL.max(), rel=1e-4)
    assert run.thermo["Lx"][run.thermo["step"] % 2 == 0] == pytest.approx(L[:, 0], rel=1e-9, abs=1e-12)


def test_A_with_model_equals_mdsym_equivariance(ipi_run, tmp_path):
    import json

    import ase.io

    run = open_trajectory(ipi_run)
    report = analyze_run(ipi_run, out=tmp_path / "c", run=run, model="pet-ethanol", every=10,
                         plots=False)
    frame = run.atoms.copy()
    frame.positions = run.universe.trajectory[10].positions.astype(float)
    ase.io.write(tmp_path / "frame.traj", frame)
    result = CliRunner().invoke(main, ["equivariance", "--model", "pet-ethanol", "--structure",
                                       str(tmp_path / "frame.traj"), "--degree", "2", "--json"])
    single = json.loads(result.output[result.output.index("{"):])
    series = np.load(tmp_path / "c" / "series.npz")
    assert report["equivariance"]["every"] == 10
    assert series["eq_A_forces"][1] == pytest.approx(single["forces"]["A"], rel=1e-6)


def test_missing_outputs_are_one_line(ipi_run, tmp_path):
    shutil.copy(ipi_run / "input.xml", tmp_path / "input.xml")
    result = CliRunner().invoke(main, ["analyze", str(tmp_path)])
    assert result.exit_code == 2 and "sim.pos_0.xyz" in result.output and "missing" in result.output
    assert len(result.output.strip().splitlines()) == 1
    for name in ("sim.pos_0.xyz", "sim.vel_0.xyz"):
        shutil.copy(ipi_run / name, tmp_path / name)
    run = open_trajectory(tmp_path)  # no forces, no properties: analysed, with notes
    assert run.n_frames == 11 and not run.source["forces"]
    assert run.source["energy"]["kind"] is None and "sim.out" in run.source["energy"]["why_not"]
    assert any("sim.frc_0.xyz" in note for note in run.notes)
    (tmp_path / "broken.xml").write_text("<simulation><output>")
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "broken.xml")])
    assert result.exit_code == 2 and "i-PI input" in result.output


def test_mdsym_ipi_engine_run_and_its_ipi_files_are_the_same_run(tmp_path):
    out = tmp_path / "run"
    run_md({"engine": "ipi", "model": "pet-ethanol", "ensemble": "nve", "steps": 6, "stride": 2,
            "timestep_fs": 0.5, "seed": 2}, out)
    own = analyze_run(out, out=tmp_path / "own", equivariance=False, plots=False)
    xml = out / "ipi" / "seg0.input.xml"
    run = open_trajectory(xml)
    files = analyze_run(xml, out=tmp_path / "files", run=run, equivariance=False, plots=False)
    assert files["source"]["kind"] == "ipi" and run.n_frames == 7  # every step, in bin
    assert files["drift"]["slope_meV_atom_ps"] == pytest.approx(own["drift"]["slope_meV_atom_ps"], rel=1e-6)
    # L from the float64 sources of both (thermo.csv; i-PI's bin frames, every step)
    assert "own values (float64" in files["angular_momentum"]["source"]
    assert files["angular_momentum"]["max_dL"] == pytest.approx(own["angular_momentum"]["max_dL"], rel=1e-8)
    a, b = np.load(tmp_path / "own" / "series.npz"), np.load(tmp_path / "files" / "series.npz")
    assert b["am_dL"] == pytest.approx(a["am_dL"], rel=1e-8, abs=1e-12)
    # the float64 sources agree to round-off: thermo.csv and the bin frames' L
    own_thermo = load_run(out, read_frames=False).thermo
    for axis in "xyz":
        assert run.thermo[f"L{axis}"] == pytest.approx(own_thermo[f"L{axis}"], rel=1e-8, abs=1e-12)
