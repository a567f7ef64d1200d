"""Peak memory and time per frame of ``mdsym analyze --no-equivariance`` on a long
trajectory: today's streaming analysis against the analysis that held every frame
in memory (the baseline commit), side by side.

    python benchmarks/bench_analysis_memory.py [--frames 100000] [--baseline-frames 10000]

The synthetic run is 333 rigid-ish waters and one argon atom (1000 atoms, isolated)
on a grid 3.1 A apart, each frame the same structure plus 0.02 A of noise, thermal
velocities and random forces, written frame by frame through the project's own TRR
writer (``RunDirectory.append_frame``: positions, velocities and forces, ~36 kB a
frame, 3.6 GB for 10^5 frames) with one thermo.csv row per frame, in a temporary
directory deleted at the end. Free disk space is checked first; where it lacks, the
number of frames is scaled down and the result says so.

Each measurement runs ``mdsym analyze RUN --no-equivariance`` in a fresh Python
process (``python -c``, one thread) that reports its wall time after its imports and
its RSS high-water mark (``VmHWM``; ``ru_maxrss`` carries a parent's peak over exec).
The baseline is the package as of ``--baseline`` (a git commit: the last one before
the analysis streamed), unpacked with ``git archive`` and imported in place of the
installed one.

1. ``--baseline-frames`` / 5 and ``--baseline-frames`` (2000 and 10^4) frames:
   baseline and streaming, ``--rounds`` times each, interleaved. Time per frame is
   the growth of the median time from the smaller size to the larger, over the
   frames added: it leaves out what does not grow with the frames (imports, the
   structure's 200 frames, the plots), where the two versions differ most (the
   baseline's bond search was O(N^2) per frame). Their ratio, the ratio of the total
   times, and the peaks. The baseline holds 72 bytes per atom and frame (0.72 GB at
   10^4 frames) plus temporaries of the same order; at 10^5 frames it would need
   7.2 GB for the frames alone, more than this shared machine can spare, so it is
   not run there.
2. the run extended to ``--frames`` (10^5): streaming alone, its peak and time per
   frame; the target is a peak below 1 GB.

The analyses' figures of the two versions are compared at 10^4 frames (angular
momentum and structure agree to round-off; the equipartition's molecules differ
where the baseline's bond threshold, 0.6 A longer, joined hydrogen-bonded waters).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the last commit whose ``mdsym analyze`` held every frame in memory
BASELINE = "921efddb0b0504471522b0d1b09440d452e11f30"
N_WATERS, SPACING_A, NOISE_A, TEMPERATURE_K, DT_FS = 333, 3.1, 0.02, 300.0, 1.0
FRAME_BYTES_PER_ATOM = 36  # TRR, float32 positions, velocities and forces
TARGET_PEAK_GB = 1.0

# run in a fresh interpreter: argv = [source or "", run, out]
CHILD = r"""
import json, sys, time
source, run, out = sys.argv[1:4]
if source:  # the baseline tree instead of the installed (editable) package
    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    sys.path.insert(0, source)
start = time.perf_counter()
import warnings; warnings.filterwarnings("ignore")
from mdsym.cli.main import main
import mdsym
imported = time.perf_counter()
main.main(["analyze", run, "--no-equivariance", "--out", out], standalone_mode=False)
done = time.perf_counter()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"import_s": imported - start, "analyze_s": done - imported, "peak_kb": hwm,
                  "package": mdsym.__file__}))
