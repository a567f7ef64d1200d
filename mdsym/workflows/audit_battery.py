"""The battery of one model: its settings (``MODES``), its pieces (``Battery.tasks``),
each cached as a file so that an audit resumes, and its scorecard rows (``Battery.collect``)."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.calculators.calculator import all_changes

from mdsym.analysis.hidden_layers import hidden_layer_content
from mdsym.core.defaults import AUDIT_SPECS, DEFAULT_STRUCTURE, STRUCTURES, structure_path
from mdsym.core.errors import MdsymError
from mdsym.core.system import System, read_structure
from mdsym.md.config import RunConfig
from mdsym.md.rundir import json_default
from mdsym.models import load_model, shipped
from mdsym.reports.formatting import slug
from mdsym.serving.ase_calculator import MdsymCalculator
from mdsym.symmetry.metrics import measure
from mdsym.symmetry.spec import SymmetrizeSpec
from mdsym.symmetry.symmetrized import SymmetrizedModel
from mdsym.workflows import dynamic_equivariance as dyn
from mdsym.workflows.analyze import analyze_run
from mdsym.workflows.study import run_one

DEFAULT_SPECS = AUDIT_SPECS
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
    perturbation_A: float = 1e-6  # the model's own chaos: a copy displaced by this much
    arena_axes: int = 20
    mlpeg_random: int = 100
    degree: int = 2  # A and B up to this lambda
    cost_rounds: int = 15  # interleaved force calls, raw and symmetrized, for the cost
    plots: bool = True  # analyze_run's plots of every run


MODES = {
    "standard": AuditSettings(),
    "fast": AuditSettings(nve_duration_fs=10.0, nvt_duration_fs=10.0, nve_timesteps_fs=(0.5, 1.0, 2.0),
                          nvt_timestep_fs=1.0, dynamic_timestep_fs=1.0, dynamic_duration_fs=20.0,
                          stride=2, dynamic_stride=2, arena_axes=2, mlpeg_random=4, degree=1, plots=False,
                          cost_rounds=3),
}

def structure_for(model: str, structure=None) -> Path:
    """The structure a model is audited on: the one given, a shipped model's own
    (its card's ``structure``), ``cu-cluster-55`` for the analytic model, else ethanol."""
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
    tmp.write_text(json.dumps(value, indent=2, default=json_default))
    tmp.replace(path)
    return value


class Battery:
    """The audit of one model on one structure; ``tasks()`` lists its pieces."""

    def __init__(self, model: str, structure, specs, settings: AuditSettings, out: Path, seed: int = 0,
                 batch_size=None, variant=None):
        self.model_name = str(model)
        self.structure = Path(structure)
        self.atoms = read_structure(self.structure)
        self.system = System.from_atoms(self.atoms)
        self.variant = variant  # a metatomic energy/NAME, None: the plain energy
        self.label = self.model_name + (f" (energy/{variant})" if variant else "")  # in the tables
        self.model = load_model(self.model_name, variant=variant)
        self.model.check_system(self.system)
        self.settings = settings
        self.seed = int(seed)
        self.batch_size = batch_size
        self.folder = Path(out) / slug(self.model_name + (f"-{variant}" if variant else ""))
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
        base = {"engine": "ase", "model": self.model_name, "variant": self.variant,
                "symmetrize": spec, "forces": "auto",
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
        info = path / "run.json"
        if info.exists():
            held = RunConfig.from_json(json.loads(info.read_text()).get("config"), where=info, partial=True)
            wanted = RunConfig.coerce(config)
            differ = [k for k in ("model", "symmetrize", "ensemble", "timestep_fs", "steps", "temperature_K",
                                  "seed") if getattr(held, k) != getattr(wanted, k)]
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
        return dyn.initial_state(self.atoms, self.settings.initial_temperature_K, self.seed)

    def dynamic(self, spec: str, model=None) -> dict:
        s = self.settings
        return dyn.dynamic_equivariance(model or self.model, self.initial_state(), spec,
                                    steps=int(round(s.dynamic_duration_fs / s.dynamic_timestep_fs)),
                                    timestep_fs=s.dynamic_timestep_fs, stride=s.dynamic_stride, seed=self.seed,
                                    n_rotations=s.dynamic_rotations, batch_size=self.batch_size)

    def floor(self) -> dict:
        name = dyn.invariant_floor_model(self.atoms)
        result = self.dynamic("none", load_model(name))
        result["model"] = name
        return result

    def self_floor(self) -> dict:
        s = self.settings
        return dyn.perturbation_floor(self.model, self.initial_state(), "none", s.perturbation_A,
                                  steps=int(round(s.dynamic_duration_fs / s.dynamic_timestep_fs)),
                                  timestep_fs=s.dynamic_timestep_fs, stride=s.dynamic_stride, seed=self.seed,
                                  batch_size=self.batch_size)

    def symmetrized(self, spec: str):
        if spec == "none":
            return self.model
        return SymmetrizedModel(self.model, spec, batch_size=self.batch_size, seed=self.seed)

    def static(self, spec: str) -> dict:
        return dyn.static_rotation_tests(self.symmetrized(spec), self.atoms, arena_axes=self.settings.arena_axes,
                                     mlpeg_random=self.settings.mlpeg_random, seed=self.seed,
                                     batch_size=self.batch_size)

    def metrics(self, spec: str) -> dict:
        report = measure(self.symmetrized(spec), self.system, self.settings.degree, batch_size=self.batch_size)
        return {key: report[key] for key in ("energy", "forces", "quadrature", "max_degree")}

    def cost(self, spec: str) -> dict:
        """Milliseconds per force call (one per MD step), raw and under ``spec``, timed side
        by side: three warm-up calls each, then ``cost_rounds`` interleaved rounds; medians,
        so the load of a shared machine mostly cancels in the ratio."""
        calculators = [MdsymCalculator(self.model, "none", batch_size=self.batch_size),
                       MdsymCalculator(self.model, spec, batch_size=self.batch_size, seed=self.seed)]
        atoms = self.atoms.copy()
        times = [[], []]
        for k in range(3 + self.settings.cost_rounds):
            for which, calculator in enumerate(calculators):
                started = time.perf_counter()
                calculator.calculate(atoms, ["energy", "forces"], all_changes)
                if k >= 3:
                    times[which].append(time.perf_counter() - started)
        raw, symmetrized = (np.array(t) * 1000.0 for t in times)
        return {"ms_per_call": float(np.median(symmetrized)), "raw_ms_per_call": float(np.median(raw)),
                "ratio_to_raw": float(np.median(symmetrized / raw)), "rounds": self.settings.cost_rounds}

    def hidden_layers(self) -> dict:
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
                  lambda: _cached(self.folder / "floor.json", self.floor)),
                 (f"{self.model_name}: its own chaos", dynamic_steps // (s.dynamic_rotations + 2) * 2,
                  lambda: _cached(self.folder / "self_floor.json", self.self_floor))]
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
                (f"{self.model_name} [{spec}]: cost", 2 * s.cost_rounds,
                 lambda f=folder, sp=spec: _cached(f / "cost.json", lambda: self.cost(sp))),
            ]
        return found

    # ------------------------------------------------------------------ scorecard

    def evaluations_per_step(self, spec: str) -> int:
        symmetrizer = SymmetrizedModel(self.model, spec)
        return len(symmetrizer.quadrature) if symmetrizer.spec.mode == "grid" else 1

    def collect(self) -> dict:
        """Read every finished piece back into one result (after ``tasks`` ran)."""
        floor = json.loads((self.folder / "floor.json").read_text())
        self_floor = json.loads((self.folder / "self_floor.json").read_text())
        hidden = json.loads((self.folder / "hidden_layers.json").read_text())
        details, rows = {}, []
        for spec in self.specs:
            folder = self.folder / slug(spec)
            runs = {name: json.loads((folder / name / "analysis" / "analysis.json").read_text())
                    for name in self.md_configs(spec)}
            piece = {name: json.loads((folder / f"{name}.json").read_text())
                     for name in ("dynamic", "static", "metrics", "cost")}
            details[spec] = {"runs": {name: _run_summary(report) for name, report in runs.items()}, **piece}
            rows.append(self.row(spec, runs, piece, floor, self_floor))
        return {"model": self.label, "structure": str(self.structure), "n_atoms": len(self.atoms),
                "specs_skipped": self.skipped, "floor": floor, "self_floor": self_floor, "hidden_layers": hidden,
                "rows": rows, "details": details}

    def row(self, spec, runs, piece, floor, self_floor) -> dict:
        nve = [r for name, r in runs.items() if name.startswith("nve")]
        nvt = [r for name, r in runs.items() if name.startswith("nvt")]
        middle = nve[len(nve) // 2]  # the middle timestep
        field = middle.get("field", {})
        metrics, static, dynamic = piece["metrics"], piece["static"], piece["dynamic"]
        b_forces = next((b["fraction"] for b in metrics["forces"]["B"] if b["lambda"] == 1 and b["sigma"] == 1), None)
        return {
            "model": self.label, "structure": self.structure.name, "spec": spec,
            "evaluations_per_step": self.evaluations_per_step(spec),
            "ms_per_force_call": piece["cost"]["ms_per_call"], "cost_vs_raw": piece["cost"]["ratio_to_raw"],
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
            "self_floor_time_to_0.1A_fs": _time(self_floor),
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
