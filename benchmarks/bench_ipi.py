"""i-PI benchmarks: the cost of the socket path, and in-driver vs i-PI rotational averaging.

    python benchmarks/bench_ipi.py [--structure cu-fcc-108] [--steps 500] [--sym-steps 60]

1. ms/step, ~100 atoms, analytic model, NVE, no outputs:
   - ASE ``VelocityVerlet`` + ``MdsymCalculator`` in-process;
   - i-PI + one ``mdsym serve`` over a unix socket;
   - i-PI + the PES plugin inside i-PI (``<ffdirect>``, no socket): i-PI's own cost.
   i-PI runs are timed by i-PI itself: at verbosity ``high`` it logs the wall time
   of every MD step (force requests, integration, outputs); the figure is the
   median over the steps after the first two, best of ``repeats`` runs. The wall
   time of a whole i-PI run is no use here: i-PI's start and exit go in steps of
   one second (measured: runs of 20, 120 and 220 steps took 1.72, 2.72 and 3.72 s
   and 1.72, 3.73 and 5.73 s), which is larger than the step costs compared.
   ASE runs are timed in-process as the slope between a short and a long run.
2. Symmetrized, same quadrature (i-PI's Lebedev grid of order 3 with inversion,
   36 elements, exact to degree 2): ASE in-process on that grid; one
   ``mdsym serve --quadrature`` averaging in-driver, batched; one
   ``mdsym serve --symmetrize o3:2`` (mdsym's cheapest quadrature of the same
   degree); i-PI's ``<ffrotations>`` sending one request per rotation to one raw
   ``mdsym serve``.

3. Scale-out (``--drivers``): path-integral MD (``beads`` beads, NVT, shipped
   ``pet-ethanol`` on ethanol if shipped, else the analytic model on the Cu
   cluster) with 1 and with 2 ``mdsym serve`` clients; i-PI spreads the beads over
   the clients. The same i-PI per-step medians, runs of 1 and 2 clients
   interleaved, best of ``repeats``.

``measure()`` returns every figure as a dict (``benchmarks/run_all.py`` calls it).
Every process is pinned to one torch/OpenMP thread (2 shared cores here). Results
go to ``benchmarks/results/ipi.json`` and a markdown table on stdout.
"""

import argparse
import json
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from mdsym.core.defaults import structure_path
from mdsym.md.ipi_engine import input as ipi_input  # noqa: E402
from mdsym.md.ipi_engine.rotation_grid import ipi_rotation_grid  # noqa: E402
from mdsym.md.ipi_engine.segment_input import initial_velocities  # noqa: E402
from mdsym.md.ipi_engine.supervisor import run_input  # noqa: E402
from mdsym.md.processes import mdsym_command  # noqa: E402

SERVE = [*mdsym_command(), "serve", "--quiet"]
PES = ROOT / "drivers" / "mdsym_pes.py"


STEP_TIME = re.compile(r"t/step:\s*([0-9.eE+-]+)")


def ipi_ms_per_step(workdir: Path, xml: str, clients, skip: int = 2) -> float:
    """Median ms per MD step as i-PI logs it (``verbosity='high'``), over the steps
    after the first ``skip``; clients are started first and left waiting (mdsym's
    supervisor starts and stops every process)."""
    # the settling time lets the clients import torch and start polling
    finished = run_input(workdir, xml, clients, timeout=600, settle=4.0 if clients else 0.0)
    if finished.returncode != 0:
        raise RuntimeError(finished.log[-2000:])
    return median_step_ms(finished.log, skip)


def md_input(atoms, forcefield, steps) -> str:
    """i-PI NVE input without trajectories, logging its per-step times."""
    outputs = ipi_input.Outputs(frames=False, checkpoint_stride=10**6, verbosity="high")
    return ipi_input.to_text(ipi_input.simulation(atoms, atoms.get_velocities(), forcefield, steps,
                                                  ipi_input.Dynamics(timestep_fs=1.0), outputs))


def median_step_ms(log: str, skip: int = 2) -> float:
    """Median of the per-step wall times an i-PI log holds, in ms, first ``skip`` dropped."""
    steps = [float(x) for x in STEP_TIME.findall(log)][skip:]
    if not steps:
        raise RuntimeError("no per-step timings in the i-PI log (verbosity='high'?)")
    return 1000.0 * statistics.median(steps)


def per_step(run, short: int, long: int, repeats: int = 2) -> float:
    """ms/step of an in-process run as the slope between a short and a long run
    (best of ``repeats``): start-up cancels out."""
    t_short = min(run(short) for _ in range(repeats))
    t_long = min(run(long) for _ in range(repeats))
    return 1000.0 * (t_long - t_short) / (long - short)


