"""Symmetrized vs raw evaluation: mdsym vs SymmetrizedCalculator vs SymmetrizedModel.

For every model (the analytic model; each shipped PET model, or a labelled stand-in),
structure size and exactness degree L over O(3), one process times side by side, in
interleaved rounds (``common.interleaved``):

- raw: ``MdsymCalculator(model)`` and ``metatomic_ase.MetatomicCalculator(model.pt)``;
- mdsym: ``MdsymCalculator(model, symmetrize="o3:L")`` (its cheapest exact quadrature);
- ``metatomic_ase.SymmetrizedCalculator(MetatomicCalculator(model.pt), l_max=L)``;
- ``SymmetrizedModel.wrap(model.pt, max_angular_momentum_grid=L)`` run by
  ``MetatomicCalculator`` (forces by autograd through the average).

The analytic model runs in mdsym natively and as the same model exported to a
metatomic .pt (``mdsym.models.export``), which is what the metatomic tools run.
Figures: per-rotation cost (symmetrized time / (G x the same tool's raw time)) and
total-time ratios of the metatomic tools to mdsym at equal L. Before timing, the
averaged forces of the three tools are checked against each other
(``check_agreement``).

    python benchmarks/bench_evaluation.py [--sizes 10 100] [--degrees 1 3 5] [--no-pet]
"""

import argparse
import json

import numpy as np
from ase.calculators.calculator import all_changes
from common import RESULTS, analytic_pt, interleaved, model_cases, pin_threads


def properties_for(atoms):
    return ["energy", "forces", "stress"] if atoms.pbc.all() else ["energy", "forces"]


def calculators(case, atoms, pt, degree, batch_size=None):
    """name -> (calculator, number of rotations it averages over).

    Each tool batches at its own default unless ``batch_size`` is given (mdsym: chosen
    from the model and the system size; SymmetrizedModel: 32)."""
    from metatomic.torch import load_atomistic_model
    from metatomic.torch.o3 import SymmetrizedModel
    from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

    from mdsym import MdsymCalculator, load_model

    model = load_model(case["mdsym"])
    calcs = {"mdsym": MdsymCalculator(model, symmetrize=f"o3:{degree}", batch_size=batch_size)}
    if case["kind"] == "analytic":
        calcs["mdsym-on-pt"] = MdsymCalculator(load_model(str(pt)), symmetrize=f"o3:{degree}",
                                               batch_size=batch_size)
    calcs["SymmetrizedCalculator"] = SymmetrizedCalculator(MetatomicCalculator(str(pt)), l_max=degree)
    calcs["SymmetrizedModel"] = MetatomicCalculator(
        SymmetrizedModel.wrap(load_atomistic_model(str(pt)), max_angular_momentum_grid=degree,
                              batch_size=batch_size or 32))
    sizes = {"mdsym": len(calcs["mdsym"].symmetrizer.quadrature),
             "mdsym-on-pt": len(calcs["mdsym"].symmetrizer.quadrature),
             "SymmetrizedCalculator": len(calcs["SymmetrizedCalculator"].quadrature_rotations),
             "SymmetrizedModel": symmetrized_model_size(degree)}
    return {name: (calc, sizes[name]) for name, calc in calcs.items()}


def raw_calculators(case, pt):
    from metatomic_ase import MetatomicCalculator

    from mdsym import MdsymCalculator, load_model

    raws = {"mdsym": MdsymCalculator(load_model(case["mdsym"]))}
    if case["kind"] == "analytic":
        raws["mdsym-on-pt"] = MdsymCalculator(load_model(str(pt)))
    raws["metatomic"] = MetatomicCalculator(str(pt))
    return raws


RAW_OF = {"mdsym": "mdsym", "mdsym-on-pt": "mdsym-on-pt",
          "SymmetrizedCalculator": "metatomic", "SymmetrizedModel": "metatomic"}


def symmetrized_model_size(degree: int) -> int:
    """Model evaluations of SymmetrizedModel at grid degree L: its Lebedev x (L+1)
    grid, both cosets (proper and improper) always evaluated."""
    from metatomic.torch.o3._quadrature import choose_quadrature, get_rotation_quadrature

    order, n_inplane = choose_quadrature(degree)
    rotations, _ = get_rotation_quadrature(order, n_inplane)
    return 2 * len(rotations)


def run_calc(calc, atoms, properties):
    def call():
        calc.calculate(atoms, properties, all_changes)
        return calc.results
    return call


def check_agreement(case, atoms, pt, degree) -> dict:
    """Max |F - F_mdsym| of each metatomic tool, on the same quadrature family where
    that is possible: SymmetrizedModel vs mdsym ``o3:L:lebedev`` (the same grid);
    SymmetrizedCalculator vs mdsym ``o3:L`` (different grids, both exact to L, equal
    when the model's spurious terms have degree <= L)."""
    from mdsym import MdsymCalculator, load_model

    properties = properties_for(atoms)
    same_grid = MdsymCalculator(load_model(case["mdsym"]), symmetrize=f"o3:{degree}:lebedev")
    calcs = calculators(case, atoms, pt, degree)
    out = {}
    reference = run_calc(same_grid, atoms, properties)()["forces"].copy()
    cheapest = run_calc(calcs["mdsym"][0], atoms, properties)()["forces"].copy()
    out["SymmetrizedModel_vs_mdsym_lebedev"] = float(np.abs(
        run_calc(calcs["SymmetrizedModel"][0], atoms, properties)()["forces"] - reference).max())
    out["SymmetrizedCalculator_vs_mdsym"] = float(np.abs(
        run_calc(calcs["SymmetrizedCalculator"][0], atoms, properties)()["forces"] - cheapest).max())
    out["mdsym_cheapest_vs_lebedev"] = float(np.abs(cheapest - reference).max())
    out["force_scale"] = float(np.abs(reference).max())
    return out


