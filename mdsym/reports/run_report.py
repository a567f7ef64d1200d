"""``analyze_run``: every analysis of one run directory, written as a report.

Writes into ``OUT`` (default ``RUN/analysis/``):

- ``analysis.json``: the figures (drift, angular momentum, equivariance, content,
  equipartition, structure, hidden layers), the run's status and the notes;
- ``series.npz``: the time series behind the plots (``mdsym compare`` overlays them);
- ``energy.png``, ``angular_momentum.png``, ``equivariance.png``, ``content.png``,
  ``equipartition.png``, ``structure.png``, ``hidden_layers.png`` (those that apply);
- ``report.md``: a readable page with the figures, the notes and the plots.
"""

import json
from pathlib import Path

import numpy as np

from mdsym.analysis import structure
from mdsym.analysis.angular_momentum import AngularMomentum
from mdsym.analysis.drift import energy_drift
from mdsym.analysis.equipartition import Equipartition
from mdsym.analysis.trajectory import energy_rows, load_run, walk
from mdsym.core.errors import MdsymError
from mdsym.core.molecules import molecules
from mdsym.md.config import RunConfig
from mdsym.md.rundir import json_default


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def auto_every(n_frames: int, target: int = 20) -> int:
    return max(1, int(np.ceil(n_frames / target)))


def analyze_run(path, out=None, every=None, degree: int = 2, content: bool = False,
                equivariance: bool = True, layers: bool = False, model=None,
                batch_size=None, max_structure_frames: int = 200, plots: bool = True,
                run=None) -> dict:
    """Analyse one run directory; returns the content of analysis.json."""
    run = run if run is not None else load_run(path, arrays=False)  # frames streamed below
    out = Path(out) if out is not None else run.path / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    notes = list(run.notes)
    config = run_config(run, notes)
    report = {
        "run": str(run.path), "status": run.status, "reason": run.info.get("reason"),
        "time_to_failure_fs": run.info.get("time_to_failure_fs"),
        "steps_done": run.info.get("steps_done"), "steps_per_s": run.info.get("steps_per_s"),
        "wall_time_s": run.info.get("wall_time_s"),
        "config": config.to_json() if config is not None else run.config,
        "n_atoms": run.n_atoms, "periodic": run.periodic, "frames": run.n_frames,
        "time_span_ps": None,
        "notes": notes,
    }
    series = {}

    # energy drift (thermo.csv: every step; mts:K the outer steps)
    if run.thermo is not None:
        t = run.thermo["time_fs"] / 1000.0
        rows = energy_rows(run.thermo, config)  # mts:K: the outer steps only
        report["drift"] = energy_drift(t[rows], run.thermo["conserved_eV"][rows],
                                       run.thermo["kinetic_eV"][rows], run.n_atoms)
        report["drift"]["rows"] = "every step" if rows.all() else "outer steps (step % K == 0)"
        report["drift"]["ensemble"] = config.ensemble if config is not None else None
        series.update(thermo_time_ps=t, conserved_eV=run.thermo["conserved_eV"],
                      kinetic_eV=run.thermo["kinetic_eV"], potential_eV=run.thermo["potential_eV"])

    # the public audits' figures (MLIP Audit, ml-peg, nvalchemi): field_scores
    from mdsym.analysis.field_scores import of_run as field_figures

    report["field"] = field_figures(run, config)

    if run.n_frames:
        # one pass over the frames, none of them kept
        am = AngularMomentum(run.universe, run.masses, run.periodic)
        groups = None if run.periodic else molecules(run.atoms)
        eq = Equipartition(run.universe, run.masses, run.numbers, groups)
        walk([am, eq], stop=run.n_frames)
        if am.results.incomplete_frames:
            notes.append(f"{run.path / 'trajectory.trr'} lacks velocities or forces in some frames")
        report["time_span_ps"] = [float(am.results.time_ps[0]), float(am.results.time_ps[-1])]
        report["angular_momentum"] = am.results.figures
        series.update({f"am_{k}": v for k, v in am.results.series.items()})
        report["equipartition"] = eq.results.figures
        series.update({f"T_{k}": v for k, v in eq.results.temperatures.items()})

        report["structure"] = structure.structure_of(run, max_structure_frames)

        if equivariance:
            report["equivariance"], s = _equivariance(run, config, every, degree, content, model,
                                                      batch_size, notes)
            series.update({f"eq_{k}": v for k, v in s.items()})
        if layers:
            report["hidden_layers"] = _layers(run, config, degree, model, notes)
    elif layers:
        report["hidden_layers"] = {"skipped": f"{run.path / 'trajectory.trr'} has no frames"}
        notes.append(f"hidden layers not measured: {report['hidden_layers']['skipped']}")

    np.savez_compressed(out / "series.npz", **{k: np.asarray(v) for k, v in series.items()})
    (out / "analysis.json").write_text(json.dumps(report, indent=2, default=json_default))
    if plots:
        report["plots"] = make_plots(report, series, out)
        (out / "analysis.json").write_text(json.dumps(report, indent=2, default=json_default))
    (out / "report.md").write_text(markdown(report))
    return report


