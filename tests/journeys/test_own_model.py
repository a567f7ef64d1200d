"""Journey: your own model, as a user brings it (README "Your own model").

A metatomic file declaring what PET-MAD / UPET files declare (energy variants,
``energy_uncertainty``, ``non_conservative_force``; float32 and float64), and a Python
file holding an ASE calculator, through ``mdsym run`` (both engines: i-PI's runs
``mdsym serve`` with the variant), ``mdsym equivariance``, ``mdsym audit`` and the bad inputs the README
lists: each one line, exit 2, before any run directory exists."""

import json
import sys

import numpy as np
import pytest

from ..user_models import export_foundation_like, water_box, write_ase_calculator_file
from .conftest import assert_one_line_error, mdsym

WATER = ("--structure", "water.xyz")  # 16 H2O at 1 g/cm^3 (tests/user_models.py)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own-model")
    export_foundation_like(folder / "pet-mad-like.pt")
    export_foundation_like(folder / "pet-mad-like-f64.pt", dtype="float64")
    write_ase_calculator_file(folder / "orb_like.py")
    water = water_box()
    water.write(folder / "water.xyz")
    water.repeat((4, 4, 4)).write(folder / "water-3072.xyz")
    # i-PI turns a cell to its upper-triangular h (lattice vectors as columns), and so
    # the whole system: start from that orientation so both engines see the same frame
    from ase.geometry import cellpar_to_cell

    water.set_cell(cellpar_to_cell(water.cell.cellpar()), scale_atoms=True)
    water.write(folder / "water-ipi-frame.xyz")
    return folder


def thermo(run):
    import csv

    with open(run / "thermo.csv") as handle:
        return list(csv.DictReader(handle))


def test_run_a_variant_in_both_engines(folder):
    common = ("--model", "pet-mad-like.pt", "--variant", "r2scan", "--forces", "conservative",
              "--structure", "water-ipi-frame.xyz", "--ensemble", "nve", "--steps", "4",
              "--stride", "2", "--no-progress")
    mdsym("run", *common, "--out", "ase", cwd=folder)
    mdsym("run", *common, "--engine", "ipi", "--out", "ipi", cwd=folder)
    info = json.loads((folder / "ase" / "run.json").read_text())
    assert info["status"] == "completed" and info["config"]["variant"] == "r2scan"
    ase_rows, ipi_rows = thermo(folder / "ase"), thermo(folder / "ipi")
    uncertainty = float(ase_rows[0]["energy_uncertainty_eV"])
    assert uncertainty == pytest.approx(0.011 * np.sqrt(48), rel=1e-4)  # the variant's own estimate
    # i-PI's clients serve the same variant: the same energy at the first step
    assert float(ipi_rows[0]["potential_eV"]) == pytest.approx(float(ase_rows[0]["potential_eV"]),
                                                               abs=1e-5)


def test_direct_forces_inside_conservative_outside_in_float64(folder):
    mdsym("run", "--model", "pet-mad-like-f64.pt", *WATER, "--symmetrize", "mts:4:direct+o3:1",
          "--ensemble", "nve", "--steps", "8", "--no-progress", "--out", "mts", cwd=folder)
    info = json.loads((folder / "mts" / "run.json").read_text())
    assert info["status"] == "completed" and info["config"]["dtype"] == "float64"
    assert len(thermo(folder / "mts")) == 9


def test_equivariance_shows_the_variant_and_its_uncertainty(folder):
    report = json.loads(mdsym("equivariance", "--model", "pet-mad-like.pt", "--variant", "pbe",
                              *WATER, "-L", "1", "--json", cwd=folder).stdout)
    assert report["variant"] == "pbe" and report["energy_uncertainty_eV"] > 0
    assert report["forces"]["A"] > 1e-4  # the stand-in is not equivariant


def test_audit_a_variant(folder):
    mdsym("audit", "pet-mad-like.pt", "--variant", "r2scan", *WATER, "--fast", "--specs", "o3:1",
          "--no-progress", "--out", "audit", cwd=folder)
    result = json.loads((folder / "audit" / "audit.json").read_text())
    rows = {row["spec"]: row for row in result["leaderboard"]}
    assert set(rows) == {"none", "o3:1"} and rows["none"]["model"] == "pet-mad-like.pt (energy/r2scan)"
    assert rows["o3:1"]["A_forces_eVA"] < rows["none"]["A_forces_eVA"]  # symmetrized: less anisotropic
    runs = list((folder / "audit").glob("*/none/nve-*/run.json"))
    assert runs and all(json.loads(r.read_text())["config"]["variant"] == "r2scan" for r in runs)


def test_an_ase_calculator_file(folder):
    report = json.loads(mdsym("equivariance", "--model", "orb_like.py:Calculator", *WATER, "-L", "1",
                              "--json", cwd=folder).stdout)
    assert report["forces"]["A"] < 1e-8  # Lennard-Jones is exactly invariant
    mdsym("run", "--model", "orb_like.py:make", *WATER, "--symmetrize", "o3:1", "--steps", "3",
          "--no-progress", "--out", "ase-calc", cwd=folder)
    assert len(thermo(folder / "ase-calc")) == 4


CUDA = "cuda" if "torch" not in sys.modules or not sys.modules["torch"].cuda.is_available() else None


@pytest.mark.parametrize("name, args, env, mentions", [
    ("undeclared variant", ("--variant", "hf", *WATER), {}, ("'hf'", "pbe, r2scan")),
    ("element the model lacks", ("--structure", "ethanol"), {}, ("species C",)),
    ("cuda without CUDA", ("--device", "cuda", *WATER), {}, ("CUDA is not available",)),
    ("does not fit in memory", ("--structure", "water-3072.xyz"), {"MDSYM_MEMORY": "4MB"},
     ("do not fit in memory", "MDSYM_MEMORY")),
], ids=lambda value: value if isinstance(value, str) else "")
def test_what_mdsym_refuses(folder, monkeypatch, name, args, env, mentions):
    if name.startswith("cuda") and CUDA is None:
        pytest.skip("this machine has CUDA")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = folder / f"refused-{name.replace(' ', '-')}"
    result = mdsym("run", "--model", "pet-mad-like.pt", *args, "--steps", "2", "--out", str(out),
                   cwd=folder, check=False)
    assert_one_line_error(result, mentions=mentions)
    assert not out.exists()
