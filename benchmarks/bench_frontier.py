"""The cost-versus-fidelity frontier of symmetrized dynamics (issue 13, item 6).

Every way this project knows to make an unconstrained model's dynamics symmetric,
measured side by side in one process: for each model and seed, one round of NVE runs
(ethanol, 400 steps of 0.5 fs from 300 K), the raw model first and last
(``bench_mts.measure``'s bracket), every row in between. Rows:

- mdsym (``mdsym.md.run.run_md``, ASE engine, ``bench_mts.run_once``): raw,
  random, net-torque removal, grids ``o3:1..4``, randomly rotated grids,
  ``o3:auto``, multiple time stepping ``mts:K+o3:3`` and its combinations;
- ``SymmetrizedCalculator:L``: metatomic-ase's
  ``SymmetrizedCalculator(MetatomicCalculator(model.pt), l_max=L)`` driving ASE's
  ``VelocityVerlet`` from the same positions and velocities as the mdsym runs of the
  seed (mdsym's own ``initial_velocities``, checked against the raw run's first
  frame), same time step and steps; L(t) and energies by ``mdsym.md.rundir.mechanics``
  and ``mdsym.analysis.drift.energy_drift``, the definitions of the mdsym rows;
- ``ffrotations:L``: i-PI's ``<ffrotations>`` at degree L over raw ``mdsym serve``
  clients (``run_md`` with ``engine="ipi"``, ``average_in="ipi"``);
- ``ipi:o3:3``: mdsym's own averaging inside its ``mdsym serve`` client under i-PI.

A row that cannot run (an option this mdsym lacks, a failed start) keeps its line
in the table with the reason. Figures per row, mean and sample standard deviation
over seeds:

- cost vs raw: the round's raw steady steps/s (geometric mean of its two raw runs)
  over the row's steady steps/s (``bench_mts.steady_speed``: past the first
  ``WARMUP`` steps, TorchScript's re-optimisation left out);
- max|dL| (amu A^2/ps): the largest change of the angular momentum about the
  centre of mass over every step (thermo.csv); for ``mts:K`` rows over the outer
  steps (``step % K == 0``: between them the velocities carry the raw torque not yet
  paid back, ``mdsym.md.mts``), the every-step figure kept beside it;
- drift (meV/atom/ps): slope of the conserved energy (``mdsym analyze``'s figure;
  ``mts:K``: outer steps, where it is the symmetrized model's total energy);
- A of the driving forces (eV/A): ``mdsym analyze``'s equivariance error of the
  forces that moved the atoms (the symmetrized model's for symmetrized rows, on
  ``A_FRAMES`` frames, on a grid turned off the symmetrizer's own, as
  ``mdsym study``); for ``SymmetrizedCalculator`` rows the same measurement of that
  calculator's forces on the same number of frames of its own trajectory;
- predicted cost: ``bench_mts.predicted_cost`` from interleaved single evaluations
  (``SymmetrizedCalculator``: its call over mdsym's raw call).

The frontier's question (issue 13): the cheapest row whose max|dL| is within 2x of
full ``o3:3``'s at no more than 2x raw cost (``best_point``).

    python benchmarks/bench_frontier.py [--models pet-ethanol-noaug pet-ethanol] [--seeds 0 1 2]
        [--steps 400] [--specs ROW ...] [--repeats 1] [--merge]

``--merge`` replaces the rows it measured in an existing ``frontier.json`` and keeps
the others (e.g. the i-PI rows run afterwards). Results:
``benchmarks/results/frontier.json``, ``frontier.md`` (the table, also printed),
``frontier.png`` (cost vs max|dL| with the Pareto frontier).
"""

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import bench_mts
import numpy as np
from common import RESULTS, environment, pin_threads

MODELS = ("pet-ethanol-noaug", "pet-ethanol")
SEEDS = (0, 1, 2)
STEPS = 400
STRUCTURE = "ethanol.xyz"
MDSYM_SPECS = ("none", "random", "nettorque", "o3:1", "o3:2", "o3:3", "o3:4", "o3:1:rotated",
               "o3:3:rotated", "o3:auto", "mts:2+o3:3", "mts:4+o3:3", "mts:8+o3:3", "mts:16+o3:3",
               "mts:8+o3:3+nettorque", "mts:8+o3:auto+nettorque")
REFERENCE_DEGREES = (1, 3)
SYMCALC, FFROTATIONS, IPI = "SymmetrizedCalculator:", "ffrotations:", "ipi:"
ROWS = (MDSYM_SPECS + tuple(f"{SYMCALC}{L}" for L in REFERENCE_DEGREES)
        + tuple(f"{FFROTATIONS}{L}" for L in REFERENCE_DEGREES) + (f"{IPI}o3:3",))
