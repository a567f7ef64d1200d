"""Shared pieces of the benchmark suite: threads, timing, structures, models.

Every figure of the suite is a ratio of two timings taken side by side in one
process (interleaved rounds, medians), so that the noise of a shared machine
mostly cancels. Timings use one torch/OpenMP thread (``pin_threads``).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

THREADS = 1
FAST_REPEATS = 50  # most timed calls of a fast callable (see ``interleaved``)


def pin_threads(threads: int = THREADS) -> int:
    """One torch/OpenMP thread for every timing (2 shared cores: more is 10x off)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set in this process
        pass
    return threads


def interleaved(calls: dict, repeats: int = 5, budget_s: float = 20.0, warmup: int = 3) -> dict:
    """Median seconds per call of each callable, timed in interleaved rounds.

    Each callable is first called ``warmup`` times: TorchScript models (metatomic
    .pt files) are profiled and re-optimised over their first calls for each input
    shape, and a PET model needs three calls to settle (measured, 9-atom ethanol,
    8 copies: 352, 527, 88, then 18-21 ms per call). The last warm-up call gives the
    callable's cost. Then in round ``r`` every callable whose own repeat count
    exceeds ``r`` runs once, so that slow and fast ones are measured over the same
    stretch of machine time. A callable's repeat count is as many calls as fit in
    ``budget_s`` seconds, at least one and at most ``max(repeats, FAST_REPEATS)``:
    millisecond calls get enough samples for a stable median.
    """
    cost, counts, times = {}, {}, {name: [] for name in calls}
    for name, call in calls.items():
        for _ in range(max(1, warmup)):
            start = time.perf_counter()
            call()
            cost[name] = time.perf_counter() - start
        counts[name] = max(1, min(max(repeats, FAST_REPEATS), int(budget_s / max(cost[name], 1e-9))))
    for r in range(max(counts.values())):
        for name, call in calls.items():
            if r < counts[name]:
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# --- structures ------------------------------------------------------------------


def copper_cluster(n_atoms: int):
    """The ``n_atoms`` fcc copper sites nearest to a lattice site: an isolated cluster."""
    import ase
    from ase.build import bulk

    side = int(np.ceil((n_atoms / 4) ** (1 / 3))) + 2
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((side, side, side))
    centre = crystal.positions[np.argmin(np.linalg.norm(crystal.positions - crystal.positions.mean(0), axis=1))]
    distance = np.linalg.norm(crystal.positions - centre, axis=1)
    keep = np.argsort(distance, kind="stable")[:n_atoms]
    positions = crystal.positions[keep] - centre
    return ase.Atoms("Cu" * n_atoms, positions=positions, pbc=False)


def replicate(atoms, n_target: int, spacing: float = 8.0):
    """About ``n_target`` atoms built from ``atoms``.

    Periodic: the supercell ``a x b x c`` whose size is closest to ``n_target``
    (never below one cell). Isolated (a molecule): ``k`` copies on a cubic grid, each
    ``spacing`` Angstrom beyond the molecule's extent from its neighbours, so the
    copies do not interact through a short-range model.
    """
    import ase

    n = len(atoms)
    if atoms.pbc.all():
        best = (1, 1, 1)
        for a in range(1, 12):
            for b in range(a, 12):
                for c in range(b, 12):
                    if abs(n * a * b * c - n_target) < abs(n * np.prod(best) - n_target):
                        best = (a, b, c)
        return atoms.repeat(best)
    k = max(1, int(round(n_target / n)))
    side = int(np.ceil(k ** (1 / 3)))
    extent = np.ptp(atoms.positions, axis=0).max() + spacing
    centred = atoms.positions - atoms.positions.mean(0)
    pieces, numbers = [], []
    for index in range(k):
        i, j, l = np.unravel_index(index, (side, side, side))
        pieces.append(centred + extent * np.array([i, j, l], dtype=float))
        numbers.append(atoms.numbers)
    return ase.Atoms(numbers=np.concatenate(numbers), positions=np.concatenate(pieces), pbc=False)


# --- models ----------------------------------------------------------------------

ANALYTIC = "analytic"  # mdsym's default analytic model (Morse + bond2 + vector1)
STANDIN_TYPES = (1, 6, 8)


def shipped_pet_models() -> list:
    """Shipped PET models (``mdsym.models.shipped.names()``), picked up automatically."""
    from mdsym.models import shipped

    return [name for name in shipped.names() if name.startswith("pet")]


