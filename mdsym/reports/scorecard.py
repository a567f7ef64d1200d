"""The scorecard of an audit: tables (markdown), the page ``audit.md`` and one plot per model."""

from pathlib import Path

import numpy as np

from mdsym.reports.formatting import cell, markdown_table, pyplot, slug

#: the fields of every scorecard row, in the order of the table (titles: COLUMN_TITLES)
ROW_FIELDS = (
    "model", "structure", "spec", "evaluations_per_step", "ms_per_force_call", "cost_vs_raw",
    "A_energy_eV", "A_forces_eVA", "B_forces_1plus", "max_dL_amuA2ps", "max_net_force_eVA",
    "mlipaudit_nve_score", "mlipaudit_nve_ratio", "mlpeg_drift_meV_atom_ps", "nvalchemi_drift_eV_atom_ns",
    "nvalchemi_fluctuation_eV_atom", "mlipaudit_stability_score", "runs_failed",
    "time_to_0.1A_fs", "floor_time_to_0.1A_fs", "self_floor_time_to_0.1A_fs", "arena_mean_cosine",
    "arena_mae_eVA", "mlpeg_mean_dF_meV_A",
)

COLUMN_TITLES = {
    "spec": "spec", "evaluations_per_step": "evals/step", "ms_per_force_call": "ms/force call",
    "cost_vs_raw": "cost vs raw", "A_energy_eV": "A energy (eV)", "A_forces_eVA": "A forces (eV/A)",
    "B_forces_1plus": "B forces (1,+)", "max_dL_amuA2ps": "max |dL| NVE (amu A2/ps)",
    "max_net_force_eVA": "max net force (eV/A)", "mlipaudit_nve_score": "MLIP Audit NVE score",
    "mlipaudit_nve_ratio": "NVE drift/std(K)", "mlpeg_drift_meV_atom_ps": "ml-peg drift (meV/atom/ps)",
    "nvalchemi_drift_eV_atom_ns": "nvalchemi drift (eV/atom/ns)",
    "nvalchemi_fluctuation_eV_atom": "nvalchemi fluct. (eV/atom)",
    "mlipaudit_stability_score": "MLIP Audit stability score", "runs_failed": "runs failed",
    "time_to_0.1A_fs": "t to 0.1 A (fs)", "floor_time_to_0.1A_fs": "floor t (fs)",
    "self_floor_time_to_0.1A_fs": "own chaos t (fs)",
    "arena_mean_cosine": "Arena cos", "arena_mae_eVA": "Arena MAE (eV/A)",
    "mlpeg_mean_dF_meV_A": "ml-peg dF (meV/A)",
}


def table(rows, with_model: bool) -> list:
    """Markdown lines of a table of scorecard rows."""
    fields = [f for f in ROW_FIELDS if f not in ("model", "structure")]
    titles = (["model"] if with_model else []) + [COLUMN_TITLES[f] for f in fields]
    body = [([f"`{row['model']}`"] if with_model else []) + [
        f"`{row[f]}`" if f == "spec" else cell(row[f]) for f in fields] for row in rows]
    return markdown_table([titles] + body)


