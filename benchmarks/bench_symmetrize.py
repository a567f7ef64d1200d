"""Symmetrized vs raw evaluation, mdsym vs metatomic-ase's SymmetrizedCalculator.

Everything is measured side by side in one process on the same structure (the
108-atom periodic copper cell shipped with mdsym) and reported as ratios, so that
machine noise cancels:

- per-rotation cost: time of one symmetrized evaluation / (rotations x one raw
  evaluation), for mdsym and for SymmetrizedCalculator;
- total time of SymmetrizedCalculator / mdsym at equal exactness degree L, with the
  same model: mdsym's analytic model exported as a metatomic .pt file and run by
  both tools (and by mdsym's native adapter too).

Usage: python benchmarks/bench_symmetrize.py [--degrees 1 3 5] [--repeats 5]
Writes benchmarks/results/symmetrize.json and prints a markdown table.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ase.io
from ase.calculators.calculator import all_changes

from mdsym import MdsymCalculator, load_model
from mdsym.cli import STRUCTURES
from mdsym.models import parse_analytic
from mdsym.models.export import export_metatomic

RESULTS = Path(__file__).parent / "results"
PROPERTIES = ["energy", "forces", "stress"]


def seconds_per_call(calculator, atoms, repeats):
    """Median wall time of a full energy+forces+stress evaluation (no caching)."""
    calculator.calculate(atoms, PROPERTIES, all_changes)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        calculator.calculate(atoms, PROPERTIES, all_changes)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--structure", default=str(STRUCTURES / "cu-fcc-108.xyz"))
    args = parser.parse_args()

    atoms = ase.io.read(args.structure)
    model_file = Path(tempfile.mkdtemp()) / "analytic.pt"
    export_metatomic(parse_analytic("analytic"), model_file, sorted(set(atoms.numbers)))
    native = load_model("analytic")
    adapted = load_model(str(model_file))

    raw = {
        "mdsym-native": seconds_per_call(MdsymCalculator(native), atoms, args.repeats * 4),
        "mdsym-metatomic": seconds_per_call(MdsymCalculator(adapted), atoms, args.repeats * 4),
        "metatomic-ase": seconds_per_call(MetatomicCalculator(str(model_file)), atoms, args.repeats * 4),
    }
    rows = []
    for degree in args.degrees:
        ours = {
            "mdsym-native": MdsymCalculator(native, symmetrize=f"o3:{degree}"),
            "mdsym-metatomic": MdsymCalculator(adapted, symmetrize=f"o3:{degree}"),
        }
        theirs = SymmetrizedCalculator(MetatomicCalculator(str(model_file)), l_max=degree)
        n_ours = len(ours["mdsym-native"].symmetrizer.quadrature)
        n_theirs = len(theirs.quadrature_rotations)
        t = {name: seconds_per_call(calc, atoms, args.repeats) for name, calc in ours.items()}
        t["metatomic-ase"] = seconds_per_call(theirs, atoms, max(1, args.repeats // 2))
        rows.append({
            "degree": degree,
            "rotations": {"mdsym": n_ours, "SymmetrizedCalculator": n_theirs},
            "seconds": t,
            "per_rotation_cost": {
                "mdsym-native": t["mdsym-native"] / (n_ours * raw["mdsym-native"]),
                "mdsym-metatomic": t["mdsym-metatomic"] / (n_ours * raw["mdsym-metatomic"]),
                "SymmetrizedCalculator": t["metatomic-ase"] / (n_theirs * raw["metatomic-ase"]),
            },
            "speedup_vs_SymmetrizedCalculator": {
                "mdsym-native": t["metatomic-ase"] / t["mdsym-native"],
                "mdsym-metatomic": t["metatomic-ase"] / t["mdsym-metatomic"],
            },
        })

    report = {"structure": args.structure, "atoms": len(atoms), "raw_seconds": raw, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "symmetrize.json").write_text(json.dumps(report, indent=2))

    print(f"raw evaluation, {len(atoms)} atoms (energy, forces, stress): "
          + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in raw.items()))
    print()
    print("| L (O(3)) | rotations mdsym / SymCalc | per-rotation cost: mdsym native / mdsym on .pt / SymCalc "
          "| SymCalc time / mdsym time: native / on .pt |")
    print("|---|---|---|---|")
    for r in rows:
        p, s = r["per_rotation_cost"], r["speedup_vs_SymmetrizedCalculator"]
        print(f"| {r['degree']} | {r['rotations']['mdsym']} / {r['rotations']['SymmetrizedCalculator']} "
              f"| {p['mdsym-native']:.3f} / {p['mdsym-metatomic']:.3f} / {p['SymmetrizedCalculator']:.3f} "
              f"| {s['mdsym-native']:.1f}x / {s['mdsym-metatomic']:.1f}x |")


if __name__ == "__main__":
    main()
