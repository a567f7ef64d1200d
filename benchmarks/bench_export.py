"""``mdsym export`` against metatomic's ``SymmetrizedModel.wrap``, both as metatomic
models in engines nobody here wrote.

1. Cost: metatomic-ase's ``MetatomicCalculator`` on OUT.pt (``o3:L``, mdsym's cheapest
   grid) and on ``wrap`` at the same exactness degree ``L`` (its Lebedev x in-plane x
   inversion grid), for pet-ethanol on ethanol (9 atoms) and on 11 ethanols (99
   atoms), and pet-water on 16 waters (48 atoms): model evaluations and ms per
   energy+forces call (interleaved medians, one thread), and their ratio.
2. Fidelity at equal evaluations: a 400-step NVE of pet-ethanol-noaug (ethanol, 300 K,
   0.5 fs) in i-PI's own metatomic driver with OUT.pt ``o3:3:rotated`` (48
   evaluations) and with ``wrap`` at degree 3 (48): max |L(t) - L(0)|.

    python benchmarks/bench_export.py [--quick]

Writes ``benchmarks/results/export.json`` and ``export.md``.
"""

import argparse
import json
import os
import secrets
import tempfile
from pathlib import Path

import numpy as np
from common import RESULTS, interleaved, pin_threads  # noqa: I001  (benchmarks/ on sys.path)

DEGREES = (1, 2, 3, 5)
SYSTEMS = (("pet-ethanol", "ethanol", 1), ("pet-ethanol", "ethanol", 11), ("pet-water", "water-16", 1))
BATCH = 8  # copies per model call, the same for both wrappers


