"""At production scale: what every symmetrization costs per nanosecond at 10^2-10^4
atoms, the memory it takes, the batch mdsym chooses, and the fidelity it buys.

The model is a STAND-IN of foundation-model size (``scale_standin.py``: metatrain's PET
with a published PET-MAD architecture, random weights; XS by default, ``--stand-in s``
for PET-MAD-S), on the shipped water replicated to about N atoms (periodic) for the
costs, and an isolated droplet of whole molecules for the fidelity (L is conserved
only without a cell).

Per size N and thread count (1, and all cores):

- **single evaluations**, timed in interleaved rounds (``common.interleaved``,
  medians): the raw model (one copy, energy and forces) and one batch of ``B`` rotated
  copies, ``B`` the batch mdsym chooses for ``o3:3`` at this size
  (``TorchModel.batch_size_for``: its pair budget, capped by the memory that is
  there); **per-rotation cost** = batch time / B, in units of a raw call;
- **peak memory**: measured around one raw call and one batch
  (``mdsym.models.memory.peak_bytes``: peak resident set above the set before, after
  ``malloc_trim``; CUDA: torch's peak allocation), beside mdsym's own estimate from
  its probes (``mdsym.models.memory.measure``);
- **ms per step** of each spec, predicted from those timings: ``raw`` and
  ``nettorque`` one raw call; ``o3:L`` (and ``:rotated``) ``ceil(G / B)`` batches of its
  ``G`` copies; ``mts:K+SPEC`` a raw call plus SPEC's cost / K; ``o3:auto`` the grid it
  chose plus its re-check (``len(metrics_quadrature(3))`` copies every
  ``DEFAULT_RECHECK_CALLS`` calls); the MD loop's own cost left out. **hours per ns** at
  0.5 fs: ``ms/step x 2e6 / 3.6e6``;
- a size whose one copy does not fit in memory here (mdsym's own check, which
  ``MDSYM_MEMORY`` can tighten) is not evaluated: its times are **predicted**
  linearly in atoms from the largest size evaluated, and labelled so.

**Fidelity**, on the droplet of the smallest size (``--fidelity-sizes``), one short
NVE run per spec (ASE engine, 0.5 fs, 300 K, seed 0; stability monitors off: a
random-weight model heats up): drift of the conserved energy (meV/atom/ps, linear
fit), max|dL| (amu A^2/ps; under ``mts:K`` at outer steps), measured ms per step
(whole run, first call included), and A of the driving forces (the symmetrized model
that moves the atoms; ``mts:K``: its outer model) at the starting structure, over
``A_ROTATIONS`` random O(3) rotations (the sample variance with K / (K - 1)).

The **frontier** at each size: the cheapest spec (predicted ms/step at that size)
whose A and max|dL| are both within 2x of full ``o3:3``'s (fidelity as measured at the
fidelity size); what limits it is said.

    python benchmarks/bench_scale.py [--stand-in xs|s|m] [--sizes 100,1000,10000]
        [--specs ...] [--steps 20] [--threads 1,all] [--fidelity-sizes 100]
        [--device cpu] [--dtype float32] [--out benchmarks/results/scale]

Results: ``OUT.json`` and ``OUT.md``.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scale_standin
from common import RESULTS, environment, interleaved

SPECS = ("none", "nettorque", "o3:1", "o3:3", "o3:3:rotated", "mts:8+o3:3", "mts:8+o3:1:rotated",
         "o3:auto")
SIZES = (100, 1000, 10000)
FULL = "o3:3"
GOAL = 2.0  # within 2x of full o3:3's fidelity
A_ROTATIONS = 4
TIMESTEP_FS = 0.5
HOURS_PER_NS_PER_MS = 2e6 / 3.6e6  # steps per ns at 0.5 fs, ms per hour


def threads_of(text) -> list:
    """``1,all`` -> [1, cores]."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return sorted({cores if t == "all" else int(t) for t in str(text).split(",")})


def set_threads(n):
    import torch

    torch.set_num_threads(int(n))


# --- costs ---------------------------------------------------------------------


def evaluations(spec: str, auto_degree=None) -> int:
    """Rotated copies of one symmetrized call of ``spec`` (its outer part for mts)."""
    from mdsym.symmetry import quadrature as quad
    from mdsym.symmetry.spec import SymmetrizeSpec

    parsed = SymmetrizeSpec.parse(spec).outer()
    if parsed.mode == "auto":
        return len(quad.by_name(parsed.family, auto_degree if auto_degree is not None else 3,
                                parsed.inversion))
    return parsed.evaluations_per_call()


