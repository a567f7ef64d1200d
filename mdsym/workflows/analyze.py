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
from mdsym.analysis.angular_momentum import AngularMomentum, figures_of
from mdsym.analysis.drift import energy_drift
from mdsym.analysis.equipartition import Equipartition
from mdsym.analysis.equivariance_series import EquivarianceSeries, model_of_run, summarize
from mdsym.analysis.field_scores import of_run as field_figures
from mdsym.analysis.hidden_layers import layers_or_reason
from mdsym.analysis.sources.assemble import (
    NO_MODEL,
    analysis_config,
    analysis_folder,
    energy_provenance,
    frames_precision,
    is_foreign,
)
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
    notes = list(run.notes)
    foreign = is_foreign(run)  # another engine's trajectory (mdsym.analysis.sources): no run.json
    config = analysis_config(run, model) if foreign else run_config(run, notes)
    if (equivariance or layers) and model is None and config is not None and run.source.get("kind") == "mdsym":
        check_model(run, config)
    out = Path(out) if out is not None else analysis_folder(run)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "run": str(run.path), "status": run.status, "reason": run.info.get("reason"),
        "time_to_failure_fs": run.info.get("time_to_failure_fs"),
        "steps_done": run.info.get("steps_done"), "steps_per_s": run.info.get("steps_per_s"),
        "wall_time_s": run.info.get("wall_time_s"),
        "config": config.to_json() if config is not None and not foreign else run.config,
        "n_atoms": run.n_atoms, "periodic": run.periodic, "frames": run.n_frames,
        "time_span_ps": None, "source": dict(run.source),
        "warnings": list(run.warnings), "notes": notes,
    }
    series = {}

    drift(run, config, report, series)

    # the public audits' figures (MLIP Audit, ml-peg, nvalchemi): field_scores
    report["field"] = field_figures(run, config)

    if run.n_frames:
        frame_analyses(run, config, report, series, foreign, max_structure_frames)
        if equivariance:
            report["equivariance"], s = _equivariance(run, config, every, degree, content, model,
                                                      batch_size, notes)
            series.update({f"eq_{k}": v for k, v in s.items()})
        if layers:
            report["hidden_layers"] = _layers(run, config, degree, model, notes)
    elif layers:
        report["hidden_layers"] = {"skipped": f"{run.path / 'trajectory.trr'} has no frames"}
        notes.append(f"hidden layers not measured: {report['hidden_layers']['skipped']}")

    report["warnings"] += temperature_warnings(run, config)
    np.savez_compressed(out / "series.npz", **{k: np.asarray(v) for k, v in series.items()})
    (out / "analysis.json").write_text(json.dumps(report, indent=2, default=json_default))
    if plots:
        report["plots"] = make_plots(report, series, out)
        (out / "analysis.json").write_text(json.dumps(report, indent=2, default=json_default))
    (out / "report.md").write_text(markdown(report))
    return report


def drift(run, config, report: dict, series: dict) -> None:
    """The energy drift of the conserved quantity (thermo.csv: every step; ``mts:K``: the
    outer steps) into ``report``, its series into ``series``."""
    if run.thermo is not None:
        t = run.thermo["time_fs"] / 1000.0
        rows = energy_rows(run.thermo, config)  # mts:K: the outer steps only
        report["drift"] = energy_drift(t[rows], run.thermo["conserved_eV"][rows],
                                       run.thermo["kinetic_eV"][rows], run.n_atoms)
        report["drift"]["rows"] = "every step" if rows.all() else "outer steps (step % K == 0)"
        report["drift"]["ensemble"] = config.ensemble if config is not None else None
        report["drift"].update(energy_provenance(run))  # a foreign trajectory's column, or why none
        series.update(thermo_time_ps=t, conserved_eV=run.thermo["conserved_eV"],
                      kinetic_eV=run.thermo["kinetic_eV"], potential_eV=run.thermo["potential_eV"])


