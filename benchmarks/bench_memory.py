"""Peak memory of a symmetrized evaluation vs a raw one, against the batch size.

Each configuration runs in a fresh subprocess (one torch thread). It builds the
model and the structure and makes one raw evaluation first, so that what torch and
the neighbour-list code initialise once per process (about 10 MiB, the bulk of a
first call at 1000 atoms) is not counted. Then, three times, it resets the RSS
high-water mark (``VmHWM`` of ``/proc/self/status``, through
``/proc/self/clear_refs``), runs ONE evaluation of the configuration (energy and
forces, plus stress when periodic, atoms moved slightly each time) and records the
growth of the high-water mark over the RSS just before; the median of the three is
the figure. Target: the symmetrized growth at batch size b is at most b x the raw
growth.

The children run with glibc's mmap threshold fixed at its default value
(``MALLOC_MMAP_THRESHOLD_=131072``). With the dynamic default, glibc raises the
threshold after the first large free, later blocks come from the heap and stay
resident after torch frees them, and an evaluation after the first then reads as
using less memory than it needs, even a negative amount (measured: -0.2 MiB for a
raw call at 1000 Cu atoms that needs 5.5). The cold first call is recorded too
(``cold_growth_kb``).

    python benchmarks/bench_memory.py [--atoms 1000] [--degree 5] [--batch-sizes 1 8 32 64]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _high_water_kb() -> int:
    """This process's RSS high-water mark (VmHWM). ``ru_maxrss`` is not used: Linux
    carries it over from the parent through fork + exec, so a child of a big
    process would report the parent's peak."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_high_water() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def child(model_spec: str, structure: str, n_atoms: int, symmetrize: str, batch_size: int,
          repeats: int = 3) -> dict:
    import gc
    import statistics
    import warnings

    warnings.filterwarnings("ignore")
    from common import copper_cluster, pin_threads, replicate

    pin_threads()
    import ase.io

    from mdsym import MdsymCalculator, load_model

    atoms = copper_cluster(n_atoms) if structure == "copper" else replicate(ase.io.read(structure), n_atoms)
    model = load_model(model_spec)
    calc = MdsymCalculator(model, symmetrize=symmetrize, batch_size=batch_size)

    def one_evaluation(calculator, shift) -> int:
        atoms.calc = calculator
        atoms.positions[0, 0] += shift
        gc.collect()
        _reset_high_water()
        before = _rss_kb()
        atoms.get_forces()
        return max(0, _high_water_kb() - before)

    cold = one_evaluation(MdsymCalculator(model), 0.0)  # warm-up: a raw call
    growths = [one_evaluation(calc, 1e-3) for _ in range(repeats)]
    return {"atoms": len(atoms), "symmetrize": symmetrize, "batch_size": batch_size,
            "high_water_reset": _reset_high_water(), "cold_growth_kb": cold,
            "growths_kb": growths, "growth_kb": statistics.median(growths),
            "rotations": len(calc.symmetrizer.quadrature)}


#: glibc's default mmap threshold, made static (see the module docstring)
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure_one(model_spec, structure, n_atoms, symmetrize, batch_size) -> dict:
    """One configuration in a fresh child process (see ``child``)."""
    code = ("import json, sys; sys.path.insert(0, %r); import bench_memory as b; "
            "print('RESULT' + json.dumps(b.child(%r, %r, %d, %r, %d)))"
            % (str(HERE), model_spec, structure, n_atoms, symmetrize, batch_size))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1", **FIXED_MMAP_THRESHOLD},
                         timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    raise RuntimeError(out.stderr[-2000:])


def run(model_spec="analytic", structure="copper", n_atoms=1000, degree=5,
        batch_sizes=(1, 8, 32, 64), label=None, log=print) -> dict:
    raw = measure_one(model_spec, structure, n_atoms, "none", 1)
    rows = []
    for b in batch_sizes:
        sym = measure_one(model_spec, structure, n_atoms, f"o3:{degree}", b)
        sym["growth_over_raw"] = sym["growth_kb"] / max(raw["growth_kb"], 1)
        sym["growth_over_batch_x_raw"] = sym["growth_kb"] / max(b * raw["growth_kb"], 1)
        rows.append(sym)
        log(f"  memory {label or model_spec} N={raw['atoms']} o3:{degree} batch {b}: "
            f"+{sym['growth_kb'] / 1024:.2f} MiB = {sym['growth_over_raw']:.2f}x raw "
            f"(+{raw['growth_kb'] / 1024:.2f} MiB), {sym['growth_over_batch_x_raw']:.2f} of batch x raw")
    return {"model": label or model_spec, "degree": degree, "raw": raw, "rows": rows}


def markdown(results) -> str:
    lines = ["| model | atoms | L (G) | raw growth MiB | batch | symmetrized growth MiB "
             "| / raw | / (batch x raw) |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for result in results:
        raw = result["raw"]
        for r in result["rows"]:
            lines.append(f"| {result['model']} | {raw['atoms']} | {result['degree']} ({r['rotations']}) "
                         f"| {raw['growth_kb'] / 1024:.2f} | {r['batch_size']} "
                         f"| {r['growth_kb'] / 1024:.2f} | {r['growth_over_raw']:.2f} "
                         f"| {r['growth_over_batch_x_raw']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="analytic")
    parser.add_argument("--structure", default="copper", help="'copper' (fcc cluster) or a file to replicate")
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--degree", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    result = run(args.model, args.structure, args.atoms, args.degree, args.batch_sizes)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "memory.json").write_text(json.dumps([result], indent=2))
    print(markdown([result]))


if __name__ == "__main__":
    main()
