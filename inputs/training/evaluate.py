"""Machine-readable model card of a shipped model: held-out errors and equivariance A.

    python evaluate.py pet-ethanol [pet-water pet-ethanol-noaug ...]

For each name: copies the held-out test set to ``mdsym/models/data/<name>.test.xyz``
(the tests recompute the errors from it), evaluates the shipped model through mdsym
(``mdsym.load_model(name)`` + ``mdsym.MdsymCalculator``, no symmetrization) against
the GFN2-xTB labels, runs ``mdsym equivariance --model <name> --structure <s> --json``
for A, and writes ``mdsym/models/data/<name>.json``. Keys already in the card that
this script does not compute (e.g. ``stability``, written by
``analysis/stability_ethanol.py``) are kept.

A model with a direct force head (a ``non_conservative_force`` output, e.g.
``pet-ethanol-direct``) has two force fields. ``held_out`` and ``equivariance`` are
those of ``mdsym.load_model(name)``, which uses the direct forces (``forces="auto"``;
the equivariance command says ``--forces direct``); ``held_out_conservative`` and
``equivariance_conservative`` are those of ``forces="conservative"`` (-dE/dr), and
``direct_vs_conservative`` is the RMS difference of the two on the test frames.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mdsym.models.metatomic import DIRECT_FORCE_KEYS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = ROOT / "mdsym" / "models" / "data"
STRUCTURES = ROOT / "mdsym" / "data" / "structures"

SYSTEMS = {
    "ethanol": {"structure": "ethanol.xyz", "description":
                "one ethanol molecule in vacuum (9 atoms)"},
    "water": {"structure": "water-16.xyz", "description":
              "16 H2O in a periodic cubic box, 1 g/cm^3 (48 atoms, L = 7.83 A)"},
}


def held_out_errors(name: str, test_file: Path, forces: str = "auto") -> dict:
    """The card's held-out errors of the shipped model ``name`` (``mdsym.serving.held_out``,
    which the tests recompute too), on one torch thread."""
    import torch

    import mdsym
    from mdsym.serving.held_out import held_out_errors as errors_of

    torch.set_num_threads(1)
    return errors_of(mdsym.load_model(name, forces=forces), test_file)


def direct_vs_conservative(name: str, test_file: Path) -> dict:
    """RMS and largest difference between the direct and the conservative forces of
    ``name`` on the frames of ``test_file``, in meV/A."""
    import numpy as np
    import torch
    from ase.io import read

    import mdsym

    torch.set_num_threads(1)
    calculators = {kind: mdsym.MdsymCalculator(mdsym.load_model(name, forces=kind))
                   for kind in ("direct", "conservative")}
    differences = []
    for frame in read(test_file, ":"):
        forces = {}
        for kind, calc in calculators.items():
            atoms = frame.copy()
            atoms.calc = calc
            forces[kind] = atoms.get_forces()
        differences.append((forces["direct"] - forces["conservative"]).ravel())
    differences = np.concatenate(differences)
    return {"rms_difference_meV_per_A": 1e3 * float(np.sqrt(np.mean(differences ** 2))),
            "max_abs_difference_meV_per_A": 1e3 * float(np.abs(differences).max())}


def equivariance(name: str, structure: Path, forces=None) -> dict:
    command = ["mdsym", "equivariance", "--model", name, "--structure",
               str(structure.relative_to(ROOT))]
    if forces is not None:
        command += ["--forces", forces]
    command += ["--json"]
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    report = json.loads(output.stdout)
    result = {"command": " ".join(command), "structure": structure.name,
              "quadrature": report["quadrature"]["name"]}
    for key, unit in (("energy", "eV"), ("forces", "eV_per_A"), ("stress", "eV_per_A3")):
        if key in report:
            result[f"A_{key}_{unit}"] = report[key]["A"]
            result[f"B_{key}"] = {f"{b['lambda']},{'+' if b['sigma'] > 0 else '-'}": b["fraction"]
                                  for b in report[key]["B"]}
    return result


def card(name: str) -> dict:
    from importlib.metadata import version

    from metatomic.torch import load_atomistic_model

    options = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    stages = [options["architecture"]]
    for suffix in ("continue", "continue2", "continue3", "continue4"):
        if (HERE / f"{name}-{suffix}.yaml").exists():
            stages.append(yaml.safe_load((HERE / f"{name}-{suffix}.yaml").read_text())
                          ["architecture"])
    system = "water" if "water" in name else "ethanol"
    test_source = HERE / "data" / f"{system}-test.xyz"
    test_file = MODELS / f"{name}.test.xyz"
    shutil.copy(test_source, test_file)
    model_file = MODELS / f"{name}.pt"
    model = load_atomistic_model(str(model_file))
    outputs = [key for key in model.capabilities().outputs
               if not key.startswith("mtt::") and key not in ("feature", "features")]
    direct = any(key in outputs for key in DIRECT_FORCE_KEYS)
    minutes = HERE / "runs" / name / "training_minutes.txt"
    noaug = name.endswith("-noaug")
    data = {}
    for split in ("train", "val", "test"):
        source = options[{"train": "training_set", "val": "validation_set",
                          "test": "test_set"}[split]]["systems"]["read_from"]
        with open(HERE / source) as handle:
            data[split] = {"file": f"inputs/training/{source}",
                           "n_frames": sum(1 for line in handle if "Properties=" in line)}
    path = MODELS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    new = {
        "name": name,
        "file": f"mdsym/models/data/{name}.pt",
        "size_bytes": model_file.stat().st_size,
        "architecture": "PET (metatrain)",
        "versions": {"metatrain": version("metatrain"), "tblite": version("tblite"),
                     "metatomic-torch": version("metatomic-torch")},
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "reference": "GFN2-xTB, tblite (tblite.ase.TBLite, method='GFN2-xTB')",
        "system": SYSTEMS[system]["description"],
        "structure": f"mdsym/data/structures/{SYSTEMS[system]['structure']}",
        "data": data,
        "augmentation": ("none: metatrain's O3Augmenter switched off by train.py; the model "
                         "sees only the orientations of the MD frames"
                         if noaug else "metatrain default: random O(3) element per structure "
                         "per batch" + (", applied to the direct force target too"
                                        if direct else "")),
        "outputs": outputs,
        "hyperparameters": options["architecture"],
        "training_stages": stages,
        "seed": options.get("seed"),
        "training_minutes_1_cpu_thread": (float(minutes.read_text()) if minutes.exists()
                                          else old.get("training_minutes_1_cpu_thread")),
        "training_command": f"cd inputs/training && python train.py {name}",
        "test_set": f"mdsym/models/data/{name}.test.xyz",
        "held_out": held_out_errors(name, test_file),
        "equivariance": equivariance(name, STRUCTURES / SYSTEMS[system]["structure"],
                                     "direct" if direct else None),
    }
    if direct:
        new["forces"] = ("direct: mdsym.load_model(name) and --model use the "
                         "non_conservative_force output (held_out, equivariance); "
                         "forces='conservative' gives -dE/dr (held_out_conservative, "
                         "equivariance_conservative)")
        new["held_out_conservative"] = held_out_errors(name, test_file, "conservative")
        new["equivariance_conservative"] = equivariance(
            name, STRUCTURES / SYSTEMS[system]["structure"], "conservative")
        new["direct_vs_conservative"] = direct_vs_conservative(name, test_file)
    old.update(new)
    path.write_text(json.dumps(old, indent=2) + "\n")
    return old


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    for name in args.names:
        result = card(name)
        summary = {"name": name, "held_out": result["held_out"],
                   "A": {k: v for k, v in result["equivariance"].items()
                         if k.startswith("A_")}}
        if "held_out_conservative" in result:
            summary["held_out_conservative"] = result["held_out_conservative"]
            summary["A_conservative"] = {k: v for k, v in
                                         result["equivariance_conservative"].items()
                                         if k.startswith("A_")}
            summary["direct_vs_conservative"] = result["direct_vs_conservative"]
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