def predicted_ms(spec, t_raw, t_batch, batch, auto_degree=None) -> float:
    """ms per MD step of ``spec`` from single evaluations (see the module docstring)."""
    from mdsym.core.defaults import DEFAULT_RECHECK_CALLS
    from mdsym.symmetry.metrics import metrics_quadrature
    from mdsym.symmetry.spec import SymmetrizeSpec

    parsed = SymmetrizeSpec.parse(spec)
    outer = parsed.outer()

    def symmetrized():
        if outer.mode in ("none", "random"):
            return t_raw
        cost = math.ceil(evaluations(spec, auto_degree) / batch) * t_batch
        if outer.mode == "auto":
            cost += len(metrics_quadrature(3)) / batch * t_batch / DEFAULT_RECHECK_CALLS
        return cost

    if parsed.mts_interval:
        return 1e3 * (t_raw + symmetrized() / parsed.mts_interval)
    return 1e3 * symmetrized()


def timings(model, system, batch, threads, budget_s=20.0) -> dict:
    """Seconds per raw call and per batch of ``batch`` copies, and their peak memory."""
    from mdsym.models.memory import peak_bytes
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    set_threads(threads)
    raw = SymmetrizedModel(model, "none")
    rotations = _rotations(batch)
    calls = {"raw": lambda: raw(system, ("energy", "forces")),
             "batch": lambda: model.evaluate(system, rotations, ("energy", "forces"))}
    times = interleaved(calls, repeats=3, budget_s=budget_s, warmup=1)
    peaks = {name: peak_bytes(call, model.device)[0] for name, call in calls.items()}
    return {"threads": threads, "raw_s": times["raw"], "batch_s": times["batch"], "batch": batch,
            "per_rotation_vs_raw": times["batch"] / batch / times["raw"],
            "peak_raw_bytes": peaks["raw"], "peak_batch_bytes": peaks["batch"]}


def _rotations(n):
    from scipy.spatial.transform import Rotation

    return Rotation.random(n, random_state=1).as_matrix().reshape(n, 3, 3)


def size_row(model, n_target, threads_list, log=print, budget_s=20.0) -> dict:
    """Memory, the batch mdsym chooses, and single-evaluation timings at one size."""
    from mdsym.core.errors import MdsymError
    from mdsym.core.system import System
    from mdsym.models import memory

    atoms = scale_standin.water_box(n_target)
    system = System.from_atoms(atoms)
    pairs = len(system.neighbours(model.cutoff, model.full_neighbour_list).first)
    row = {"target": n_target, "atoms": len(atoms), "pairs": pairs,
           "available_bytes": memory.available_bytes(model.device)}
    try:
        memory.check_fits(model, system, None, evaluations(FULL))
        row["batch"] = model.batch_size_for(system)
    except MdsymError as error:
        row["refused"] = str(error)
        log(f"  {len(atoms)} atoms: refused by mdsym's memory check: {error}")
    found = memory.measure(model, system)
    if found is not None:
        row["estimate"] = {"bytes_per_atom": found.bytes_per_atom, "bytes_per_pair": found.bytes_per_pair,
                           "per_copy_bytes": found.bytes_for(len(atoms), pairs), "how": found.how}
    if "refused" not in row:
        row["timings"] = []
        for threads in threads_list:
            log(f"  {len(atoms)} atoms, {threads} thread(s): timing raw and a batch of {row['batch']}")
            row["timings"].append(timings(model, system, row["batch"], threads, budget_s))
    return row


def predict_refused(rows) -> None:
    """Times of the sizes that did not fit, linear in atoms from the largest evaluated."""
    evaluated = [r for r in rows if "timings" in r]
    for row in rows:
        if "timings" in row or not evaluated:
            continue
        base = max(evaluated, key=lambda r: r["atoms"])
        scale = row["atoms"] / base["atoms"]
        row["batch"] = 1
        row["predicted_from"] = base["atoms"]
        row["timings"] = [{"threads": t["threads"], "raw_s": t["raw_s"] * scale,
                           "batch_s": t["batch_s"] / t["batch"] * scale, "batch": 1,
                           "per_rotation_vs_raw": t["batch_s"] / t["batch"] / t["raw_s"],
                           "peak_raw_bytes": None, "peak_batch_bytes": None, "predicted": True}
                          for t in base["timings"]]