def run_config(run, notes) -> RunConfig:
    """The run's configuration, read from run.json through ``RunConfig.from_json``
    (fields it lacks take their defaults); None, with a note saying why, when another
    mdsym wrote it."""
    try:
        return RunConfig.from_json(run.config, where=run.path / "run.json", partial=True)
    except MdsymError as error:
        notes.append(f"{error}: the analyses that run the model (equivariance, hidden layers) "
                     "are not made")
        return None


def _equivariance(run, config, every, degree, content, model, batch_size, notes):
    from mdsym.analysis.equivariance_series import EquivarianceSeries, model_of_run, summarize

    if config is None:
        return {"skipped": "run.json's configuration is not readable by this mdsym"}, {}
    try:
        raw, symmetrized = model_of_run(config, model)
    except MdsymError as error:
        notes.append(f"equivariance not measured: {error} (pass --model to name the model)")
        return {"skipped": str(error)}, {}
    every = every or auto_every(run.n_frames)
    analysis = EquivarianceSeries(run.universe, run.atoms, raw, symmetrized, max_degree=degree,
                                  content=content, batch_size=batch_size)
    analysis.run(stop=run.n_frames, step=every)
    figures, series = summarize(analysis.results)
    figures.update(every=int(every), model=raw.name,
                   symmetrized=None if symmetrized is None else symmetrized.name)
    return figures, series


def _layers(run, config, degree, model, notes):
    """B per layer of the run's raw model at its first and last frames, or the one
    line saying why its layers cannot be measured."""
    from mdsym.analysis.equivariance_series import model_of_run
    from mdsym.analysis.hidden_layers import layers_or_reason
    from mdsym.core.system import System

    try:
        if config is None:
            raise MdsymError("run.json's configuration is not readable by this mdsym")
        raw, _ = model_of_run(config, model)
    except MdsymError as error:
        out = {"skipped": str(error)}
    else:
        out = {}
        for label, k in (("first", 0), ("last", run.n_frames - 1)):
            atoms = run.atoms.copy()
            atoms.positions = run.universe.trajectory[k].positions
            out[label] = dict(layers_or_reason(raw, System.from_atoms(atoms), degree), frame=int(k))
            if "skipped" in out[label]:
                out = {"skipped": out[label]["skipped"]}
                break
    if "skipped" in out:
        notes.append(f"hidden layers not measured: {out['skipped']}")
    return out


# ----------------------------------------------------------------------------- plots


def _sector_label(sector):
    lam, sigma = sector
    return f"({lam},{'+' if sigma > 0 else '-'})"