"""


def synthetic_structure():
    import ase
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    sites = np.stack(np.meshgrid(*[np.arange(7)] * 3, indexing="ij"), -1).reshape(-1, 3) * SPACING_A
    atoms = ase.Atoms()
    water = molecule("H2O")
    for k in range(N_WATERS):
        copy = water.copy()
        copy.positions = copy.positions @ Rotation.random(random_state=rng).as_matrix().T + sites[k]
        atoms += copy
    atoms += ase.Atoms("Ar", positions=[sites[N_WATERS]])
    return atoms


def extend_run(run, atoms, first, last, seed=0):
    """Append frames (and thermo rows) ``first`` to ``last - 1`` through RunDirectory."""
    from ase import units

    rng = np.random.default_rng([seed, first])
    masses = atoms.get_masses()
    sigma = np.sqrt(units.kB * TEMPERATURE_K / masses)[:, None]  # ASE velocity units
    n = len(atoms)
    for step in range(first, last):
        positions = atoms.positions + NOISE_A * rng.normal(size=(n, 3))
        velocities = sigma * rng.normal(size=(n, 3))
        forces = rng.normal(size=(n, 3))
        run.append_frame(step, step * DT_FS, positions, velocities, forces)
        kinetic = 0.5 * float(masses @ (velocities**2).sum(axis=1))
        potential = -1000.0 + 0.1 * rng.normal()
        run.append_thermo({"step": step, "time_fs": step * DT_FS, "potential_eV": potential,
                           "kinetic_eV": kinetic, "conserved_eV": potential + kinetic,
                           "temperature_K": TEMPERATURE_K})
    run.write_info({"config": {"model": "analytic", "symmetrize": "none", "engine": "ase",
                               "ensemble": "nve", "timestep_fs": DT_FS, "steps": last - 1, "stride": 1},
                    "status": "completed", "steps_done": last - 1})


def baseline_tree(commit, where) -> Path:
    """The ``mdsym`` package as of ``commit``, unpacked under ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "mdsym"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def measure(run_path, out, source=None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", CHILD, str(source or ""), str(run_path), str(out)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"mdsym analyze failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["analysis"] = json.loads((Path(out) / "analysis.json").read_text())
    return measured


def relative_difference(a, b) -> float:
    """Largest relative difference between the numbers of two nested figures."""
    if isinstance(a, dict):
        return max([relative_difference(a[k], b[k]) for k in a if k in b] or [0.0])
    if isinstance(a, list):
        return max([relative_difference(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float)):
        if not (np.isfinite(a) and np.isfinite(b)):
            return 0.0 if (np.isnan(a) and np.isnan(b)) or a == b else float("inf")
        return abs(a - b) / max(abs(a), abs(b), 1e-300) if a != b else 0.0
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--baseline-frames", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each version at the baseline size")
    parser.add_argument("--baseline", default=BASELINE, help="git commit of the in-memory analysis")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where to write the trajectory")
    args = parser.parse_args()
    from mdsym.md.rundir import RunDirectory

    atoms = synthetic_structure()
    n = len(atoms)
    notes = []
    free = shutil.disk_usage(args.tmp).free
    needed = lambda frames: frames * (FRAME_BYTES_PER_ATOM * n + 200) * 1.1 + 2e8  # noqa: E731
    frames = args.frames
    if needed(frames) > 0.5 * free:  # leave the machine half of what it had
        frames = int((0.5 * free - 2e8) / ((FRAME_BYTES_PER_ATOM * n + 200) * 1.1)) // 1000 * 1000
        notes.append(f"{args.tmp} has {free / 1e9:.1f} GB free: {frames} frames instead of {args.frames}")
        print(notes[-1], flush=True)
    base_frames = min(args.baseline_frames, frames)

    sizes = sorted({max(1, base_frames // 5), base_frames})
    results = {"atoms": n, "frames": frames, "baseline_frames": sizes, "baseline": args.baseline,
               "notes": notes, "python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="mdsym-bench-analysis-") as tmp:
        tmp = Path(tmp)
        old = baseline_tree(args.baseline, tmp / "baseline")
        run = RunDirectory(tmp / "run")
        run.create(atoms)
        written, side = 0, {}
        for size in sizes:
            start = time.perf_counter()
            extend_run(run, atoms, written, size)
            print(f"wrote frames {written} to {size} of {n} atoms ({run.trajectory.stat().st_size / 1e9:.2f} GB) "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)
            written = size
            side[size] = {"baseline": [], "streaming": []}
            for r in range(args.rounds):
                for name, source in (("baseline", old), ("streaming", None)):
                    m = measure(run.path, tmp / f"out-{name}-{size}-{r}", source)
                    if name == "baseline" and not m["package"].startswith(str(old)):
                        raise RuntimeError(f"the baseline imported {m['package']}, not {old}")
                    side[size][name].append(m)
                    print(f"  {size} frames, {name:9s}: {m['analyze_s']:.1f} s, peak {m['peak_kb'] * 1024 / 1e9:.2f} GB",
                          flush=True)
        seconds = {size: {k: statistics.median(m["analyze_s"] for m in v) for k, v in runs.items()}
                   for size, runs in side.items()}
        peak = {size: {k: max(m["peak_kb"] for m in v) * 1024 / 1e9 for k, v in runs.items()}
                for size, runs in side.items()}
        first, last = sizes[0], sizes[-1]
        # per frame: the growth of the time with the frames, which leaves out what does
        # not grow with them (imports, the structure's 200 frames, the plots)
        marginal = {k: (seconds[last][k] - seconds[first][k]) / (last - first) if last > first else float("nan")
                    for k in ("baseline", "streaming")}
        a, b = side[last]["baseline"][0]["analysis"], side[last]["streaming"][0]["analysis"]
        results["side_by_side"] = {
            "analyze_s": seconds, "peak_GB": peak,
            "us_per_frame_marginal": {k: 1e6 * v for k, v in marginal.items()},
            "time_per_frame_ratio_streaming_over_baseline": marginal["streaming"] / marginal["baseline"],
            "total_time_ratio_at_largest": seconds[last]["streaming"] / seconds[last]["baseline"],
            "max_relative_difference": {key: relative_difference(a.get(key), b.get(key))
                                        for key in ("drift", "angular_momentum", "structure")},
            "equipartition_molecules": {"baseline": a["equipartition"].get("molecules"),
                                        "streaming": b["equipartition"].get("molecules")},
            "equipartition": {"baseline": a["equipartition"], "streaming": b["equipartition"]},
        }

        if frames > written:
            start = time.perf_counter()
            extend_run(run, atoms, written, frames)
            size = run.trajectory.stat().st_size
            print(f"extended to {frames} frames ({size / 1e9:.2f} GB) in {time.perf_counter() - start:.0f} s",
                  flush=True)
            m = measure(run.path, tmp / "out-long", None)
            results["long"] = {
                "frames": frames, "trajectory_GB": size / 1e9, "analyze_s": m["analyze_s"],
                "us_per_frame_marginal": 1e6 * (m["analyze_s"] - seconds[last]["streaming"]) / (frames - last),
                "peak_GB": m["peak_kb"] * 1024 / 1e9, "in_memory_arrays_GB": 72 * n * frames / 1e9,
                "analysis_frames": m["analysis"]["frames"]}
            results["long"]["target_peak_below_1GB"] = results["long"]["peak_GB"] < TARGET_PEAK_GB
            print(f"  {frames} frames, streaming: {m['analyze_s']:.0f} s, peak {results['long']['peak_GB']:.2f} GB",
                  flush=True)
    s = results["side_by_side"]
    print(f"time per frame (growth {sizes[0]} -> {sizes[-1]} frames), streaming / baseline: "
          f"{s['time_per_frame_ratio_streaming_over_baseline']:.2f} "
          f"({s['us_per_frame_marginal']['streaming']:.0f} / {s['us_per_frame_marginal']['baseline']:.0f} us); "
          f"total at {sizes[-1]}: {s['total_time_ratio_at_largest']:.2f}; peaks {peak[last]['baseline']:.2f} GB / "
          f"{peak[last]['streaming']:.2f} GB")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "analysis_memory.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out / 'analysis_memory.json'}")


if __name__ == "__main__":
    main()
