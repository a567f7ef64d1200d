"""The comparison of several analysed runs (``mdsym.workflows.compare``): its tables
(``table``, ``field_table``), the page ``comparison.md`` (``markdown``) and the
overlaid plots ``comparison.png`` (``plot_comparison``); runs named by their
configuration (``label_of``, ``symmetrize_of``)."""

from pathlib import Path

import numpy as np

from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.reports.formatting import g, markdown_table, pyplot


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
    kind = (report.get("source") or {}).get("kind")
    if kind not in (None, "mdsym"):  # a trajectory another engine wrote: its engine
        return f"{path} [{kind}]"
    config = config_of(report)
    if config is None:
        return f"{Path(path).name} [?]"
    return f"{Path(path).name} [{config.symmetrize}, seed {config.seed}]"


def field_table(result: dict) -> list:
    """The public audits' figures as rows of strings: a header, then one row per run."""
    lines = [["run", "MLIP Audit NVE ratio", "MLIP Audit NVE score", "ml-peg drift (meV/atom/ps)",
              "nvalchemi drift (eV/atom/ns)", "MLIP Audit stability score"]]
    for row in result["runs"]:
        lines.append([row["label"]] + [g(row.get(k)) for k in (
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
            a = f"{g(a)} -> {g(row['mean_A_forces_sym'])}"
        dist = ", ".join(f"{k} {g(v)}" for k, v in row["structure_distance"].items()) or "n/a"
        lines.append([row["label"], g(row["drift_meV_atom_ps"]), g(row["drift_ratio"]), g(row["max_dL"]),
                      g(a) if not isinstance(a, str) else a, dist, g(row["steps_per_s"]),
                      str(row["status"]), g(row["time_to_failure_fs"])])
    return lines


def markdown(result: dict) -> str:
    """The page ``comparison.md``: the table, the public audits' figures, notes, plots."""
    lines = ["# mdsym comparison", "", f"Structural distances (Wasserstein-1) are against `{result['reference']}`.", ""]
    lines += markdown_table(table(result))
    lines += ["", "## Figures of the public audits (definitions: `mdsym/analysis/field_scores.py`)", ""]
    lines += markdown_table(field_table(result))
    notes = [(r["label"], n) for r in result["runs"] for n in r["notes"]]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {label}: {note}" for label, note in notes]
    for name in result.get("plots", []):
        lines += ["", f"![{name[:-4]}]({name})"]
    return "\n".join(lines) + "\n"


def plot_comparison(analyses: dict, paths, out: Path) -> list:
    """``comparison.png``: the runs' conserved energy, |L(t) - L(0)| (net force when
    periodic), A of the forces and structure, overlaid; one colour per spec."""
    plt = pyplot()
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
