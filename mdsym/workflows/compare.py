"""``compare_runs``: several analysed runs side by side, one column per run.

Each run's ``analysis.json`` and ``series.npz`` are reused when present (else the
run is analysed first). The table gives drift (meV/atom/ps and drift/std(K)),
max |L(t) - L(0)|, mean A of the forces (and of the symmetrized model), the
distance between structural distributions and a reference run (the first, or
``reference``), steps/s, status and time to failure. The plots overlay the
runs' conserved energy, |L(t) - L(0)|, A of the forces, and structure.
"""

import json
from pathlib import Path

import numpy as np

from mdsym.analysis.structure import distribution_distance
from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.md.rundir import json_default
from mdsym.reports.run_report import _g, _pyplot, analyze_run


def load_analysis(path, reanalyze: bool = False, **options) -> tuple:
    """(analysis.json content, series) of a run, analysing it when needed."""
    path = Path(path)
    folder = path / "analysis"
    if reanalyze or not (folder / "analysis.json").exists() or not (folder / "series.npz").exists():
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


def config_of(report: dict):
    """The ``RunConfig`` in an analysis.json, or None when another mdsym wrote the run."""
    try:
        return RunConfig.from_json(report.get("config"), partial=True)
    except MdsymError:
        return None


def symmetrize_of(report: dict) -> str:
    config = config_of(report)
    return str(config.symmetrize) if config is not None else "?"


def label_of(report: dict, path) -> str:
    config = config_of(report)
    if config is None:
        return f"{Path(path).name} [?]"
    return f"{Path(path).name} [{config.symmetrize}, seed {config.seed}]"


def compare_runs(paths, out="comparison", reference=None, reanalyze: bool = False, **options) -> dict:
    """Compare runs; writes comparison.json, comparison.md and PNGs into ``out``."""
    if not paths:
        raise MdsymError("give at least one run directory to compare")
    paths = [Path(p) for p in paths]
    reference = Path(reference) if reference is not None else paths[0]
    if reference not in paths:
        paths = [reference] + paths
    analyses = {p: load_analysis(p, reanalyze, **options) for p in paths}
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


def field_table(result: dict) -> list:
    """The public audits' figures as rows of strings: a header, then one row per run."""
    lines = [["run", "MLIP Audit NVE ratio", "MLIP Audit NVE score", "ml-peg drift (meV/atom/ps)",
              "nvalchemi drift (eV/atom/ns)", "MLIP Audit stability score"]]
    for row in result["runs"]:
        lines.append([row["label"]] + [_g(row.get(k)) for k in (
            "mlipaudit_nve_ratio", "mlipaudit_nve_score", "mlpeg_drift_meV_atom_ps",
            "nvalchemi_drift_eV_atom_ns", "mlipaudit_stability_score")])
    return lines


def table(result: dict) -> list:
    """The comparison as rows of strings: a header, then one row per run."""
    header = ["run", "drift (meV/atom/ps)", "drift/std(K)", "max |dL| (amu A2/ps)", "mean A_F (eV/A)",
              "structure dist.", "steps/s", "status", "t_fail (fs)"]
    lines = [header]
    for row in result["runs"]:
        a = row["mean_A_forces"]
        if row.get("mean_A_forces_sym") is not None:
            a = f"{_g(a)} -> {_g(row['mean_A_forces_sym'])}"
        dist = ", ".join(f"{k} {_g(v)}" for k, v in row["structure_distance"].items()) or "n/a"
        lines.append([row["label"], _g(row["drift_meV_atom_ps"]), _g(row["drift_ratio"]), _g(row["max_dL"]),
                      _g(a) if not isinstance(a, str) else a, dist, _g(row["steps_per_s"]),
                      str(row["status"]), _g(row["time_to_failure_fs"])])
    return lines


def markdown(result: dict) -> str:
    lines = ["# mdsym comparison", "", f"Structural distances (Wasserstein-1) are against `{result['reference']}`.", ""]
    rows = table(result)
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|---" * len(rows[0]) + "|")
    for row in rows[1:]:
        lines.append("| " + " | ".join(row) + " |")
    field = field_table(result)
    lines += ["", "## Figures of the public audits (definitions: `mdsym/analysis/field_scores.py`)", "",
              "| " + " | ".join(field[0]) + " |", "|---" * len(field[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in field[1:]]
    notes = [(r["label"], n) for r in result["runs"] for n in r["notes"]]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {label}: {note}" for label, note in notes]
    for name in result.get("plots", []):
        lines += ["", f"![{name[:-4]}]({name})"]
    return "\n".join(lines) + "\n"


def plot_comparison(analyses: dict, paths, out: Path) -> list:
    plt = _pyplot()
    made = []
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    (ax_e, ax_l), (ax_a, ax_s) = axes
    specs = list(dict.fromkeys(symmetrize_of(analyses[p][0]) for p in paths))
    seen = set()
    for path in paths:
        report, s = analyses[path]
        spec = symmetrize_of(report)
        colour = f"C{specs.index(spec) % 10}"
        label = None if spec in seen and len(paths) > len(specs) else (
            label_of(report, path) if len(paths) == len(specs) else str(spec))
        seen.add(spec)
        n = report.get("n_atoms", 1)
        if "conserved_eV" in s and len(s["conserved_eV"]):
            ax_e.plot(s["thermo_time_ps"], (s["conserved_eV"] - s["conserved_eV"][0]) * 1000 / n, lw=1,
                      color=colour, label=label)
        if "am_dL" in s and len(s["am_dL"]):
            ax_l.plot(s["am_time_ps"], s["am_dL"], lw=1, color=colour, label=label)
        elif "am_net_force" in s and len(s["am_net_force"]):
            ax_l.plot(s["am_time_ps"], s["am_net_force"], lw=1, color=colour, label=label)
        if "eq_A_forces" in s and len(s["eq_A_forces"]):
            ax_a.semilogy(s["eq_time_ps"], np.maximum(s["eq_A_forces"], 1e-16), "o-", ms=3, lw=1,
                          color=colour, label=label)
            if "eq_A_forces_sym" in s:
                ax_a.semilogy(s["eq_time_ps"], np.maximum(s["eq_A_forces_sym"], 1e-16), "s--", ms=3, lw=1,
                              color=colour, label=None if label is None else f"{label} symmetrized")
        st = report.get("structure", {})
        if st.get("kind") == "bonds":
            ax_s.plot(st["bond_bins"], st["bond_hist"], lw=1, color=colour, label=label)
            ax_s.set(xlabel="bond length (A)", ylabel="density", title="Bond lengths")
        elif st.get("kind") == "rdf":
            ax_s.plot(st["bins"], st["rdf"], lw=1, color=colour, label=label)
            ax_s.set(xlabel="r (A)", ylabel="g(r)", title="Radial distribution function")
    ax_e.set(xlabel="time (ps)", ylabel="E - E(0) (meV/atom)", title="Conserved energy")
    ax_l.set(xlabel="time (ps)", ylabel="|L(t) - L(0)| (amu A$^2$/ps)", title="Angular momentum change")
    ax_a.set(xlabel="time (ps)", ylabel="A of the forces (eV/A)", title="Equivariance error")
    for ax in (ax_e, ax_l, ax_a, ax_s):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)
    made.append("comparison.png")
    return made
