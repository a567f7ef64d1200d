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
The model then learns what a rotation does only from the orientations that the
molecule happens to take in the MD frames, and its equivariance error A is larger.

A model is trained in stages: ``<name>.yaml``, then, when the files exist,
``<name>-continue.yaml``, ``-continue2.yaml`` ... ``-continue4.yaml``, each a run from the previous
stage's weights with a fresh, lower learning-rate schedule (metatrain's full
fine-tuning). pet-ethanol has five stages, pet-water two.
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
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-c", CHILD, str(int(noaug)), "train", str(options),
               "-o", f"{args.name}.pt"]
    for item in args.override:
        command += ["-r", item]
    start = time.time()
    subprocess.run(command, cwd=work, env=env, check=True)
    previous = work
    for suffix in ("continue", "continue2", "continue3", "continue4"):  # from the last weights
        options = HERE / f"{args.name}-{suffix}.yaml"
        if not options.exists():
            break
        stage = work / suffix
        stage.mkdir(exist_ok=True)
        command = [sys.executable, "-c", CHILD, str(int(noaug)), "train", str(options),
                   "-o", f"{args.name}.pt", "-r",
                   f"architecture.training.finetune.read_from={previous / (args.name + '.ckpt')}"]
        subprocess.run(command, cwd=stage, env=env, check=True)
        shutil.copy(stage / f"{args.name}.pt", work / f"{args.name}.pt")
        previous = stage
    minutes = (time.time() - start) / 60
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
