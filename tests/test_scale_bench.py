"""The scale benchmark and the GPU check cannot rot: ``benchmarks/gpu_check.py --device cpu
--tiny`` runs whole (a tiny PET built here, tiny sizes; the same steps as on a GPU),
and the benchmark's frontier and report are checked on made-up figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

pytest.importorskip("metatrain")


def test_gpu_check_runs_tiny_on_the_cpu(tmp_path):
    env = dict(os.environ, MDSYM_BENCH_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "gpu-check"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--tiny",
                             "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert [c["dtype"] for c in report["checks"]] == ["float32", "float64"]
    for check in report["checks"]:
        assert all(a["agrees"] for a in check["agreement"])
        assert {a["spec"] for a in check["agreement"]} == {"none", "o3:3"}
        assert check["nve"]["status"] == "completed" and check["nve"]["steps"] == 16
        for row in check["rows"]:
            assert row["batch"] >= 1 and row["timings"][0]["raw_s"] > 0
            assert {c["spec"] for c in row["costs"]} >= {"none", "o3:3", "mts:8+o3:3"}
    assert "## float64" in out.with_suffix(".md").read_text()


def test_frontier_and_report_on_made_up_figures():
    import bench_scale

    timing = {"threads": 1, "raw_s": 0.1, "batch_s": 0.1, "batch": 1, "per_rotation_vs_raw": 1.0,
              "peak_raw_bytes": 2**30, "peak_batch_bytes": 2**30}
    row = {"target": 100, "atoms": 96, "pairs": 1000, "batch": 1, "timings": [timing]}
    row["costs"] = bench_scale.spec_costs(row, bench_scale.SPECS, auto_degree=1)
    costs = {c["spec"]: c["ms_per_step"] for c in row["costs"]}
    assert costs["none"] == pytest.approx(100) and costs["o3:3"] == pytest.approx(4800)
    assert costs["mts:8+o3:3"] == pytest.approx(100 + 4800 / 8)
    assert costs["o3:auto"] == pytest.approx(800 + 416 * 100 / 200)  # degree 1, and its re-check
    fidelity = [{"spec": s, "status": "completed", "A_driving": a, "max_dL": dl}
                for s, a, dl in [("none", 1.0, 10.0), ("o3:1", 0.3, 3.0), ("o3:3", 0.1, 1.0),
                                 ("mts:8+o3:3", 0.1, 1.5), ("mts:8+o3:1:rotated", 0.3, 4.0)]]
    verdict = bench_scale.frontier([row], fidelity)[0]
    assert verdict["best"] == "mts:8+o3:3"
    assert any("mts:8+o3:1:rotated" in reason for reason in verdict["limits"])
    result = {"model": {"label": "made up", "parameters": 1e6, "published_parameters": 1e6},
              "dtype": "float32", "device": "cpu", "environment": {"date": "today", "cpus": 2, "affinity": 2},
              "load_average": [1.0], "command": "test", "sizes": [row],
              "fidelity": {"atoms": 96, "steps": 16, "rows": fidelity}, "frontier": [verdict]}
    text = bench_scale.markdown(result)
    assert "best point `mts:8+o3:3`" in text and "| 96 | 1 | `o3:3` | 4800 |" in text
