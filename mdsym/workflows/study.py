"""``run_study``: the showcase. Raw vs symmetrized dynamics of one model, analysed and compared.

For one model and structure it runs NVE dynamics, with several seeds each, of

- ``none``: the raw model;
- ``random``: one random rotation of O(3) per step;
- ``nettorque``: the raw model with its net torque removed (isolated systems);
- ``o3:1`` and ``o3:3``: grid symmetrization at two degrees;

analyses every run (``analyze_run``), compares them all (``compare_runs``: one
column per run, reference the first seed of the last spec) and sums them up per
spec (``aggregate``): mean and spread over seeds of max |L(t) - L(0)|, of the
energy drift, of A of the forces that drove the dynamics, of steps/s, and the cost
relative to raw. ``OUT/study.md`` opens with that conclusion, ``OUT/study.json``
holds its numbers, ``OUT/study.png`` plots them with error bars (the page and the
plot: ``mdsym.reports.study_report``).

The defaults answer the question "what does the lack of symmetry of a learned
model do to its dynamics, and what does each fix cost?": ``pet-ethanol-noaug`` (the
shipped PET model trained without rotational augmentation, A of its forces about
0.04 eV/A) on its own structure, NVE from 300 K at 1 fs (stable: raw runs at 1 fs
drift by |drift|/std(K) = 0.005 +- 0.005 over 0.4 ps and 0.02 over 1000 steps, seed 0,
against 0.001 at 0.5 fs; no monitor trips), for
400 steps (0.4 ps: raw dynamics have turned the molecule's angular momentum by about
200 amu A^2/ps by then). Measured 2026-11-30 on a 2-core machine that other jobs
loaded 4x (load average 7-10): max|dL| raw 187 +- 19, o3:3 0.59 +- 0.06 amu A^2/ps,
316 times less; the whole study took 23 min wall and 7.7 min of CPU time, so about
7.7 min or less on an idle core (raw MD ran at 13 steps/s there, 120 steps/s on the same
machine when quiet).

Runs already in ``OUT`` are reused when their configuration is the study's
(a completed or failed run as it is, an interrupted one resumed); a folder that
holds anything else is refused, never overwritten.
"""

import json
import time
from pathlib import Path

import numpy as np

from mdsym.core.defaults import MAX_CONTENT_DEGREE, structure_path

# The defaults, read by both ``run_study`` and the ``mdsym study`` options (A of a
# o3:3-symmetrized model costs 48 x 48 evaluations per frame; A moves little along a
# 0.4 ps run: a few frames suffice)
from mdsym.core.defaults import STUDY_DEGREE as DEFAULT_DEGREE  # noqa: E402
from mdsym.core.defaults import STUDY_EQUIVARIANCE_FRAMES as EQUIVARIANCE_FRAMES  # noqa: E402
from mdsym.core.defaults import STUDY_MODEL as DEFAULT_MODEL  # noqa: E402
from mdsym.core.defaults import STUDY_SEEDS as DEFAULT_SEEDS  # noqa: E402
from mdsym.core.defaults import STUDY_SPECS as DEFAULT_SPECS  # noqa: E402
from mdsym.core.defaults import STUDY_STEPS as DEFAULT_STEPS  # noqa: E402
from mdsym.core.defaults import STUDY_STRIDE as DEFAULT_STRIDE  # noqa: E402
from mdsym.core.defaults import STUDY_STRUCTURE as DEFAULT_STRUCTURE  # noqa: E402
from mdsym.core.defaults import STUDY_TEMPERATURE_K as DEFAULT_TEMPERATURE_K  # noqa: E402
from mdsym.core.defaults import STUDY_TIMESTEP_FS as DEFAULT_TIMESTEP_FS  # noqa: E402
from mdsym.core.errors import MdsymError
from mdsym.core.system import System, read_structure
from mdsym.core.threads import configure_threads
from mdsym.md.config import RunConfig
from mdsym.md.run import resume_md, run_md
from mdsym.md.rundir import RunDirectory, json_default
from mdsym.models import load_model
from mdsym.reports.formatting import finite, plus_minus
from mdsym.reports.study_report import failure_lines, markdown, plot_study
from mdsym.symmetry.metrics import metrics_quadrature
from mdsym.symmetry.spec import SymmetrizeSpec
from mdsym.workflows.analyze import analyze_run
from mdsym.workflows.compare import compare_runs

