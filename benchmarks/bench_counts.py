"""Model evaluations per symmetrized call for a given exactness degree L over O(3).

- mdsym ``o3:L``: its cheapest quadrature exact to L (finite groups x inversion, or
  Lebedev x (L+1) x inversion);
- ``SymmetrizedCalculator(l_max=L)``: Lebedev order >= L x (2L+1) in-plane x 2;
- ``SymmetrizedModel(max_angular_momentum_grid=L)``: Lebedev order >= L x (L+1) x 2
  (it always evaluates both cosets);
- i-PI ``<ffrotations>`` (``grid_mode`` lebedev, ``inversion``): its ``grid_order`` o
  gives Lebedev grid o x o in-plane angles (x2 with inversion), built by i-PI's own
  ``get_rotation_quadrature_lebedev``; the exactness degree of each order is
  measured here numerically (Wigner-D averages) and the smallest exact grid counted.

``verify_by_counting`` checks some of these by counting actual model calls.

    python benchmarks/bench_counts.py [--max-degree 8]
"""

import argparse
import json

from common import RESULTS, pin_threads

from mdsym.md.ipi_engine.rotation_grid import ipi_grids  # one definition, in the package


def symcalc_size(degree: int) -> int:
    from metatomic_ase._symmetry import _choose_quadrature, _get_quadrature

    order, n_inplane = _choose_quadrature(degree)
    rotations, _ = _get_quadrature(order, n_inplane, True)
    return len(rotations)


def counts(max_degree=8) -> dict:
    from bench_evaluation import symmetrized_model_size

    from mdsym.symmetry import quadrature as quad

    grids = ipi_grids(max_order=max_degree + 3)
    rows = []
    for degree in range(1, max_degree + 1):
        cheapest = quad.cheapest(degree, True)
        ipi = min((g for g in grids if g["degree"] >= degree), key=lambda g: g["size"], default=None)
        row = {"degree": degree, "mdsym": len(cheapest), "mdsym_quadrature": cheapest.name,
               "mdsym_lebedev": len(quad.lebedev(degree, True)),
               "SymmetrizedCalculator": symcalc_size(degree),
               "SymmetrizedModel": symmetrized_model_size(degree),
               "ipi_ffrotations": ipi["size"] if ipi else None,
               "ipi_grid_order": ipi["order"] if ipi else None}
        row["mdsym_fewer_than_lebedev_2L1"] = row["mdsym"] < row["SymmetrizedCalculator"]
        rows.append(row)
    return {"rows": rows, "ipi_grids": grids}


class _CountingModel:
    """Wraps an mdsym Model and counts the rotated copies it evaluates."""

    def __init__(self, inner):
        self.inner, self.copies = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)


def verify_by_counting(degrees=(1, 3)) -> list:
    """Count model evaluations of mdsym, SymmetrizedCalculator and SymmetrizedModel
    on a 10-atom cluster with the analytic model; compare with ``counts``."""
    from typing import Dict, List, Optional

    import torch
    from bench_evaluation import symmetrized_model_size
    from common import analytic_pt, copper_cluster
    from metatensor.torch import Labels, TensorMap
    from metatomic.torch import AtomisticModel, ModelMetadata, ModelOutput, System
    from metatomic.torch.o3 import SymmetrizedModel
    from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

    from mdsym import MdsymCalculator, load_model
    from mdsym.models import parse_analytic
    from mdsym.models.base import Model
    from mdsym.models.export import NativeAsMetatomic

    atoms = copper_cluster(10)
    pt = analytic_pt(atoms.numbers)

    class Counting(Model):
        def __init__(self, inner):
            self.inner, self.copies = inner, 0
            self.name, self.species = inner.name, inner.species
            self.forces_kind, self.has_stress = inner.forces_kind, inner.has_stress

        def evaluate(self, system, rotations, properties):
            self.copies += len(rotations)
            return self.inner.evaluate(system, rotations, properties)

    class CountingModule(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.systems = inner, 0

        def requested_neighbor_lists(self):
            return self.inner.requested_neighbor_lists()

        def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                    selected_atoms: Optional[Labels]) -> Dict[str, TensorMap]:
            self.systems += len(systems)
            return self.inner(systems, outputs, selected_atoms)

    found = []
    for degree in degrees:
        counted = Counting(load_model("analytic"))
        a = atoms.copy()
        a.calc = MdsymCalculator(counted, symmetrize=f"o3:{degree}")
        a.get_forces()

        base = MetatomicCalculator(str(pt))
        calls = {"n": 0}
        original = base.compute_energy

        def compute_energy(batch, *args, **kwargs):
            calls["n"] += len(batch) if isinstance(batch, list) else 1
            return original(batch, *args, **kwargs)

        base.compute_energy = compute_energy
        b = atoms.copy()
        b.calc = SymmetrizedCalculator(base, l_max=degree)
        b.get_forces()

        loaded = torch.jit.load(str(pt))
        module = CountingModule(NativeAsMetatomic(parse_analytic("analytic"), float(loaded.module.native.cutoff)))
        eager = AtomisticModel(module.eval(), ModelMetadata(), loaded.capabilities())
        c = atoms.copy()
        c.calc = MetatomicCalculator(SymmetrizedModel.wrap(eager, max_angular_momentum_grid=degree))
        c.get_forces()
        found.append({"degree": degree, "mdsym": counted.copies,
                      "SymmetrizedCalculator": calls["n"], "SymmetrizedModel": module.systems,
                      "expected": {"mdsym": len(a.calc.symmetrizer.quadrature),
                                   "SymmetrizedCalculator": symcalc_size(degree),
                                   "SymmetrizedModel": symmetrized_model_size(degree)}})
    return found


def markdown(result) -> str:
    lines = ["| L | mdsym o3:L (quadrature) | SymmetrizedCalculator (Lebedev x (2L+1) x 2) "
             "| SymmetrizedModel (Lebedev x (L+1) x 2) | i-PI ffrotations (grid_order) |",
             "|---:|---|---:|---:|---|"]
    for r in result["rows"]:
        ipi = f"{r['ipi_ffrotations']} ({r['ipi_grid_order']})" if r["ipi_ffrotations"] else "n/a"
        lines.append(f"| {r['degree']} | {r['mdsym']} ({r['mdsym_quadrature']}) "
                     f"| {r['SymmetrizedCalculator']} | {r['SymmetrizedModel']} | {ipi} |")
    if result.get("counted"):
        lines.append("")
        lines.append("counted model calls: " + "; ".join(
            f"L={c['degree']}: mdsym {c['mdsym']}, SymCalc {c['SymmetrizedCalculator']}, "
            f"SymModel {c['SymmetrizedModel']}" for c in result["counted"]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-degree", type=int, default=8)
    args = parser.parse_args()
    pin_threads()
    result = counts(args.max_degree)
    result["counted"] = verify_by_counting()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "counts.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
