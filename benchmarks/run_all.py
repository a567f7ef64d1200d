"""The whole benchmark suite in one command: figures as side-by-side ratios.

    python benchmarks/run_all.py [--quick] [--sizes 10 100 1000] [--degrees 1 3 5]
                                 [--pet-1000] [--skip ipi memory ...]

Pieces (each also runs alone: ``python benchmarks/bench_<piece>.py``):

- ``counts``: model evaluations per symmetrized call for exactness degrees 1..8:
  mdsym vs SymmetrizedCalculator vs SymmetrizedModel vs i-PI ``<ffrotations>``,
  some checked by counting calls (bench_counts.py);
- ``evaluation``: symmetrized vs raw evaluation time per rotation, and total time of
  the metatomic tools relative to mdsym at equal L, for the analytic model and every
  shipped PET model (or a labelled stand-in), at each size (bench_evaluation.py);
- ``ipi``: MD ms/step raw and symmetrized, ASE in-process and i-PI through
  ``mdsym serve``; socket overhead; in-driver averaging vs ``<ffrotations>`` on
  the same grid (bench_ipi.py);
- ``analysis``: frames/s of drift + angular momentum (+ equipartition) and of the
  equivariance error A along a trajectory (bench_analysis.py);
- ``memory``: RSS high-water growth of one symmetrized evaluation vs a raw one,
  against the batch size, fresh subprocesses (bench_memory.py).

Every timing runs with ONE torch/OpenMP thread. Writes benchmarks/results/all.json
and benchmarks/results/all.md and prints the markdown. ``--quick`` (reduced sizes,
steps and repeats) is meant to take under about 5 minutes on 2 cores.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, environment, model_cases, pin_threads  # noqa: E402

PIECES = ("counts", "evaluation", "ipi", "analysis", "memory")
MEMORY_RESOLUTION = 0.05  # relative spread of bench_memory's figures between runs


def log(message):
    print(message, file=sys.stderr, flush=True)


def run_counts(args):
    import bench_counts

    result = bench_counts.counts(8)
    result["counted"] = bench_counts.verify_by_counting((1, 3))
    return result


def run_evaluation(args):
    import bench_evaluation

    pet_sizes = [n for n in args.sizes if n < 1000 or args.pet_1000]
    return bench_evaluation.run(args.sizes, args.degrees, include_pet=not args.no_pet,
                                pet_sizes=pet_sizes, repeats=args.repeats,
                                budget_s=args.budget, log=log)


def run_ipi(args):
    import bench_ipi

    if args.quick:
        return bench_ipi.measure(steps=200, sym_steps=36, repeats=1, log=log)
    return bench_ipi.measure(steps=300, sym_steps=30, repeats=2, log=log)


def run_analysis(args):
    import bench_analysis

    frames = 2000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        bench_analysis.synthetic_run(Path(tmp) / "run", frames, 100)
        timings = bench_analysis.bench_frames(Path(tmp) / "run", frames)
    equivariance = bench_analysis.bench_equivariance(n_frames=10 if args.quick else 20)
    result = {"frames": frames, "atoms": 100, "timings_s": timings,
              "frames_per_s": frames / timings["total_s"],
              "drift_L_frames_per_s": frames / (timings["read_s"] + timings["drift_s"]
                                                + timings["angular_momentum_s"]),
              "equivariance": equivariance}
    log(f"  analysis: {result['drift_L_frames_per_s']:.0f} frames/s (drift + L, reading included), "
        f"A: {equivariance['frames_per_s']:.1f} frames/s")
    return result


def run_memory(args):
    import ase.io
    import bench_memory

    results = [bench_memory.run("analytic", "copper", 1000, 5, args.batch_sizes, label="analytic", log=log)]
    if not args.no_pet:
        for case in model_cases(include_pet=True)[1:]:
            atoms = case["structure"](1)  # the base structure the case replicates
            path = Path(tempfile.mkdtemp(prefix="mdsym-bench-")) / "base.xyz"
            ase.io.write(path, atoms)
            label = case["name"] + (" (stand-in)" if case["standin"] else "")
            results.append(bench_memory.run(case["mdsym"], str(path), 100, 5, args.batch_sizes,
                                            label=label, log=log))
    return results


def run_in_fresh_process(runner, args):
    """``runner(args)`` in a new process: a piece must not inherit what the ones before
    left in memory (after the evaluation piece, ~5 GiB and its objects made the
    analysis piece read trajectories 13x slower in the same process)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_quietly, runner, args).result()


def _quietly(runner, args):
    warnings.filterwarnings("ignore")
    pin_threads()
    return runner(args)