def frame_analyses(run, config, report: dict, series: dict, foreign: bool, max_structure_frames: int) -> None:
    """One pass over the frames, none of them kept: angular momentum (from thermo.csv in
    float64 where it has it), equipartition, structure."""
    am = AngularMomentum(run.universe, run.masses, run.periodic)
    groups = None if run.periodic else molecules(run.atoms)
    eq = Equipartition(run.universe, run.masses, run.numbers, groups)
    walk([am, eq], stop=run.n_frames)
    if am.results.incomplete_frames:
        report["notes"].append(f"{run.path if foreign else run.path / 'trajectory.trr'} lacks velocities or forces in some frames")
    report["time_span_ps"] = [float(am.results.time_ps[0]), float(am.results.time_ps[-1])]
    report["angular_momentum"] = am.results.figures
    series.update({f"am_{k}": v for k, v in am.results.series.items()})
    precise = thermo_mechanics(run, config)
    if precise is not None:  # float64, every step: what the float32 frames would floor
        figures, thermo_series = precise
        figures["frames"] = {k: am.results.figures.get(k) for k in ("max_dL", "drift_rate", "torque_max_eV")}
        figures["frames"]["source"] = frames_precision(run)
        report["angular_momentum"] = figures
        series.update({f"am_{k}": v for k, v in thermo_series.items()})
    if config is not None and config.ensemble == "nvt" and not run.periodic:
        report["angular_momentum"]["thermostat_note"] = (
            f"NVT ({config.thermostat}): the thermostat changes the velocities, and so L; judge "
            "the model's angular-momentum conservation on NVE runs")
    report["equipartition"] = eq.results.figures
    series.update({f"T_{k}": v for k, v in eq.results.temperatures.items()})
    series["T_time_ps"] = am.results.time_ps  # the frames' times (am_time_ps may be thermo.csv's)

    report["structure"] = structure.structure_of(run, max_structure_frames)


def check_model(run, config) -> None:
    """A run directory whose recorded model cannot be loaded here fails in one line
    (unless ``--model`` names another or ``--no-equivariance`` skips the measurement)."""
    try:
        model_of_run(config)
    except MdsymError as error:
        raise MdsymError(f"the model of {run.path} cannot be loaded here ({error}): pass --model to "
                         "name it, or --no-equivariance to analyse without it") from None


def thermo_mechanics(run, config):
    """``(figures, series)`` of L, torque and net force from thermo.csv (float64, every
    step; ``mts:K``: the outer steps) for an isolated system, or None when thermo.csv
    has none (periodic runs, foreign trajectories without these columns)."""
    thermo = run.thermo
    if run.periodic or thermo is None or not np.isfinite(thermo["Lx"]).all() or not len(thermo["Lx"]):
        return None
    rows = energy_rows(thermo, config)
    vector = lambda name: np.column_stack([thermo[f"{name}{axis}"][rows] for axis in ("x", "y", "z")])  # noqa: E731
    figures, series = figures_of(thermo["time_fs"][rows] / 1000.0, vector("L"), vector("torque_"),
                                 vector("fnet_"), periodic=False)
    figures["source"] = f"{run.path}'s own values (float64, " if is_foreign(run) else "thermo.csv (float64, "
    figures["source"] += (
        "every step)" if rows.all() else "outer steps, step % K == 0)")
    return figures, series


def temperature_warnings(run, config) -> list:
    """A warning when the mean temperature of the run is far (over 20 %) from its target
    (NVT) or its initial temperature (NVE): the start was far from equilibrium."""
    if run.thermo is None or config is None or len(run.thermo["temperature_K"]) < 10:
        return []
    temperature = run.thermo["temperature_K"]
    target = config.temperature_K if config.ensemble == "nvt" else float(temperature[0])
    mean = float(np.mean(temperature))
    if not target or abs(mean - target) <= 0.2 * target:
        return []
    return [f"the mean temperature, {mean:.0f} K (max {float(np.max(temperature)):.0f} K), is far from "
            f"the {'target' if config.ensemble == 'nvt' else 'initial'} {target:.0f} K: the start was far "
            "from equilibrium (relax and thermalise it first), or the dynamics heats up"]


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
    if is_foreign(run) and model is None:  # another engine's trajectory names no model
        notes.append(f"equivariance not measured: {NO_MODEL}")
        return {"skipped": NO_MODEL}, {}
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
