"""Stability of the shipped molecular model: NVT MD of ethanol at 300 K.

    python analysis/stability_ethanol.py [--model pet-ethanol] [--ps 20] [--timestep 0.5]

Runs ASE's Bussi (stochastic velocity rescaling) thermostat with
``mdsym.MdsymCalculator(load_model(model))`` (raw model, no symmetrization) from the
shipped ``ethanol.xyz``, and checks the bonded connectivity against the starting
structure every ``--check`` steps and at the end, as ``mdsym run``'s monitors do
(``mdsym.molecules``: bonds closer than 1.2 times the sum of covalent radii, broken
beyond 1.6 times it, formed within 1.0 times it).
Writes ``analysis/results/stability-<model>.json`` after every check (so a run that is
stopped still reports how far it got) and, with ``--card``, the result into the model's
machine-readable card ``mdsym/models/data/<model>.json`` under ``stability``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.io import read
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

from mdsym import MdsymCalculator, load_model
from mdsym.models import shipped
from mdsym.molecules import bonds, connectivity_change

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pet-ethanol")
    parser.add_argument("--structure", default=str(ROOT / "mdsym/data/structures/ethanol.xyz"))
    parser.add_argument("--ps", type=float, default=20.0, help="length of the run, ps")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--tau", type=float, default=100.0, help="thermostat time constant, fs")
    parser.add_argument("--check", type=int, default=1000, help="steps between checks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card", action="store_true", help="write the result on the model card")
    args = parser.parse_args()
    torch.set_num_threads(1)

    atoms = read(args.structure)
    reference = bonds(atoms.positions, atoms.numbers)
    atoms.calc = MdsymCalculator(load_model(args.model))
    rng = np.random.default_rng(args.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = Bussi(atoms, args.timestep * units.fs, temperature_K=args.temperature,
                taut=args.tau * units.fs, rng=rng)
    steps = int(round(args.ps * 1000 / args.timestep))
    out = ROOT / "analysis" / "results" / f"stability-{Path(args.model).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": args.model, "structure": Path(args.structure).name,
              "thermostat": f"Bussi (ase.md.bussi), tau {args.tau} fs",
              "temperature_K": args.temperature, "timestep_fs": args.timestep,
              "seed": args.seed, "steps_requested": steps,
              "command": "python analysis/stability_ethanol.py " + " ".join(
                  f"--{k} {v}" for k, v in (("model", args.model), ("ps", args.ps),
                                            ("timestep", args.timestep)))}
    temperatures, energies, start, done, intact = [], [], time.time(), 0, True
    while done < steps:
        n = min(args.check, steps - done)
        dyn.run(n)
        done += n
        temperatures.append(atoms.get_temperature())
        energies.append(atoms.get_potential_energy())
        broken, formed = connectivity_change(reference, atoms.positions, atoms.numbers)
        finite = bool(np.isfinite(atoms.positions).all() and np.isfinite(energies[-1]))
        intact = finite and not broken and not formed
        result.update({
            "steps_done": done, "ps_done": done * args.timestep / 1000,
            "intact": intact, "broken_bonds": broken, "formed_bonds": formed,
            "mean_temperature_K": float(np.mean(temperatures)),
            "max_temperature_K": float(np.max(temperatures)),
            "potential_energy_range_eV": [float(np.min(energies)), float(np.max(energies))],
            "wall_s": round(time.time() - start, 1),
        })
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{result['ps_done']:.2f} ps  T {temperatures[-1]:.0f} K  "
              f"intact {intact}  {result['wall_s']:.0f} s", flush=True)
        if not intact:
            break
    result["status"] = "intact" if intact else "broken"
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.card:
        card_path = shipped.DATA / f"{args.model}.json"
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        card["stability"] = result
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
