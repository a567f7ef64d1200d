"""``mdsym audit``: one stability battery per model, one scorecard, one leaderboard.

For each model and each symmetrization spec (the raw model first), on one structure:

- NVE at three timesteps and NVT at two temperatures, each a run directory made by
  ``mdsym run``'s engine and analysed by ``mdsym analyze`` (``analyze_run``): the
  public audits' figures (``mdsym.analysis.field_scores``: MLIP Audit's NVE ratio
  and score and its stability score, ml-peg's drift, nvalchemi's drift, fluctuation
  and divergence) next to mdsym's own (angular-momentum non-conservation);
- the dynamic equivariance test (``mdsym.analysis.dynamic_equivariance``): the time
  until a transformed run leaves the transformed reference run by 0.1 Angstrom,
  with the floor of an exactly invariant analytic model on the same initial state;
- its static counterparts: MLIP Arena's force equivariance and ml-peg's rotational
  test;
- A and B of the outputs (``mdsym.metrics.measure``), and of the raw model's hidden
  layers (``mdsym.analysis.hidden_layers``; when they cannot be measured, why);
- the cost: model evaluations and milliseconds per MD step.

Everything lands in ``OUT/<model>/<spec>/``; a finished piece (a completed run, a
``*.json`` result) is reused, so an interrupted audit resumes where it stopped.
``OUT/audit.json``, ``OUT/audit.md`` and ``OUT/<model>/scorecard.png`` hold the
scorecard: a row per (model, spec). Modes (``MODES``): ``fast`` for CI (seconds on
the analytic model), ``standard`` for users.
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import MdsymError
from .rundir import _json_default

DEFAULT_SPECS = ("none", "random", "nettorque", "o3:1")
ANALYTIC_STRUCTURE = "cu-cluster-55"


@dataclass(frozen=True)
class AuditSettings:
    nve_timesteps_fs: tuple = (0.25, 0.5, 1.0)
    nve_duration_fs: float = 125.0
    nvt_temperatures_K: tuple = (300.0, 500.0)
    nvt_timestep_fs: float = 0.5
    nvt_duration_fs: float = 125.0
    initial_temperature_K: float = 300.0  # NVE and the dynamic test start here
    stride: int = 5
    dynamic_timestep_fs: float = 1.0
    dynamic_duration_fs: float = 250.0
    dynamic_rotations: int = 2  # Haar-random rotations, plus the inversion
    dynamic_stride: int = 5
    arena_axes: int = 20
    mlpeg_random: int = 100
    degree: int = 2  # A and B up to this lambda
    plots: bool = True  # analyze_run's plots of every run


MODES = {
    "standard": AuditSettings(),
    "fast": AuditSettings(nve_duration_fs=10.0, nvt_duration_fs=10.0, nve_timesteps_fs=(0.5, 1.0, 2.0),
                          nvt_timestep_fs=1.0, dynamic_timestep_fs=1.0, dynamic_duration_fs=20.0,
                          stride=2, dynamic_stride=2, arena_axes=2, mlpeg_random=4, degree=1, plots=False),
}

#: the fields of every scorecard row, in the order of the table (ROW_UNITS: their units)
ROW_FIELDS = (
    "model", "structure", "spec", "evaluations_per_step", "ms_per_step", "cost_vs_raw",
    "A_energy_eV", "A_forces_eVA", "B_forces_1plus", "max_dL_amuA2ps", "max_net_force_eVA",
    "mlipaudit_nve_score", "mlipaudit_nve_ratio", "mlpeg_drift_meV_atom_ps", "nvalchemi_drift_eV_atom_ns",
    "nvalchemi_fluctuation_eV_atom", "mlipaudit_stability_score", "runs_failed",
    "time_to_0.1A_fs", "floor_time_to_0.1A_fs", "arena_mean_cosine", "arena_mae_eVA", "mlpeg_mean_dF_meV_A",
)
COLUMN_TITLES = {
    "spec": "spec", "evaluations_per_step": "evals/step", "ms_per_step": "ms/step",
    "cost_vs_raw": "cost vs raw", "A_energy_eV": "A energy (eV)", "A_forces_eVA": "A forces (eV/A)",
    "B_forces_1plus": "B forces (1,+)", "max_dL_amuA2ps": "max |dL| NVE (amu A2/ps)",
    "max_net_force_eVA": "max net force (eV/A)", "mlipaudit_nve_score": "MLIP Audit NVE score",
    "mlipaudit_nve_ratio": "NVE drift/std(K)", "mlpeg_drift_meV_atom_ps": "ml-peg drift (meV/atom/ps)",
    "nvalchemi_drift_eV_atom_ns": "nvalchemi drift (eV/atom/ns)",
    "nvalchemi_fluctuation_eV_atom": "nvalchemi fluct. (eV/atom)",
    "mlipaudit_stability_score": "MLIP Audit stability score", "runs_failed": "runs failed",
    "time_to_0.1A_fs": "t to 0.1 A (fs)", "floor_time_to_0.1A_fs": "floor t (fs)",
    "arena_mean_cosine": "Arena cos", "arena_mae_eVA": "Arena MAE (eV/A)",
    "mlpeg_mean_dF_meV_A": "ml-peg dF (meV/A)",
}


def slug(text: str) -> str:
    """A file-name-safe version of a model or spec name."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))
    return keep.strip("_") or "model"