def targets(result) -> list:
    """(target, measured, holds) for each of issue 6's targets that was measured."""
    found = []
    evaluation = result.get("evaluation")
    if evaluation:
        rows = [r for r in evaluation["rows"] if r["model"] == "analytic" and 50 <= r["atoms"] <= 200]
        for r in rows:
            cost, g = r["per_rotation_cost"]["mdsym"], r["rotations"]["mdsym"]
            name = f"analytic, {r['atoms']} atoms, L={r['degree']}: per-rotation cost <= 0.1"
            if 1.0 / g > 0.1:
                # a symmetrized call includes one raw call's fixed work (neighbour list,
                # set-up), so its cost per rotation cannot go below 1/G
                found.append((name, f"{cost:.3f}; unattainable with G = {g}: the floor is "
                              f"1/G = {1 / g:.3f}", None))
            else:
                found.append((name, f"{cost:.3f}", cost <= 0.1))
        for r in evaluation["rows"]:
            if r["model"] == "analytic":
                continue
            s, g = r["speedup_of_mdsym"], r.get("rotation_ratio")
            low = min(s.values())
            name = r["model"] + (" (STAND-IN)" if r["standin"] else "")
            measured = f"{s['SymmetrizedCalculator']:.1f}x / {s['SymmetrizedModel']:.1f}x"
            if g:
                # the speed-up = (rotation-count ratio) x (time-per-rotation ratio)
                measured += (f" (= {g['SymmetrizedCalculator']:.2f} / {g['SymmetrizedModel']:.2f}x "
                             f"fewer rotations x {s['SymmetrizedCalculator'] / g['SymmetrizedCalculator']:.2f}"
                             f" / {s['SymmetrizedModel'] / g['SymmetrizedModel']:.2f}x less time "
                             "per rotation)")
            found.append((f"{name}, {r['atoms']} atoms, L={r['degree']}: >= 3x faster than "
                          "SymmetrizedCalculator and SymmetrizedModel", measured, low >= 3))
    counts = result.get("counts")
    if counts:
        fewer = [r["degree"] for r in counts["rows"] if r["mdsym_fewer_than_lebedev_2L1"]]
        found.append(("fewer model evaluations than Lebedev x (2L+1) x 2, L = 1..8",
                      f"fewer at L = {fewer}", len(fewer) == len(counts["rows"])))
        smaller = [r["degree"] for r in counts["rows"] if r["mdsym"] < r["SymmetrizedModel"]]
        found.append(("(for reference) fewer than SymmetrizedModel's Lebedev x (L+1) x 2",
                      f"fewer at L = {smaller}, equal elsewhere", None))
    ipi = result.get("ipi")
    if ipi:
        found.append(("symmetrized i-PI run via mdsym serve >= 5x faster than <ffrotations>, same grid",
                      f"{ipi['in_driver_speedup']:.1f}x", ipi["in_driver_speedup"] >= 5))
    memory = result.get("memory")
    if memory:
        for m in memory:
            worst = max(r["growth_over_batch_x_raw"] for r in m["rows"])
            # within the run-to-run spread of the measurement: the raw figure of two PET
            # models of the same architecture and size differs by 2% (8.69 / 8.87 MiB)
            found.append((f"memory {m['model']}: symmetrized growth <= batch x raw growth "
                          f"(to {MEMORY_RESOLUTION:.0%}, the measurement's spread)",
                          f"max ratio {worst:.3f} over batches "
                          f"{[r['batch_size'] for r in m['rows']]}", worst <= 1.0 + MEMORY_RESOLUTION))
    return found