GOAL_COST, GOAL_DL = 2.0, 2.0  # the issue's goal: cost <= 2x raw, max|dL| <= 2x full o3:3's
FULL = "o3:3"


# ----------------------------------------------------------------------------- rows


def family(row: str) -> str:
    """What kind of symmetrization a row is (the plot's colours)."""
    from mdsym.symmetry.spec import SymmetrizeSpec

    if row.startswith(SYMCALC):
        return "metatomic-ase SymmetrizedCalculator"
    if row.startswith(FFROTATIONS):
        return "i-PI <ffrotations>"
    if row.startswith(IPI):
        return "mdsym under i-PI"
    spec = SymmetrizeSpec.parse(row)
    if spec.mts_interval:
        return "mdsym mts:K"
    if spec.mode == "auto":
        return "mdsym o3:auto"
    if spec.mode == "grid":
        return "mdsym o3:L:rotated" if spec.rotated else "mdsym o3:L"
    return "raw and cheap fixes"


def check_rows(rows) -> list:
    """Every row name checked before anything runs (one line for a bad one)."""
    from mdsym.core.errors import MdsymError
    from mdsym.symmetry.spec import SymmetrizeSpec

    for row in rows:
        for prefix in (SYMCALC, FFROTATIONS):
            if row.startswith(prefix):
                degree = row[len(prefix):]
                if not degree.isdigit() or int(degree) < 1:
                    raise MdsymError(f"{row!r}: {prefix}L needs a degree L >= 1")
                break
        else:
            SymmetrizeSpec.parse(row[len(IPI):] if row.startswith(IPI) else row)
    return [row for row in rows if row != "none"]


def model_file(model: str, atoms, scratch: Path) -> Path:
    """The metatomic .pt of ``model`` that the metatomic tools run: a shipped model's
    own file, a .pt as it is, an analytic model exported (``mdsym.models.export``)."""
    from mdsym.core.errors import MdsymError
    from mdsym.models import parse_analytic, shipped
    from mdsym.models.export import export_metatomic

    if model in shipped.names():
        return shipped.path(model)
    if model.endswith(".pt"):
        return Path(model)
    if model.startswith("analytic"):
        path = scratch / "analytic.pt"
        export_metatomic(parse_analytic(model), path, sorted(set(int(z) for z in atoms.numbers)))
        return path
    raise MdsymError(f"no metatomic .pt for {model!r}: the SymmetrizedCalculator rows need one")


def symmetrized_calculator(pt, degree):
    from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

    return SymmetrizedCalculator(MetatomicCalculator(str(pt)), l_max=int(degree))