def spec_costs(row, specs, auto_degree) -> list:
    out = []
    for timing in row.get("timings", []):
        for spec in specs:
            ms = predicted_ms(spec, timing["raw_s"], timing["batch_s"], timing["batch"], auto_degree)
            out.append({"spec": spec, "threads": timing["threads"], "ms_per_step": ms,
                        "hours_per_ns": ms * HOURS_PER_NS_PER_MS,
                        "cost_vs_raw": ms / (1e3 * timing["raw_s"]),
                        "predicted_size": bool(timing.get("predicted"))})
    return out


# --- fidelity --------------------------------------------------------------------


def run_spec(model_path, structure, spec, steps, seed, out, dtype=None, device="cpu") -> dict:
    """One short NVE run of ``spec`` on ``structure``; its figures."""
    from mdsym.md.run import run_md
    from mdsym.md.rundir import RunDirectory

    config = dict(model=str(model_path), structure=str(structure), engine="ase", ensemble="nve",
                  timestep_fs=TIMESTEP_FS, steps=steps, temperature_K=300.0, seed=seed, symmetrize=spec,
                  stride=steps, threads="1", connectivity=False, min_distance_A=0.0,
                  max_temperature_factor=0.0, dtype=dtype, device=device)
    clock = {}
    info = run_md(config, out, progress=lambda step, total: clock.setdefault(step, time.perf_counter()))
    steady = sorted(step for step in clock if step >= 1)  # step 0: the model's first (compiled) call
    ms = (1e3 * (clock[steady[-1]] - clock[steady[0]]) / (steady[-1] - steady[0])
          if len(steady) > 1 else float("nan"))
    thermo = RunDirectory(out).read_thermo()
    n_atoms = len(scale_standin_read(structure))
    k = _mts_interval(spec)
    outer = (thermo["step"] % k == 0) if k else np.ones(len(thermo["step"]), dtype=bool)
    L = np.column_stack([thermo[f"L{a}"] for a in "xyz"])[outer]
    time_ps = thermo["time_fs"][outer] * 1e-3
    slope = np.polyfit(time_ps, thermo["conserved_eV"][outer], 1)[0] if outer.sum() > 1 else float("nan")
    degrees = [entry["degree"] for segment in info.get("segments", []) for entry in segment.get("degree_log", [])]
    return {"spec": spec, "status": info["status"], "steps": int(info.get("steps_done") or 0),
            "ms_per_step_measured": ms,
            "drift_meV_atom_ps": 1e3 * slope / n_atoms,
            "max_dL": float(np.max(np.linalg.norm(L - L[0], axis=1))),
            "auto_degree": degrees[-1] if degrees else None}


def scale_standin_read(path):
    import ase.io

    return ase.io.read(path)


def _mts_interval(spec) -> int:
    from mdsym.symmetry.spec import SymmetrizeSpec

    return SymmetrizeSpec.parse(spec).mts_interval


def A_driving(model, system, spec, auto_degree=None, seed=0) -> float:
    """A of the forces of the model that moves the atoms under ``spec`` (its outer model
    under mts), over ``A_ROTATIONS`` random O(3) rotations of ``system``."""
    from scipy.spatial.transform import Rotation

    from mdsym.symmetry import quadrature as quad
    from mdsym.symmetry.averaging import evaluate_back_rotated
    from mdsym.symmetry.metrics import equivariance_error
    from mdsym.symmetry.spec import SymmetrizeSpec
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    parsed = SymmetrizeSpec.parse(spec).outer()
    outer = str(parsed)
    if parsed.mode == "auto":  # the grid it chose in its run, with the spec's fixes
        fixes = "".join(f"+{fix}" for fix, on in (("netforce", parsed.remove_net_force),
                                                 ("nettorque", parsed.remove_net_torque)) if on)
        outer = f"o3:{auto_degree if auto_degree is not None else 3}{fixes}"
    moving = SymmetrizedModel(model, outer, seed=seed) if outer != "none" else model
    rotations = Rotation.random(A_ROTATIONS, random_state=seed + 7).as_matrix()
    rotations[1::2] *= -1.0  # half of them improper: O(3)
    grid = quad.Quadrature("random", rotations, np.full(A_ROTATIONS, 1.0 / A_ROTATIONS), 0, True)
    back = evaluate_back_rotated(moving, system, grid, ("energy", "forces"), batch_size=1)
    return float(equivariance_error(back["forces"], grid.weights) * math.sqrt(A_ROTATIONS / (A_ROTATIONS - 1)))