def markdown(result) -> str:
    import bench_counts
    import bench_evaluation
    import bench_ipi
    import bench_memory

    env = result["environment"]
    out = [f"# mdsym benchmarks ({env['date']})", "",
           f"Machine: {env['cpus']} CPUs ({env['affinity']} usable), {env['machine']}, "
           f"python {env['python']}, torch {env['torch']}; **every timing with 1 torch thread**. "
           f"Options: {result['options']}. Figures are ratios of timings taken side by side "
           "in one process (interleaved, medians) unless marked.", ""]
    if result.get("notes"):
        out += [f"> {note}" for note in result["notes"]] + [""]
    if "targets" in result:
        out += ["## Targets", "", "| target | measured | holds |", "|---|---|---|"]
        for name, measured, holds in result["targets"]:
            out.append(f"| {name} | {measured} | {'-' if holds is None else ('yes' if holds else '**no**')} |")
        out.append("")
    if "counts" in result:
        out += ["## Model evaluations per symmetrized call (exactness degree L over O(3))", "",
                bench_counts.markdown(result["counts"]), ""]
    if "evaluation" in result:
        out += ["## Symmetrized vs raw evaluation", "",
                "Per-rotation cost = symmetrized time / (rotations x the same tool's raw time); "
                "SymCalc/SymModel time / mdsym time: total time at equal exactness degree L "
                "(each tool on its own quadrature). Energy + forces (+ stress if periodic).", "",
                bench_evaluation.markdown(result["evaluation"]), ""]
        checks = result["evaluation"].get("checks", [])
        if checks:
            out.append("Agreement checked before timing (max |dF| in eV/A): " + "; ".join(
                f"{c['model']} L={c['degree']}: SymModel vs mdsym (same grid) "
                f"{c['SymmetrizedModel_vs_mdsym_lebedev']:.0e}, SymCalc vs mdsym "
                f"{c['SymmetrizedCalculator_vs_mdsym']:.0e}" for c in checks))
            out.append("")
    if "ipi" in result:
        out += ["## MD: steps/s, raw and symmetrized, ASE and i-PI", "",
                "i-PI runs: the median of i-PI's own per-step wall times (verbosity high); "
                "ASE runs: slopes between a short and a long run (start-up cancels).", "",
                bench_ipi.markdown(result["ipi"]), ""]
    if "analysis" in result:
        a = result["analysis"]
        eq = a["equivariance"]
        out += ["## Analysis throughput", "",
                "| analysis | frames/s |", "|---|---:|",
                f"| drift + angular momentum, {a['frames']} frames x {a['atoms']} atoms, reading included "
                f"| {a['drift_L_frames_per_s']:.0f} |",
                f"| drift + L + equipartition | {a['frames_per_s']:.0f} |",
                f"| equivariance error A along a trajectory ({eq['atoms']} atoms, "
                f"{eq['rotations_per_frame']} rotations/frame, analytic model) | {eq['frames_per_s']:.1f} |", ""]
    if "memory" in result:
        out += ["## Peak memory vs batch size", "",
                "Growth of the RSS high-water mark over one symmetrized call (raw: over G calls), "
                "fresh subprocess each, after three warm-up calls, glibc's mmap threshold at one page "
                "(bench_memory.py says why).", "",
                bench_memory.markdown(result["memory"]), ""]
    if result.get("errors"):
        out += ["## Pieces that failed", ""] + [f"- {k}: {v}" for k, v in result["errors"].items()] + [""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes, steps and repeats (~5 min)")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--degrees", type=int, nargs="+")
    parser.add_argument("--pet-1000", action="store_true", help="also run PET models at 1000 atoms (minutes)")
    parser.add_argument("--no-pet", action="store_true")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--budget", type=float, help="seconds of timed calls per tool and case")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--skip", nargs="+", default=[], choices=PIECES)
    parser.add_argument("--only", nargs="+", choices=PIECES)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([10, 100] if args.quick else [10, 100, 1000])
    args.degrees = args.degrees or ([1, 3] if args.quick else [1, 3, 5])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.budget = args.budget or (3.0 if args.quick else 20.0)
    warnings.filterwarnings("ignore")
    pin_threads()

    result = {"environment": environment(), "options": {
        "quick": args.quick, "sizes": args.sizes, "degrees": args.degrees, "repeats": args.repeats,
        "pet_1000": args.pet_1000, "threads": 1}, "errors": {}, "notes": [
        "Measured on a shared 2-core machine with other jobs running: absolute times are noisy, "
        "ratios less so."]}
    cases = model_cases(include_pet=not args.no_pet)
    if any(c["standin"] for c in cases):
        result["notes"].append("No shipped PET model was installed (mdsym/models/data/pet-*.pt): the PET "
                               "rows use a STAND-IN (untrained PET, same hyper-parameters, random weights).")
    runners = {"counts": run_counts, "evaluation": run_evaluation, "ipi": run_ipi,
               "analysis": run_analysis, "memory": run_memory}
    started = time.perf_counter()
    for piece in args.only or PIECES:
        if piece in args.skip:
            continue
        log(f"== {piece}")
        t = time.perf_counter()
        try:
            result[piece] = run_in_fresh_process(runners[piece], args)
        except Exception as error:  # one broken piece must not lose the others
            result["errors"][piece] = f"{type(error).__name__}: {error}"
            log(f"  {piece} failed: {result['errors'][piece]}")
        log(f"  ({time.perf_counter() - t:.0f} s)")
    result["wall_s"] = time.perf_counter() - started
    result["targets"] = targets(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "all.json").write_text(json.dumps(result, indent=2, default=str))
    text = markdown(result)
    (out / "all.md").write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
