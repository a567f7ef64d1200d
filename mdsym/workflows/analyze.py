"""``analyze_run``: every analysis of one run directory, written as a report.

Writes into ``OUT`` (default ``RUN/analysis/``):

- ``analysis.json``: the figures (drift, angular momentum, equivariance, content,
  equipartition, structure, hidden layers), the run's status and the notes;
- ``series.npz``: the time series behind the plots (``mdsym compare`` overlays them);
- ``energy.png``, ``angular_momentum.png``, ``equivariance.png``, ``content.png``,
  ``equipartition.png``, ``structure.png``, ``hidden_layers.png`` (those that apply:
  ``mdsym.reports.run_plots``);
- ``report.md``: a readable page with the figures, the notes and the plots
  (``mdsym.reports.run_report``).
"""

import json
from pathlib import Path

import numpy as np

from mdsym.analysis import structure
from mdsym.analysis.angular_momentum import AngularMomentum
from mdsym.analysis.drift import energy_drift
from mdsym.analysis.equipartition import Equipartition
from mdsym.analysis.equivariance_series import EquivarianceSeries, model_of_run, summarize
from mdsym.analysis.field_scores import of_run as field_figures
from mdsym.analysis.hidden_layers import layers_or_reason
from mdsym.analysis.trajectory import energy_rows, load_run, walk
from mdsym.core.errors import MdsymError
from mdsym.core.molecules import molecules
from mdsym.core.system import System
from mdsym.md.config import RunConfig
from mdsym.md.rundir import json_default
from mdsym.reports.run_plots import make_plots
from mdsym.reports.run_report import markdown


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