def make_plots(report: dict, series: dict, out: Path) -> list:
    plt = _pyplot()
    made = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)

    n = report["n_atoms"]
    if "conserved_eV" in series and len(series["conserved_eV"]):
        t, e = series["thermo_time_ps"], series["conserved_eV"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].plot(t, (e - e[0]) * 1000 / n, lw=1, label="conserved")
        d = report["drift"]
        if np.isfinite(d["slope_meV_atom_ps"]):
            axes[0].plot(t, (d["intercept_eV"] - e[0]) * 1000 / n + d["slope_meV_atom_ps"] * (t - t[0]),
                         "k--", lw=1, label=f"fit {d['slope_meV_atom_ps']:.3g} meV/atom/ps")
        axes[0].set(xlabel="time (ps)", ylabel="E - E(0) (meV/atom)", title="Conserved energy")
        axes[0].legend(fontsize=8)
        axes[1].plot(t, series["kinetic_eV"], lw=1, label="kinetic")
        axes[1].plot(t, series["potential_eV"] - series["potential_eV"][0], lw=1, label="potential - V(0)")
        axes[1].set(xlabel="time (ps)", ylabel="eV", title="Kinetic and potential energy")
        axes[1].legend(fontsize=8)
        save(fig, "energy.png")

    if "am_time_ps" in series and len(series["am_time_ps"]):
        t = series["am_time_ps"]
        periodic = "am_dL" not in series
        fig, axes = plt.subplots(1, 1 if periodic else 2, figsize=(5 if periodic else 10, 3.6), squeeze=False)
        axes = axes[0]
        if not periodic:
            axes[0].plot(t, series["am_dL"], lw=1)
            axes[0].set(xlabel="time (ps)", ylabel="|L(t) - L(0)| (amu A$^2$/ps)",
                        title="Angular momentum about the centre of mass")
        ax = axes[-1]
        ax.plot(t, series["am_net_force"], lw=1, label="|net force| (eV/A)")
        if not periodic:
            ax.plot(t, series["am_torque"], lw=1, label="|torque| (eV)")
        ax.set(xlabel="time (ps)", title="Net force and torque" if not periodic else
               "Net force (periodic: L not conserved)")
        ax.legend(fontsize=8)
        save(fig, "angular_momentum.png")

    eq = report.get("equivariance", {})
    if "eq_A_forces" in series and len(series["eq_A_forces"]):
        t = series["eq_time_ps"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, key, unit in ((axes[0], "energy", "eV"), (axes[1], "forces", "eV/A")):
            ax.semilogy(t, np.maximum(series[f"eq_A_{key}"], 1e-16), "o-", ms=3, label="raw model")
            if f"eq_A_{key}_sym" in series:
                ax.semilogy(t, np.maximum(series[f"eq_A_{key}_sym"], 1e-16), "s-", ms=3,
                            label=f"symmetrized [{report['config'].get('symmetrize')}]")
            ax.set(xlabel="time (ps)", ylabel=f"A ({unit})", title=f"Equivariance error of the {key}")
            ax.legend(fontsize=8)
        save(fig, "equivariance.png")

    if "eq_B_forces" in series and len(series["eq_B_forces"]):
        t = series["eq_time_ps"]
        labels = [_sector_label(s) for s in eq["sectors"]]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, key in ((axes[0], "energy"), (axes[1], "forces")):
            B = np.asarray(series[f"eq_B_{key}"])
            expected = (0, 1) if key == "energy" else (1, 1)
            for j, label in enumerate(labels):
                if tuple(eq["sectors"][j]) == expected:
                    ax.semilogy(t, np.maximum(1.0 - B[:, j], 1e-16), "k-", lw=2, label=f"1 - B{label}")
                elif B[:, j].max() > 1e-12:
                    ax.semilogy(t, np.maximum(B[:, j], 1e-16), lw=1, label=f"B{label}")
            ax.set(xlabel="time (ps)", ylabel="fraction", title=f"Symmetry content of the {key}")
            ax.legend(fontsize=7, ncol=2)
        save(fig, "content.png")

    temps = [k for k in series if k.startswith("T_")]
    if temps:
        t = series["am_time_ps"]
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for key in temps:
            ax.plot(t, series[key], lw=1, label=key[2:])
        ax.set(xlabel="time (ps)", ylabel="T (K)", title="Kinetic temperatures (equipartition)")
        ax.legend(fontsize=8)
        save(fig, "equipartition.png")

    st = report.get("structure", {})
    if st.get("kind") == "rdf":
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(st["bins"], st["rdf"], lw=1)
        ax.set(xlabel="r (A)", ylabel="g(r)", title="Radial distribution function")
        save(fig, "structure.png")
    elif st.get("kind") == "bonds":
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].plot(st["bond_bins"], st["bond_hist"], lw=1)
        axes[0].set(xlabel="bond length (A)", ylabel="density", title="Bond lengths")
        axes[1].plot(st["angle_bins"], st["angle_hist"], lw=1)
        axes[1].set(xlabel="angle (deg)", ylabel="density", title="Bond angles")
        save(fig, "structure.png")

    hl = report.get("hidden_layers", {})
    if "first" in hl:
        from mdsym.analysis.hidden_layers import plot_heatmap

        plot_heatmap(hl["first"]["layers"], out / "hidden_layers.png",
                     f"Symmetry content of the layers of {hl['first']['model']} (first frame)")
        made.append("hidden_layers.png")
    return made