def structure(name, copies):
    import ase.io

    from mdsym.core.defaults import STRUCTURES

    atoms = ase.io.read(STRUCTURES / f"{name}.xyz")
    if copies == 1:
        return atoms
    many = atoms.copy()
    many.positions -= atoms.positions.mean(axis=0)
    for k in range(1, copies):
        shifted = many[: len(atoms)].copy()
        shifted.positions += 6.0 * np.array([k % 4, (k // 4) % 4, k // 16])
        many += shifted
    return many


def wrapped(model, degree, path):
    """metatomic's SymmetrizedModel.wrap at exactness degree ``degree``, saved."""
    from metatomic.torch import load_atomistic_model
    from metatomic.torch.o3 import SymmetrizedModel

    from mdsym.models import shipped

    wrapper = SymmetrizedModel.wrap(load_atomistic_model(str(shipped.path(model))),
                                    max_angular_momentum_grid=degree, batch_size=BATCH)
    wrapper.save(str(path))
    return path


def wrap_evaluations(degree):
    from metatomic.torch.o3._quadrature import choose_quadrature
    from scipy.integrate import lebedev_rule

    order, inplane = choose_quadrature(degree)
    return 2 * lebedev_rule(order)[0].shape[1] * inplane


def cost_rows(folder, quick):
    import warnings

    from metatomic_ase import MetatomicCalculator

    from mdsym.serving.export import export_symmetrized
    from mdsym.symmetry.spec import SymmetrizeSpec

    warnings.filterwarnings("ignore", message="SymmetrizedModel is running in float32")
    rows = []
    for model, name, copies in SYSTEMS[:1] if quick else SYSTEMS:
        atoms = structure(name, copies)
        for degree in DEGREES[:2] if quick else DEGREES:
            ours = folder / f"{model}-o3-{degree}.pt"
            export_symmetrized(model, f"o3:{degree}", ours, batch_size=BATCH, force=True)
            theirs = wrapped(model, degree, folder / f"{model}-wrap-{degree}.pt")
            calculators = {}
            for label, path in (("mdsym", ours), ("wrap", theirs)):
                calc = MetatomicCalculator(str(path))
                copy = atoms.copy()

                def call(calc=calc, copy=copy):
                    calc.calculate(copy, ["energy", "forces"], ["positions"])

                calculators[label] = call
            seconds = interleaved(calculators, repeats=3, budget_s=8.0, warmup=3)
            ours_n = SymmetrizeSpec.parse(f"o3:{degree}").evaluations_per_call()
            row = {"model": model, "atoms": len(atoms), "degree": degree,
                   "mdsym_evaluations": ours_n, "wrap_evaluations": wrap_evaluations(degree),
                   "mdsym_ms": 1e3 * seconds["mdsym"], "wrap_ms": 1e3 * seconds["wrap"]}
            row["speedup"] = row["wrap_ms"] / row["mdsym_ms"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def angular_momentum_drift(model_path, folder, steps, label):
    """max |L(t) - L(0)| (amu Angstrom^2 / ps) of an NVE run in i-PI's metatomic driver."""
    import ase.io

    from mdsym.core.defaults import STRUCTURES
    from mdsym.md.ipi_engine import input as ipi_input
    from mdsym.md.ipi_engine.outputs import SegmentReader
    from mdsym.md.ipi_engine.segment_input import initial_velocities
    from mdsym.md.ipi_engine.supervisor import run_input
    from mdsym.md.processes import command_for
    from mdsym.serving import ipi_protocol as p

    atoms = ase.io.read(STRUCTURES / "ethanol.xyz")
    velocities = initial_velocities(atoms, 300.0, 1)
    address = f"mdsym-bench-{os.getpid()}-{secrets.token_hex(3)}"
    block = ipi_input.socket("mt", "unix", address)
    outputs = ipi_input.Outputs(prefix=label, extras=False, checkpoint_stride=10 * steps)
    xml = ipi_input.to_text(ipi_input.simulation(atoms, velocities, block, steps,
                                                 dynamics=ipi_input.Dynamics(timestep_fs=0.5),
                                                 outputs=outputs))
    ase.io.write(folder / "ethanol.xyz", atoms)
    driver = [*command_for("i-pi-py_driver"), "-m", "metatomic", "-u", "-a", address,
              "-o", f"template={folder / 'ethanol.xyz'},model={model_path}"]
    finished = run_input(folder / label, xml, [driver], timeout=3600)
    assert finished.returncode == 0, finished.log[-2000:]
    reader = SegmentReader(folder / label, label, atoms.get_chemical_symbols(), extras=False)
    masses = atoms.get_masses()[:, None]
    momenta = []
    for _, step in sorted(reader.poll(), key=lambda item: item[0]):
        r = step.arrays["positions"] * p.BOHR
        v = step.arrays["velocities"] * p.AU_VELOCITY * 1e3 * __import__("ase").units.fs
        com = (masses * r).sum(axis=0) / masses.sum()
        momenta.append((masses * np.cross(r - com, v)).sum(axis=0))
    momenta = np.array(momenta)
    return float(np.linalg.norm(momenta - momenta[0], axis=1).max()), len(momenta)


def fidelity_row(folder, steps):
    from mdsym.serving.export import export_symmetrized

    ours = folder / "noaug-o3-3-rotated.pt"
    export_symmetrized("pet-ethanol-noaug", "o3:3:rotated", ours, batch_size=BATCH, seed=1, force=True)
    theirs = wrapped("pet-ethanol-noaug", 3, folder / "noaug-wrap-3.pt")
    ours_dl, frames = angular_momentum_drift(ours, folder, steps, "rotated")
    theirs_dl, _ = angular_momentum_drift(theirs, folder, steps, "wrap")
    row = {"model": "pet-ethanol-noaug", "steps": steps, "frames": frames, "evaluations": 48,
           "mdsym_o3_3_rotated_max_dL": ours_dl, "wrap_degree3_max_dL": theirs_dl,
           "ratio": theirs_dl / ours_dl}
    print(json.dumps(row), flush=True)
    return row


def markdown(cost, fidelity) -> str:
    lines = ["# mdsym export vs metatomic SymmetrizedModel.wrap (both in metatomic-ase)", "",
             "| model | atoms | degree | evaluations mdsym / wrap | ms per force call mdsym / wrap | "
             "wrap / mdsym |", "|---|---|---|---|---|---|"]
    for r in cost:
        lines.append(f"| {r['model']} | {r['atoms']} | {r['degree']} | {r['mdsym_evaluations']} / "
                     f"{r['wrap_evaluations']} | {r['mdsym_ms']:.0f} / {r['wrap_ms']:.0f} | "
                     f"{r['speedup']:.2f}x |")
    if fidelity:
        f = fidelity
        lines += ["", f"{f['steps']}-step NVE ({f['model']}, i-PI's metatomic driver, {f['evaluations']} "
                  "evaluations per step): max |L(t) - L(0)| (amu A^2/ps)", "",
                  "| mdsym o3:3:rotated | wrap degree 3 | wrap / mdsym |", "|---|---|---|",
                  f"| {f['mdsym_o3_3_rotated_max_dL']:.3g} | {f['wrap_degree3_max_dL']:.3g} | "
                  f"{f['ratio']:.1f}x |"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="9-atom ethanol, degrees 1-2, 40 steps")
    parser.add_argument("--part", choices=("all", "cost", "fidelity"), default="all",
                        help="Measure one part again, keeping the other from the results file.")
    args = parser.parse_args()
    pin_threads()
    suffix = "-quick" if args.quick else ""
    kept = RESULTS / f"export{suffix}.json"
    previous = json.loads(kept.read_text()) if kept.exists() else {"cost": [], "fidelity": None}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cost = cost_rows(folder, args.quick) if args.part != "fidelity" else previous["cost"]
        fidelity = (fidelity_row(folder, 40 if args.quick else 400) if args.part != "cost"
                    else previous["fidelity"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"export{suffix}.json").write_text(json.dumps({"cost": cost, "fidelity": fidelity},
                                                             indent=2) + "\n")
    (RESULTS / f"export{suffix}.md").write_text(markdown(cost, fidelity))
    print(markdown(cost, fidelity))


if __name__ == "__main__":
    main()