def pimd_drivers(scratch: Path, beads=4, steps=60, repeats=1, log=print) -> dict:
    """ms/step of path-integral MD with 1 and 2 clients (part 3 of the docstring)."""
    from mdsym.models import shipped

    structure, model = ("ethanol", "pet-ethanol") if "pet-ethanol" in shipped.names() \
        else ("cu-cluster-55", "analytic")
    atoms = ase.io.read(structure_path(structure))
    atoms.set_velocities(initial_velocities(atoms, 300.0, 1))
    path = scratch / f"{structure}.xyz"
    ase.io.write(path, atoms)
    dynamics = ipi_input.Dynamics(ensemble="nvt", beads=beads, timestep_fs=0.5)
    outputs = ipi_input.Outputs(frames=False, checkpoint_stride=10**6, verbosity="high")
    times = {1: [], 2: []}
    for _ in range(repeats):
        for drivers in (1, 2):
            name = f"mdsym-bench-{secrets.token_hex(4)}"
            xml = ipi_input.to_text(ipi_input.simulation(
                atoms, atoms.get_velocities(), ipi_input.socket("mdsym", "unix", name), steps,
                dynamics, outputs))
            serve = SERVE + ["--model", model, "--structure", str(path), "--unix", name,
                             "--wait", "60"]
            times[drivers].append(ipi_ms_per_step(
                scratch / f"pimd-{drivers}-{secrets.token_hex(2)}", xml, [serve] * drivers))
    one, two = min(times[1]), min(times[2])
    log(f"PIMD {beads} beads, {model}: 1 driver {one:.2f} ms/step, 2 drivers {two:.2f} ms/step")
    return {"pimd": {"structure": structure, "model": model, "beads": beads, "steps": steps,
                     "one_driver_ms_per_step": one, "two_drivers_ms_per_step": two,
                     "two_drivers_speedup": one / two}}


