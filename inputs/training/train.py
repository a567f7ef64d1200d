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

``pet-ethanol-direct``: a second target ``non_conservative_forces`` (a per-atom
Cartesian vector read from the ``forces`` column) gives the model a direct force head
next to its energy, whose position-gradient loss is kept (see the YAML).

Learning series (models along one training, for ``mdsym learning``)::

    python train.py pet-ethanol-noaug --augmentation --export-every 5 \
        --export-dir /work/learning-series/aug
    python train.py pet-ethanol-noaug --export-every 5 --export-dir /work/learning-series/noaug

``--export-every N`` sets metatrain's ``checkpoint_interval`` to N (a checkpoint after
epochs 1, N+1, 2N+1, ...: metatrain counts epochs from 0 and saves when
``epoch % N == 0``) and, after training, exports each checkpoint's *current* weights
(metatrain's own ``mtt export`` would take the best-so-far weights of a checkpoint)
and the final weights as metatomic models ``DIR/epoch-EEE.pt`` (EEE: epochs trained,
counted over all stages), with ``DIR/series.json`` listing them. Such a run works in
``runs/<name>-series-<DIR's name>/`` and does not touch the shipped model.
``--augmentation`` forces metatrain's O(3) augmentation on, also for ``*-noaug``.
"""

import argparse
import json
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


def checkpoints(folder: Path) -> list:
    """The intermediate checkpoints ``model_<epoch>.ckpt`` that metatrain wrote into its
    output folders under ``folder/outputs/``, ordered by epoch."""
    found = [(int(p.stem.split("_")[1]), p) for p in folder.glob("outputs/*/*/model_*.ckpt")
             if p.stem.split("_")[1].isdigit()]
    return [p for _, p in sorted(found)]


def export_series(stages: list, export_dir: Path, info: dict) -> list:
    """Export the current weights of every intermediate checkpoint of every stage, and of
    each stage's final checkpoint, to ``export_dir/epoch-EEE.pt``; write series.json."""
    import torch
    from metatrain.utils.io import model_from_checkpoint

    torch.set_num_threads(1)
    export_dir.mkdir(parents=True, exist_ok=True)
    entries, offset = [], 0
    for number, (folder, final, options) in enumerate(stages, start=1):
        seen = {}
        for path in checkpoints(folder) + [final]:
            checkpoint = torch.load(path, weights_only=False, map_location="cpu")
            epoch = int(checkpoint["epoch"]) + 1  # epochs completed in this stage
            seen[epoch] = (path, checkpoint)
        for epoch, (path, checkpoint) in sorted(seen.items()):
            model = model_from_checkpoint(checkpoint, context="restart")  # current weights
            total = offset + epoch
            target = export_dir / f"epoch-{total:03d}.pt"
            model.export().save(str(target))
            entries.append({"file": target.name, "epoch": total, "stage": number,
                            "stage_epoch": epoch, "stage_options": options,
                            "checkpoint": str(path.relative_to(HERE))})
            print(f"exported {path.relative_to(HERE)} (epoch {total}) -> {target}")
        offset += max(seen)
    (export_dir / "series.json").write_text(json.dumps(
        {**info, "models": entries}, indent=2) + "\n")
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="model name: options are read from <name>.yaml")
    parser.add_argument("--no-augmentation", action="store_true",
                        help="switch metatrain's O(3) augmentation off (default for *-noaug)")
    parser.add_argument("--augmentation", action="store_true",
                        help="keep metatrain's O(3) augmentation on, also for *-noaug")
    parser.add_argument("-r", "--override", action="append", default=[],
                        help="metatrain override for every stage, e.g. architecture.training.num_epochs=10")
    parser.add_argument("--export-every", type=int, metavar="N",
                        help="learning series: a checkpoint every N epochs, each exported "
                        "to --export-dir (the shipped model is left alone)")
    parser.add_argument("--export-dir", type=Path, metavar="DIR",
                        help="folder of the learning series: epoch-EEE.pt, series.json")
    args = parser.parse_args()
    if (args.export_every is None) != (args.export_dir is None):
        parser.error("--export-every and --export-dir go together")
    if args.augmentation and args.no_augmentation:
        parser.error("--augmentation and --no-augmentation exclude each other")
    series = args.export_dir is not None
    options = HERE / f"{args.name}.yaml"
    work = HERE / "runs" / (f"{args.name}-series-{args.export_dir.resolve().name}" if series
                            else args.name)
    if series and work.exists():
        shutil.rmtree(work)  # its checkpoints must all belong to this run
    work.mkdir(parents=True, exist_ok=True)
    (work / "data").unlink(missing_ok=True)
    (work / "data").symlink_to(HERE / "data")
    noaug = not args.augmentation and (args.no_augmentation or args.name.endswith("-noaug"))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    overrides = list(args.override)
    if series:
        overrides.append(f"architecture.training.checkpoint_interval={args.export_every}")
    command = [sys.executable, "-c", CHILD, str(int(noaug)), "train", str(options),
               "-o", f"{args.name}.pt"]
    for item in overrides:
        command += ["-r", item]
    start = time.time()
    subprocess.run(command, cwd=work, env=env, check=True)
    previous = work
    stages = [(work, work / f"{args.name}.ckpt", options.name)]
    for suffix in ("continue", "continue2", "continue3", "continue4"):  # from the last weights
        options = HERE / f"{args.name}-{suffix}.yaml"
        if not options.exists():
            break
        stage = work / suffix
        stage.mkdir(exist_ok=True)
        command = [sys.executable, "-c", CHILD, str(int(noaug)), "train", str(options),
                   "-o", f"{args.name}.pt", "-r",
                   f"architecture.training.finetune.read_from={previous / (args.name + '.ckpt')}"]
        for item in overrides:
            command += ["-r", item]
        subprocess.run(command, cwd=stage, env=env, check=True)
        shutil.copy(stage / f"{args.name}.pt", work / f"{args.name}.pt")
        stages.append((stage, stage / f"{args.name}.ckpt", options.name))
        previous = stage
    minutes = (time.time() - start) / 60
    (work / "training_minutes.txt").write_text(f"{minutes:.1f}\n")
    if series:
        info = {"name": args.name, "augmentation": not noaug,
                "export_every": args.export_every, "overrides": overrides,
                "training_minutes_1_cpu_thread": round(minutes, 1),
                "command": "python train.py " + " ".join(sys.argv[1:]),
                "note": "epoch: epochs trained when the weights were taken (current "
                        "weights, not metatrain's best-so-far); the last file is the end "
                        "of training; the run's own exported model is metatrain's "
                        "best-validation epoch, which may be another"}
        entries = export_series(stages, args.export_dir, info)
        print(f"{args.name}: trained in {minutes:.1f} min; {len(entries)} models in "
              f"{args.export_dir}")
        return
    MODELS.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / f"{args.name}.pt", MODELS / f"{args.name}.pt")
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
