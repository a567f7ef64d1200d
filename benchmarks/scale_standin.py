"""The stand-in of foundation-model size and the systems of ``bench_scale.py``.

STAND-IN, NOT A TRAINED MODEL: metatrain's PET with the architecture of a published
PET-MAD size and **random weights** (seed 0), exported as a metatomic ``.pt`` into a
cache outside git (``$MDSYM_BENCH_CACHE``, else ``~/.cache/mdsym-bench``; 17 MB for
XS, 98 MB for S, never shipped). Its cost and memory are those of the architecture;
its energies mean nothing.

The hyper-parameters published for each size (UPET documentation, "Model sizes", after
Bigi et al. 2026, Table IV; read 2026-12-04): node and edge feature dimensions
(``d_node``, ``d_pet``), GNN and attention layers, graph cutoff and adaptive neighbour
number (PET-MAD 1.6's). Not published there: ``d_feedforward`` and ``d_head``; here
``d_feedforward = 4 d_pet`` and ``d_head = d_pet``, which give 4.45 M and 26.2 M
parameters against the published 4.5 M (XS) and 25.9 M (S). The rest is metatrain's
PET default (SwiGLU, RMSNorm, PreLN, feed-forward featurizer, 8 heads), 102 elements
(H to No) as PET-MAD declares.

The systems: the shipped ``water-16.xyz`` (48 atoms, periodic) replicated to about N
atoms (periodic), and an isolated droplet of about N atoms: the whole water molecules
of a larger replicated box nearest to its centre.
"""

import json
import os
from pathlib import Path

import numpy as np

#: published (UPET docs, "Model sizes") + the two chosen here (see the module docstring)
SIZES = {
    "xs": {"d_node": 512, "d_pet": 128, "num_gnn_layers": 2, "num_attention_layers": 1,
           "cutoff": 7.5, "num_neighbors_adaptive": 16, "published_parameters": 4.5e6},
    "s": {"d_node": 1024, "d_pet": 256, "num_gnn_layers": 3, "num_attention_layers": 1,
          "cutoff": 8.0, "num_neighbors_adaptive": 24, "published_parameters": 25.9e6},
    "m": {"d_node": 1536, "d_pet": 384, "num_gnn_layers": 3, "num_attention_layers": 2,
          "cutoff": 8.5, "num_neighbors_adaptive": 32, "published_parameters": 109e6},
    # not a PET-MAD size: the smallest PET that runs the harness (CI, --tiny)
    "tiny": {"d_node": 32, "d_pet": 16, "num_gnn_layers": 1, "num_attention_layers": 1,
             "cutoff": 4.0, "num_neighbors_adaptive": None, "published_parameters": float("nan")},
}
ELEMENTS = list(range(1, 103))
WATER = "water-16.xyz"


def cache_dir() -> Path:
    folder = Path(os.environ.get("MDSYM_BENCH_CACHE") or Path.home() / ".cache" / "mdsym-bench")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def label(size: str) -> str:
    h = SIZES[size]
    if size == "tiny":
        return "TEST-ONLY tiny PET (random weights; not a PET-MAD size): only checks that the harness runs"
    return (f"STAND-IN (random weights, not a trained model): metatrain PET with PET-MAD-{size.upper()}'s "
            f"published architecture (d_node {h['d_node']}, d_pet {h['d_pet']}, {h['num_gnn_layers']} GNN "
            f"x {h['num_attention_layers']} attention layers, cutoff {h['cutoff']} A, "
            f"{h['num_neighbors_adaptive']} adaptive neighbours)")


def standin(size: str = "xs", folder=None) -> dict:
    """The stand-in's ``.pt`` (built once into the cache) and what it is."""
    folder = Path(folder) if folder else cache_dir()
    path = folder / f"pet-mad-{size}-standin-seed0.pt"
    info_path = path.with_suffix(".json")
    if not path.exists() or not info_path.exists():
        info_path.write_text(json.dumps({"parameters": build(size, path)}))
    parameters = json.loads(info_path.read_text())["parameters"]
    return {"path": str(path), "size": size, "label": label(size), "parameters": parameters,
            "published_parameters": SIZES[size]["published_parameters"],
            "hypers": {k: v for k, v in SIZES[size].items() if k != "published_parameters"}}


def build(size, path) -> int:
    """Export the stand-in to ``path``; its parameter count."""
    import torch
    from metatrain.pet import PET
    from metatrain.utils.architectures import get_default_hypers
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info
    from omegaconf import OmegaConf

    hypers = get_default_hypers("pet")["model"]
    published = {k: v for k, v in SIZES[size].items() if k != "published_parameters"}
    hypers.update(published, d_feedforward=4 * published["d_pet"], d_head=published["d_pet"])
    target = get_energy_target_info(
        "energy",
        OmegaConf.create({"quantity": "energy", "unit": "eV", "per_atom": False, "type": "scalar",
                          "num_subtargets": 1, "description": ""}),
        add_position_gradients=True, add_strain_gradients=True)
    info = DatasetInfo(length_unit="angstrom", atomic_types=ELEMENTS, targets={"energy": target})
    torch.manual_seed(0)
    model = PET(hypers, info)
    partial = Path(str(path) + ".partial")
    model.export().save(str(partial))
    partial.rename(path)
    return int(sum(p.numel() for p in model.parameters()))


def water_box(n_atoms: int):
    """The shipped water replicated to the supercell closest to ``n_atoms`` (periodic)."""
    import ase.io
    from common import replicate

    from mdsym.core.defaults import STRUCTURES

    return replicate(ase.io.read(STRUCTURES / WATER), n_atoms)


def droplet(n_atoms: int):
    """About ``n_atoms`` atoms of whole water molecules nearest to the centre of a larger
    replicated box, isolated and centred (oxygen-hydrogen-hydrogen order kept)."""
    import ase

    box = water_box(int(n_atoms * 3.5))
    molecules = len(box) // 3
    positions = box.positions.reshape(molecules, 3, 3)
    # make each molecule whole (its hydrogens beside its oxygen), then pick by oxygen
    cell = box.cell.array
    for k in (1, 2):
        d = positions[:, k] - positions[:, 0]
        fractional = d @ np.linalg.inv(cell)
        positions[:, k] = positions[:, 0] + (fractional - np.round(fractional)) @ cell
    centre = 0.5 * cell.sum(axis=0)
    order = np.argsort(np.linalg.norm(positions[:, 0] - centre, axis=1), kind="stable")
    keep = np.sort(order[: max(1, round(n_atoms / 3))])
    chosen = positions[keep].reshape(-1, 3)
    numbers = box.numbers.reshape(molecules, 3)[keep].reshape(-1)
    return ase.Atoms(numbers=numbers, positions=chosen - chosen.mean(axis=0), pbc=False)
