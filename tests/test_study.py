"""mdsym study: per-spec aggregation, a short real study, failures on top, bad inputs, reuse."""

import inspect
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mdsym.cli.main import main
from mdsym.workflows import study
from mdsym.workflows.study import aggregate, conclusion, run_study
from tests.journeys.checks import check_markdown_tables

ANISOTROPIC = "analytic:vector1=0.05"  # a degree-1 spurious term: o3:1 removes it exactly


def row(spec, seed, *, max_dL, drift, ratio, A, A_sym=None, speed, status="completed"):
    """A synthetic ``compare_runs`` row."""
    return {"run": f"runs/{spec}-seed{seed}", "symmetrize": spec, "max_dL": max_dL, "drift_meV_atom_ps": drift,
            "drift_ratio": ratio, "mean_A_forces": A, "mean_A_forces_sym": A_sym, "steps_per_s": speed,
            "status": status, "reason": None if status == "completed" else "temperature 9000 K exceeds 5 x",
            "time_to_failure_fs": None if status == "completed" else 120.0}


def test_aggregation_against_hand_computed_numbers():
    rows = [
        row("none", 0, max_dL=100.0, drift=-0.2, ratio=0.01, A=0.04, speed=100.0),
        row("none", 1, max_dL=200.0, drift=0.4, ratio=0.03, A=0.05, speed=80.0),
        row("none", 2, max_dL=300.0, drift=-0.6, ratio=0.02, A=0.06, speed=120.0),
        row("o3:3", 0, max_dL=1.0, drift=0.1, ratio=0.001, A=0.04, A_sym=0.001, speed=10.0),
        row("o3:3", 1, max_dL=3.0, drift=-0.3, ratio=0.003, A=0.05, A_sym=0.003, speed=12.0),
        row("o3:3", 2, max_dL=math.nan, drift=math.nan, ratio=math.nan, A=0.06, A_sym=None, speed=8.0,
            status="failed"),
    ]
    raw, grid = aggregate(rows, ["none", "o3:3"])
    assert (raw["runs"], raw["completed"], raw["failed"]) == (3, 3, [])
    # mean and sample standard deviation (ddof 1) of 100, 200, 300: 200 and 100
    assert raw["max_dL"]["mean"] == pytest.approx(200.0) and raw["max_dL"]["spread"] == pytest.approx(100.0)
    # |drift|: 0.2, 0.4, 0.6 -> 0.4 and 0.2 (the signs do not cancel)
    assert raw["drift"]["mean"] == pytest.approx(0.4) and raw["drift"]["spread"] == pytest.approx(0.2)
    assert raw["drift_ratio"]["mean"] == pytest.approx(0.02) and raw["drift_ratio"]["spread"] == pytest.approx(0.01)
    # raw runs are driven by the raw forces
    assert raw["A_driving"]["mean"] == pytest.approx(0.05) and raw["A_driving"]["spread"] == pytest.approx(0.01)
    assert raw["steps_per_s"]["mean"] == pytest.approx(100.0) and raw["cost_vs_raw"] == pytest.approx(1.0)

    # the failed seed is left out of the physics, kept in the speed, and listed
    assert (grid["runs"], grid["completed"]) == (3, 2)
    assert [f["run"] for f in grid["failed"]] == ["runs/o3:3-seed2"]
    assert grid["max_dL"]["mean"] == pytest.approx(2.0)
    assert grid["max_dL"]["spread"] == pytest.approx(math.sqrt(2.0))  # sqrt(((1-2)^2 + (3-2)^2) / 1)
    assert grid["drift"]["mean"] == pytest.approx(0.2)
    # symmetrized runs are driven by the symmetrized forces, not the raw model's
    assert grid["A_driving"]["mean"] == pytest.approx(0.002)
    assert grid["steps_per_s"]["mean"] == pytest.approx(10.0)
    assert grid["cost_vs_raw"] == pytest.approx(100.0 / 10.0)

    result = conclusion([raw, grid])
    assert result["grid"] == "o3:3" and result["ratio"] == pytest.approx(200.0 / 2.0)
    assert "100 times" in result["sentence"]


def test_one_seed_has_no_spread_and_no_raw_has_no_cost():
    (entry,) = aggregate([row("o3:1", 0, max_dL=5.0, drift=0.1, ratio=0.1, A=0.1, A_sym=0.01, speed=50.0)],
                         ["o3:1"])
    assert entry["max_dL"] == {"mean": 5.0, "spread": None, "n": 1, "values": [5.0]}
    assert entry["cost_vs_raw"] is None
    assert conclusion([entry])["ratio"] is None


def test_highest_grid_is_the_reference_of_the_ratio():
    assert study.highest_grid(["none", "o3:3", "random", "o3:1"]) == "o3:3"
    assert study.highest_grid(["none", "random", "nettorque"]) is None
    # the exact average before the cheaper forms of the same grid, whatever the order
    assert study.highest_grid(["mts:8+o3:3", "o3:3:rotated", "o3:3", "o3:1"]) == "o3:3"
    assert study.highest_grid(["mts:8+o3:3", "o3:1"]) == "mts:8+o3:3"


