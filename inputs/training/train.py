"""Train and export mdsym's shipped PET models with metatrain (``mtt train``).

    python train.py pet-ethanol          # PET, metatrain's O(3) augmentation (default)
    python train.py pet-water
    python train.py pet-ethanol-noaug    # weakly symmetric variant, see below

Each model is trained from ``<name>.yaml`` in a work folder ``runs/<name>/`` (not
committed) on one CPU thread, and the exported metatomic model is copied to
``mdsym/models/data/<name>.pt``. Then run ``python evaluate.py <name>`` to write the
machine-readable card (held-out errors, A) and the held-out test set next to it.

``pet-ethanol-noaug``: metatrain's PET trainer always applies a random O(3)
transformation to every training batch and has no option to switch it off, so this
script replaces ``O3Augmenter.apply_random_augmentations`` by the identity before
calling metatrain (``--no-augmentation``, set by the YAML's name ending in ``-noaug``).
Its training frames are, in addition, rotated into one common orientation (Kabsch
alignment of each frame on the starting structure, forces rotated with it): the model
then sees every molecule in (nearly) the same orientation and never learns what a
rotation does, so its equivariance error A is large by construction.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = ROOT / "mdsym" / "models" / "data"


def aligned_copy(source: Path, target: Path, reference: Path):
    """``source`` frames rotated (proper rotations only) onto ``reference``."""
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write
    from scipy.spatial.transform import Rotation

    ref = read(reference)
    ref_c = ref.positions - ref.get_center_of_mass()
    frames = []
    for atoms in read(source, ":"):
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        centred = atoms.positions - atoms.get_center_of_mass()
        rotation, _ = Rotation.align_vectors(ref_c, centred, weights=atoms.get_masses())
        matrix = rotation.as_matrix()
        atoms.calc = None
        atoms.positions = centred @ matrix.T
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces @ matrix.T)
        frames.append(atoms)
    write(target, frames, format="extxyz")


def export_final(work: Path, name: str, env: dict):
    """Export the weights of the last epoch instead of metatrain's "best" ones.

    The ``-noaug`` model is validated on unaligned frames (random orientations) on
    purpose, so the validation error grows as it specialises to one orientation and
    metatrain's best-by-validation model would be the barely trained one of epoch 1.
    """
    import metatomic.torch  # noqa: F401  (classes stored in the checkpoint)
    import torch

    checkpoint = torch.load(work / f"{name}.ckpt", weights_only=False, map_location="cpu")
    checkpoint["best_model_state_dict"] = checkpoint["model_state_dict"]
    checkpoint["best_epoch"] = checkpoint["epoch"]
    torch.save(checkpoint, work / f"{name}-final.ckpt")
    subprocess.run(["mtt", "export", f"{name}-final.ckpt", "-o", f"{name}.pt"], cwd=work,
                   env=env, check=True)


def no_augmentation():
    from metatrain.utils.augmentation import O3Augmenter

    def identity(self, systems, targets, extra_data=None):
        return systems, targets, dict(extra_data) if extra_data is not None else {}

    O3Augmenter.apply_random_augmentations = identity


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="model name: options are read from <name>.yaml")
    parser.add_argument("--no-augmentation", action="store_true",
                        help="switch metatrain's O(3) augmentation off (default for *-noaug)")
    parser.add_argument("-r", "--override", action="append", default=[],
                        help="metatrain override, e.g. architecture.training.num_epochs=10")
    args = parser.parse_args()
    options = HERE / f"{args.name}.yaml"
    work = HERE / "runs" / args.name
    work.mkdir(parents=True, exist_ok=True)
    (work / "data").unlink(missing_ok=True)
    (work / "data").symlink_to(HERE / "data")
    noaug = args.no_augmentation or args.name.endswith("-noaug")
    if noaug and "ethanol" in args.name:
        aligned_copy(HERE / "data" / "ethanol-train.xyz", HERE / "data" / "ethanol-train-aligned.xyz",
                     ROOT / "mdsym" / "data" / "structures" / "ethanol.xyz")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-c", CHILD, str(int(noaug)), "train", str(options),
               "-o", f"{args.name}.pt"]
    for item in args.override:
        command += ["-r", item]
    start = time.time()
    subprocess.run(command, cwd=work, env=env, check=True)
    minutes = (time.time() - start) / 60
    if noaug:
        export_final(work, args.name, env)
    MODELS.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / f"{args.name}.pt", MODELS / f"{args.name}.pt")
    (work / "training_minutes.txt").write_text(f"{minutes:.1f}\n")
    print(f"{args.name}: trained in {minutes:.1f} min -> {MODELS / (args.name + '.pt')}")


CHILD = """
import sys, torch
torch.set_num_threads(1)
noaug = sys.argv.pop(1) == "1"
if noaug:
    sys.path.insert(0, %r)
    from train import no_augmentation
    no_augmentation()
from metatrain.__main__ import main
sys.argv[0] = "mtt"
sys.exit(main())
""" % str(HERE)


if __name__ == "__main__":
    main()