def fidelity(model, model_path, n_target, specs, steps, scratch, log=print, dtype=None, device="cpu") -> dict:
    """The fidelity runs of every spec on the droplet of about ``n_target`` atoms."""
    from mdsym.core.system import System

    atoms = scale_standin.droplet(n_target)
    structure = Path(scratch) / f"droplet-{len(atoms)}.xyz"
    atoms.write(structure)
    system = System.from_atoms(atoms)
    rows = []
    for spec in specs:
        log(f"  fidelity of {spec} on the {len(atoms)}-atom droplet: {steps} steps")
        out = Path(scratch) / f"run-{len(atoms)}-{spec.replace(':', '_').replace('+', '-')}"
        try:
            row = run_spec(model_path, structure, spec, steps, 0, out, dtype=dtype, device=device)
        except Exception as error:  # a failing row keeps its reason, the others go on
            row = {"spec": spec, "status": "error", "reason": f"{type(error).__name__}: {error}"}
        try:
            row["A_driving"] = A_driving(model, system, spec, row.get("auto_degree"))
        except Exception as error:
            row["A_error"] = f"{type(error).__name__}: {error}"
        rows.append(row)
    return {"atoms": len(atoms), "steps": steps, "rows": rows}


# --- the frontier --------------------------------------------------------------------


def frontier(size_rows, fidelity_rows) -> list:
    """Per size: the cheapest spec with A and max|dL| within GOAL x full o3:3's."""
    by_spec = {r["spec"]: r for r in fidelity_rows if r.get("status") == "completed"}
    full = by_spec.get(FULL)
    verdicts = []
    for row in size_rows:
        costs = {}
        for c in row.get("costs", []):
            costs[c["spec"]] = min(costs.get(c["spec"], math.inf), c["ms_per_step"])
        verdict = {"atoms": row["atoms"], "predicted": "predicted_from" in row}
        if not full or not costs:
            verdict["sentence"] = "no verdict: no full o3:3 fidelity run or no costs at this size"
            verdicts.append(verdict)
            continue

        def ratio(spec, key):
            value, reference = by_spec[spec].get(key), full.get(key)
            return value / max(reference, 1e-12) if value is not None and reference is not None else math.inf

        within = [s for s in costs if s in by_spec and ratio(s, "A_driving") <= GOAL and ratio(s, "max_dL") <= GOAL]
        ranked = sorted(within, key=costs.get)
        best = ranked[0] if ranked else None
        cheaper = sorted((s for s in costs if s in by_spec and (best is None or costs[s] < costs[best])),
                         key=costs.get)
        verdict.update(best=best, best_ms=costs.get(best), raw_ms=costs.get("none"),
                       full_ms=costs.get(FULL))
        reasons = []
        for s in cheaper:
            bad = [f"{key.replace('_driving', '')} {ratio(s, key):.3g}x" for key in ("A_driving", "max_dL")
                   if ratio(s, key) > GOAL]
            if bad:
                reasons.append(f"`{s}` ({costs[s] / costs['none']:.2f}x raw) has {' and '.join(bad)} full o3:3's")
        verdict["limits"] = reasons
        if best:
            verdict["sentence"] = (f"best point `{best}`: {costs[best]:.4g} ms/step = {costs[best] / costs['none']:.2f}x raw, "
                                   f"{costs[FULL] / costs[best]:.2f}x cheaper than full o3:3; cheaper specs fail: "
                                   + ("; ".join(reasons) if reasons else "none is cheaper"))
        else:
            verdict["sentence"] = "no spec within 2x of full o3:3 (not even o3:3's own run)"
        verdicts.append(verdict)
    return verdicts


# --- report ----------------------------------------------------------------------