def markdown(result: dict) -> str:
    """The page ``audit.md``: the settings, the leaderboard, then one section per model."""
    s = result["settings"]
    lines = ["# mdsym audit", "",
             f"Mode `{result['mode']}`, seed {result['seed']}, {result['wall_s']:.0f} s "
             f"({result.get('wall_s_total', result['wall_s']):.0f} s with the passes it resumed). "
             f"NVE at {', '.join(f'{x:g}' for x in s['nve_timesteps_fs'])} fs for {s['nve_duration_fs']:g} fs "
             f"(figures: the middle timestep; MLIP Audit NVE score: mean over the three); NVT at "
             f"{', '.join(f'{x:g}' for x in s['nvt_temperatures_K'])} K for {s['nvt_duration_fs']:g} fs "
             f"(MLIP Audit stability score: mean over the two); dynamic equivariance: "
             f"{s['dynamic_rotations']} random rotations and the inversion, {s['dynamic_duration_fs']:g} fs at "
             f"{s['dynamic_timestep_fs']:g} fs, median time until a transformed run is "
             f"{result['threshold_A']:g} A (RMSD) from the transformed reference run (\"> T\": none crossed), "
             f"floor: an exactly invariant analytic model on the same initial state; own chaos: the raw model's "
             f"run against its run started {s['perturbation_A']:g} A away (no rotation).",
             "", "Definitions and sources of the public audits' figures: `mdsym/analysis/field_scores.py`; "
             "of the dynamic test: `mdsym/workflows/dynamic_equivariance.py`.", "",
             "## Leaderboard", ""]
    lines += table(result["leaderboard"], with_model=True)
    for model in result["models"]:
        lines += ["", f"## `{model['model']}` on `{Path(model['structure']).name}` ({model['n_atoms']} atoms)", ""]
        lines += table(model["rows"], with_model=False)
        for spec, reason in model["specs_skipped"].items():
            lines.append(f"\n`{spec}` not run: {reason}.")
        lines.append(f"\nFloor model: `{model['floor']['model']}`.")
        hidden = model["hidden_layers"]
        if "skipped" in hidden:
            lines.append(f"\nHidden layers: not measured: {hidden['skipped']}.")
        elif not hidden["layers"]:
            lines.append("\nHidden layers: `mdsym.analysis.hidden_layers.hidden_layer_content` returned no "
                         "layer for this model (no error, nothing recorded).")
        else:
            lines += ["", "Symmetry content B of the raw model's hidden layers (fraction in (0,+) and "
                      "(1,+); the rest above):", "", "| layer | size | (0,+) | (1,+) | residual above L |",
                      "|---|---|---|---|---|"]
            for layer in hidden["layers"]:
                fraction = {(b["lambda"], b["sigma"]): b["fraction"] for b in layer["B"]}
                lines.append(f"| `{layer['layer']}` | {layer['size']} | {cell(fraction.get((0, 1)))} | "
                             f"{cell(fraction.get((1, 1)))} | {cell(layer['residual'])} |")
        failed = [(spec, name, run.get("reason")) for spec, d in model["details"].items()
                  for name, run in d["runs"].items() if run.get("status") != "completed"]
        for spec, name, reason in failed:
            lines.append(f"\n- `{spec}` {name}: {reason}")
        lines.append(f"\n![scorecard]({slug(model['model'])}/scorecard.png)")
    return "\n".join(lines) + "\n"


def plot_scorecard(model: dict, out: Path, threshold_A: float) -> str:
    """Distance between transformed and reference runs over time, per spec (a line at
    ``threshold_A``, the dynamic test's threshold), and the scores."""
    plt = pyplot()
    fig, (ax_d, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
    series = [("floor (invariant analytic)", model["floor"], "k"),
              ("own chaos (raw, displaced start)", model["self_floor"], "grey")]
    series += [(spec, model["details"][spec]["dynamic"], f"C{k}") for k, spec in enumerate(model["details"])]
    for label, dynamic, colour in series:
        t = np.asarray(dynamic["time_fs"])
        for k, element in enumerate(dynamic["elements"]):
            d = np.maximum(np.asarray(element["distance_A"]), 1e-16)
            ax_d.semilogy(t[:len(d)], d, color=colour, lw=1, ls="-" if element["proper"] else "--",
                          label=label if k == 0 else None)
    ax_d.axhline(threshold_A, color="grey", lw=0.8, ls=":", label=f"threshold {threshold_A:g} A")
    ax_d.set(xlabel="time (fs)", ylabel="RMSD to the transformed reference (A)",
             title="Dynamic equivariance (dashed: inversion)")
    ax_d.legend(fontsize=7)
    specs = [row["spec"] for row in model["rows"]]
    keys = (("mlipaudit_nve_score", "MLIP Audit NVE"), ("mlipaudit_stability_score", "MLIP Audit stability"),
            ("arena_mean_cosine", "Arena cosine"))
    width = 0.8 / len(keys)
    for j, (key, label) in enumerate(keys):
        values = [row[key] if isinstance(row[key], (int, float)) else np.nan for row in model["rows"]]
        ax_s.bar(np.arange(len(specs)) + j * width, values, width, label=label)
    ax_s.set_xticks(np.arange(len(specs)) + width, specs, rotation=20)
    ax_s.set(ylim=(0, 1.05), ylabel="score", title="Scores (1 is best)")
    # below the axes: inside, the legend would cover the bars (most scores are near 1)
    ax_s.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=len(keys))
    fig.suptitle(f"{model['model']} on {Path(model['structure']).name}")
    fig.tight_layout()
    path = out / slug(model["model"]) / "scorecard.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path.relative_to(out))