def reference_run(pt, degree, raw_out, steps, seed, temperature_K=300.0, timestep_fs=0.5,
                  stride=10) -> tuple:
    """metatomic-ase's SymmetrizedCalculator driving ASE's VelocityVerlet from the
    positions and velocities the mdsym runs of ``seed`` start from.

    Returns (steady steps/s, figures, frames): L and energies every step by
    ``mdsym.md.rundir.mechanics``, positions every ``stride`` steps."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mdsym.analysis.trajectory import load_run
    from mdsym.core.system import read_structure
    from mdsym.md.ase_engine import initial_velocities
    from mdsym.md.thermo import VELOCITY_TO_A_PS
    from mdsym.md.thermo import mechanics_columns as mechanics

    raw = load_run(raw_out)
    atoms = read_structure(Path(raw_out) / "structure.xyz")  # the raw run's own copy
    initial_velocities(atoms, temperature_K, seed)  # what mdsym's ASE engine does
    start_v = atoms.get_velocities() * VELOCITY_TO_A_PS
    agree = {"positions_A": float(np.abs(atoms.positions - raw.positions[0]).max()),
             "velocities_A_ps": float(np.abs(start_v - raw.velocities[0]).max())}
    atoms.calc = symmetrized_calculator(pt, degree)
    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    masses = atoms.get_masses()
    clock, rows, frames = {}, [], []

    def record():
        step = dynamics.nsteps
        clock[step] = time.monotonic()
        forces = atoms.get_forces()
        potential, kinetic = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        row = mechanics(atoms.positions, atoms.get_velocities(), forces, masses)
        rows.append((step, potential, kinetic, row["Lx"], row["Ly"], row["Lz"]))
        if step % stride == 0:
            frames.append(atoms.positions.copy())

    dynamics.attach(record, interval=1)
    record()
    dynamics.run(steps)
    table = np.array(rows)
    L = table[:, 3:6]
    dL = np.linalg.norm(L - L[0], axis=1)
    conserved = table[:, 1] + table[:, 2]
    from mdsym.analysis.drift import energy_drift

    drift = energy_drift(table[:, 0] * timestep_fs / 1000.0, conserved, table[:, 2], len(atoms))
    figures = {"max_dL_every_step": float(dL.max()), "max_dL_outer": float(dL.max()),
               "max_dE_outer_meV": float(1000 * np.abs(conserved - conserved[0]).max()),
               "drift_meV_atom_ps": drift["slope_meV_atom_ps"], "status": "completed",
               "steps_done": int(table[-1, 0]), "start_agrees_with_mdsym": agree,
               "rotations": len(atoms.calc.quadrature_rotations)}
    return bench_mts.steady_speed(clock, steps), figures, frames


def A_of_model(model, atoms, frames) -> float:
    """Mean over ``frames`` of A of the forces of ``model`` (an mdsym model, or an ASE
    calculator), on the grid ``mdsym analyze`` measures symmetrized models on
    (``EquivarianceSeries``: degree 1, turned off any symmetrizer's own grid): the same
    measurement as the mdsym rows' A."""
    from mdsym.analysis.equivariance_series import offset_quadrature
    from mdsym.core.system import System
    from mdsym.models import load_model
    from mdsym.symmetry.averaging import evaluate_back_rotated
    from mdsym.symmetry.metrics import equivariance_error, metrics_quadrature

    model = load_model(model)
    quadrature = offset_quadrature(metrics_quadrature(1))
    values = []
    for positions in frames:
        copy = atoms.copy()
        copy.positions = positions
        back = evaluate_back_rotated(model, System.from_atoms(copy), quadrature, ("energy", "forces"))
        values.append(equivariance_error(back["forces"], quadrature.weights))
    return float(np.mean(values))


#: frames of a run at which A is measured: the first and the last (``mdsym study`` takes
#: 4; A of an o3:4-symmetrized model costs 48 x 120 evaluations per frame, and A moves
#: little along a 0.2 ps run; with ~20 rows x 6 runs, 2 frames keep the benchmark in an hour)
A_FRAMES = 2


def A_of_ipi_grid(model, row, out, indices) -> float:
    """A of the forces of the model averaged over i-PI's ``<ffrotations>`` grid of the
    row's degree (``mdsym.md.ipi_engine.rotation_grid.RotationGrid``), on frames ``indices`` of the run
    in ``out`` (``mdsym analyze`` would measure mdsym's own o3:L grid of that degree)."""
    from mdsym.analysis.trajectory import load_run
    from mdsym.md.ipi_engine.rotation_grid import RotationGrid
    from mdsym.models import load_model
    from mdsym.symmetry.spec import SymmetrizeSpec
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    grid = RotationGrid.for_spec(SymmetrizeSpec.parse(f"o3:{row[len(FFROTATIONS):]}"))
    averaged = SymmetrizedModel(load_model(model), "none", quadrature=grid.quadrature)
    run = load_run(out)
    return A_of_model(averaged, run.atoms, [run.positions[i] for i in indices])


def ipi_grid_size(row):
    """Force requests per step of ``ffrotations:L`` (None where this mdsym has no such grid)."""
    try:
        from mdsym.md.ipi_engine.rotation_grid import RotationGrid
        from mdsym.symmetry.spec import SymmetrizeSpec

        return len(RotationGrid.for_spec(SymmetrizeSpec.parse(f"o3:{row[len(FFROTATIONS):]}")).quadrature)
    except Exception:  # not merged yet, or no grid of that degree: the row says why
        return None


def equivariance_frames(steps, stride=10) -> tuple:
    """(every, frame indices): ``A_FRAMES`` frames spread over the run's frames."""
    n_frames = steps // stride + 1
    every = max(1, int(np.ceil((n_frames - 1) / max(1, A_FRAMES - 1))))
    return every, list(range(0, n_frames, every))


def analyse(out, row, steps) -> dict:
    """Drift and A of the driving forces of an mdsym run: ``mdsym analyze``'s figures
    (``mdsym study``'s frames and degree)."""
    from mdsym.workflows.analyze import analyze_run
    from mdsym.workflows.study import DEFAULT_DEGREE, driving_A

    every, _ = equivariance_frames(steps)
    report = analyze_run(out, every=every, degree=DEFAULT_DEGREE, plots=False)
    equivariance = report.get("equivariance", {})
    A = {key: equivariance[key]["mean"] for key in ("A_forces", "A_forces_sym") if key in equivariance}
    spec = report["config"]["symmetrize"]
    return {"drift_meV_atom_ps": report.get("drift", {}).get("slope_meV_atom_ps"),
            "A_driving": driving_A({"symmetrize": spec, "mean_A_forces": A.get("A_forces"),
                                    "mean_A_forces_sym": A.get("A_forces_sym")}),
            "A_note": equivariance.get("skipped")}


def mdsym_row(row, steps, model, structure, seed, out) -> tuple:
    """(steady steps/s, figures) of one mdsym row through ``bench_mts.run_once``."""
    if row.startswith(FFROTATIONS):  # i-PI averages over its own grid of that degree
        spec, settings = f"o3:{row[len(FFROTATIONS):]}", {"engine": "ipi", "average_in": "ipi"}
    elif row.startswith(IPI):
        spec, settings = row[len(IPI):], {"engine": "ipi"}
    else:
        spec, settings = row, {}
    return bench_mts.run_once(spec, steps, model, structure, out, seed=seed, **settings)


def one_round(rows, steps, model, structure, seed, root: Path, pt, log=print) -> dict:
    """One round for one model and seed: raw, every row, raw. Returns row -> figures
    (``cost_vs_raw`` against this round's raw speed); a row that fails keeps its reason."""
    from mdsym.core.system import read_structure

    results, raw_speeds, frames, raw_out = {}, [], {}, None
    for k, row in enumerate(["none", *rows, "none"]):
        out = root / f"{row.replace(':', '_').replace('+', '-')}-seed{seed}-{k}"
        started = time.monotonic()
        try:
            if row.startswith(SYMCALC):
                speed, figures, frames[row] = reference_run(pt, row[len(SYMCALC):], raw_out, steps, seed)
            else:
                speed, figures = mdsym_row(row, steps, model, structure, seed, out)
                figures["out"] = str(out)
        except Exception as error:  # recorded in the table: the row could not run
            reason = f"{type(error).__name__}: {error}".splitlines()[0].split("; ")[0]
            results[row] = {"error": reason}
            log(f"  {row:26s} could not run: {reason}")
            continue
        if row == "none":
            raw_speeds.append(speed)
            raw_out = raw_out or out  # the first raw run: where every row starts
        figures["steady_steps_per_s"] = speed
        results.setdefault(row, figures)
        log(f"  {row:26s} {speed:7.1f} steps/s  ({time.monotonic() - started:.0f} s)  "
            f"max|dL| {figures['max_dL_outer']:.3g}  {figures['status']}")
    raw = float(np.exp(np.mean(np.log(raw_speeds)))) if raw_speeds else None
    for row, figures in results.items():
        if "error" not in figures:
            figures["cost_vs_raw"] = raw / figures["steady_steps_per_s"] if raw else None
    if "error" not in results.get("none", {"error": ""}):
        # raw's cost is 1 by definition; its two runs' speeds show how the load moved
        results["none"].update(cost_vs_raw=1.0, steady_steps_per_s=raw, raw_runs_steps_per_s=raw_speeds)
    # drift and A after the round, outside its timing
    every, indices = equivariance_frames(steps)
    for row, figures in results.items():
        if "error" in figures:
            continue
        started = time.monotonic()
        if row.startswith(SYMCALC):
            atoms = read_structure(Path(raw_out) / "structure.xyz")
            figures["A_driving"] = A_of_model(symmetrized_calculator(pt, row[len(SYMCALC):]), atoms,
                                              [frames[row][i] for i in indices])
        elif row.startswith(FFROTATIONS):
            figures.update(analyse(figures["out"], row, steps))  # the drift; A is i-PI's grid's:
            figures["A_driving"] = A_of_ipi_grid(model, row, figures["out"], indices)
        else:
            figures.update(analyse(figures["out"], row, steps))
        log(f"  {row:26s} analysed ({time.monotonic() - started:.0f} s): drift "
            f"{_g(figures.get('drift_meV_atom_ps'))} meV/atom/ps, A driving {_g(figures.get('A_driving'))} eV/A")
    return results


# ----------------------------------------------------------------------------- summary


def mean_sd(values) -> dict:
    """``mdsym study``'s mean and spread (sample standard deviation) of the finite values."""
    from mdsym.workflows.study import mean_spread

    stats = mean_spread(values)
    return {"mean": stats["mean"], "sd": stats["spread"], "n": stats["n"], "values": stats["values"]}


FIGURES = ("cost_vs_raw", "max_dL_outer", "max_dL_every_step", "drift_meV_atom_ps", "A_driving",
           "steady_steps_per_s")


def summarise(model, rows, per_seed, times) -> list:
    """Per row: mean and sd over seeds of every figure, the errors, the predicted cost."""
    from mdsym.core.errors import MdsymError

    summary = []
    for row in ["none", *rows]:
        runs = [per_seed[seed][row] for seed in per_seed if row in per_seed[seed]]
        ok = [r for r in runs if "error" not in r]
        completed = [r for r in ok if r["status"] == "completed"]
        entry = {"row": row, "family": family(row), "seeds": len(runs), "completed": len(completed),
                 "errors": sorted({r["error"] for r in runs if "error" in r}),
                 "failed": sorted({str(r.get("status")) for r in ok if r["status"] != "completed"})}
        for key in FIGURES:
            source = ok if key in ("cost_vs_raw", "steady_steps_per_s") else completed
            entry[key] = mean_sd(r.get(key) for r in source)
        degrees = sorted({d for r in ok for d in r.get("auto_degrees", [])})
        if degrees:
            entry["auto_degrees"] = degrees
        if row.startswith(SYMCALC):
            entry["predicted_cost_vs_raw"] = (times[row] / times["none"] if row in times else None)
            entry["start_agrees_with_mdsym"] = [r["start_agrees_with_mdsym"] for r in ok]
            # its rotations and the unrotated structure (SymmetrizedCalculator.calculate
            # calls the base calculator first)
            entry["evaluations_per_step"] = ok[0]["rotations"] + 1 if ok else None
        elif row.startswith(FFROTATIONS):
            entry["predicted_cost_vs_raw"] = None  # its cost is i-PI's sockets, not the model's
            entry["evaluations_per_step"] = ipi_grid_size(row)
        else:
            spec = row[len(IPI):] if row.startswith(IPI) else row
            entry["predicted_cost_vs_raw"] = bench_mts.predicted_cost(spec, times)
            if entry["predicted_cost_vs_raw"] is None and times and not any(c in spec for c in ("o3:", "so3:")):
                entry["predicted_cost_vs_raw"] = 1.0  # raw, random, fixes: one evaluation per step
            try:
                entry["evaluations_per_step"] = bench_mts.evaluations_per_step(spec, degrees[-1:])
            except MdsymError:
                entry["evaluations_per_step"] = None
        summary.append(entry)
    return summary


COSTS = {"measured": "measured cost (whole runs)",
         "predicted": "predicted cost (interleaved single evaluations)"}


def cost_of(entry, cost="measured"):
    """A row's cost vs raw: ``measured`` (mean over seeds of whole runs' steps/s
    ratios) or ``predicted`` (``bench_mts.predicted_cost``)."""
    return entry["cost_vs_raw"]["mean"] if cost == "measured" else entry.get("predicted_cost_vs_raw")


def best_point(summary, cost="measured") -> dict:
    """The cheapest row with max|dL| within ``GOAL_DL`` x full o3:3's and cost within
    ``GOAL_COST`` x raw (means over seeds; ``cost``: see ``cost_of``); also the best
    among rows that do not remove the net torque by construction (``nettorque`` keeps
    L by projection, whatever the symmetry of the forces). Says what limits the goal
    when no row reaches it."""
    by_row = {e["row"]: e for e in summary}
    full = by_row.get(FULL, {}).get("max_dL_outer", {}).get("mean")
    out = {"reference": FULL, "reference_max_dL": full, "goal_cost": GOAL_COST, "goal_dL_ratio": GOAL_DL,
           "cost": cost}
    if not full:
        out["sentence"] = f"No verdict: no completed {FULL} row to compare with."
        return out
    costs = {e["row"]: cost_of(e, cost) for e in summary if cost_of(e, cost) is not None}

    def point(entry):
        return {"row": entry["row"], "cost_vs_raw": costs[entry["row"]],
                "max_dL": entry["max_dL_outer"]["mean"], "max_dL_vs_full": entry["max_dL_outer"]["mean"] / full,
                "A_driving": entry["A_driving"]["mean"], "drift_meV_atom_ps": entry["drift_meV_atom_ps"]["mean"]}

    measured = [e for e in summary if e["row"] in costs and e["max_dL_outer"]["mean"] is not None
                and e["completed"] == e["seeds"]]
    within = [e for e in measured if e["max_dL_outer"]["mean"] <= GOAL_DL * full]
    reached = sorted((e for e in within if costs[e["row"]] <= GOAL_COST), key=lambda e: costs[e["row"]])
    symmetric = [e for e in reached if "nettorque" not in e["row"]]
    out["best"] = point(reached[0]) if reached else None
    out["best_without_nettorque"] = point(symmetric[0]) if symmetric else None
    cheapest_within = min((e for e in within if "nettorque" not in e["row"]),
                          key=lambda e: costs[e["row"]], default=None)
    cheap = [e for e in measured if costs[e["row"]] <= GOAL_COST and "nettorque" not in e["row"]]
    closest_cheap = min(cheap, key=lambda e: e["max_dL_outer"]["mean"], default=None)
    out["cheapest_within_dL"] = point(cheapest_within) if cheapest_within else None
    out["closest_within_cost"] = point(closest_cheap) if closest_cheap else None

    def says(p):
        return (f"`{p['row']}` at {p['cost_vs_raw']:.2f}x raw cost with max|dL| {p['max_dL']:.3g} amu A^2/ps "
                f"= {p['max_dL_vs_full']:.3g}x full {FULL}'s ({full:.3g}), A of its driving forces "
                f"{_g(p['A_driving'])} eV/A")

    parts = []
    if out["best"]:
        parts.append(f"Goal reached: best point {says(out['best'])}.")
    if out["best_without_nettorque"] and out["best_without_nettorque"] != out["best"]:
        parts.append(f"Without net-torque removal (which conserves L by projection, not by symmetrizing the "
                     f"forces): {says(out['best_without_nettorque'])}.")
    if not out["best_without_nettorque"]:
        parts.append("Without net-torque removal the goal (max|dL| within 2x full "
                     f"{FULL}'s at <= 2x raw cost) is not reached: "
                     + (f"the cheapest row within 2x in max|dL| is {says(point(cheapest_within))}" if cheapest_within
                        else "no row is within 2x in max|dL|")
                     + ("; the closest in max|dL| at <= 2x cost is " + says(point(closest_cheap))
                        if closest_cheap else "; no row costs <= 2x raw") + ".")
    out["sentence"] = " ".join(parts)
    return out


def verdict(summary) -> dict:
    """``best_point`` by measured and by predicted cost: whole runs on a loaded machine
    vary by tens of percent between rounds, the predicted ratio much less."""
    out = {cost: best_point(summary, cost) for cost in COSTS}
    out["sentence"] = " ".join(f"**By {COSTS[cost]}:** {out[cost]['sentence']}" for cost in COSTS)
    return out


def _g(value, digits=3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _pm(stats, digits=3) -> str:
    if stats["mean"] is None:
        return "-"
    return _g(stats["mean"], digits) + (f" ± {_g(stats['sd'], 2)}" if stats["sd"] is not None else "")


def markdown(result) -> str:
    setup = result["setup"]
    lines = [f"NVE, {setup['steps']} steps of {setup['timestep_fs']} fs from 300 K, `{setup['structure']}`, "
             f"seeds {', '.join(map(str, setup['seeds']))}, measured {result['measured']} on "
             f"{result['environment']['host']} ({result['environment']['cpus']} cores, loaded by other jobs); "
             f"mean ± sd over seeds.", ""]
    for model in result["models"]:
        lines += [f"### {model['model']}", "", model["best_point"]["sentence"], "",
                  "| row | evaluations/step | cost vs raw | predicted cost | max\\|dL\\| (amu A²/ps) "
                  "| max\\|dL\\| every step | drift (meV/atom/ps) | A driving forces (eV/A) | steady steps/s | runs ok |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for e in model["rows"]:
            name = e["row"] + (f" (L = {', '.join(map(str, e['auto_degrees']))})" if e.get("auto_degrees") else "")
            if e["errors"] and not e["completed"]:
                lines.append(f"| `{name}` | - | - | - | - | - | - | - | - | could not run: "
                             f"{'; '.join(e['errors']).replace('|', '/')} |")
                continue
            ok = f"{e['completed']}/{e['seeds']}" + (f" ({', '.join(e['failed'] + e['errors'])})"
                                                    if e["failed"] or e["errors"] else "")
            if e.get("measured"):  # merged from a later invocation (--merge, --combine)
                ok += f"; run {e['measured']} against that run's own raw rounds"
            lines.append(f"| `{name}` | {_g(e['evaluations_per_step'])} | {_pm(e['cost_vs_raw'])} "
                         f"| {_g(e['predicted_cost_vs_raw'])} | {_pm(e['max_dL_outer'])} "
                         f"| {_pm(e['max_dL_every_step'])} | {_pm(e['drift_meV_atom_ps'])} | {_pm(e['A_driving'])} "
                         f"| {_pm(e['steady_steps_per_s'])} | {ok.replace('|', '/')} |")
        starts = [d for e in model["rows"] for d in e.get("start_agrees_with_mdsym", [])]
        if starts:
            lines += ["", "SymmetrizedCalculator runs start from mdsym's positions and velocities: at most "
                      f"{max(d['positions_A'] for d in starts):.1g} A and "
                      f"{max(d['velocities_A_ps'] for d in starts):.1g} A/ps from the raw run's first frame "
                      "(stored in single precision)."]
        lines.append("")
    lines += ["max|dL|: every step, except `mts:K` rows: outer steps (step % K == 0). Cost: the round's raw "
              "steady steps/s over the row's. `SymmetrizedCalculator:L`: metatomic-ase; `ffrotations:L`: "
              "i-PI's own averaging over raw `mdsym serve` clients; `ipi:SPEC`: mdsym's averaging in its "
              "client under i-PI."]
    return "\n".join(lines) + "\n"


def pareto(points) -> list:
    """The points ``(cost, max|dL|, ...)`` no other point beats in both (lower is
    better), by cost."""
    ordered = sorted(points, key=lambda p: (p[0], p[1]))
    front, best = [], math.inf
    for p in ordered:
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


#: max|dL| below this is drawn on it (as a down triangle): net-torque removal keeps L to
#: round-off (1e-13), which would otherwise squeeze every other row into the top of the plot
Y_FLOOR = 1e-4


def plot(result, path: Path) -> None:
    """Cost vs max|dL| per model: one marker per row (mean, sd over seeds as error
    bars), one colour per family, the Pareto frontier with and without net-torque
    removal, and the goal's box (cost <= 2x raw, max|dL| <= 2x full o3:3's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({e["family"] for m in result["models"] for e in m["rows"]})
    colours = {f: f"C{k}" for k, f in enumerate(families)}
    fig, axes = plt.subplots(1, len(result["models"]), figsize=(7.5 * len(result["models"]), 6.5),
                             squeeze=False)
    for ax, model in zip(axes[0], result["models"]):
        points = []
        for e in model["rows"]:
            x, y = e["cost_vs_raw"], e["max_dL_outer"]
            if x["mean"] is None or y["mean"] is None or y["mean"] <= 0:
                continue
            floored = y["mean"] < Y_FLOOR
            shown = max(y["mean"], Y_FLOOR)
            ax.errorbar(x["mean"], shown, xerr=x["sd"] or 0, yerr=0 if floored else (y["sd"] or 0),
                        fmt="v" if floored else "o", color=colours[e["family"]], capsize=3, ms=6)
            lift = 10 * sum(1 for p in points if p[1] < Y_FLOOR) if floored else 0  # labels on the floor stack
            ax.annotate(e["row"] + (f" ({y['mean']:.0e})" if floored else ""), (x["mean"], shown),
                        fontsize=7, xytext=(3, 3 + lift), textcoords="offset points")
            points.append((x["mean"], y["mean"], e["row"]))
        for front, style, label in (
                (pareto(points), "k--", "Pareto frontier"),
                (pareto([p for p in points if "nettorque" not in p[2]]), "k-", "Pareto frontier without nettorque")):
            ax.plot([p[0] for p in front], [max(p[1], Y_FLOOR) for p in front], style, lw=1, label=label)
        full = model["best_point"]["measured"].get("reference_max_dL")
        if full:
            ax.axhline(GOAL_DL * full, color="grey", lw=0.8, ls=":")
            ax.axvline(GOAL_COST, color="grey", lw=0.8, ls=":", label=f"goal: <= {GOAL_COST:g}x raw cost, "
                       f"<= {GOAL_DL:g}x {FULL}'s max|dL|")
        if points:  # log axes need a positive point
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("cost vs raw MD (raw steps/s / steps/s, measured)")
        ax.set_ylabel(f"max |L(t) - L(0)| (amu A$^2$/ps; mts: outer steps; below {Y_FLOOR:g}: on the floor)")
        ax.set_title(model["model"])
        for f in families:
            ax.plot([], [], "o", color=colours[f], label=f)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Cost vs fidelity of symmetrized dynamics (ethanol, NVE): mean ± sd over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def evaluation_times(model, rows, structure, pt) -> dict:
    """Seconds per call of the raw model, of each row's symmetrization and of each
    SymmetrizedCalculator (``bench_mts.evaluation_times``: interleaved, medians)."""
    from ase.calculators.calculator import all_changes

    # an ASE calculator keeps its last answer for the same atoms: each call recomputes
    extra = {row: (lambda atoms, c=symmetrized_calculator(pt, row[len(SYMCALC):]):
                   c.calculate(atoms, ["energy", "forces"], all_changes))
             for row in rows if row.startswith(SYMCALC)}
    specs = [r[len(IPI):] if r.startswith(IPI) else r for r in rows if not r.startswith((SYMCALC, FFROTATIONS))]
    return bench_mts.evaluation_times(specs, model, structure, extra=extra)


def measure(models=MODELS, seeds=SEEDS, steps=STEPS, rows=ROWS, repeats=1, structure=STRUCTURE, keep=None,
            log=print, checkpoint=None) -> dict:
    """For each seed and model (seeds outer: a partial result covers every model),
    ``repeats`` rounds; every figure of every row. ``checkpoint(result)`` is called
    with the result so far after each round."""
    from mdsym.core.defaults import STRUCTURES
    from mdsym.core.system import read_structure

    pin_threads()
    rows = check_rows(rows)
    started = time.monotonic()
    setup = {"models": list(models), "seeds": list(seeds), "steps": steps, "timestep_fs": 0.5,
             "structure": structure, "repeats": repeats, "rows": ["none", *rows]}
    state = {model: {"per_seed": {}} for model in models}

    def result():
        out = []
        for model in models:
            times = state[model].get("times", {})
            summary = summarise(model, rows, state[model]["per_seed"], times)
            out.append({"model": model, "rows": summary, "best_point": verdict(summary),
                        "seconds_per_call": times, "per_seed": state[model]["per_seed"]})
        return {"setup": setup, "environment": environment(),
                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "wall_time_s": time.monotonic() - started, "host": platform.node(), "models": out}

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(keep) if keep else Path(scratch)
        atoms = read_structure(STRUCTURES / structure)
        for model in models:
            pt = model_file(model, atoms, Path(scratch)) if any(r.startswith(SYMCALC) for r in rows) else None
            state[model]["pt"] = pt
            state[model]["times"] = evaluation_times(model, rows, structure, pt)
            log(f"{model}: seconds per call: "
                + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in state[model]["times"].items()))
        for seed in seeds:
            for model in models:
                for round_ in range(repeats):
                    log(f"{model}, seed {seed}, round {round_} ({time.monotonic() - started:.0f} s)")
                    where = root / model.replace(":", "_").replace("/", "_") / f"round{round_}"
                    state[model]["per_seed"][f"{seed}.{round_}"] = one_round(
                        rows, steps, model, structure, seed, where, state[model]["pt"], log)
                    if checkpoint:
                        checkpoint(result())
    return result()


def resummarise(result) -> dict:
    """The rows of a result summed up again from its rounds by this version of the
    script (a file written by another, or while it ran); merged files are left as
    they are (their rows come from several invocations)."""
    if "merged" in result:
        return result
    rows = [row for row in result["setup"]["rows"] if row != "none"]
    for model in result["models"]:
        model["rows"] = summarise(model["model"], rows, model["per_seed"], model["seconds_per_call"])
    return result


def merge(old, new) -> dict:
    """``new``'s rows replace ``old``'s of the same model and name; the rest is kept."""
    merged = json.loads(json.dumps(old))
    models = {m["model"]: m for m in merged["models"]}
    for model in new["models"]:
        if model["model"] not in models:
            merged["models"].append(model)
            merged["setup"]["models"].append(model["model"])
            continue
        kept = models[model["model"]]
        by_row = {e["row"]: e for e in kept["rows"]}
        for entry in model["rows"]:
            if not entry["seeds"]:  # not measured in that invocation (yet): the old row stays
                continue
            if entry["row"] == "none" and "none" in by_row:
                entry = dict(entry, row="none", note="raw of a later invocation; costs are against each "
                                                     "invocation's own raw runs")
                kept.setdefault("later_raw", []).append(entry)
                continue
            entry["measured"] = new["measured"]
            by_row[entry["row"]] = entry
        order = [r for r in ROWS if r in by_row] + [r for r in by_row if r not in ROWS]
        kept["rows"] = [by_row[r] for r in order]
        kept["best_point"] = verdict(kept["rows"])
        kept.setdefault("merged_invocations", []).append({"measured": new["measured"], "rows": new["setup"]["rows"],
                                                          "per_seed": model["per_seed"]})
    merged.setdefault("merged", []).append(new["measured"])
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--specs", nargs="+", default=list(ROWS),
                        help="rows: mdsym specs, SymmetrizedCalculator:L, ffrotations:L, ipi:SPEC")
    parser.add_argument("--repeats", type=int, default=1, help="rounds per model and seed")
    parser.add_argument("--structure", default=STRUCTURE, help="a shipped structure file")
    parser.add_argument("--merge", action="store_true", help="replace these rows in an existing frontier.json")
    parser.add_argument("--results", default=str(RESULTS), help="folder for frontier.json/.md/.png")
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="measure nothing: merge these frontier.json files (e.g. one per model, run "
                             "in parallel) into --results, later ones replacing earlier rows")
    args = parser.parse_args()
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    saved = results / "frontier.json"
    old = json.loads(saved.read_text()) if args.merge and saved.exists() else None

    def write(result):
        """The result so far (merged into the old one with --merge): a long run that is
        stopped keeps the rounds it finished."""
        if old is not None:
            result = merge(old, result)
        for model in result["models"]:  # this version's verdict, also on combined files
            model["best_point"] = verdict(model["rows"])
        saved.write_text(json.dumps(result, indent=2))
        (results / "frontier.md").write_text(markdown(result))
        plot(result, results / "frontier.png")
        return result

    if args.combine:
        parts = [resummarise(json.loads(Path(path).read_text())) for path in args.combine]
        result = parts[0]
        for part in parts[1:]:
            result = merge(result, part)
    else:
        result = measure(args.models, args.seeds, args.steps, args.specs, args.repeats, args.structure,
                         args.keep, checkpoint=write)
    print(markdown(write(result)))


if __name__ == "__main__":
    main()
