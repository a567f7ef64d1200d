"""The study's report (``mdsym.workflows.study``): its summary table (``summary_table``),
the failed runs (``failure_lines``), the page ``study.md`` (``markdown``) and the
plot ``study.png`` (``plot_study``)."""

from pathlib import Path

import numpy as np

from mdsym.core.defaults import STUDY_EQUIVARIANCE_FRAMES
from mdsym.reports.comparison import table
from mdsym.reports.formatting import finite, markdown_table, plus_minus, pyplot


def failure_lines(summary) -> list:
    """One line per failed or unfinished run, for the top of the report and the terminal."""
    lines = []
    for entry in summary:
        for f in entry["failed"]:
            when = f" after {f['time_to_failure_fs']:g} fs" if finite(f.get("time_to_failure_fs")) else ""
            lines.append(f"{Path(f['run']).name}: {f['status']}{when}: {f.get('reason') or 'no reason recorded'}")
    return lines


def summary_table(summary) -> list:
    """The conclusion as rows of strings: a header, then one row per spec."""
    rows = [["spec", "runs ok", "max |dL| (amu A2/ps)", "|drift| (meV/atom/ps)", "drift/std(K)",
             "A driving forces (eV/A)", "steps/s", "cost vs raw"]]
    for e in summary:
        rows.append([e["spec"], f"{e['completed']}/{e['runs']}", plus_minus(e["max_dL"]), plus_minus(e["drift"]),
                     plus_minus(e["drift_ratio"]), plus_minus(e["A_driving"]), plus_minus(e["steps_per_s"]),
                     f"{e['cost_vs_raw']:.3g}x" if e["cost_vs_raw"] is not None else "n/a"])
    return rows


def markdown(study: dict, comparison: dict) -> str:
    """The page ``study.md``: failures, the conclusion and its table, then every run."""
    setup = study["setup"]
    n_runs = sum(e["runs"] for e in study["summary"])
    failures = failure_lines(study["summary"])
    lines = [f"# mdsym study: raw vs symmetrized dynamics of `{setup['model']}`", ""]
    if failures:
        lines += [f"**{len(failures)} of {n_runs} runs did not complete**; their physics figures are left "
                  "out of the means below:", ""] + [f"- {line}" for line in failures] + [""]
    lines += [study["conclusion"]["sentence"], ""]
    lines += markdown_table(summary_table(study["summary"]))
    lines += [
        "",
        f"Mean ± spread (sample standard deviation) over seeds {', '.join(map(str, setup['seeds']))}. "
        f"NVE, {setup['steps']} steps of {setup['timestep_fs']:g} fs "
        f"({setup['steps'] * setup['timestep_fs'] / 1000:g} ps) from {setup['temperature_K']:g} K, "
        f"structure `{setup['structure']}` ({setup['n_atoms']} atoms, `{setup['structure_file']}`), engine "
        f"{setup['engine']}. The runs' MD took {study['md_wall_time_s']:.0f} s; this study took "
        f"{study['wall_time_s']:.0f} s" + (f", reusing {study['reused_runs']} runs already in its folder"
                                            if study["reused_runs"] else "") + ". Steps/s are wall-clock figures of "
        "this machine at the time of each run: other processes slow them, and the cost ratios less so.",
        "",
        "- **max |dL|**: largest change of the angular momentum about the centre of mass, which "
        "exact dynamics of an isolated molecule conserve; a non-zero net torque of the forces changes it.",
        "- **|drift|**: slope of the conserved energy per atom; **drift/std(K)**: the drift over the run "
        "against the kinetic energy's fluctuations.",
        f"- **A driving forces**: equivariance error of the forces that moved the atoms, over O(3) (raw "
        f"model for `none`, the symmetrized model otherwise), mean of {STUDY_EQUIVARIANCE_FRAMES} frames per run.",
        "- **cost vs raw**: time per step relative to the raw runs (steps/s of `none` over this spec's).",
        "",
    ]
    lines += [f"![{name[:-4]}]({name})" for name in study["plots"]]
    lines += ["", "## Every run", "", f"Structural distances (Wasserstein-1) are against "
              f"`{comparison['reference']}`.", ""]
    lines += markdown_table(table(comparison))
    notes = [(r["label"], n) for r in comparison["runs"] for n in r["notes"]]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {label}: {note}" for label, note in notes]
    lines += ["", "![comparison](comparison.png)"]
    return "\n".join(lines) + "\n"


def plot_study(summary, out: Path) -> str:
    """One panel per figure: mean over seeds with the spread as error bars, each seed a dot."""
    plt = pyplot()
    specs = [e["spec"] for e in summary]
    panels = [("max_dL", "max |L(t) - L(0)| (amu A$^2$/ps)"), ("drift", "|energy drift| (meV/atom/ps)"),
              ("A_driving", "A of the driving forces (eV/A)"), ("cost_vs_raw", "time per step / raw")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    x = np.arange(len(specs))
    for ax, (key, title) in zip(axes, panels):
        if key == "cost_vs_raw":
            means = np.array([e[key] if e[key] is not None else np.nan for e in summary])
            errors = np.zeros(len(specs))
        else:
            means = np.array([e[key]["mean"] if e[key]["mean"] is not None else np.nan for e in summary])
            errors = np.array([e[key]["spread"] or 0.0 for e in summary])
            for k, e in enumerate(summary):  # every seed, over the bar
                ax.plot([k] * len(e[key]["values"]), e[key]["values"], "k.", ms=4)
        ax.bar(x, np.nan_to_num(means), yerr=errors, capsize=4, color=[f"C{k % 10}" for k in x])
        for k in np.flatnonzero(~np.isfinite(means)):
            ax.text(k, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, specs, rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
        if np.all(np.isfinite(means)) and np.all(means > 0) and means.max() / means.min() > 30:
            ax.set_yscale("log")
    fig.suptitle("Raw vs symmetrized dynamics: mean ± spread over seeds (dots: each seed)")
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=110)
    plt.close(fig)
    return "study.png"