# ---------------------------------------------------------------------------- markdown


def _g(value, fmt=".3g"):
    if value is None:
        return "n/a"
    if isinstance(value, (float, int, np.floating)):
        return format(float(value), fmt) if np.isfinite(value) else "n/a"
    return str(value)


def markdown(report: dict) -> str:
    config = report.get("config", {})
    lines = [f"# mdsym analysis of `{report['run']}`", ""]
    lines.append(f"- status: **{report['status']}**"
                 + (f" ({report['reason']})" if report.get("reason") else ""))
    if report.get("time_to_failure_fs") is not None:
        lines.append(f"- time to failure: {_g(report['time_to_failure_fs'])} fs")
    for key in ("model", "symmetrize", "forces", "engine", "ensemble", "thermostat", "timestep_fs",
                "steps", "temperature_K", "seed", "stride", "structure"):
        if key in config:
            lines.append(f"- {key}: `{config[key]}`")
    lines.append(f"- atoms: {report['n_atoms']} ({'periodic' if report['periodic'] else 'isolated'}),"
                 f" frames analysed: {report['frames']}"
                 + (f", {report['time_span_ps'][0]:.4g} to {report['time_span_ps'][1]:.4g} ps"
                    if report.get("time_span_ps") else ""))
    if report.get("steps_per_s") is not None:
        lines.append(f"- speed: {_g(report['steps_per_s'])} steps/s")
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]

    d = report.get("drift")
    if d:
        lines += ["", "## Energy drift", "",
                  "| slope (meV/atom/ps) | drift over run / std(K) | max deviation (meV/atom) | duration (ps) |",
                  "|---|---|---|---|",
                  f"| {_g(d['slope_meV_atom_ps'])} | {_g(d['ratio'])} | {_g(d['max_deviation_meV_atom'])} "
                  f"| {_g(d['duration_ps'])} |"]
        if d.get("ensemble") and str(d["ensemble"]).lower() == "nvt":
            lines.append("\nNVT: the conserved quantity includes the thermostat's exchanged energy.")
        if d.get("rows", "every step") != "every step":
            lines.append(f"\nMultiple time stepping: fitted on the {d['rows']}, where the conserved "
                         "quantity is the symmetrized model's total energy.")
        lines.append("\n![energy](energy.png)")
    lines += field_markdown(report.get("field"))
    a = report.get("angular_momentum")
    if a:
        lines += ["", "## Angular momentum, torque, net force", ""]
        if a.get("conserved"):
            lines += ["| max \\|L(t)-L(0)\\| (amu A²/ps) | \\|L(0)\\| | drift rate (amu A²/ps²) | max \\|torque\\| (eV) "
                      "| max \\|net force\\| (eV/A) |", "|---|---|---|---|---|",
                      f"| {_g(a['max_dL'])} | {_g(a['L0_norm'])} | {_g(a['drift_rate'])} | {_g(a['torque_max_eV'])} "
                      f"| {_g(a['net_force_max_eVA'])} |"]
        else:
            lines += [a["note"] + ".", "", f"max |net force|: {_g(a['net_force_max_eVA'])} eV/A, "
                      f"mean {_g(a['net_force_mean_eVA'])} eV/A"]
        lines.append("\n![angular momentum](angular_momentum.png)")
    e = report.get("equivariance")
    if e and "skipped" not in e:
        lines += ["", "## Equivariance error along the trajectory", "",
                  f"Model `{e['model']}`, every {e['every']} frames ({e['frames']} frames), quadrature "
                  f"{e['quadrature']['name']} ({e['quadrature']['size']} elements).", "",
                  "| quantity | mean | max | first | last |", "|---|---|---|---|---|"]
        for key, unit in (("A_energy", "eV"), ("A_forces", "eV/A"), ("A_energy_sym", "eV"),
                          ("A_forces_sym", "eV/A")):
            if key in e:
                f = e[key]
                lines.append(f"| {key} ({unit}) | {_g(f['mean'])} | {_g(f['max'])} | {_g(f['first'])} | {_g(f['last'])} |")
        lines.append("\n![equivariance](equivariance.png)")
        if "B_forces" in e:
            labels = [_sector_label(s) for s in e["sectors"]]
            lines += ["", "### Symmetry content (mean over frames)", "",
                      "| output | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
            for key in ("B_energy", "B_forces"):
                lines.append(f"| {key[2:]} | " + " | ".join(f"{x:.3g}" for x in e[key]["mean"]) + " |")
            lines.append("\n![content](content.png)")
    q = report.get("equipartition")
    if q:
        lines += ["", "## Equipartition (kinetic temperatures)", "", "| degrees of freedom | mean T (K) | "
                  "second half (K) |", "|---|---|---|"]
        for key, f in q.items():
            if isinstance(f, dict):
                lines.append(f"| {key} | {_g(f['mean_K'], '.1f')} | {_g(f['mean_second_half_K'], '.1f')} |")
        lines.append("\n![equipartition](equipartition.png)")
    s = report.get("structure")
    if s and s.get("kind") == "bonds":
        lines += ["", "## Structure", "", f"Bond length {_g(s['bond_mean_A'], '.4g')} ± "
                  f"{_g(s['bond_std_A'], '.2g')} A, mean bond angle {_g(s['angle_mean_deg'], '.4g')} deg, "
                  f"{_g(s['bonds_per_frame'], '.4g')} bonds per frame ({s['frames_used']} frames).",
                  "\n![structure](structure.png)"]
    elif s and s.get("kind") == "rdf":
        lines += ["", "## Structure", "", f"Radial distribution function over {s['frames_used']} frames.",
                  "\n![structure](structure.png)"]
    hl = report.get("hidden_layers")
    if hl:
        lines += ["", "## Symmetry content of the hidden layers", ""]
        if "skipped" in hl:
            lines.append(f"Not measured: {hl['skipped']}.")
        else:
            from mdsym.analysis.hidden_layers import table_lines

            first, last = hl["first"], hl["last"]
            lines += [f"Model `{first['model']}`, every layer in forward order (node: per atom, edge: "
                      f"per neighbour pair), fraction of its squared norm per sector, quadrature "
                      f"{first['quadrature']['name']} ({first['quadrature']['size']} elements); "
                      f"first frame ({first['frame']}):", ""]
            lines += table_lines(first["layers"], markdown=True)
            lines += ["", f"(0,+) at the last frame ({last['frame']}): "
                      + ", ".join(f"`{layer['layer']}` {layer['B'][0]['fraction']:.4g}"
                                  for layer in last["layers"]) + ".",
                      "\n![hidden layers](hidden_layers.png)"]
    return "\n".join(lines) + "\n"


def field_markdown(field) -> list:
    """The public audits' figures (``field_scores.of_run``) as a markdown section."""
    if not field:
        return []
    if "skipped" in field:
        return ["", "## Figures of the public audits", "", f"Not computed: {field['skipped']}."]
    nve, nv, st = field["mlipaudit_nve"], field["nvalchemi"], field["mlipaudit_stability"]
    lines = ["", "## Figures of the public audits", "",
             "Definitions and sources: `mdsym/analysis/field_scores.py`"
             + (" (NVT: over the thermostat's conserved quantity)." if field.get("ensemble") == "nvt" else "."),
             "", "| figure | value |", "|---|---|",
             f"| MLIP Audit NVE: drift / std(K) | {_g(nve['ratio'])} |",
             f"| MLIP Audit NVE score (0-1) | {_g(nve['score'])} |",
             f"| ml-peg drift (meV/atom/ps) | {_g(field['mlpeg_drift_meV_atom_ps'])} |",
             f"| nvalchemi drift (eV/atom/ns, fitted) | {_g(nv['energy_drift_per_atom_per_ns'])} |",
             f"| nvalchemi RMS fluctuation about the fit (eV/atom) | {_g(nv['energy_fluctuation_per_atom'])} |",
             f"| nvalchemi max excursion (eV/atom) | {_g(nv['max_energy_excursion_per_atom'])} |",
             f"| nvalchemi first divergence step | {nv['first_divergence_step'] if nv['first_divergence_step'] is not None else 'none'} |",
             f"| nvalchemi max momentum drift (amu A/ps) | {_g(nv['max_momentum_drift'])} |"]
    if "score" in st:
        lines += [f"| MLIP Audit explosion frame / H detachment frame | {st['explosion_frame']} / "
                  f"{st['hydrogen_drift_frame']} (of {st['expected_frames']} expected frames) |",
                  f"| MLIP Audit stability score (0-1) | {_g(st['score'])}"
                  + (" (stopped by mdsym's monitors)" if st["stopped_by_mdsym"] else "") + " |"]
    return lines
