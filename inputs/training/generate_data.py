"""Reference data for mdsym's shipped models: GFN2-xTB (tblite) energies, forces, stress.

Two systems:

- ``ethanol``: one molecule in vacuum. Configurations from Langevin MD driven by
  GFN2-xTB itself at 500 K (0.5 fs step, one frame every 10 fs). Five independent
  trajectories (seeds 1-5): 1-4 give train and validation frames, 5 is the held-out
  test set.
- ``water``: 16 H2O molecules in a periodic cubic box at 1 g/cm^3. Periodic GFN2-xTB
  costs seconds per call, too much to drive the MD, so configurations are sampled by
  classical Langevin MD at 400 K (0.5 fs step, 2 ps equilibration, one frame every 50 fs) with a flexible
  TIP3P water (ASE's TIP3P between molecules plus O-H and H-H springs inside them),
  then perturbed before labelling: Gaussian noise on positions (0.02 A for H, 0.01 A
  for O per component) and a random symmetric strain of the cell of at most 2% per
  component, so that the stress varies. Only the labels (energy, forces, stress) come
  from GFN2-xTB (about 3-10 s per frame on one core). Two independent trajectories:
  seed 1 gives train (first 80 frames) and validation (last 15), seed 2 the held-out
  test set (25 frames).

Everything is seeded; run ``python generate_data.py [ethanol|water|all]``. Outputs go
to ``data/<system>-{train,val,test}.xyz`` (extended XYZ, eV, A, eV/A^3) next to this
script, and the starting structures to ``mdsym/data/structures/``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.optimize import BFGS

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
STRUCTURES = HERE.parents[1] / "mdsym" / "data" / "structures"


def gfn2():
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0)


def labelled(atoms, calc, stress=False):
    """A copy of ``atoms`` carrying GFN2-xTB energy, forces (and stress)."""
    copy = atoms.copy()
    copy.calc = calc
    results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces()}
    if stress:
        results["stress"] = copy.get_stress()
    frame = atoms.copy()
    frame.arrays.pop("momenta", None)
    frame.calc = SinglePointCalculator(frame, **results)
    return frame


# ---------------------------------------------------------------------------- ethanol

def ethanol_start():
    atoms = molecule("CH3CH2OH")
    atoms.calc = gfn2()
    BFGS(atoms, logfile=None).run(fmax=0.005)
    atoms.calc = None
    atoms.center()
    return atoms


def ethanol_trajectory(start, seed, n_frames, temperature=500.0, stride=20, equilibrate=1000):
    atoms = start.copy()
    atoms.calc = gfn2()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                   rng=rng)
    dyn.run(equilibrate)
    frames = []
    for _ in range(n_frames):
        dyn.run(stride)
        frames.append(labelled(atoms, atoms.calc))
    return frames


def make_ethanol():
    start = ethanol_start()
    write(STRUCTURES / "ethanol.xyz", start)
    pool = []
    for seed in (1, 2, 3, 4):
        pool += ethanol_trajectory(start, seed, 175)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    train = [pool[i] for i in order[:600]]
    val = [pool[i] for i in order[600:]]
    test = ethanol_trajectory(start, 5, 100)
    return train, val, test


# ------------------------------------------------------------------------------ water

def water_box(n=16, density=0.997, seed=0):
    """``n`` randomly placed and oriented water molecules in a cube."""
    from scipy.spatial.transform import Rotation

    length = (n * 18.015 / density / units.mol * 1e24) ** (1 / 3)
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    water.positions -= water.positions[0]
    atoms = Atoms(cell=[length] * 3, pbc=True)
    centres = []
    while len(centres) < n:
        trial = rng.uniform(0, length, 3)
        if centres:
            d = np.array(centres) - trial
            d -= length * np.round(d / length)
            if np.min(np.linalg.norm(d, axis=1)) < 2.6:
                continue
        centres.append(trial)
        copy = water.copy()
        copy.positions = copy.positions @ Rotation.random(random_state=rng).as_matrix().T + trial
        atoms += copy
    atoms.wrap()
    return atoms


class WaterSprings:
    """Intramolecular springs (O-H, O-H, H-H) that make TIP3P water flexible.

    Force constants and rest lengths close to SPC/Fw (O-H 45 eV/A^2 at 0.96 A, H-H
    Urey-Bradley spring 20 eV/A^2 at 1.51 A): good enough for sampling, since only the
    GFN2-xTB labels are learned. Atoms are ordered O, H, H per molecule.
    """

    implemented_properties = ("energy", "forces")

    def __init__(self, k_oh=45.0, r_oh=0.9572, k_hh=20.0, r_hh=1.5139):
        self.pairs = ((0, 1, k_oh, r_oh), (0, 2, k_oh, r_oh), (1, 2, k_hh, r_hh))

    def compute(self, atoms):
        pos = atoms.positions.reshape(-1, 3, 3)
        energy, forces = 0.0, np.zeros_like(pos)
        for i, j, k, r0 in self.pairs:
            d = pos[:, j] - pos[:, i]
            r = np.linalg.norm(d, axis=1)
            energy += 0.5 * k * np.sum((r - r0) ** 2)
            f = (k * (r - r0) / r)[:, None] * d
            forces[:, i] += f
            forces[:, j] -= f
        return energy, forces.reshape(-1, 3)


def flexible_tip3p(atoms):
    from ase.calculators.calculator import Calculator, all_changes
    from ase.calculators.tip3p import TIP3P

    springs = WaterSprings()

    class FlexibleTIP3P(Calculator):
        implemented_properties = ["energy", "forces"]

        def __init__(self):
            super().__init__()
            self.tip3p = TIP3P(rc=atoms.cell[0, 0] / 2 - 0.01)

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            probe = self.atoms.copy()
            probe.calc = self.tip3p
            e_spring, f_spring = springs.compute(self.atoms)
            self.results = {"energy": probe.get_potential_energy() + e_spring,
                            "forces": probe.get_forces() + f_spring}

    return FlexibleTIP3P()


def tip3p_trajectory(seed, n_frames, temperature=400.0, stride=100, equilibrate=4000):
    """Langevin MD (0.5 fs) of flexible TIP3P water; one frame every ``stride`` steps."""
    atoms = water_box(seed=seed)
    atoms.calc = flexible_tip3p(atoms)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
                   rng=rng)
    dyn.run(equilibrate)
    configurations = []
    for _ in range(n_frames):
        dyn.run(stride)
        configurations.append(Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True))
    return configurations


def perturbed(atoms, rng):
    frame = atoms.copy()
    sigma = np.where(frame.numbers == 1, 0.02, 0.01)[:, None]
    frame.positions += rng.normal(size=frame.positions.shape) * sigma
    strain = rng.uniform(-0.02, 0.02, (3, 3))
    strain = (strain + strain.T) / 2
    frame.set_cell(frame.cell @ (np.eye(3) + strain), scale_atoms=True)
    frame.wrap()
    return frame


def label_all(configurations, seed):
    calc = gfn2()
    rng = np.random.default_rng(seed)
    frames = []
    for i, atoms in enumerate(configurations):
        start = time.time()
        frames.append(labelled(perturbed(atoms, rng), calc, stress=True))
        print(f"  water frame {i + 1}/{len(configurations)} ({time.time() - start:.1f} s)",
              flush=True)
    return frames


def make_water():
    pool = label_all(tip3p_trajectory(1, 95), seed=11)
    write(STRUCTURES / "water-16.xyz", Atoms(pool[0].numbers, pool[0].positions,
                                             cell=pool[0].cell, pbc=True))
    train, val = pool[:80], pool[80:]
    test = label_all(tip3p_trajectory(2, 25), seed=12)
    return train, val, test


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=["ethanol", "water", "all"], nargs="?", default="all")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    systems = ["ethanol", "water"] if args.system == "all" else [args.system]
    for name in systems:
        start = time.time()
        train, val, test = {"ethanol": make_ethanol, "water": make_water}[name]()
        for split, frames in (("train", train), ("val", val), ("test", test)):
            write(DATA / f"{name}-{split}.xyz", frames, format="extxyz")
        print(f"{name}: {len(train)} train, {len(val)} val, {len(test)} test frames "
              f"in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
