"""Journey 5: two runs of the analytic model, raw and symmetrized over o3:1, then
`mdsym compare`: one table and plots with a column per run, and the physics the
comparison exists to show: the raw model's spurious torque (a vector1 term) changes
the angular momentum, while the o3:1 average (exact for degree 1) conserves it."""

import json

import numpy as np
import pytest

from .checks import check_completed_run, check_markdown_tables, read_thermo
from .conftest import mdsym

MODEL = "analytic:vector1=0.05"
STRUCTURE = "cu-cluster-55"
STEPS = 40
STRIDE = 10
TIMESTEP_FS = 2.0


def max_dL(thermo) -> float:
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    return float(np.linalg.norm(L - L[0], axis=1).max())


@pytest.mark.slow
def test_compare_raw_and_symmetrized(tmp_path):
    runs = {"raw": "none", "sym": "o3:1"}
    for name, spec in runs.items():
        mdsym("run", "--model", MODEL, "--structure", STRUCTURE, "--ensemble", "nve",
              "--timestep", TIMESTEP_FS, "--steps", STEPS, "--stride", STRIDE,
              "--symmetrize", spec, "--out", name, cwd=tmp_path)
        check_completed_run(tmp_path / name, STEPS, STRIDE, TIMESTEP_FS)
    # the angular momentum from the runs' own thermo.csv
    raw_dL, sym_dL = (max_dL(read_thermo(tmp_path / name)) for name in runs)
    assert sym_dL < 1e-3 * raw_dL, (raw_dL, sym_dL)

    out = mdsym("compare", "raw", "sym", "--out", "cmp", "--degree", "1", cwd=tmp_path)
    folder = tmp_path / "cmp"
    for name in ("comparison.json", "comparison.md", "comparison.png"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, f"{name} missing"
    result = json.loads((folder / "comparison.json").read_text())
    rows = {row["run"].rstrip("/").split("/")[-1]: row for row in result["runs"]}
    assert set(rows) == set(runs), rows.keys()
    assert rows["raw"]["symmetrize"] == "none" and rows["sym"]["symmetrize"] == "o3:1"
    for row in rows.values():
        assert row["status"] == "completed"
    # the table (stdout and comparison.md) has a line for each run
    table = (folder / "comparison.md").read_text()
    assert check_markdown_tables(folder / "comparison.md") == 2  # both tables render
    for text in (out.stdout, table):
        lines = text.splitlines()
        assert any("raw" in line and "none" in line for line in lines), text
        assert any("sym" in line and "o3:1" in line for line in lines), text
    # max |L(t) - L(0)| from the trajectories: the symmetrized run's is far smaller
    assert rows["sym"]["max_dL"] < 0.01 * rows["raw"]["max_dL"], (rows["raw"]["max_dL"], rows["sym"]["max_dL"])
    # and the raw one is what thermo.csv says (TRR frames are every STRIDE steps, single precision)
    assert 0.5 * raw_dL < rows["raw"]["max_dL"] <= 1.01 * raw_dL
