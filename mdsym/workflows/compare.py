"""``compare_runs``: several analysed runs side by side, one column per run.

Each run's ``analysis.json`` and ``series.npz`` are reused when present (else the
run is analysed first). The table gives drift (meV/atom/ps and drift/std(K)),
max |L(t) - L(0)|, mean A of the forces (and of the symmetrized model), the
distance between structural distributions and a reference run (the first, or
``reference``), steps/s, status and time to failure. The plots overlay the
runs' conserved energy, |L(t) - L(0)|, A of the forces, and structure; the tables,
page and plots are ``mdsym.reports.comparison``'s.
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mdsym.analysis.sources import detect, open_trajectory
from mdsym.analysis.sources.assemble import analysis_folder
from mdsym.analysis.structure import distribution_distance
from mdsym.core.errors import MdsymError
from mdsym.md.rundir import json_default
from mdsym.reports.comparison import label_of, markdown, plot_comparison, symmetrize_of
from mdsym.workflows.analyze import analyze_run


def load_analysis(path, reanalyze: bool = False, source=None, **options) -> tuple:
    """(analysis.json content, series) of a run, analysing it when needed. ``source``:
    the ``SourceOptions`` of a foreign trajectory (``mdsym.analysis.sources``), which is
    analysed every time (its options may differ from the last analysis')."""
    path = Path(path)
    folder = path / "analysis"
    if source is not None and detect(path, source) != "mdsym":
        model = source.model or options.get("model")
        run = open_trajectory(path, replace(source, model=model))
        folder = analysis_folder(run)
        analyze_run(path, run=run, **dict(options, model=model))
    elif reanalyze or not (folder / "analysis.json").exists() or not (folder / "series.npz").exists():
        analyze_run(path, **options)
    try:
        report = json.loads((folder / "analysis.json").read_text())
    except json.JSONDecodeError as error:
        raise MdsymError(f"{folder / 'analysis.json'} is not valid JSON: {error}") from None
    try:
        with np.load(folder / "series.npz") as data:
            series = {k: data[k] for k in data.files}
    except Exception as error:
        raise MdsymError(f"cannot read {folder / 'series.npz'}: {error}") from None
    return report, series


def compare_runs(paths, out="comparison", reference=None, reanalyze: bool = False, sources=None,
                 **options) -> dict:
    """Compare runs; writes comparison.json, comparison.md and PNGs into ``out``.
    ``sources``: per path, the ``SourceOptions`` of a foreign trajectory (or None)."""
    if not paths:
        raise MdsymError("give at least one run directory to compare")
    paths = [Path(p) for p in paths]
    sources = {Path(p): s for p, s in (sources or {}).items()}
    reference = Path(reference) if reference is not None else paths[0]
    if reference not in paths:
        paths = [reference] + paths
    analyses = {p: load_analysis(p, reanalyze, source=sources.get(p), **options) for p in paths}
    ref_structure = analyses[reference][0].get("structure", {})
    rows = []
    for path in paths:
        report, _ = analyses[path]
        drift = report.get("drift", {})
        am = report.get("angular_momentum", {})
        eq = report.get("equivariance", {})
        rows.append({
            "run": str(path),
            "label": label_of(report, path),
            "symmetrize": symmetrize_of(report),
            "drift_meV_atom_ps": drift.get("slope_meV_atom_ps"),
            "drift_ratio": drift.get("ratio"),
            "max_dL": am.get("max_dL"),
            "max_net_force_eVA": am.get("net_force_max_eVA"),
            "mean_A_forces": eq.get("A_forces", {}).get("mean"),
            "mean_A_forces_sym": eq.get("A_forces_sym", {}).get("mean"),
            "mean_A_energy": eq.get("A_energy", {}).get("mean"),
            "structure_distance": distribution_distance(ref_structure, report.get("structure", {})),
            "steps_per_s": report.get("steps_per_s"),
            "status": report.get("status"),
            "time_to_failure_fs": report.get("time_to_failure_fs"),
            "notes": report.get("notes", []),
            **field_columns(report.get("field") or {}),
        })
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"reference": str(reference), "runs": rows}
    result["plots"] = plot_comparison(analyses, paths, out)
    (out / "comparison.json").write_text(json.dumps(result, indent=2, default=json_default))
    (out / "comparison.md").write_text(markdown(result))
    return result


def field_columns(field: dict) -> dict:
    """The public audits' headline figures of one run (``field_scores.of_run``)."""
    nve = field.get("mlipaudit_nve", {})
    return {"mlipaudit_nve_ratio": nve.get("ratio"), "mlipaudit_nve_score": nve.get("score"),
            "mlpeg_drift_meV_atom_ps": field.get("mlpeg_drift_meV_atom_ps"),
            "nvalchemi_drift_eV_atom_ns": field.get("nvalchemi", {}).get("energy_drift_per_atom_per_ns"),
            "mlipaudit_stability_score": field.get("mlipaudit_stability", {}).get("score")}