def measure(case, n_target, degrees, repeats=3, budget_s=10.0, pt=None, log=print) -> list:
    """Rows for one model and one structure size, one per degree."""
    atoms = case["structure"](n_target)
    pt = pt or case.get("pt") or analytic_pt(atoms.numbers)
    properties = properties_for(atoms)
    rows = []
    for degree in degrees:
        raws = raw_calculators(case, pt)
        syms = calculators(case, atoms, pt, degree)
        calls = {f"raw:{k}": run_calc(c, atoms, properties) for k, c in raws.items()}
        calls.update({k: run_calc(c, atoms, properties) for k, (c, _) in syms.items()})
        t = interleaved(calls, repeats=repeats, budget_s=budget_s)
        sizes = {k: g for k, (_, g) in syms.items()}
        row = {"model": case["name"], "standin": case["standin"], "atoms": len(atoms),
               "periodic": bool(atoms.pbc.all()), "degree": degree, "rotations": sizes,
               "seconds": t,
               "per_rotation_cost": {k: t[k] / (g * t[f"raw:{RAW_OF[k]}"]) for k, g in sizes.items()},
               "sym_over_raw": {k: t[k] / t[f"raw:{RAW_OF[k]}"] for k in sizes},
               "speedup_of_mdsym": {k: t[k] / t["mdsym"] for k in ("SymmetrizedCalculator",
                                                                    "SymmetrizedModel")},
               # the speed-up split in two: fewer rotations, and less time per rotation
               "per_copy_ms": {k: 1000 * t[k] / g for k, g in sizes.items()},
               "rotation_ratio": {k: sizes[k] / sizes["mdsym"] for k in ("SymmetrizedCalculator",
                                                                        "SymmetrizedModel")}}
        rows.append(row)
        log(f"  {case['name']} N={len(atoms)} L={degree}: G={sizes}, "
            f"per-rotation mdsym {row['per_rotation_cost']['mdsym']:.3f}, "
            f"SymCalc/mdsym {row['speedup_of_mdsym']['SymmetrizedCalculator']:.1f}x, "
            f"SymModel/mdsym {row['speedup_of_mdsym']['SymmetrizedModel']:.1f}x")
    return rows


def run(sizes=(10, 100), degrees=(1, 3, 5), include_pet=True, pet_sizes=None, repeats=3,
        budget_s=10.0, check=True, log=print) -> dict:
    pin_threads()
    cases = model_cases(include_pet=include_pet)
    result = {"threads": 1, "rows": [], "checks": [], "cases": [
        {k: v for k, v in c.items() if k != "structure"} for c in cases]}
    for case in cases:
        case_sizes = sizes if case["kind"] == "analytic" or pet_sizes is None else pet_sizes
        if check:
            atoms = case["structure"](min(case_sizes))
            pt = case.get("pt") or analytic_pt(atoms.numbers)
            for degree in (1, 3):
                agreement = check_agreement(case, atoms, pt, degree)
                agreement.update(model=case["name"], atoms=len(atoms), degree=degree)
                result["checks"].append(agreement)
                log(f"  check {case['name']} N={len(atoms)} L={degree}: "
                    + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items()
                                if isinstance(v, float)))
        for n in case_sizes:
            result["rows"].extend(measure(case, n, degrees, repeats, budget_s, log=log))
    return result


def markdown(result) -> str:
    lines = ["| model | atoms | L | rotations mdsym / SymCalc / SymModel "
             "| per-rotation cost: mdsym / SymCalc / SymModel "
             "| ms per rotation: mdsym / SymCalc / SymModel "
             "| SymCalc time / mdsym time | SymModel time / mdsym time |",
             "|---|---:|---:|---|---|---|---:|---:|"]
    for r in result["rows"]:
        g, p, s = r["rotations"], r["per_rotation_cost"], r["speedup_of_mdsym"]
        name = r["model"] + (" (stand-in)" if r["standin"] else "")
        extra = f" (on .pt {p['mdsym-on-pt']:.3f})" if "mdsym-on-pt" in p else ""
        ms = r.get("per_copy_ms")
        per_copy = (f"{ms['mdsym']:.2f} / {ms['SymmetrizedCalculator']:.2f} / {ms['SymmetrizedModel']:.2f}"
                    if ms else "")
        lines.append(
            f"| {name} | {r['atoms']} | {r['degree']} "
            f"| {g['mdsym']} / {g['SymmetrizedCalculator']} / {g['SymmetrizedModel']} "
            f"| {p['mdsym']:.3f}{extra} / {p['SymmetrizedCalculator']:.3f} / {p['SymmetrizedModel']:.3f} "
            f"| {per_copy} | {s['SymmetrizedCalculator']:.1f}x | {s['SymmetrizedModel']:.1f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--degrees", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pet", action="store_true")
    args = parser.parse_args()
    result = run(args.sizes, args.degrees, include_pet=not args.no_pet, repeats=args.repeats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps(result, indent=2, default=str))
    print(markdown(result))


if __name__ == "__main__":
    main()