def pet_structure(name: str):
    """The structure a shipped model is meant for: its test frames, else by name."""
    import ase.io

    from mdsym.core.defaults import STRUCTURES
    from mdsym.models import shipped

    test = shipped.DATA / f"{name}.test.xyz"
    if test.is_file():
        atoms = ase.io.read(test, index=0)
    elif "water" in name:
        atoms = water_box()
    else:
        atoms = ase.io.read(STRUCTURES / "ethanol.xyz")
    atoms.calc = None
    return atoms


def water_box(n_molecules: int = 16, seed: int = 0):
    """16 H2O in a periodic cube at about liquid density (stand-in structure)."""
    import ase
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    side = (n_molecules * 18.015 / 0.6022 / 1.0) ** (1 / 3)  # 1 g/cm^3
    per_edge = int(np.ceil(n_molecules ** (1 / 3)))
    water = molecule("H2O")
    positions, numbers = [], []
    for index in range(n_molecules):
        cell_index = np.array(np.unravel_index(index, (per_edge,) * 3), dtype=float)
        centre = (cell_index + 0.5) * side / per_edge
        from scipy.spatial.transform import Rotation

        rotation = Rotation.random(random_state=rng).as_matrix()
        positions.append(water.positions @ rotation.T + centre)
        numbers.append(water.numbers)
    return ase.Atoms(numbers=np.concatenate(numbers), positions=np.concatenate(positions),
                     cell=[side] * 3, pbc=True)


def pet_standin(path=None, types=STANDIN_TYPES) -> Path:
    """A STAND-IN for a shipped PET model: metatrain's PET with the shipped
    hyper-parameters (inputs/training/pet-*.yaml) and *random* weights, exported as a
    metatomic .pt. Same architecture and cost as a trained one, meaningless energies:
    only for running the harness before the trained models exist."""
    import torch
    from metatrain.pet import PET
    from metatrain.utils.architectures import get_default_hypers
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info
    from omegaconf import OmegaConf

    path = Path(path or Path(tempfile.mkdtemp(prefix="mdsym-bench-")) / "pet-standin.pt")
    hypers = get_default_hypers("pet")["model"]
    hypers.update(cutoff=4.0, d_pet=64, d_head=64, d_node=128, d_feedforward=128, num_heads=4,
                  num_attention_layers=2, num_gnn_layers=1)
    target = get_energy_target_info(
        "energy",
        OmegaConf.create({"quantity": "energy", "unit": "eV", "per_atom": False, "type": "scalar",
                          "num_subtargets": 1, "description": ""}),
        add_position_gradients=True, add_strain_gradients=True)
    info = DatasetInfo(length_unit="angstrom", atomic_types=list(types), targets={"energy": target})
    torch.manual_seed(0)
    PET(hypers, info).export().save(str(path))
    return path


def analytic_pt(atomic_types, path=None) -> Path:
    """mdsym's analytic model exported as a metatomic .pt (for the metatomic tools)."""
    from mdsym.models import parse_analytic
    from mdsym.models.export import export_metatomic

    path = Path(path or Path(tempfile.mkdtemp(prefix="mdsym-bench-")) / "analytic.pt")
    export_metatomic(parse_analytic(ANALYTIC), path, sorted(set(int(z) for z in atomic_types)))
    return path


def model_cases(include_pet: bool = True, standin_if_missing: bool = True) -> list:
    """The models to benchmark: the analytic model, every shipped PET model, or the
    labelled stand-in when none is shipped yet.

    Each case: ``{"name", "label", "kind": analytic|pet, "standin": bool,
    "mdsym": spec for mdsym.load_model, "structure": callable(n_target) -> Atoms}``.
    """
    cases = [{"name": "analytic", "label": "analytic (Morse + bond2 + vector1)", "kind": "analytic",
              "standin": False, "mdsym": ANALYTIC, "structure": copper_cluster}]
    if not include_pet:
        return cases
    names = shipped_pet_models()
    for name in names:
        from mdsym.models import shipped

        base = pet_structure(name)
        cases.append({"name": name, "label": f"{name} (shipped PET)", "kind": "pet",
                      "standin": False, "mdsym": name, "pt": str(shipped.path(name)),
                      "structure": (lambda n, base=base: replicate(base, n))})
    if not names and standin_if_missing:
        import ase.io

        from mdsym.core.defaults import STRUCTURES

        path = pet_standin()
        base = ase.io.read(STRUCTURES / "ethanol.xyz")
        cases.append({"name": "pet-standin", "kind": "pet", "standin": True,
                      "label": "STAND-IN: untrained PET (shipped hypers, random weights), "
                               "ethanol copies; no shipped PET model yet",
                      "mdsym": str(path), "pt": str(path),
                      "structure": (lambda n, base=base: replicate(base, n))})
    return cases


def environment() -> dict:
    import platform

    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)), "machine": platform.machine(),
            "host": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