def _g(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _gib(value) -> str:
    return "-" if value is None else f"{value / 2**30:.2f}"


def markdown(result) -> str:
    model = result["model"]
    lines = [f"# Symmetrization at scale ({result['environment']['date']})", "",
             f"Model: {model['label']}; {model['parameters'] / 1e6:.2f} M parameters (published: "
             f"{model['published_parameters'] / 1e6:.1f} M), {result['dtype']} on {result['device']}.",
             f"Machine: {result['environment']['cpus']} CPUs ({result['environment']['affinity']} usable), "
             f"load average {result['load_average']}; command: `{result['command']}`.", "",
             "## Memory and batch size (periodic water)", "",
             "| atoms | pairs | batch mdsym chose (o3:3) | estimated GiB per copy | measured peak GiB, raw call "
             "| measured peak GiB, batch | available GiB | note |", "|---|---|---|---|---|---|---|---|"]
    for row in result["sizes"]:
        first = (row.get("timings") or [{}])[0]
        note = ("predicted from " + str(row["predicted_from"]) + " atoms: " + row.get("refused", "")
                if "predicted_from" in row else row.get("refused", ""))
        lines.append(f"| {row['atoms']} | {row['pairs']} | {row.get('batch', '-')} | "
                     f"{_gib(row.get('estimate', {}).get('per_copy_bytes'))} | {_gib(first.get('peak_raw_bytes'))} | "
                     f"{_gib(first.get('peak_batch_bytes'))} | {_gib(row.get('available_bytes'))} | {note} |")
    lines += ["", "## Cost per step (predicted from single evaluations; the MD loop left out)", "",
              "| atoms | threads | spec | ms/step | hours per ns (0.5 fs) | x raw | per-rotation cost (x raw call) |",
              "|---|---|---|---|---|---|---|"]
    for row in result["sizes"]:
        rotation = {t["threads"]: t["per_rotation_vs_raw"] for t in row.get("timings", [])}
        for c in row.get("costs", []):
            mark = " (predicted size)" if c["predicted_size"] else ""
            lines.append(f"| {row['atoms']}{mark} | {c['threads']} | `{c['spec']}` | {_g(c['ms_per_step'], 4)} | "
                         f"{_g(c['hours_per_ns'], 3)} | {_g(c['cost_vs_raw'])} | {_g(rotation.get(c['threads']))} |")
    fid = result.get("fidelity")
    if fid:
        lines += ["", f"## Fidelity ({fid['atoms']}-atom isolated droplet, NVE, {fid['steps']} steps of "
                      f"{TIMESTEP_FS} fs from 300 K, seed 0)", "",
                  "| spec | status | A of the driving forces (eV/A) | max\\|dL\\| (amu A^2/ps) | drift (meV/atom/ps) "
                  "| measured ms/step (whole run past its first step) | o3:auto's degree |", "|---|---|---|---|---|---|---|"]
        for r in fid["rows"]:
            lines.append(f"| `{r['spec']}` | {r['status']} | {_g(r.get('A_driving'))} | {_g(r.get('max_dL'))} | "
                         f"{_g(r.get('drift_meV_atom_ps'))} | {_g(r.get('ms_per_step_measured'), 4)} | "
                         f"{r.get('auto_degree') if r.get('auto_degree') is not None else '-'} |"
                         + (f" {r['reason']}" if r.get("reason") else ""))
    lines += ["", "## Frontier (fidelity within 2x of full o3:3 at the lowest cost)", ""]
    for v in result.get("frontier", []):
        lines.append(f"- **{v['atoms']} atoms**{' (predicted costs)' if v['predicted'] else ''}: {v['sentence']}.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stand-in", default="xs", choices=sorted(scale_standin.SIZES))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--steps", type=int, default=16,
                        help="steps of each fidelity run (rounded up to whole outer steps of every mts:K, "
                             "at least two)")
    parser.add_argument("--fidelity-sizes", default=None,
                        help="droplet sizes of the fidelity runs [default: the smallest size]; 0: none")
    parser.add_argument("--threads", default="1,all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--model", default=None, help="a metatomic .pt instead of the stand-in")
    parser.add_argument("--out", default=str(RESULTS / "scale"))
    parser.add_argument("--update", action="store_true",
                        help="keep OUT.json's single-evaluation timings and the fidelity rows of the "
                             "specs not in --specs; measure again the memory estimates and the "
                             "fidelity of --specs")
    args = parser.parse_args(argv)
    log = (lambda text: print(text, flush=True))
    out = Path(args.out)
    result = update(args, json.loads(out.with_suffix(".json").read_text()), log) if args.update \
        else measure(args, log=log)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


