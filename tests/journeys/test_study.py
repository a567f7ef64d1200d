"""Journey 6: `mdsym study` with few steps: raw vs grid-symmetrized dynamics of a
fast model, two seeds each, run, analysed and compared in one command.

Its report is study.json (per-spec figures over the seeds) where the study writes
one, else comparison.json (one row per run); the assertions are what any sensible
study gives: every run completes, and the grid-symmetrized runs' max |L(t) - L(0)|
is far below the raw runs', in the report and in the runs' own thermo.csv.
"""

import json
import numbers

import numpy as np
import pytest

from .checks import read_json, read_thermo
from .conftest import mdsym

MODEL = "analytic:vector1=0.05"
STRUCTURE = "cu-cluster-55"
SPECS = ("none", "o3:3")
SEEDS = (0, 1)
STEPS = 20


def thermo_max_dL(run_dir) -> float:
    thermo = read_thermo(run_dir)
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    return float(np.linalg.norm(L - L[0], axis=1).max())


def _number(value):
    """A figure, or the mean of a {mean, spread...} summary."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        for key in ("mean", "median", "value"):
            if isinstance(value.get(key), numbers.Real):
                return float(value[key])
    return None


def _spec_of(item: dict):
    for key in ("spec", "symmetrize", "symmetrization"):
        if isinstance(item.get(key), str):
            return item[key]
    return None


def reported_dL(report) -> dict:
    """{spec: [max |dL| figures]} found anywhere in a study or comparison report:
    in objects naming their spec (rows, per-spec summaries), or under spec keys."""
    found = {}

    def dL_in(item: dict):
        keys = [k for k, v in item.items() if "dl" in k.lower() and _number(v) is not None]
        keys.sort(key=lambda k: ("mean" not in k.lower(),
                                 any(w in k.lower() for w in ("std", "spread", "err", "min", "max_of"))))
        return _number(item[keys[0]]) if keys else None

    def walk(node, spec=None):
        if isinstance(node, dict):
            spec = _spec_of(node) or spec
            value = dL_in(node)
            if spec in SPECS and value is not None:
                found.setdefault(spec, []).append(value)
                return
            for key, child in node.items():
                walk(child, key if key in SPECS else spec)
        elif isinstance(node, list):
            for child in node:
                walk(child, spec)

    walk(report)
    return found


@pytest.mark.slow
def test_study_raw_vs_grid_symmetrized(tmp_path):
    mdsym("study", "--out", "study", "--model", MODEL, "--structure", STRUCTURE,
          "--specs", ",".join(SPECS), "--seeds", ",".join(map(str, SEEDS)), "--steps", STEPS,
          "--stride", "10", "--every", "3", cwd=tmp_path, timeout=500)
    folder = tmp_path / "study"

    # every run completed; the runs' own angular momentum tells raw from symmetrized
    runs = {}
    for info_file in sorted(folder.rglob("run.json")):
        info = read_json(info_file)
        assert info["status"] == "completed", f"{info_file}: {info['status']} {info.get('reason')}"
        assert info["config"]["steps"] == STEPS
        spec = info["config"]["symmetrize"]
        runs.setdefault(spec, []).append(thermo_max_dL(info_file.parent))
    assert sorted(runs) == sorted(SPECS), runs
    assert all(len(runs[spec]) == len(SEEDS) for spec in SPECS), runs
    assert max(runs["o3:3"]) < 1e-3 * min(runs["none"]), runs

    # the study's report says the same
    report_file = folder / "study.json"
    if not report_file.exists():
        report_file = folder / "comparison.json"
    report = json.loads(report_file.read_text())
    dL = reported_dL(report)
    assert set(SPECS) <= set(dL), f"no max |dL| per spec found in {report_file.name}: {dL}"
    assert max(dL["o3:3"]) < 0.01 * min(dL["none"]), dL
    assert list(folder.glob("*.md")), f"no markdown report in {folder}"