#: what the study reports per spec: (key, what it is, unit)
FIGURES = (
    ("max_dL", "max |L(t) - L(0)|", "amu A^2/ps"),
    ("drift", "|energy drift|", "meV/atom/ps"),
    ("drift_ratio", "|drift| / std(K)", ""),
    ("A_driving", "A of the forces that drove the run", "eV/A"),
    ("steps_per_s", "speed", "steps/s"),
)


# ----------------------------------------------------------------------------- inputs


def parse_specs(text) -> tuple:
    """Comma-separated symmetrization specs, each checked now (not after the first runs)."""
    specs = tuple(str(SymmetrizeSpec.parse(s.strip())) for s in str(text).split(",") if s.strip())
    if not specs:
        raise MdsymError(f"--specs needs at least one symmetrization, got {text!r}")
    if len(set(specs)) != len(specs):
        raise MdsymError(f"--specs lists a symmetrization twice: {text!r}")
    return specs


def parse_seeds(text) -> tuple:
    """Comma-separated non-negative integer seeds, none repeated."""
    try:
        seeds = tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise MdsymError(f"--seeds must be integers separated by commas, got {text!r}") from None
    if not seeds:
        raise MdsymError(f"--seeds needs at least one seed, got {text!r}")
    if min(seeds) < 0:
        raise MdsymError(f"--seeds must be non-negative, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise MdsymError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def check_study(model, structure, specs, seeds, steps, timestep_fs, temperature_K, stride, every, degree):
    """Every input of a study, checked before anything runs; one clear line per problem.

    Returns the structure (``ase.Atoms``)."""
    if steps < 1:
        raise MdsymError(f"--steps must be at least 1, got {steps}")
    if not timestep_fs > 0:
        raise MdsymError(f"--timestep must be positive, got {timestep_fs} fs")
    if not temperature_K >= 0:
        raise MdsymError(f"--temperature must be >= 0 K, got {temperature_K}")
    if stride < 1:
        raise MdsymError(f"--stride must be at least 1, got {stride}")
    if every is not None and every < 1:
        raise MdsymError(f"--every must be at least 1, got {every}")
    if not 0 <= degree <= MAX_CONTENT_DEGREE:
        raise MdsymError(f"--degree must be between 0 and {MAX_CONTENT_DEGREE}, got {degree}")
    parse_specs(",".join(specs))
    parse_seeds(",".join(str(s) for s in seeds))
    atoms = read_structure(structure_path(structure))
    system = System.from_atoms(atoms)
    load_model(model).check_system(system)
    if system.periodic and any(SymmetrizeSpec.parse(s).remove_net_torque for s in specs):
        raise MdsymError("nettorque applies to isolated systems only (the structure is periodic)")
    return atoms


# ----------------------------------------------------------------------------- runs


def run_name(spec: str, seed: int) -> str:
    return f"{spec.replace(':', '').replace('+', '_')}-seed{seed}"


#: configuration entries that must agree for a run in OUT to be reused
_SAME = ("engine", "model", "symmetrize", "ensemble", "timestep_fs", "steps", "temperature_K", "seed",
         "stride", "structure")


def run_one(config, path) -> str:
    """Run one MD simulation into ``path``, or reuse the run already there; returns
    what it did: ``new``, ``reused`` or ``resumed``.

    A completed or failed run with the same configuration is kept as it is (a failed
    stability test is a result, and the same seed fails the same way); an interrupted
    one is resumed. A run with another configuration, or a folder that is not a run,
    is refused: the study never overwrites anything."""
    config = RunConfig.coerce(config)
    rundir = RunDirectory(path)
    if not rundir.info.exists():
        if rundir.path.exists() and any(rundir.path.iterdir()):
            raise MdsymError(f"{rundir.path} exists and is not a run directory: move it away or choose "
                             "another --out")
        try:
            run_md(config, rundir.path)
        except MdsymError:
            if not rundir.info.exists():  # refused before it started: a bad input
                raise
        return "new"
    old = RunConfig.from_json(rundir.read_info().get("config"), where=rundir.info, partial=True)
    differ = [key for key in _SAME if getattr(old, key) != getattr(config, key)]
    if differ:
        raise MdsymError(f"{rundir.path} holds a run with another {', '.join(differ)} "
                         f"({', '.join(repr(str(getattr(old, k))) for k in differ)}): "
                         "choose another --out")
    status = rundir.read_info().get("status")
    if status not in ("completed", "failed"):
        try:
            resume_md(rundir.path)
        except MdsymError as error:
            if rundir.read_info().get("status") != "failed":  # not a monitor: it could not resume
                raise MdsymError(f"cannot resume the interrupted run {rundir.path}: {error}") from None
        return "resumed"
    return "reused"


def analyse_one(path, every: int, degree: int) -> dict:
    """``analyze_run`` of one run, reused when its analysis is newer than the run and
    was made with the same frames and quadrature."""
    path = Path(path)
    saved = path / "analysis" / "analysis.json"
    if saved.exists() and (path / "analysis" / "series.npz").exists() \
            and saved.stat().st_mtime >= (path / "run.json").stat().st_mtime:
        try:
            report = json.loads(saved.read_text())
        except json.JSONDecodeError:
            report = {}
        eq = report.get("equivariance", {})
        if eq.get("every") == every and eq.get("quadrature") == metrics_quadrature(degree).describe():
            return report
    # no per-run plots: the study overlays the runs in comparison.png (``mdsym analyze RUN`` draws them)
    return analyze_run(path, every=every, degree=degree, plots=False)


# ----------------------------------------------------------------------------- summary


def mean_spread(values) -> dict:
    """Mean and spread (sample standard deviation, ddof = 1) of the finite values.

    ``spread`` is None with fewer than two values, ``mean`` with none."""
    kept = [float(v) for v in values if finite(v)]
    return {
        "mean": float(np.mean(kept)) if kept else None,
        "spread": float(np.std(kept, ddof=1)) if len(kept) > 1 else None,
        "n": len(kept),
        "values": kept,
    }


def driving_A(row: dict):
    """A of the forces that moved the atoms: the raw model's for ``none``, else the
    symmetrized model's (``mean_A_forces_sym``)."""
    if row.get("symmetrize") in (None, "none"):
        return row.get("mean_A_forces")
    return row.get("mean_A_forces_sym")


def aggregate(rows, specs) -> list:
    """Per spec: mean and spread over seeds of every figure of ``FIGURES``.

    ``rows`` are ``compare_runs`` rows. The physics figures are taken over the runs
    that completed (a run that blew up has no meaningful drift or L); the speed over
    every run that measured one. ``cost_vs_raw`` is raw's mean steps/s over this
    spec's (time per step relative to raw); None without a raw spec."""
    summary = []
    for spec in specs:
        runs = [r for r in rows if r.get("symmetrize") == spec]
        completed = [r for r in runs if r.get("status") == "completed"]
        entry = {
            "spec": spec, "runs": len(runs), "completed": len(completed),
            "failed": [{"run": r["run"], "status": r.get("status"), "reason": r.get("reason"),
                        "time_to_failure_fs": r.get("time_to_failure_fs")}
                       for r in runs if r.get("status") != "completed"],
            "max_dL": mean_spread(r.get("max_dL") for r in completed),
            "drift": mean_spread(abs(r["drift_meV_atom_ps"]) for r in completed
                                 if finite(r.get("drift_meV_atom_ps"))),
            "drift_ratio": mean_spread(r.get("drift_ratio") for r in completed),
            "A_driving": mean_spread(driving_A(r) for r in completed),
            "steps_per_s": mean_spread(r.get("steps_per_s") for r in runs),
        }
        summary.append(entry)
    raw = next((e for e in summary if e["spec"] == "none"), None)
    for entry in summary:
        speed, raw_speed = entry["steps_per_s"]["mean"], raw and raw["steps_per_s"]["mean"]
        entry["cost_vs_raw"] = raw_speed / speed if raw_speed and speed else None
    return summary


def highest_grid(specs):
    """The grid spec of the highest degree, or None. Of equal degrees, full grid
    symmetrization (``o3:L``: every step, a fixed grid) comes before the cheaper forms
    of the same grid (``mts:K+o3:L``, ``o3:L:rotated``), then the first listed: the
    reference of the ratio is the exact average when the study has it."""
    def rank(k, text):
        spec = SymmetrizeSpec.parse(text)
        return (spec.degree, not spec.mts_interval and not spec.rotated, -k, text)

    grids = [rank(k, s) for k, s in enumerate(specs) if SymmetrizeSpec.parse(s).mode == "grid"]
    return max(grids)[3] if grids else None


def conclusion(summary) -> dict:
    """The study's answer in one sentence: raw max|dL| over the highest grid's."""
    by_spec = {e["spec"]: e for e in summary}
    grid = highest_grid([e["spec"] for e in summary])
    out = {"raw": "none", "grid": grid, "ratio": None}
    raw = by_spec.get("none")
    if raw is None or grid is None:
        out["sentence"] = ("No ratio of max|L(t) - L(0)|: the study needs both the raw run (none) and a "
                           "grid symmetrization (o3:L) among its specs.")
        return out
    a, b = raw["max_dL"]["mean"], by_spec[grid]["max_dL"]["mean"]
    if a is None or b is None:
        missing = [s for s, v in (("none", a), (grid, b)) if v is None]
        out["sentence"] = (f"No ratio of max|L(t) - L(0)|: no run of {' and '.join(missing)} completed "
                           "(see the failures above).")
        return out
    out["ratio"] = a / b if b > 0 else float("inf")
    out["sentence"] = (
        f"Raw dynamics changed the angular momentum by max|L(t) - L(0)| = {plus_minus(raw['max_dL'])} amu A^2/ps, "
        f"{out['ratio']:.3g} times the {plus_minus(by_spec[grid]['max_dL'])} of {grid}-symmetrized dynamics "
        f"(mean ± spread over seeds: {raw['max_dL']['n']} raw runs, {by_spec[grid]['max_dL']['n']} {grid} runs).")
    return out


# ----------------------------------------------------------------------------- the study


def run_study(out, model: str = DEFAULT_MODEL, structure=DEFAULT_STRUCTURE, specs=DEFAULT_SPECS,
              seeds=DEFAULT_SEEDS, steps: int = DEFAULT_STEPS, timestep_fs: float = DEFAULT_TIMESTEP_FS,
              temperature_K: float = DEFAULT_TEMPERATURE_K, stride: int = DEFAULT_STRIDE, every=None,
              degree: int = DEFAULT_DEGREE, engine: str = "ase", threads="auto", progress=print) -> dict:
    """Run, analyse, compare and sum up the study; returns the content of study.json.

    ``threads`` sets torch's threads as ``mdsym run --threads`` does (``auto``: one
    below 256 atoms), for the checks and for every run (None: ``auto``)."""
    started = time.monotonic()
    structure = DEFAULT_STRUCTURE if structure is None else structure
    specs = parse_specs(",".join(specs))
    seeds = parse_seeds(",".join(str(s) for s in seeds))
    atoms = check_study(model, structure, specs, seeds, steps, timestep_fs, temperature_K, stride, every,
                        degree)
    if threads is not None:
        configure_threads(threads, len(atoms))
    structure_file = str(structure_path(structure))
    out = Path(out)
    every = every or int(np.ceil((steps // stride + 1) / EQUIVARIANCE_FRAMES))
    paths, reused = [], 0
    for spec in specs:
        for seed in seeds:
            path = out / "runs" / run_name(spec, seed)
            config = {"engine": engine, "model": model, "symmetrize": spec, "forces": "auto", "ensemble": "nve",
                      "timestep_fs": float(timestep_fs), "steps": int(steps),
                      "temperature_K": float(temperature_K), "seed": seed, "stride": int(stride),
                      "structure": structure_file, "threads": threads or "auto"}
            done = run_one(config, path)
            reused += done == "reused"
            report = analyse_one(path, every, degree)
            if progress:
                speed = report.get("steps_per_s")
                progress(f"{path.name}: {report['status']}" + (" (reused)" if done == "reused" else "")
                         + (f", {speed:.1f} steps/s" if finite(speed) else "")
                         + (f" ({report.get('reason')})" if report["status"] != "completed" else ""))
            paths.append(path)
    reference = out / "runs" / run_name(specs[-1], seeds[0])
    comparison = compare_runs(paths, out=out, reference=reference, every=every, degree=degree)
    for row, path in zip(comparison["runs"], paths):  # compare_runs keeps no failure reason
        row["reason"] = RunDirectory(path).read_info().get("reason")
    summary = aggregate(comparison["runs"], specs)
    study = {
        "setup": {"model": model, "structure": str(structure), "structure_file": structure_file,
                  "n_atoms": len(atoms), "specs": list(specs),
                  "seeds": list(seeds), "steps": int(steps), "timestep_fs": float(timestep_fs),
                  "temperature_K": float(temperature_K), "ensemble": "nve", "stride": int(stride),
                  "equivariance_every": int(every), "degree": int(degree), "engine": engine},
        "summary": summary,
        "conclusion": conclusion(summary),
        "failures": failure_lines(summary),
        "runs": comparison["runs"],
    }
    study["plots"] = [plot_study(summary, out)]
    study["wall_time_s"] = time.monotonic() - started
    study["reused_runs"] = reused
    study["md_wall_time_s"] = sum(RunDirectory(p).read_info().get("wall_time_s") or 0.0 for p in paths)
    (out / "study.json").write_text(json.dumps(study, indent=2, default=json_default))
    (out / "study.md").write_text(markdown(study, comparison))
    return study