def measure(args, log=print) -> dict:
    from mdsym.models import load_model

    sizes = [int(x) for x in str(args.sizes).split(",") if x]
    specs = [s for s in str(args.specs).split(",") if s]
    # every fidelity run the same length: whole outer steps of every mts:K, at least two
    k = max([_mts_interval(s) for s in specs] + [1])
    steps = max(args.steps, 2 * k)
    steps = -(-steps // k) * k
    if args.model:
        model_info = {"path": args.model, "label": f"user model {args.model}", "parameters": float("nan"),
                      "published_parameters": float("nan")}
    else:
        log(f"stand-in PET-MAD-{args.stand_in.upper()} (built once into {scale_standin.cache_dir()})")
        model_info = scale_standin.standin(args.stand_in)
    model = load_model(model_info["path"], forces="conservative", device=args.device, dtype=args.dtype)
    started = time.time()
    rows = []
    for n in sizes:
        log(f"size {n}")
        rows.append(size_row(model, n, threads_of(args.threads), log=log))
    predict_refused(rows)
    fidelity_sizes = ([min(sizes)] if args.fidelity_sizes is None
                      else [int(x) for x in str(args.fidelity_sizes).split(",") if int(x) > 0])
    fid = None
    with tempfile.TemporaryDirectory(prefix="mdsym-scale-") as scratch:
        for n in fidelity_sizes:
            fid = fidelity(model, model_info["path"], n, specs, steps, scratch, log=log,
                           dtype=args.dtype, device=args.device)
    auto = next((r.get("auto_degree") for r in (fid or {}).get("rows", []) if r.get("auto_degree") is not None), None)
    for row in rows:
        row["costs"] = spec_costs(row, specs, auto)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"model": model_info, "device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
              "specs": specs, "sizes": rows, "fidelity": fid, "auto_degree": auto,
              "frontier": frontier(rows, (fid or {}).get("rows", [])),
              "environment": environment(), "load_average": [round(x, 1) for x in load] if load else None,
              "wall_s": time.time() - started,
              "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
              "MDSYM_MEMORY": os.environ.get("MDSYM_MEMORY")}
    return result


def update(args, old, log=print) -> dict:
    """``--update``: the old sizes' timings, new memory estimates, new fidelity rows for
    ``--specs`` (the other specs' rows kept), costs and frontier for every spec again."""
    from mdsym.core.errors import MdsymError
    from mdsym.core.system import System
    from mdsym.models import load_model, memory

    rerun = [s for s in str(args.specs).split(",") if s]
    model_info = old["model"]
    model = load_model(model_info["path"], forces="conservative", device=args.device, dtype=args.dtype)
    for row in old["sizes"]:
        system = System.from_atoms(scale_standin.water_box(row["target"]))
        found = memory.estimate(model, system)
        if "refused" in row:  # the refusal as this mdsym words it, with these estimates
            try:
                memory.check_fits(model, system, None, evaluations(FULL))
                row["refused"] = "fits now: its timings are still predicted"
            except MdsymError as error:
                row["refused"] = str(error)
        if found is not None:
            log(f"  memory estimate at {row['atoms']} atoms: {found.describe()}")
            row["estimate"] = {"bytes_per_atom": found.bytes_per_atom, "bytes_per_pair": found.bytes_per_pair,
                               "per_copy_bytes": found.bytes_for(row["atoms"], row["pairs"]), "how": found.how}
    fid = old["fidelity"]
    with tempfile.TemporaryDirectory(prefix="mdsym-scale-") as scratch:
        new = fidelity(model, model_info["path"], fid["atoms"], rerun, fid["steps"], scratch, log=log,
                       dtype=args.dtype, device=args.device)
    fresh = {r["spec"]: r for r in new["rows"]}
    fid["rows"] = [fresh.get(r["spec"], r) for r in fid["rows"]] + [r for s, r in fresh.items()
                                                                   if s not in {x["spec"] for x in fid["rows"]}]
    specs = list(dict.fromkeys(old["specs"] + rerun))
    auto = next((r.get("auto_degree") for r in fid["rows"] if r.get("auto_degree") is not None), None)
    for row in old["sizes"]:
        row["costs"] = spec_costs(row, specs, auto)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    old.update(specs=specs, auto_degree=auto, frontier=frontier(old["sizes"], fid["rows"]),
               updated={"command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
                        "date": environment()["date"], "specs": rerun,
                        "load_average": [round(x, 1) for x in load] if load else None})
    return old


if __name__ == "__main__":
    main()