def measure(structure="cu-fcc-108", model="analytic", steps=500, sym_steps=60, grid_order=3,
            repeats=2, ffdirect=True, log=print) -> dict:
    """All the figures of this benchmark as a dict (ms/step and their ratios).

    ASE runs: slopes between ``steps // 10`` and ``steps`` steps (symmetrized:
    ``max(2, sym_steps // 6)`` and ``sym_steps``), best of ``repeats``. i-PI runs:
    ``steps`` (``sym_steps``) steps, the median of i-PI's own per-step times, best of
    ``repeats``. Symmetrized runs average over i-PI's Lebedev grid of ``grid_order``
    with inversion: ASE in-process and ``mdsym serve --quadrature`` on that grid,
    ``mdsym serve --symmetrize o3:D`` (mdsym's cheapest quadrature of the grid's
    exactness degree D, measured), and ``<ffrotations>`` + one raw ``mdsym serve``.
    """
    import torch
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mdsym.models import load_model
    from mdsym.serving.ase_calculator import MdsymCalculator

    torch.set_num_threads(1)
    path = structure_path(structure)
    atoms = ase.io.read(path)
    atoms.set_velocities(initial_velocities(atoms, 300.0, 1))
    natoms = len(atoms)
    scratch = Path(tempfile.mkdtemp(prefix="mdsym-bench-ipi-"))
    ase.io.write(scratch / "structure.xyz", atoms)
    structure_file = str(scratch / "structure.xyz")
    results = {"structure": str(structure), "natoms": natoms, "model": model,
               "python": platform.python_version(), "cpus": os.cpu_count(),
               "threads": 1, "method": f"i-PI: median of i-PI's per-step times; ASE: slope between a "
                                         f"short and a long run; best of {repeats}"}
    grid = ipi_rotation_grid("lebedev", grid_order, inversion=True)
    np.savez(scratch / "grid.npz", rotations=grid.rotations, weights=grid.weights)
    from mdsym.symmetry.quadrature import exactness_degree

    grid_degree = exactness_degree(grid.rotations, grid.weights, True, up_to=grid_order + 2)
    results["quadrature"] = {"name": grid.name, "size": len(grid), "degree": grid_degree}

    # 1a. ASE in-process (raw, and averaged over the same grid as i-PI's)
    def ase_run(steps, quadrature=None):
        a = atoms.copy()
        a.calc = MdsymCalculator(load_model(model), batch_size=len(grid))
        if quadrature is not None:
            a.calc.symmetrizer.quadrature = quadrature  # spec none: this grid every call
        dynamics = VelocityVerlet(a, 1.0 * units.fs)
        a.get_potential_energy()
        start = time.perf_counter()
        dynamics.run(steps)
        return time.perf_counter() - start

    short, long = steps // 10, steps
    s_short, s_long = max(2, sym_steps // 6), sym_steps
    results["ase_ms_per_step"] = per_step(ase_run, short, long, repeats)
    log(f"ASE in-process: {results['ase_ms_per_step']:.3f} ms/step")
    results["ase_sym_ms_per_step"] = per_step(lambda n: ase_run(n, grid), s_short, s_long, repeats)
    log(f"ASE in-process, symmetrized ({len(grid)}): {results['ase_sym_ms_per_step']:.2f} ms/step")

    def plain_xml(steps):
        name = f"mdsym-bench-{secrets.token_hex(4)}"
        block = ipi_input.socket("mdsym", "unix", name, pbc=bool(atoms.pbc.all()))
        return name, md_input(atoms, block, steps)

    # 1b. i-PI + mdsym serve over a unix socket
    def socket_run(steps, extra=(), tag="socket"):
        name, xml = plain_xml(steps)
        return ipi_ms_per_step(scratch / f"{tag}-{steps}-{secrets.token_hex(2)}", xml,
                         [SERVE + ["--model", model, "--structure", structure_file,
                                   "--unix", name, "--wait", "60", *extra]])

    def best(run, steps):
        return min(run(steps) for _ in range(repeats))

    results["ipi_socket_ms_per_step"] = best(socket_run, long)
    log(f"i-PI + mdsym serve (unix): {results['ipi_socket_ms_per_step']:.3f} ms/step")

    # 1c. i-PI + the PES plugin in-process (ffdirect): i-PI's own per-step cost
    def direct_run(steps):
        block = ipi_input.direct("mdsym", PES, {"template": structure_file, "model": model},
                                 pbc=bool(atoms.pbc.all()))
        xml = md_input(atoms, block, steps)
        return ipi_ms_per_step(scratch / f"direct-{steps}-{secrets.token_hex(2)}", xml, [])

    if ffdirect:
        results["ipi_ffdirect_ms_per_step"] = best(direct_run, long)
        log(f"i-PI + ffdirect: {results['ipi_ffdirect_ms_per_step']:.3f} ms/step")

    # 2. symmetrized: in-driver batched averaging vs <ffrotations>, same grid
    def in_driver_run(steps):
        return socket_run(steps, ["--quadrature", str(scratch / "grid.npz"),
                                  "--batch-size", str(len(grid))], "indriver")

    def cheapest_run(steps):
        return socket_run(steps, ["--symmetrize", f"o3:{grid_degree}",
                                  "--batch-size", str(len(grid))], "cheapest")

    def ffrotations_run(steps):
        name = f"mdsym-bench-{secrets.token_hex(4)}"
        inner = ipi_input.socket("mdsym", "unix", name, pbc=bool(atoms.pbc.all()))
        block = ipi_input.rotations("mdsym", inner, grid_mode="lebedev", grid_order=grid_order,
                                    inversion=True)
        xml = md_input(atoms, block, steps)
        return ipi_ms_per_step(scratch / f"ffrot-{steps}-{secrets.token_hex(2)}", xml,
                         [SERVE + ["--model", model, "--structure", structure_file,
                                   "--unix", name, "--wait", "60"]])

    results["in_driver_ms_per_step"] = best(in_driver_run, s_long)
    log(f"in-driver averaging: {results['in_driver_ms_per_step']:.2f} ms/step")
    results["cheapest_ms_per_step"] = best(cheapest_run, s_long)
    log(f"in-driver averaging, o3:{grid_degree}: {results['cheapest_ms_per_step']:.2f} ms/step")
    results["ffrotations_ms_per_step"] = best(ffrotations_run, s_long)
    log(f"<ffrotations>: {results['ffrotations_ms_per_step']:.2f} ms/step")

    from mdsym.symmetry import quadrature as quad

    results["cheapest_size"] = len(quad.cheapest(grid_degree, True))
    results["socket_extra_ms_vs_ase"] = results["ipi_socket_ms_per_step"] - results["ase_ms_per_step"]
    if ffdirect:
        results["socket_extra_ms_vs_ffdirect"] = (results["ipi_socket_ms_per_step"]
                                                  - results["ipi_ffdirect_ms_per_step"])
    results["socket_ratio_vs_ase"] = results["ipi_socket_ms_per_step"] / results["ase_ms_per_step"]
    results["in_driver_speedup"] = results["ffrotations_ms_per_step"] / results["in_driver_ms_per_step"]
    results["cheapest_speedup"] = results["ffrotations_ms_per_step"] / results["cheapest_ms_per_step"]
    results["ffrotations_per_rotation_cost"] = (results["ffrotations_ms_per_step"]
                                                / (len(grid) * results["ipi_socket_ms_per_step"]))
    results["in_driver_per_rotation_cost"] = (results["in_driver_ms_per_step"]
                                              / (len(grid) * results["ipi_socket_ms_per_step"]))
    results["steps"] = {"plain": [short, long], "symmetrized": [s_short, s_long]}
    results.update(pimd_drivers(scratch, repeats=repeats, log=log))
    return results


def markdown(r) -> str:
    lines = [f"{r['natoms']} atoms ({r['structure']}), model {r['model']}, 1 thread per process", "",
             "| path | ms/step | steps/s | vs ASE |", "|---|---:|---:|---:|"]
    for key, label in [("ase_ms_per_step", "ASE VelocityVerlet in-process, raw"),
                       ("ipi_ffdirect_ms_per_step", "i-PI + PES plugin (<ffdirect>), raw"),
                       ("ipi_socket_ms_per_step", "i-PI + mdsym serve (unix socket), raw")]:
        if key in r:
            lines.append(f"| {label} | {r[key]:.3f} | {1000 / r[key]:.0f} | {r[key] / r['ase_ms_per_step']:.2f}x |")
    q = r["quadrature"]
    lines += ["", f"symmetrized, {q['name']} ({q['size']} elements, exact to degree {q['degree']}):", "",
              "| path | ms/step | steps/s | <ffrotations> time / this |", "|---|---:|---:|---:|"]
    for key, label in [("ase_sym_ms_per_step", "ASE in-process, same grid"),
                       ("in_driver_ms_per_step", "one mdsym serve --quadrature (same grid), batched"),
                       ("cheapest_ms_per_step",
                        f"one mdsym serve --symmetrize o3:{q['degree']} ({r['cheapest_size']} elements)"),
                       ("ffrotations_ms_per_step", "i-PI <ffrotations> + one raw mdsym serve")]:
        lines.append(f"| {label} | {r[key]:.2f} | {1000 / r[key]:.1f} "
                     f"| {r['ffrotations_ms_per_step'] / r[key]:.1f}x |")
    extra = (f", {r['socket_extra_ms_vs_ffdirect']:+.3f} ms/step vs i-PI in-process (<ffdirect>)"
             if "socket_extra_ms_vs_ffdirect" in r else "")
    lines += ["", f"socket path: {r['socket_extra_ms_vs_ase']:+.3f} ms/step vs ASE in-process "
                  f"({r['socket_ratio_vs_ase']:.2f}x){extra}",
              f"per-rotation cost (symmetrized step / (G x raw socket step)): <ffrotations> "
              f"{r['ffrotations_per_rotation_cost']:.3f}, mdsym serve {r['in_driver_per_rotation_cost']:.3f}",
              f"in-driver speed-up over <ffrotations>, same grid: {r['in_driver_speedup']:.1f}x (target >= 5x)"]
    if "pimd" in r:
        lines += ["", pimd_markdown(r["pimd"])]
    return "\n".join(lines)


def pimd_markdown(pimd) -> str:
    return (f"path-integral MD, {pimd['beads']} beads, {pimd['model']} on {pimd['structure']}: "
            f"1 driver {pimd['one_driver_ms_per_step']:.2f} ms/step, 2 drivers "
            f"{pimd['two_drivers_ms_per_step']:.2f} ms/step: {pimd['two_drivers_speedup']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="cu-fcc-108")
    parser.add_argument("--model", default="analytic")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--sym-steps", type=int, default=60)
    parser.add_argument("--grid-order", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ipi.json"))
    parser.add_argument("--only-drivers", action="store_true",
                        help="Part 3 only: path-integral MD with 1 and 2 drivers.")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.only_drivers:
        pimd = pimd_drivers(Path(tempfile.mkdtemp(prefix="mdsym-bench-ipi-")), steps=args.steps,
                            repeats=args.repeats, log=lambda m: print(m, flush=True))
        print(pimd_markdown(pimd["pimd"]))
        return
    results = measure(args.structure, args.model, args.steps, args.sym_steps, args.grid_order,
                      repeats=args.repeats, log=lambda m: print(m, flush=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print()
    print(markdown(results))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
