"""Journey 1, the README's quick start: `mdsym run --steps N --out DIR` with every
default (the shipped pet-ethanol on the shipped ethanol, NVT at 300 K, ASE), then
`mdsym analyze DIR`."""

from .checks import check_analysis, check_completed_run, read_json
from .conftest import mdsym

STEPS = 20
STRIDE = 10  # mdsym run's default
TIMESTEP_FS = 0.5  # mdsym run's default


def test_quick_start_run_then_analyze(tmp_path):
    out = mdsym("run", "--steps", STEPS, "--out", "runs/quickstart", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "quickstart"
    assert "completed" in out.stdout, out.describe()

    info = read_json(run_dir / "run.json")
    assert info["config"]["model"] == "pet-ethanol"
    assert info["config"]["ensemble"] == "nvt"
    check_completed_run(run_dir, STEPS, STRIDE, TIMESTEP_FS, temperature_K=300.0)

    mdsym("analyze", "runs/quickstart", cwd=tmp_path)
    report = check_analysis(run_dir)
    assert report["status"] == "completed"
    assert report["n_atoms"] == 9
    assert report["frames"] == STEPS // STRIDE + 1
    # pet-ethanol is trained with rotational augmentation, not exactly invariant:
    # its equivariance error is measured along the run and is small but non-zero
    a_forces = report["equivariance"]["A_forces"]["mean"]
    assert 0 < a_forces < 0.1, report["equivariance"]
