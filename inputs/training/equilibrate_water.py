"""The shipped periodic water start, ``mdsym/data/structures/water-16.xyz``: relaxed with
pet-water and thermalised at 300 K, so that a run from it at 300 K stays near 300 K.

    python equilibrate_water.py [--ps 4] [--seed 0]

The first start (16 molecules placed at 1 g/cm^3) was far from pet-water's minimum: a
300 K run heated to 767 K within 50 steps. This script relaxes it with FIRE (ASE) to a
force below 0.05 eV/A, then runs Bussi NVT at 300 K (tau 50 fs, 0.5 fs steps) through
mdsym's calculator, and writes the last positions (no velocities: a run draws its own at
its --temperature and --seed) over the shipped file, cell and species unchanged.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.io import read, write
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.optimize import FIRE

from mdsym import MdsymCalculator, load_model

TARGET = Path(__file__).resolve().parents[2] / "mdsym" / "data" / "structures" / "water-16.xyz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ps", type=float, default=4.0, help="NVT length in ps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = read(TARGET)
    atoms.calc = MdsymCalculator(load_model("pet-water"))
    FIRE(atoms, logfile=None).run(fmax=0.05, steps=2000)
    print(f"relaxed: max force {np.abs(atoms.get_forces()).max():.3f} eV/A, "
          f"energy {atoms.get_potential_energy():.3f} eV")
    rng = np.random.default_rng(args.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=rng)
    Stationary(atoms)
    dynamics = Bussi(atoms, 0.5 * units.fs, temperature_K=300, taut=50 * units.fs, rng=rng)
    steps = int(round(args.ps * 2000))
    temperatures = []
    dynamics.attach(lambda: temperatures.append(atoms.get_temperature()), interval=10)
    dynamics.run(steps)
    last = np.array(temperatures[len(temperatures) // 2:])
    print(f"NVT {args.ps} ps at 300 K: second half mean {last.mean():.0f} K, std {last.std():.0f} K")
    out = atoms.copy()
    out.calc = None
    out.set_momenta(None)
    write(TARGET, out, format="extxyz")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