def test_study_runs_the_cheaper_symmetrizations(tmp_path):
    """mdsym study --specs takes mts:K+o3:L, o3:L:rotated and o3:auto. The degree-1 term
    exerts a torque; every one of them removes it from the dynamics (mts:K at its outer
    steps, where the frames are taken here), so each keeps L far better than raw."""
    out = tmp_path / "study"
    specs = "none,mts:2+o3:1,o3:1:rotated,o3:auto"
    result = CliRunner().invoke(main, ["study", "-o", str(out), "-m", ANISOTROPIC, "-s", "cu-cluster-55",
                                       "--specs", specs, "--seeds", "0", "--steps", "20", "--timestep", "2",
                                       "--stride", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "study.json").read_text())
    by_spec = {entry["spec"]: entry for entry in saved["summary"]}
    assert list(by_spec) == ["none", "mts:2+o3:1", "o3:1:rotated", "o3:auto:0.01:200"]
    assert saved["failures"] == [] and saved["conclusion"]["grid"] == "mts:2+o3:1"  # the first of equals
    raw = by_spec["none"]["max_dL"]["mean"]
    assert raw > 1.0
    for spec in ("mts:2+o3:1", "o3:1:rotated", "o3:auto:0.01:200"):
        assert by_spec[spec]["max_dL"]["mean"] < 1e-2 * raw, spec
        assert by_spec[spec]["cost_vs_raw"] > 0


def test_short_study_on_an_anisotropic_analytic_model(tmp_path):
    out = tmp_path / "study"
    (out / "runs").mkdir(parents=True)
    (out / "my-notes.txt").write_text("mine")  # a user's file in --out
    result = run_study(out, model=ANISOTROPIC, structure="cu-cluster-55", specs=("none", "o3:1"), seeds=(0, 1),
                       steps=20, timestep_fs=2.0, stride=2, progress=None)
    saved = json.loads((out / "study.json").read_text())
    assert set(saved) == {"setup", "summary", "conclusion", "failures", "runs", "plots", "wall_time_s",
                          "reused_runs", "md_wall_time_s"}
    assert set(saved["conclusion"]) == {"raw", "grid", "ratio", "sentence"}
    for entry in saved["summary"]:
        assert set(entry) == {"spec", "runs", "completed", "failed", "max_dL", "drift", "drift_ratio", "A_driving",
                              "steps_per_s", "cost_vs_raw"}
    assert saved["conclusion"] == json.loads(json.dumps(result["conclusion"]))
    assert saved["setup"]["specs"] == ["none", "o3:1"] and saved["setup"]["seeds"] == [0, 1]
    assert saved["failures"] == [] and len(saved["runs"]) == 4
    by_spec = {entry["spec"]: entry for entry in saved["summary"]}
    for entry in by_spec.values():
        assert entry["runs"] == entry["completed"] == 2
        for key in ("max_dL", "drift", "drift_ratio", "A_driving", "steps_per_s"):
            assert entry[key]["n"] == 2 and entry[key]["mean"] is not None and entry[key]["spread"] is not None
        assert entry["cost_vs_raw"] > 0
    raw, grid = by_spec["none"], by_spec["o3:1"]
    # the degree-1 term exerts a torque that turns the cluster; o3:1 removes the term, so
    # only the Morse pair forces act and L is conserved to Verlet's round-off
    assert raw["max_dL"]["mean"] > 1.0
    assert grid["max_dL"]["mean"] < 1e-3 * raw["max_dL"]["mean"]
    assert raw["A_driving"]["mean"] > 1e-2 and grid["A_driving"]["mean"] < 1e-10
    assert saved["conclusion"]["ratio"] == pytest.approx(raw["max_dL"]["mean"] / grid["max_dL"]["mean"])
    report = (out / "study.md").read_text()
    assert check_markdown_tables(out / "study.md") >= 1
    assert report.splitlines()[2] == saved["conclusion"]["sentence"]  # the answer opens the report
    assert "o3:1-symmetrized" in report and (out / "study.png").exists()

    # a re-run reuses every run, keeps the user's file, and refuses another configuration
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    run_study(out, model=ANISOTROPIC, structure="cu-cluster-55", specs=("none", "o3:1"), seeds=(0, 1),
              steps=20, timestep_fs=2.0, stride=2, progress=None)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    result = CliRunner().invoke(main, ["study", "-o", str(out), "-m", ANISOTROPIC, "-s", "cu-cluster-55",
                                       "--specs", "none", "--seeds", "0", "--steps", "30", "--timestep", "2",
                                       "--stride", "2"])
    assert result.exit_code == 2, result.output
    assert "holds a run with another steps" in result.output
    assert (out / "my-notes.txt").read_text() == "mine"
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_failed_runs_are_announced_at_the_top(tmp_path):
    out = tmp_path / "study"
    # 40 fs steps of copper from 3000 K: the temperature monitor stops both runs within 80 fs
    result = CliRunner().invoke(main, ["study", "-o", str(out), "-m", ANISOTROPIC, "-s", "cu-cluster-55",
                                       "--specs", "none,o3:1", "--seeds", "0", "--steps", "60",
                                       "--timestep", "40", "--temperature", "3000", "--stride", "5"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "study.json").read_text())
    assert len(saved["failures"]) == 2 and saved["conclusion"]["ratio"] is None
    lines = (out / "study.md").read_text().splitlines()
    assert lines[2].startswith("**2 of 2 runs did not complete**")
    assert lines[4].startswith("- none-seed0: failed")
    output = result.output.splitlines()
    warning = next(k for k, line in enumerate(output) if line.startswith("WARNING: 2 of 2 runs did not complete"))
    assert warning < next(k for k, line in enumerate(output) if line.startswith("spec "))
    assert all(entry["max_dL"]["mean"] is None for entry in saved["summary"])