def structure_for(model: str, structure=None) -> Path:
    """The structure a model is audited on: the one given, a shipped model's own
    (its card's ``structure``), ``cu-cluster-55`` for the analytic model, else ethanol."""
    from .commands_common import DEFAULT_STRUCTURE, STRUCTURES, structure_path
    from .models import shipped

    if structure:
        return structure_path(structure)
    if str(model) in shipped.names():
        card = shipped.path(model).with_suffix(".json")
        if card.exists():
            name = Path(json.loads(card.read_text()).get("structure", "")).name
            if (STRUCTURES / name).exists():
                return STRUCTURES / name
    if str(model).startswith("analytic"):
        return STRUCTURES / f"{ANALYTIC_STRUCTURE}.xyz"
    return DEFAULT_STRUCTURE


def _cached(path: Path, compute):
    """The JSON in ``path``, or ``compute()`` written there (what makes an audit resumable)."""
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass  # a torn write: compute again
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=_json_default))
    tmp.replace(path)
    return value


class Battery:
    """The audit of one model on one structure; ``tasks()`` lists its pieces."""

    def __init__(self, model: str, structure, specs, settings: AuditSettings, out: Path, seed: int = 0,
                 batch_size=None):
        from .models import load_model
        from .symmetrize import SymmetrizeSpec
        from .system import System, read_structure

        self.model_name = str(model)
        self.structure = Path(structure)
        self.atoms = read_structure(self.structure)
        self.system = System.from_atoms(self.atoms)
        self.model = load_model(self.model_name)
        self.model.check_system(self.system)
        self.settings = settings
        self.seed = int(seed)
        self.batch_size = batch_size
        self.folder = Path(out) / slug(self.model_name)
        self.specs, self.skipped = [], {}
        for spec in specs:
            parsed = SymmetrizeSpec.parse(spec)
            if parsed.remove_net_torque and self.system.periodic:
                self.skipped[str(parsed)] = "nettorque applies to isolated systems only (the structure is periodic)"
            else:
                self.specs.append(str(parsed))

    # ------------------------------------------------------------------ pieces

    def md_configs(self, spec: str) -> dict:
        s = self.settings
        base = {"engine": "ase", "model": self.model_name, "symmetrize": spec, "forces": "auto",
                "structure": str(self.structure), "seed": self.seed, "stride": s.stride,
                "batch_size": self.batch_size, "thermostat": "svr", "thermostat_tau_fs": 100.0}
        configs = {}
        for dt in s.nve_timesteps_fs:
            configs[f"nve-dt{dt:g}fs"] = dict(base, ensemble="nve", timestep_fs=dt,
                                               steps=int(round(s.nve_duration_fs / dt)),
                                               temperature_K=s.initial_temperature_K)
        for temperature in s.nvt_temperatures_K:
            configs[f"nvt-{temperature:g}K"] = dict(base, ensemble="nvt", timestep_fs=s.nvt_timestep_fs,
                                                     steps=int(round(s.nvt_duration_fs / s.nvt_timestep_fs)),
                                                     temperature_K=temperature)
        return configs

    def run_and_analyze(self, path: Path, config: dict) -> dict:
        from .analysis.report import analyze_run
        from .analysis.study import run_one

        info = path / "run.json"
        if info.exists():
            held = json.loads(info.read_text()).get("config", {})
            differ = [k for k in ("model", "symmetrize", "ensemble", "timestep_fs", "steps", "temperature_K",
                                  "seed") if str(held.get(k)) != str(config[k])]
            if differ:
                raise MdsymError(f"{path} holds a run with other settings ({', '.join(differ)}): "
                                 "audit into another --out")
        finished = info.exists() and json.loads(info.read_text()).get("status") in ("completed", "failed")
        if not finished:  # a failed stability test is a result, not something to redo
            run_one(config, path)
        analysis = path / "analysis" / "analysis.json"
        if analysis.exists():
            report = json.loads(analysis.read_text())
            if report.get("status") == json.loads(info.read_text()).get("status"):
                return report
        return analyze_run(path, equivariance=False, plots=self.settings.plots)

    def initial_state(self):
        from .analysis.dynamic_equivariance import initial_state

        return initial_state(self.atoms, self.settings.initial_temperature_K, self.seed)

    def dynamic(self, spec: str, model=None) -> dict:
        from .analysis.dynamic_equivariance import dynamic_equivariance

        s = self.settings
        return dynamic_equivariance(model or self.model, self.initial_state(), spec,
                                    steps=int(round(s.dynamic_duration_fs / s.dynamic_timestep_fs)),
                                    timestep_fs=s.dynamic_timestep_fs, stride=s.dynamic_stride, seed=self.seed,
                                    n_rotations=s.dynamic_rotations, batch_size=self.batch_size)

    def floor(self) -> dict:
        from .analysis.dynamic_equivariance import invariant_floor_model
        from .models import load_model

        name = invariant_floor_model(self.atoms)
        result = self.dynamic("none", load_model(name))
        result["model"] = name
        return result

    def symmetrized(self, spec: str):
        from .models.symmetrized import SymmetrizedModel
        from .symmetrize import Symmetrizer

        if spec == "none":
            return self.model
        return SymmetrizedModel(Symmetrizer(self.model, spec, batch_size=self.batch_size, seed=self.seed))

    def static(self, spec: str) -> dict:
        from .analysis.dynamic_equivariance import static_rotation_tests

        return static_rotation_tests(self.symmetrized(spec), self.atoms, arena_axes=self.settings.arena_axes,
                                     mlpeg_random=self.settings.mlpeg_random, seed=self.seed,
                                     batch_size=self.batch_size)

    def metrics(self, spec: str) -> dict:
        from .metrics import measure

        report = measure(self.symmetrized(spec), self.system, self.settings.degree, batch_size=self.batch_size)
        return {key: report[key] for key in ("energy", "forces", "quadrature", "max_degree")}

    def hidden_layers(self) -> dict:
        from .analysis.hidden_layers import hidden_layer_content

        try:
            return {"layers": hidden_layer_content(self.model, self.system, self.settings.degree)}
        except MdsymError as error:
            return {"skipped": str(error)}

    def tasks(self) -> list:
        """``(label, weight in MD steps, callable)`` for every piece, in order."""
        s = self.settings
        dynamic_steps = int(round(s.dynamic_duration_fs / s.dynamic_timestep_fs)) * (s.dynamic_rotations + 2)
        found = [(f"{self.model_name}: hidden layers", 1,
                  lambda: _cached(self.folder / "hidden_layers.json", self.hidden_layers)),
                 (f"{self.model_name}: invariant floor", dynamic_steps,
                  lambda: _cached(self.folder / "floor.json", self.floor))]
        for spec in self.specs:
            folder = self.folder / slug(spec)
            for name, config in self.md_configs(spec).items():
                found.append((f"{self.model_name} [{spec}]: {name}", config["steps"],
                              lambda p=folder / name, c=config: self.run_and_analyze(p, c)))
            found += [
                (f"{self.model_name} [{spec}]: dynamic equivariance", dynamic_steps,
                 lambda f=folder, sp=spec: _cached(f / "dynamic.json", lambda: self.dynamic(sp))),
                (f"{self.model_name} [{spec}]: static rotations", 20,
                 lambda f=folder, sp=spec: _cached(f / "static.json", lambda: self.static(sp))),
                (f"{self.model_name} [{spec}]: A and B", 20,
                 lambda f=folder, sp=spec: _cached(f / "metrics.json", lambda: self.metrics(sp))),
            ]
        return found

    # ------------------------------------------------------------------ scorecard

    def evaluations_per_step(self, spec: str) -> int:
        from .symmetrize import Symmetrizer

        symmetrizer = Symmetrizer(self.model, spec)
        return len(symmetrizer.quadrature) if symmetrizer.spec.mode == "grid" else 1

    def collect(self) -> dict:
        """Read every finished piece back into one result (after ``tasks`` ran)."""
        floor = json.loads((self.folder / "floor.json").read_text())
        hidden = json.loads((self.folder / "hidden_layers.json").read_text())
        details, rows = {}, []
        for spec in self.specs:
            folder = self.folder / slug(spec)
            runs = {name: json.loads((folder / name / "analysis" / "analysis.json").read_text())
                    for name in self.md_configs(spec)}
            piece = {name: json.loads((folder / f"{name}.json").read_text())
                     for name in ("dynamic", "static", "metrics")}
            details[spec] = {"runs": {name: _run_summary(report) for name, report in runs.items()}, **piece}
            rows.append(self.row(spec, runs, piece, floor))
        raw_ms = next((r["ms_per_step"] for r in rows if r["spec"] == "none"), None)
        for row in rows:
            row["cost_vs_raw"] = (row["ms_per_step"] / raw_ms if raw_ms and row["ms_per_step"] else None)
        return {"model": self.model_name, "structure": str(self.structure), "n_atoms": len(self.atoms),
                "specs_skipped": self.skipped, "floor": floor, "hidden_layers": hidden,
                "rows": rows, "details": details}

    def row(self, spec, runs, piece, floor) -> dict:
        nve = [r for name, r in runs.items() if name.startswith("nve")]
        nvt = [r for name, r in runs.items() if name.startswith("nvt")]
        middle = nve[len(nve) // 2]  # the middle timestep
        field = middle.get("field", {})
        speeds = [r["steps_per_s"] for r in nve if r.get("steps_per_s")]
        metrics, static, dynamic = piece["metrics"], piece["static"], piece["dynamic"]
        b_forces = next((b["fraction"] for b in metrics["forces"]["B"] if b["lambda"] == 1 and b["sigma"] == 1), None)
        return {
            "model": self.model_name, "structure": self.structure.name, "spec": spec,
            "evaluations_per_step": self.evaluations_per_step(spec),
            "ms_per_step": float(1000.0 / np.median(speeds)) if speeds else None,
            "cost_vs_raw": None,
            "A_energy_eV": metrics["energy"]["A"], "A_forces_eVA": metrics["forces"]["A"],
            "B_forces_1plus": b_forces,
            "max_dL_amuA2ps": middle.get("angular_momentum", {}).get("max_dL"),
            "max_net_force_eVA": middle.get("angular_momentum", {}).get("net_force_max_eVA"),
            "mlipaudit_nve_score": _mean([r.get("field", {}).get("mlipaudit_nve", {}).get("score") for r in nve]),
            "mlipaudit_nve_ratio": field.get("mlipaudit_nve", {}).get("ratio"),
            "mlpeg_drift_meV_atom_ps": field.get("mlpeg_drift_meV_atom_ps"),
            "nvalchemi_drift_eV_atom_ns": field.get("nvalchemi", {}).get("energy_drift_per_atom_per_ns"),
            "nvalchemi_fluctuation_eV_atom": field.get("nvalchemi", {}).get("energy_fluctuation_per_atom"),
            "mlipaudit_stability_score": _mean([r.get("field", {}).get("mlipaudit_stability", {}).get("score")
                                                for r in nvt]),
            "runs_failed": sum(r.get("status") != "completed" for r in runs.values()),
            "time_to_0.1A_fs": _time(dynamic), "floor_time_to_0.1A_fs": _time(floor),
            "arena_mean_cosine": static["arena"]["mean_cosine"], "arena_mae_eVA": static["arena"]["mean_mae_eVA"],
            "mlpeg_mean_dF_meV_A": static["mlpeg"]["mean_dF_meV_A"],
        }


def _mean(values):
    values = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def _time(dynamic: dict):
    """Median time to the threshold; ``> run`` when no transformed run crossed it."""
    if dynamic.get("crossed", 0) == 0:
        return f"> {dynamic['time_fs'][-1]:g}" if dynamic.get("time_fs") else None
    return dynamic["median_time_to_threshold_fs"]


def _run_summary(report: dict) -> dict:
    keys = ("status", "reason", "time_to_failure_fs", "steps_done", "steps_per_s", "field", "drift")
    summary = {k: report.get(k) for k in keys}
    summary["angular_momentum"] = {k: v for k, v in (report.get("angular_momentum") or {}).items()
                                   if not isinstance(v, list)}
    return summary


# ----------------------------------------------------------------------- the command


def run_audit(models, out, structure=None, specs=DEFAULT_SPECS, mode: str = "standard", seed: int = 0,
              batch_size=None, progress: bool = True, echo=print) -> dict:
    """Audit ``models``; writes ``OUT/audit.json`` and ``OUT/audit.md``; returns the result."""
    import click

    if mode not in MODES:
        raise MdsymError(f"unknown audit mode {mode!r}: use {' or '.join(MODES)}")
    if not models:
        raise MdsymError("give at least one model to audit")
    settings = MODES[mode]
    out = Path(out)
    started = time.monotonic()
    _check_settings(out, {"mode": mode, "seed": seed, "settings": asdict(settings)})
    batteries = [Battery(m, structure_for(m, structure), specs, settings, out, seed, batch_size) for m in models]
    tasks = [task for battery in batteries for task in battery.tasks()]
    total = sum(weight for _, weight, _ in tasks)
    with click.progressbar(length=total, label="audit", show_eta=True, file=None,
                           item_show_func=lambda label: label) if progress else _Silent() as bar:
        for label, weight, work in tasks:
            bar.update(0, label)
            work()
            bar.update(weight, label)
    result = {"mode": mode, "settings": asdict(settings), "seed": seed, "specs": list(specs),
              "threshold_A": _threshold(), "models": [b.collect() for b in batteries]}
    result["leaderboard"] = [row for model in result["models"] for row in model["rows"]]
    result["wall_s"] = time.monotonic() - started
    out.mkdir(parents=True, exist_ok=True)
    result["plots"] = [plot_scorecard(model, out) for model in result["models"]]
    (out / "audit.json").write_text(json.dumps(result, indent=2, default=_json_default))
    (out / "audit.md").write_text(markdown(result))
    return result


def _check_settings(out: Path, settings: dict) -> None:
    """Resume only an audit made with the same settings (its pieces are reused as they are)."""
    path = out / "settings.json"
    if path.exists():
        held = json.loads(path.read_text())
        if held != json.loads(json.dumps(settings)):
            raise MdsymError(f"{out} holds an audit made with other settings ({path}): audit into another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))


class _Silent:
    current_item = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *args):
        pass


def _threshold() -> float:
    from .analysis.dynamic_equivariance import THRESHOLD_A

    return THRESHOLD_A


def _cell(value) -> str:
    from .analysis.report import _g

    return value if isinstance(value, str) else _g(value)


def table(rows, with_model: bool) -> list:
    """Markdown lines of a table of scorecard rows."""
    fields = [f for f in ROW_FIELDS if f not in ("model", "structure")]
    titles = (["model"] if with_model else []) + [COLUMN_TITLES[f].replace("|", "\\|") for f in fields]
    lines = ["| " + " | ".join(titles) + " |", "|---" * len(titles) + "|"]
    for row in rows:
        cells = ([f"`{row['model']}`"] if with_model else []) + [
            f"`{row[f]}`" if f == "spec" else _cell(row[f]) for f in fields]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = ["# mdsym audit", "",
             f"Mode `{result['mode']}`, seed {result['seed']}, {result['wall_s']:.0f} s. "
             f"NVE at {', '.join(f'{x:g}' for x in s['nve_timesteps_fs'])} fs for {s['nve_duration_fs']:g} fs "
             f"(figures: the middle timestep; MLIP Audit NVE score: mean over the three); NVT at "
             f"{', '.join(f'{x:g}' for x in s['nvt_temperatures_K'])} K for {s['nvt_duration_fs']:g} fs "
             f"(MLIP Audit stability score: mean over the two); dynamic equivariance: "
             f"{s['dynamic_rotations']} random rotations and the inversion, {s['dynamic_duration_fs']:g} fs at "
             f"{s['dynamic_timestep_fs']:g} fs, median time until a transformed run is "
             f"{result['threshold_A']:g} A (RMSD) from the transformed reference run (\"> T\": none crossed), "
             f"floor: an exactly invariant analytic model on the same initial state.",
             "", "Definitions and sources of the public audits' figures: `mdsym/analysis/field_scores.py`; "
             "of the dynamic test: `mdsym/analysis/dynamic_equivariance.py`.", "",
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
                lines.append(f"| `{layer['layer']}` | {layer['size']} | {_cell(fraction.get((0, 1)))} | "
                             f"{_cell(fraction.get((1, 1)))} | {_cell(layer['residual'])} |")
        failed = [(spec, name, run.get("reason")) for spec, d in model["details"].items()
                  for name, run in d["runs"].items() if run.get("status") != "completed"]
        for spec, name, reason in failed:
            lines.append(f"\n- `{spec}` {name}: {reason}")
        lines.append(f"\n![scorecard]({slug(model['model'])}/scorecard.png)")
    return "\n".join(lines) + "\n"


def plot_scorecard(model: dict, out: Path) -> str:
    """Distance between transformed and reference runs over time, per spec, and the scores."""
    from .analysis.report import _pyplot

    plt = _pyplot()
    fig, (ax_d, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
    series = [("floor (invariant analytic)", model["floor"], "k")]
    series += [(spec, model["details"][spec]["dynamic"], f"C{k}") for k, spec in enumerate(model["details"])]
    for label, dynamic, colour in series:
        t = np.asarray(dynamic["time_fs"])
        for k, element in enumerate(dynamic["elements"]):
            d = np.maximum(np.asarray(element["distance_A"]), 1e-16)
            ax_d.semilogy(t[:len(d)], d, color=colour, lw=1, ls="-" if element["proper"] else "--",
                          label=label if k == 0 else None)
    ax_d.axhline(_threshold(), color="grey", lw=0.8)
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
    ax_s.set(ylim=(0, 1.05), title="Scores (1 is best)")
    ax_s.legend(fontsize=7)
    fig.suptitle(f"{model['model']} on {Path(model['structure']).name}")
    fig.tight_layout()
    path = out / slug(model["model"]) / "scorecard.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path.relative_to(out))


# ------------------------------------------------------------------------ click


def _command():
    import click

    from .commands_common import THREADS_HELP, configure_threads, one_line_errors

    @click.command()
    @click.argument("models", nargs=-1, required=True)
    @click.option("--structure", "-s", default=None,
                  help="Structure for every model [default: each shipped model's own; cu-cluster-55 for "
                       "analytic; else ethanol].")
    @click.option("--specs", default=",".join(DEFAULT_SPECS), show_default=True,
                  help="Comma-separated symmetrizations; the raw model (none) is always audited first.")
    @click.option("--fast", is_flag=True, help="The CI battery: seconds on the analytic model.")
    @click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("audit"),
                  show_default=True, help="Folder for the runs and the scorecard (an existing one is resumed).")
    @click.option("--seed", default=0, show_default=True, type=int)
    @click.option("--batch-size", default=None, type=int,
                  help="Rotated copies per model call (default: chosen from the model and size).")
    @click.option("--threads", default="auto", show_default=True, help=THREADS_HELP)
    @click.option("--progress/--no-progress", default=True, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print audit.json to stdout.")
    @one_line_errors
    def audit(models, structure, specs, fast, out, seed, batch_size, threads, progress, as_json):
        """Stability audit of one or more models: the public audits' figures (MLIP Audit, ml-peg,
        MLIP Arena, nvalchemi) next to mdsym's (L, A, B) and the dynamic equivariance test, for the
        raw model and each symmetrization; one scorecard and leaderboard (OUT/audit.md)."""
        from .symmetrize import SymmetrizeSpec
        from .system import read_structure

        spec_list = [str(SymmetrizeSpec.parse(x)) for x in specs.split(",") if x.strip()]
        spec_list = ["none"] + [x for x in dict.fromkeys(spec_list) if x != "none"]
        sizes = [len(read_structure(structure_for(m, structure))) for m in models]
        configure_threads(threads, max(sizes))
        result = run_audit(list(models), out, structure=structure, specs=spec_list,
                           mode="fast" if fast else "standard", seed=seed, batch_size=batch_size,
                           progress=progress, echo=click.echo)
        if as_json:
            click.echo(json.dumps(result, indent=2, default=_json_default))
            return
        fields = ("spec", "ms_per_step", "A_forces_eVA", "max_dL_amuA2ps", "mlipaudit_nve_score",
                  "mlipaudit_stability_score", "time_to_0.1A_fs")
        rows = [["model"] + [COLUMN_TITLES[f] for f in fields]]
        rows += [[row["model"]] + [_cell(row[f]) for f in fields] for row in result["leaderboard"]]
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        click.echo(f"scorecard: {Path(out) / 'audit.md'} ({result['wall_s']:.0f} s)")

    return audit


audit = _command()
