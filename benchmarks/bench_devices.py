"""Steps per second of MdsymCalculator on every available device x dtype, side by side.

For each model (default: the shipped ``pet-ethanol``), each size (9 atoms: one
ethanol; ~100: ethanol copies on a grid, ``common.replicate``) and each
symmetrization (raw and ``o3:3``), one process times ``MdsymCalculator`` on every
combination of the devices this machine has (``cpu``, and ``cuda`` when
``torch.cuda.is_available()``) and the dtypes the model runs in (a metatomic float32
model: float32 and float64; the analytic model: float64 and float32), in
interleaved rounds (``common.interleaved``). A "step" is one energy + forces call at
new positions, what an MD step costs (fast steps are timed in runs of several,
``MIN_CALL_S``). Figures: steps/s (absolute: they depend on
the machine and its load) and the ratio to the reference, the CPU in the model's
own dtype, timed in the same rounds. Before timing, each combination's forces are
compared with the reference's (max |dF|): what the precision changes.

CPU timings use one torch thread (``common.pin_threads``), as the whole suite.

    python benchmarks/bench_devices.py [--models pet-ethanol analytic] [--sizes 9 100]
"""

import argparse
import json

import numpy as np
from common import RESULTS, environment, interleaved, pin_threads, replicate

SYMMETRIZE = ("none", "o3:3")


def available_devices() -> list:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def dtypes_of(spec) -> list:
    """The model's own dtype first (the reference), then the other one if it runs in it."""
    from mdsym import load_model
    from mdsym.core.errors import MdsymError
    from mdsym.models.devices import dtype_name

    own = dtype_name(load_model(spec, device="cpu").dtype)
    other = "float64" if own == "float32" else "float32"
    try:
        load_model(spec, device="cpu", dtype=other)
    except MdsymError:
        return [own]
    return [own, other]


def structure(n_atoms: int):
    import ase.io

    from mdsym.core.defaults import STRUCTURES

    return replicate(ase.io.read(STRUCTURES / "ethanol.xyz"), n_atoms)


#: shortest timed call: a few-millisecond call on a shared core is timed in or out of
#: another process's 10 ms time slice (measured: 1.8 to 10 ms for one 2 ms step), so
#: fast steps are timed in runs of several
MIN_CALL_S = 0.1


def stepper(calc, atoms, steps=1, seed=0):
    """``steps`` MD-like steps per call: move the atoms a little (so ASE's cache does
    not answer), then energy and forces."""
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    start = atoms.positions.copy()

    def run():
        for _ in range(steps):
            atoms.positions = start + rng.normal(scale=1e-3, size=start.shape)
            atoms.get_forces()

    return run


def steps_per_call(calc, atoms) -> int:
    """Steps per timed call so that one call lasts about MIN_CALL_S (from the fastest
    of three single steps, after three warm-up steps)."""
    import time

    one = stepper(calc, atoms, seed=1)
    for _ in range(3):
        one()
    fastest = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        one()
        fastest = min(fastest, time.perf_counter() - start)
    return max(1, int(np.ceil(MIN_CALL_S / fastest)))


def measure(spec, n_atoms, symmetrize, combinations, budget_s=10.0, repeats=5, log=print) -> list:
    from mdsym import MdsymCalculator, load_model

    atoms = structure(n_atoms)
    calcs = {c: MdsymCalculator(load_model(spec, device=c[0], dtype=c[1]), symmetrize=symmetrize)
             for c in combinations}
    reference = combinations[0]
    forces = {}
    for combination, calc in calcs.items():  # the same positions for every combination
        probe = atoms.copy()
        probe.calc = calc
        forces[combination] = probe.get_forces()
    steps = steps_per_call(calcs[reference], atoms)  # the same for every combination
    seconds = interleaved({c: stepper(calc, atoms, steps) for c, calc in calcs.items()},
                          repeats=repeats, budget_s=budget_s)
    seconds = {c: t / steps for c, t in seconds.items()}
    rows = []
    for combination in combinations:
        row = {"model": spec, "atoms": len(atoms), "symmetrize": symmetrize,
               "device": combination[0], "dtype": combination[1],
               "rotations": len(calcs[combination].symmetrizer.quadrature), "steps_per_call": steps,
               "steps_per_s": 1.0 / seconds[combination],
               "ratio_to_reference": seconds[reference] / seconds[combination],
               "max_force_difference_eVA": float(np.abs(forces[combination] - forces[reference]).max()),
               "reference": f"{reference[0]}/{reference[1]}"}
        rows.append(row)
        log(f"  {spec} N={row['atoms']} {symmetrize} {combination[0]}/{combination[1]}: "
            f"{row['steps_per_s']:.2f} steps/s, x{row['ratio_to_reference']:.2f}, "
            f"max|dF| {row['max_force_difference_eVA']:.1e}")
    return rows


def run(models=("pet-ethanol",), sizes=(9, 100), symmetrize=SYMMETRIZE, budget_s=10.0, log=print) -> dict:
    pin_threads()
    devices = available_devices()
    result = {"environment": environment(), "devices": devices, "rows": []}
    for spec in models:
        combinations = [(device, dtype) for device in devices for dtype in dtypes_of(spec)]
        for n_atoms in sizes:
            for spec_symmetrize in symmetrize:
                result["rows"].extend(measure(spec, n_atoms, spec_symmetrize, combinations,
                                              budget_s=budget_s, log=log))
    return result


def markdown(result) -> str:
    lines = ["| model | atoms | symmetrize | device | dtype | steps/s | vs reference "
             "| max abs dF vs reference (eV/A) |",
             "|---|---:|---|---|---|---:|---:|---:|"]
    for r in result["rows"]:
        is_reference = r["reference"] == f"{r['device']}/{r['dtype']}"
        ratio = "reference" if is_reference else f"{r['ratio_to_reference']:.2f}x"
        difference = "" if is_reference else f"{r['max_force_difference_eVA']:.1e}"
        lines.append(f"| {r['model']} | {r['atoms']} | {r['symmetrize']} | {r['device']} | {r['dtype']} "
                     f"| {r['steps_per_s']:.2f} | {ratio} | {difference} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pet-ethanol"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 100])
    parser.add_argument("--symmetrize", nargs="+", default=list(SYMMETRIZE))
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per timed callable")
    args = parser.parse_args()
    result = run(args.models, args.sizes, args.symmetrize, budget_s=args.budget)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "devices.json").write_text(json.dumps(result, indent=2, default=str))
    print(markdown(result))


if __name__ == "__main__":
    main()