@pytest.mark.parametrize("args, fragment", [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--timestep", "0"], "--timestep must be positive"),
    (["--timestep", "-1"], "--timestep must be positive"),
    (["--temperature", "-5"], "--temperature must be >= 0"),
    (["--stride", "0"], "--stride must be at least 1"),
    (["--every", "0"], "--every must be at least 1"),
    (["--specs", ""], "--specs needs at least one"),
    (["--specs", " , "], "--specs needs at least one"),
    (["--specs", "none,bogus"], "unknown symmetrization 'bogus'"),
    (["--specs", "o3:1,O3:1"], "twice"),
    (["--seeds", ""], "--seeds needs at least one"),
    (["--seeds", "0,x"], "--seeds must be integers"),
    (["--seeds", "-1"], "--seeds must be non-negative"),
    (["--seeds", "1,1"], "twice"),
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--structure", "no-such.xyz"], "structure file not found"),
])
def test_bad_inputs_are_one_line_and_exit_2(tmp_path, args, fragment):
    out = tmp_path / "study"
    result = CliRunner().invoke(main, ["study", "-o", str(out), "-m", ANISOTROPIC, "-s", "cu-cluster-55"] + args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mdsym: error: ") and fragment in lines[0], result.output
    assert not out.exists()  # nothing ran


def test_help_shows_the_defaults_the_code_uses():
    command = main.commands["study"]
    defaults = {p.name: p.default for p in command.params}
    signature = inspect.signature(run_study).parameters
    assert defaults["model"] == signature["model"].default == study.DEFAULT_MODEL == "pet-ethanol-noaug"
    assert defaults["structure"] == signature["structure"].default == study.DEFAULT_STRUCTURE
    assert defaults["specs"] == ",".join(signature["specs"].default)
    assert defaults["seeds"] == ",".join(map(str, signature["seeds"].default))
    assert defaults["steps"] == signature["steps"].default
    assert defaults["timestep_fs"] == signature["timestep_fs"].default
    assert defaults["temperature"] == signature["temperature_K"].default
    assert defaults["stride"] == signature["stride"].default
    text = CliRunner().invoke(main, ["study", "--help"], terminal_width=200).output
    for shown in (study.DEFAULT_MODEL, f"[default: {study.DEFAULT_STEPS}]", f"[default: {study.DEFAULT_TIMESTEP_FS}]",
                  ",".join(study.DEFAULT_SPECS)):
        assert shown in text


def test_A_of_a_grid_symmetrized_model_is_not_measured_on_its_own_group():
    """o3:3 averages over the octahedral group, the grid A of degree 1 also uses: measured
    there, a symmetrized model's A is zero whatever it is. A degree-4 term survives the
    octahedral average, so the o3:3 model's true A is not zero."""
    import ase.io

    from mdsym.analysis.equivariance_series import offset_quadrature
    from mdsym.core.defaults import STRUCTURES
    from mdsym.core.system import System
    from mdsym.models import load_model
    from mdsym.symmetry.averaging import evaluate_back_rotated
    from mdsym.symmetry.metrics import equivariance_error, metrics_quadrature
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    system = System.from_atoms(ase.io.read(STRUCTURES / "cu-cluster-55.xyz"))
    symmetrized = SymmetrizedModel(load_model("analytic:bond4=0.05"), "o3:3")
    grid = metrics_quadrature(1)
    aligned = evaluate_back_rotated(symmetrized, system, grid, ("forces",))["forces"]
    offset = evaluate_back_rotated(symmetrized, system, offset_quadrature(grid), ("forces",))["forces"]
    assert equivariance_error(aligned, grid.weights) < 1e-12
    assert equivariance_error(offset, grid.weights) > 1e-3
    assert np.allclose(offset_quadrature(grid).weights, grid.weights)


def test_a_folder_that_is_not_a_run_is_refused_and_kept(tmp_path):
    out = tmp_path / "study"
    mine = out / "runs" / "none-seed0" / "user.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    result = CliRunner().invoke(main, ["study", "-o", str(out), "-m", ANISOTROPIC, "-s", "cu-cluster-55",
                                       "--specs", "none", "--seeds", "0", "--steps", "2"])
    assert result.exit_code == 2 and "is not a run directory" in result.output, result.output
    assert mine.read_text() == "mine" and sorted(p.name for p in mine.parent.iterdir()) == ["user.txt"]
