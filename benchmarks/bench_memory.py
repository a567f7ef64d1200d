"""Peak memory of a symmetrized evaluation vs a raw one, against the batch size.

Each configuration runs in a fresh subprocess (one torch thread) that builds the
model and the structure and first makes three calls of the configuration being
measured, unmeasured: what torch and the neighbour-list code initialise once per
process (about 10 MiB at 1000 atoms), and what TorchScript allocates while it
re-optimises a metatomic model over its first calls, are not counted. Then it
resets the RSS high-water mark (``VmHWM`` of ``/proc/self/status``, through
``/proc/self/clear_refs``), makes the measured calls (energy and forces, plus
stress when periodic; atoms moved slightly each call) and records the growth of
the high-water mark over the RSS just before.

- symmetrized, ``o3:L`` at batch size b: one call, i.e. G/b model calls of b copies;
  the median over three such measurements;
- raw: G consecutive calls, the same number of single-copy model calls as the
  symmetrized call makes at batch 1, so that both see the same run of allocations
  and frees; the median over three. One raw call alone is recorded too
  (``single_call_growth_kb``); once warm the two agree within about 2%.

Target: the symmetrized growth at batch size b is at most b x the raw growth.

The children run with glibc's mmap threshold fixed at one page
(``MALLOC_MMAP_THRESHOLD_=4096``): every block of a page or more is mapped when
allocated and unmapped when freed, so the RSS follows the memory actually in use.
With glibc's defaults (a 128 KiB threshold that rises after the first large free)
freed blocks stay resident and are reused unseen: a warm call then reads as using
less memory than it needs, even a negative amount (measured: -0.2 MiB for a raw
call at 1000 Cu atoms that needs 5.3), and the small blocks of a one-copy call
hide where the 8x larger blocks of an 8-copy call do not (PET, 99 atoms: batch 8
read as 1.11 x 8 raw calls with a 128 KiB threshold, 1.01 with one page).

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
          calls: int = 1, repeats: int = 3, warmup: int = 3) -> dict:
    """Peak RSS growth over ``calls`` consecutive calls of one configuration, after
    ``warmup`` unmeasured calls; the median over ``repeats`` measurements."""
    import gc
    import statistics
    import warnings

    warnings.filterwarnings("ignore")
    from common import copper_cluster, pin_threads, replicate

    pin_threads()
    import ase.io

    from mdsym import MdsymCalculator, load_model

    atoms = copper_cluster(n_atoms) if structure == "copper" else replicate(ase.io.read(structure), n_atoms)
    calc = MdsymCalculator(load_model(model_spec), symmetrize=symmetrize, batch_size=batch_size)
    atoms.calc = calc

    def call():
        atoms.positions[0, 0] += 1e-3
        atoms.get_forces()

    for _ in range(warmup):
        call()
    growths = []
    for _ in range(repeats):
        gc.collect()
        reset = _reset_high_water()
        before = _rss_kb()
        for _ in range(calls):
            call()
        growths.append(max(0, _high_water_kb() - before))
    return {"atoms": len(atoms), "symmetrize": symmetrize, "batch_size": batch_size,
            "calls": calls, "high_water_reset": reset, "growths_kb": growths,
            "growth_kb": statistics.median(growths), "rotations": len(calc.symmetrizer.quadrature)}


#: glibc's mmap threshold at one page (see the module docstring)
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "4096"}


def measure_one(model_spec, structure, n_atoms, symmetrize, batch_size, calls=1) -> dict:
    """One configuration in a fresh child process (see ``child``)."""
    code = ("import json, sys; sys.path.insert(0, %r); import bench_memory as b; "
            "print('RESULT' + json.dumps(b.child(%r, %r, %d, %r, %d, %d)))"
            % (str(HERE), model_spec, structure, n_atoms, symmetrize, batch_size, calls))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1", **FIXED_MMAP_THRESHOLD},
                         timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    raise RuntimeError(out.stderr[-2000:])


def run(model_spec="analytic", structure="copper", n_atoms=1000, degree=5,
        batch_sizes=(1, 8, 32, 64), label=None, log=print) -> dict:
    from mdsym.symmetry.quadrature import cheapest

    rotations = len(cheapest(degree, inversion=True))
    raw = measure_one(model_spec, structure, n_atoms, "none", 1, calls=rotations)
    raw["single_call_growth_kb"] = measure_one(model_spec, structure, n_atoms, "none", 1)["growth_kb"]
    rows = []
    for b in batch_sizes:
        sym = measure_one(model_spec, structure, n_atoms, f"o3:{degree}", b)
        sym["growth_over_raw"] = sym["growth_kb"] / max(raw["growth_kb"], 1)
        sym["growth_over_batch_x_raw"] = sym["growth_kb"] / max(b * raw["growth_kb"], 1)
        rows.append(sym)
        log(f"  memory {label or model_spec} N={raw['atoms']} o3:{degree} batch {b}: "
            f"+{sym['growth_kb'] / 1024:.2f} MiB = {sym['growth_over_raw']:.2f}x raw "
            f"(+{raw['growth_kb'] / 1024:.2f} MiB over {rotations} raw calls, "
            f"{raw['single_call_growth_kb'] / 1024:.2f} for one), "
            f"{sym['growth_over_batch_x_raw']:.2f} of batch x raw")
    return {"model": label or model_spec, "degree": degree, "raw": raw, "rows": rows}


def markdown(results) -> str:
    lines = ["| model | atoms | L (G) | raw growth MiB (G calls) | batch | symmetrized growth MiB "
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
