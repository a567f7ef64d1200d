"""Journey 2: `mdsym run --engine ipi` then `mdsym analyze`, from a venv that is not
activated: mdsym must start i-PI (and its own `mdsym serve` client) without PATH."""

import numpy as np
from ase import units

from .checks import check_analysis, check_completed_run, read_json
from .conftest import mdsym

STEPS = 20
STRIDE = 10
TIMESTEP_FS = 0.5


def ipi_potential_eV(folder):
    """The potential column of i-PI's properties file(s) in ``folder``, in eV."""
    files = sorted(folder.glob("*thermo*"))
    assert files, f"no i-PI properties file in {folder}"
    header = [line for line in files[0].read_text().splitlines() if line.startswith("#")]
    column = next(k for k, line in enumerate(header) if "--> potential" in line)
    unit = header[column].split("{")[1].split("}")[0]
    scale = {"atomic_unit": units.Hartree, "electronvolt": 1.0}[unit]
    return np.loadtxt(files[0], comments="#", ndmin=2)[:, column] * scale


def test_ipi_engine_run_then_analyze(tmp_path):
    out = mdsym("run", "--engine", "ipi", "--steps", STEPS, "--out", "ipi-run", cwd=tmp_path)
    run_dir = tmp_path / "ipi-run"
    assert "completed" in out.stdout, out.describe()

    info = read_json(run_dir / "run.json")
    assert info["config"]["engine"] == "ipi"
    thermo = check_completed_run(run_dir, STEPS, STRIDE, TIMESTEP_FS, temperature_K=300.0)
    # i-PI really integrated: its own properties output holds the same potential
    potential = ipi_potential_eV(run_dir / "ipi")
    assert len(potential) == STEPS + 1
    np.testing.assert_allclose(potential, thermo["potential_eV"], rtol=0, atol=1e-6)

    mdsym("analyze", "ipi-run", cwd=tmp_path)
    report = check_analysis(run_dir)
    assert report["status"] == "completed"
    assert report["frames"] == STEPS // STRIDE + 1
