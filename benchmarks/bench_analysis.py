"""Speed of mdsym.analysis: drift, L and equipartition over 10^4 frames of 100 atoms,
and the equivariance error along a trajectory (frames/s).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_analysis.py [--frames 10000]

Writes benchmarks/results/analysis.json. The synthetic trajectory is written with
MDAnalysis' TRR writer in the run directory format (mdsym.md.rundir).
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import ase
import numpy as np

from mdsym.md.rundir import RunDirectory
from mdsym.md.thermo import FORCE_TO_KJ_MOL_A, THERMO_COLUMNS


def synthetic_run(path, n_frames, n_atoms, seed=0):
    import MDAnalysis as mda
    from MDAnalysis.coordinates.TRR import TRRWriter

    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_atoms ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_atoms]
    atoms = ase.Atoms("Cu" * n_atoms, positions=2.55 * grid.astype(float))
    run = RunDirectory(path)
    run.create(atoms)
    universe = mda.Universe(str(run.structure))
    with TRRWriter(str(run.trajectory), n_atoms) as writer:
        ts = universe.trajectory.ts
        for k in range(n_frames):
            ts.positions = atoms.positions + 0.05 * rng.normal(size=(n_atoms, 3))
            ts.velocities = 5.0 * rng.normal(size=(n_atoms, 3))
            ts.forces = FORCE_TO_KJ_MOL_A * rng.normal(size=(n_atoms, 3))
            ts.data["step"] = k
            ts.time = 0.002 * k
            ts.dimensions = None
            writer.write(universe)
    time_fs = 2.0 * np.arange(n_frames)
    with open(run.thermo, "a") as handle:
        for k in range(n_frames):
            row = {c: 0.0 for c in THERMO_COLUMNS}
            row.update(step=k, time_fs=time_fs[k], conserved_eV=-1.0 + 1e-6 * k + 1e-4 * rng.normal(),
                       kinetic_eV=3.0 + 0.1 * rng.normal())
            handle.write(",".join(repr(float(row[c])) for c in THERMO_COLUMNS) + "\n")
    run.write_info({"config": {"model": "analytic", "symmetrize": "none"}, "status": "completed"})
    return run


def bench_frames(path, n_frames):
    from mdsym.analysis.angular_momentum import summarize as am_summary
    from mdsym.analysis.drift import energy_drift
    from mdsym.analysis.equipartition import kinetic_temperatures
    from mdsym.analysis.trajectory import load_run
    from mdsym.core.molecules import molecules

    timings = {}
    start = time.perf_counter()
    run = load_run(path)
    timings["read_s"] = time.perf_counter() - start
    t = time.perf_counter()
    energy_drift(run.thermo["time_fs"] / 1000, run.thermo["conserved_eV"], run.thermo["kinetic_eV"], run.n_atoms)
    timings["drift_s"] = time.perf_counter() - t
    t = time.perf_counter()
    am_summary(run.time_ps, run.positions, run.velocities, run.forces, run.masses, False)
    timings["angular_momentum_s"] = time.perf_counter() - t
    t = time.perf_counter()
    kinetic_temperatures(run.positions, run.velocities, run.masses, run.numbers, molecules(run.atoms))
    timings["equipartition_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start
    assert run.n_frames == n_frames
    return timings


def bench_equivariance(n_frames=20, degree=2):
    import ase.io
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mdsym import MdsymCalculator, load_model
    from mdsym.analysis.equivariance_series import EquivarianceSeries
    from mdsym.analysis.trajectory import load_run
    from mdsym.symmetry.metrics import metrics_quadrature

    structure = Path(__file__).resolve().parent.parent / "mdsym" / "data" / "structures" / "cu-cluster-55.xyz"
    model = load_model("analytic:vector1=0.05")
    with tempfile.TemporaryDirectory() as tmp:
        atoms = ase.io.read(structure)
        atoms.calc = MdsymCalculator(model)
        run = RunDirectory(Path(tmp) / "run")
        run.create(atoms)
        dyn = VelocityVerlet(atoms, 2 * units.fs)
        for k in range(n_frames):
            if k:
                dyn.run(1)
            run.append_frame(k, 2.0 * k, atoms.positions, atoms.get_velocities(), atoms.get_forces())
        run.write_info({"config": {}, "status": "completed"})
        data = load_run(run.path)
        analysis = EquivarianceSeries(data.universe, data.atoms, model, max_degree=degree)
        start = time.perf_counter()
        analysis.run()
        elapsed = time.perf_counter() - start
    size = len(metrics_quadrature(degree))
    return {"frames": n_frames, "atoms": 55, "rotations_per_frame": size, "seconds": elapsed,
            "frames_per_s": n_frames / elapsed, "model_evaluations_per_s": n_frames * size / elapsed}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--atoms", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        synthetic_run(Path(tmp) / "run", args.frames, args.atoms)
        written = time.perf_counter() - t
        timings = bench_frames(Path(tmp) / "run", args.frames)
    print(f"synthetic trajectory ({args.frames} frames x {args.atoms} atoms) written in {written:.1f} s")
    for key, value in timings.items():
        print(f"  {key:22s} {value:8.3f} s")
    print(f"  drift + L + equipartition: {args.frames / timings['total_s']:.0f} frames/s "
          f"({timings['total_s']:.2f} s for {args.frames} frames, reading included; target < 10 s)")
    eq = bench_equivariance()
    print(f"equivariance along a trajectory: {eq['frames_per_s']:.2f} frames/s "
          f"({eq['rotations_per_frame']} rotations per frame batched, 55 atoms, analytic model; "
          f"{eq['model_evaluations_per_s']:.0f} rotated evaluations/s)")
    results = {
        "frames": args.frames, "atoms": args.atoms, "timings_s": timings,
        "frames_per_s": args.frames / timings["total_s"], "equivariance": eq,
        "cpu_affinity": len(os.sched_getaffinity(0)), "threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'analysis.json'}")


if __name__ == "__main__":
    main()
