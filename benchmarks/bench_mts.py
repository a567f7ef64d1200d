"""Symmetrized dynamics at near-raw cost (issue 13): multiple time stepping and rotated grids.

One ``mdsym run`` per spec (ASE engine, NVE, 400 steps of 0.5 fs from 300 K, seed
0, frames every 10 steps: what a new user runs), on the weakly symmetric shipped
``pet-ethanol-noaug`` and ``ethanol.xyz``, side by side in one process, in
``--repeats`` rounds, each bracketed by two raw runs (``measure``).
Every figure is a ratio or a physical quantity:

- steps/s: run.json's ``steps_per_s`` (wall time of the MD loop, frames and thermo
  rows included: what a user sees), and steady steps/s, from the wall clock at
  every step (the run's progress callback) past the first ``WARMUP`` steps: a PET
  model loaded afresh by each run is re-optimised by TorchScript over its first
  calls of each batch shape (~0.9 s), which would otherwise weigh on short runs;
- cost vs raw: raw steady steps/s over the spec's;
- max|dL| (analyze): ``mdsym analyze``'s angular momentum figure, from the frames
  (every 10 steps), amu A^2/ps;
- max|dL| every step / outer steps: the same from thermo.csv's every row, and
  from the rows with ``step % K == 0`` only (under ``mts:K`` the velocities between
  outer steps carry the raw torque not yet paid back, see ``mdsym.md.mts``);
- max|dE| outer: the largest change of ``conserved_eV`` on outer rows (the
  symmetrized model's total energy under ``mts:K``), meV;
- predicted cost: from one raw and one symmetrized evaluation of the model on the
  structure, timed in interleaved rounds (``common.interleaved``, medians):
  ``(K t_raw + t_sym) / (K t_raw)``, the MD loop's own cost left out. Whole runs
  on a loaded machine vary by tens of percent between rounds; this ratio does not.

    python benchmarks/bench_mts.py [--steps 400] [--repeats 1] [--specs none o3:3 ...]

Results: ``benchmarks/results/mts.json`` and ``mts.md`` (the table, also printed).
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import RESULTS, interleaved, pin_threads

WARMUP = 40  # steps left out of the steady steps/s
SPECS = ("none", "o3:3", "mts:2+o3:3", "mts:4+o3:3", "mts:8+o3:3", "mts:16+o3:3",
         "o3:1", "o3:1:rotated", "nettorque", "mts:8+o3:3+nettorque", "o3:auto", "mts:8+o3:auto",
         "mts:8+o3:auto+nettorque")


def config(spec, steps, model, structure, seed=0, **settings) -> dict:
    """The run of one spec (``settings``: other ``RunConfig`` fields, e.g. ``engine``)."""
    from mdsym.core.defaults import STRUCTURES

    return {**dict(model=model, structure=str(STRUCTURES / structure), engine="ase",
                   ensemble="nve", thermostat="svr", timestep_fs=0.5, steps=steps,
                   temperature_K=300.0, thermostat_tau_fs=100.0, seed=seed, symmetrize=spec,
                   forces="auto", batch_size=None, stride=10, connectivity=True,
                   min_distance_A=0.5, max_temperature_factor=5.0), **settings}


def figures(out, spec) -> dict:
    """The angular momentum and energy figures of one run directory."""
    from mdsym.analysis.angular_momentum import summarize
    from mdsym.analysis.trajectory import load_run
    from mdsym.symmetry.spec import SymmetrizeSpec

    run = load_run(out)
    analyzed, _ = summarize(run.time_ps, run.positions, run.velocities, run.forces,
                            run.masses, run.periodic)
    thermo = run.thermo
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    dL = np.linalg.norm(L - L[0], axis=1)
    interval = SymmetrizeSpec.parse(spec).mts_interval or 1
    outer = thermo["step"] % interval == 0
    energy = thermo["conserved_eV"][outer]
    return {"max_dL_analyze": analyzed["max_dL"], "max_dL_every_step": float(dL.max()),
            "max_dL_outer": float(dL[outer].max()),
            "max_dE_outer_meV": float(1000 * np.abs(energy - energy[0]).max()),
            "status": run.status, "steps_done": run.info.get("steps_done")}


def evaluations_per_step(spec, auto_degrees=()) -> float:
    """Model evaluations per step on average (o3:auto: at the last degree it chose;
    its measurements, 416 evaluations every 200 calls, left out)."""
    from mdsym.symmetry import quadrature as quad
    from mdsym.symmetry.spec import SymmetrizeSpec

    parsed = SymmetrizeSpec.parse(spec)
    per_call = parsed.evaluations_per_call() if parsed.mode != "none" else 1
    if auto_degrees:
        per_call = len(quad.by_name(parsed.family, auto_degrees[-1], parsed.inversion))
    return 1 + per_call / parsed.mts_interval if parsed.mts_interval else per_call


def evaluation_times(specs, model, structure, extra=None) -> dict:
    """Seconds per call of the raw model and of each spec's symmetrization (interleaved);
    ``extra``: more ``name -> callable(atoms)`` to time in the same rounds."""
    from mdsym import SymmetrizedModel, System, load_model, read_structure
    from mdsym.core.defaults import STRUCTURES
    from mdsym.symmetry.spec import SymmetrizeSpec

    loaded = load_model(model)
    system = System.from_atoms(read_structure(STRUCTURES / structure))
    calls = {"none": SymmetrizedModel(loaded, "none")}
    for spec in specs:
        outer = SymmetrizeSpec.parse(spec).outer()
        if outer.mode in ("grid", "auto") and str(outer) not in calls:
            symmetrizer = SymmetrizedModel(loaded, outer)
            symmetrizer(system)  # o3:auto: its measurement, before timing
            calls[str(outer)] = symmetrizer
    timed = {name: (lambda s=s: s(system)) for name, s in calls.items()}
    atoms = read_structure(STRUCTURES / structure)
    timed.update({name: (lambda c=call: c(atoms)) for name, call in (extra or {}).items()})
    return interleaved(timed, repeats=20, budget_s=10.0)


def predicted_cost(spec, times) -> float:
    from mdsym.symmetry.spec import SymmetrizeSpec

    parsed = SymmetrizeSpec.parse(spec)
    outer = str(parsed.outer())
    if outer not in times:
        return None
    interval = parsed.mts_interval or 1
    inner = times["none"] * (interval if parsed.mts_interval else 0)
    return (inner + times[outer]) / (interval * times["none"])


def steady_speed(clock, steps) -> float:
    """Steps/s from ``{step: wall clock}`` past the first ``WARMUP`` steps (at most half
    the run); a run stopped before that: all its steps; NaN with fewer than two."""
    steady = sorted(step for step in clock if step >= min(WARMUP, steps // 2))
    if len(steady) < 2:
        steady = sorted(clock)
    if len(steady) < 2:
        return float("nan")
    return (steady[-1] - steady[0]) / (clock[steady[-1]] - clock[steady[0]])


def run_once(spec, steps, model, structure, out, seed=0, **settings) -> tuple:
    """(steady steps/s, figures) of one run (``settings``: see ``config``)."""
    from mdsym.md.run import run_md

    clock = {}
    info = run_md(config(spec, steps, model, structure, seed, **settings), out,
                  progress=lambda step, total: clock.setdefault(step, time.monotonic()))
    speed = steady_speed(clock, steps)
    result = figures(out, spec)
    result["steps_per_s_run_json"] = info["steps_per_s"]
    degrees = [e["degree"] for s in info["segments"] for e in s.get("degree_log", [])]
    if degrees:
        result["auto_degrees"] = degrees
    return speed, result


def measure(specs=SPECS, steps=400, repeats=1, model="pet-ethanol-noaug", structure="ethanol.xyz",
            keep=None, log=print) -> dict:
    """Every round runs the raw model first and last and each spec in between; a
    spec's cost is the raw steps/s of its round (geometric mean of the two) over
    its own, median over rounds: the load of a shared machine drifts over minutes."""
    pin_threads()
    specs = [spec for spec in specs if spec != "none"]
    speeds = {spec: [] for spec in ["none", *specs]}
    ratios = {spec: [] for spec in ["none", *specs]}
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(keep) if keep else Path(scratch)
        for round_ in range(repeats):
            round_speeds = {}
            for k, spec in enumerate(["none", *specs, "none"]):
                out = root / f"{spec.replace(':', '_').replace('+', '-')}-{round_}-{k}"
                started = time.monotonic()
                speed, results[spec] = run_once(spec, steps, model, structure, out)
                speeds[spec].append(speed)
                round_speeds.setdefault(spec, []).append(speed)
                log(f"{spec:24s} {speed:7.1f} steps/s steady  ({time.monotonic() - started:.0f} s)  "
                    f"max|dL| {results[spec]['max_dL_analyze']:.3g}")
            raw = float(np.sqrt(np.prod(round_speeds["none"])))
            for spec, speed in round_speeds.items():
                ratios[spec].append(raw / speed[0] if spec != "none" else 1.0)
    times = evaluation_times(specs, model, structure)
    log("seconds per call: " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in times.items()))
    rows = []
    for spec in ["none", *specs]:
        rows.append({"spec": spec,
                     "evaluations_per_step": evaluations_per_step(spec, results[spec].get("auto_degrees", ())),
                     "steady_steps_per_s": statistics.median(speeds[spec]),
                     "cost_vs_raw": statistics.median(ratios[spec]),
                     "cost_vs_raw_rounds": ratios[spec],
                     "predicted_cost_vs_raw": predicted_cost(spec, times),
                     **results[spec]})
    return {"model": model, "structure": structure, "steps": steps, "timestep_fs": 0.5,
            "repeats": repeats, "host": platform.node(), "seconds_per_call": times,
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}


def markdown(result) -> str:
    lines = [f"{result['model']} on {result['structure']}, NVE, {result['steps']} steps of "
             f"{result['timestep_fs']} fs, measured {result['measured']} ({result['repeats']} round(s))", "",
             "| spec | evaluations/step | steps/s (run.json) | steady steps/s | cost vs raw | predicted cost | max\\|dL\\| analyze | max\\|dL\\| every step "
             "| max\\|dL\\| outer steps | max\\|dE\\| outer (meV) | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        spec = r["spec"] + (f" (L = {', '.join(map(str, r['auto_degrees']))})" if r.get("auto_degrees") else "")
        cost = f"{r['cost_vs_raw']:.2f}" if r["cost_vs_raw"] else "-"
        predicted = f"{r['predicted_cost_vs_raw']:.2f}" if r.get("predicted_cost_vs_raw") else "-"
        lines.append(f"| `{spec}` | {r['evaluations_per_step']:.1f} | {r['steps_per_s_run_json']:.1f} "
                     f"| {r['steady_steps_per_s']:.1f} | {cost} | {predicted} "
                     f"| {r['max_dL_analyze']:.3g} | {r['max_dL_every_step']:.3g} | {r['max_dL_outer']:.3g} "
                     f"| {r['max_dE_outer_meV']:.3g} | {r['status']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    parser.add_argument("--model", default="pet-ethanol-noaug")
    parser.add_argument("--structure", default="ethanol.xyz")
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    args = parser.parse_args()
    result = measure(args.specs, args.steps, args.repeats, args.model, args.structure, args.keep)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mts.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (RESULTS / "mts.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
