"""``mdsym export`` in i-PI's own metatomic driver (``i-pi-py_driver -m metatomic`` and
``<ffdirect><pes>metatomic</pes>``), against ``mdsym run --engine ipi``.

Each test runs ``mdsym run --engine ipi`` (mdsym's clients), then i-PI again on the very
input that run wrote, with the forcefields served by i-PI's metatomic driver on the
exported files, and compares i-PI's own thermo output step by step.
"""

import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ipi.utils.units import UnitMap

from mdsym.md.ipi_engine.supervisor import run_input
from mdsym.md.processes import command_for
from mdsym.models import parse_analytic
from mdsym.models.export import export_metatomic
from mdsym.serving import ipi_protocol as p
from mdsym.serving.export import export_symmetrized

pytest.importorskip("ipi")
pytest.importorskip("vesin.metatomic")

pytestmark = pytest.mark.timeout(300)

MODEL = "analytic:bond2=0.05,vector1=0.05,vector3=0.02"
#: float64: i-PI's metatomic driver reads positions with i-PI's 8-digit Angstrom (1.8897261
#: Bohr, 1.4e-8 relative from ASE's, which mdsym uses): over 40 steps of this 55-atom
#: cluster that alone moves V and K by about 1e-6 eV (measured 1.1e-6), so 1e-8 cannot hold
FLOAT64 = 1e-5


def mdsym_run(out, model, spec, steps, structure="cu-cluster-55", timestep=2.0):
    command = [sys.executable, "-m", "mdsym", "run", "--engine", "ipi", "--model", model,
               "--structure", structure, "--symmetrize", spec, "--ensemble", "nve",
               "--steps", str(steps), "--stride", str(steps), "--timestep", str(timestep),
               "--temperature", "300", "--seed", "1", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return out


def thermo(path, driver=False) -> np.ndarray:
    """step, potential, kinetic (eV) of an i-PI thermo file of mdsym's input. i-PI's
    metatomic driver turns eV into Hartree with i-PI's own constant (8 digits,
    0.036749326), mdsym with ASE's (CODATA: 0.0367493224749...): each potential is read
    back with the constant that wrote it, else the two differ by 1.1e-7 relative."""
    values = np.loadtxt(path)
    hartree = 1.0 / UnitMap["energy"]["electronvolt"] if driver else p.HARTREE
    return np.column_stack([values[:, 0], values[:, 2] * hartree, values[:, 3] * p.HARTREE])


def rerun(run, tmp_path, models: dict, direct=False) -> np.ndarray:
    """i-PI on ``run``'s own input, every forcefield served by i-PI's metatomic driver on
    ``models[forcefield name]`` (a socket driver each, or ``<ffdirect>``)."""
    tree = ET.parse(run / "ipi" / "seg0.input.xml")
    root = tree.getroot()
    output = root.find("output")
    output.set("prefix", "mt")
    for trajectory in output.findall("trajectory"):
        output.remove(trajectory)
    template = str(run / "structure.xyz")
    clients = []
    for position, socket in enumerate(list(root.findall("ffsocket"))):
        name = socket.get("name")
        parameters = f"template={template},model={models[name]}"
        if direct:
            root.remove(socket)
            block = ET.Element("ffdirect", name=name, pbc=socket.get("pbc"))
            ET.SubElement(block, "pes").text = "metatomic"
            ET.SubElement(block, "parameters").text = "{" + parameters.replace("=", ": ") + "}"
            root.insert(position + 1, block)
        else:
            address = f"mdsym-mt-{os.getpid()}-{secrets.token_hex(3)}"
            socket.find("address").text = address
            clients.append([*command_for("i-pi-py_driver"), "-m", "metatomic", "-u", "-a", address,
                            "-o", parameters])
    work = tmp_path / ("direct" if direct else "driver")
    finished = run_input(work, ET.tostring(root, encoding="unicode"), clients, timeout=200)
    assert finished.returncode == 0 and "Traceback" not in finished.log, finished.log[-3000:]
    return thermo(work / "mt.thermo", driver=True)


def assert_same_trajectory(ours, theirs, tolerance):
    assert ours.shape == theirs.shape and ours.shape[0] > 10
    np.testing.assert_array_equal(ours[:, 0], theirs[:, 0])
    worst = np.abs(ours[:, 1:] - theirs[:, 1:]).max()
    assert worst < tolerance, worst
    return worst


def test_fixed_grid_nve_in_ipis_metatomic_driver_and_ffdirect_float64(tmp_path):
    run = mdsym_run(tmp_path / "run", MODEL, "o3:2", 40)
    out = tmp_path / "sym.pt"
    export_symmetrized(MODEL, "o3:2", out)
    ours = thermo(run / "ipi" / "seg0.thermo")
    worst = assert_same_trajectory(ours, rerun(run, tmp_path, {"mdsym": out}), FLOAT64)
    worst_direct = assert_same_trajectory(ours, rerun(run, tmp_path, {"mdsym": out}, direct=True),
                                          FLOAT64)
    print(f"float64 o3:2, 40 steps: max |dV|, |dK| = {worst:.2e} (driver), {worst_direct:.2e} (ffdirect) eV")


def test_shipped_float32_pet_nve_in_ipis_metatomic_driver(tmp_path):
    run = mdsym_run(tmp_path / "run", "pet-ethanol", "o3:1", 40, structure="ethanol", timestep=0.5)
    out = tmp_path / "pet.pt"
    export_symmetrized("pet-ethanol", "o3:1", out)
    worst = assert_same_trajectory(thermo(run / "ipi" / "seg0.thermo"),
                                   rerun(run, tmp_path, {"mdsym": out}), 1e-3)
    print(f"pet-ethanol float32 o3:1, 40 steps: max |dV|, |dK| = {worst:.2e} eV")


def test_nmts_with_raw_inside_and_the_raw_correction_outside(tmp_path):
    run = mdsym_run(tmp_path / "run", MODEL, "mts:4+o3:2", 40)
    raw = tmp_path / "raw.pt"
    export_metatomic(parse_analytic(MODEL), raw, atomic_types=[29])
    correction = tmp_path / "correction.pt"
    export_symmetrized(MODEL, "o3:2", correction, correction="raw")
    ours = thermo(run / "ipi" / "seg0.thermo")
    theirs = rerun(run, tmp_path, {"mdsym": raw, "mdsym-correction": correction})
    worst = assert_same_trajectory(ours, theirs, FLOAT64)
    print(f"<nmts> mts:4+o3:2: max |dV|, |dK| = {worst:.2e} eV")
    assert ase.io.read(run / "structure.xyz").get_global_number_of_atoms() == 55
    assert Path(correction).stat().st_size > 0
