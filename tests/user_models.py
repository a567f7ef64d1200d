"""Small stand-ins for the model files users bring, built inside the tests (no download):

- ``export_foundation_like``: a metatomic ``.pt`` declaring what PET-MAD / UPET files
  declare: ``energy`` and energy variants ``energy/NAME`` (``pbe``, ``r2scan``), each
  with its ``energy_uncertainty[/NAME]`` and ``non_conservative_force[/NAME]``, in
  float32 or float64. The energy is a Morse-like pair sum plus a P_2 term on a fixed
  axis (so symmetrizing changes it), scaled per variant; the direct forces are the
  conservative ones of the isotropic part plus a constant push along the axis (not
  equivariant), so that ``--forces direct`` and the conservative forces differ. Its
  parameters hold water (H, O) together over a few hundred femtoseconds, no more;
- ``write_ase_calculator_file``: a Python file holding an ASE calculator (as an Orb
  user writes one): ASE's Lennard-Jones, named ``Calculator`` in the file.
"""

from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

VARIANTS = {"pbe": 1.0, "r2scan": 1.1}  # variant -> energy scale
TYPES = [1, 8]  # water only: a structure with other elements is refused


class FoundationLike(torch.nn.Module):
    def __init__(self, cutoff: float, scales: Dict[str, float], dtype: torch.dtype):
        super().__init__()
        self.options = NeighborListOptions(cutoff=cutoff, full_list=False, strict=True)
        self.cutoff = cutoff
        self.scales = scales
        self.register_buffer("axis", torch.tensor([0.31, 0.52, 0.79], dtype=dtype) / 0.9914)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def pair_terms(self, system: System):
        """Pair indices, vectors, distances, the isotropic energy per pair and its
        derivative in r, and the anisotropic energy per pair."""
        neighbours = system.get_neighbor_list(self.options)
        pairs = neighbours.samples.values[:, :2].to(torch.int64)
        vectors = neighbours.values.reshape(-1, 3)
        r = torch.linalg.norm(vectors, dim=1)
        # Morse by species pair: O-H bonds deep and short, H-H and O-O shallow
        z = system.types.to(torch.int64)
        bond = (z[pairs[:, 0]] != z[pairs[:, 1]]).to(r.dtype)
        oxygen = (z[pairs[:, 0]] == 8).to(r.dtype) * (z[pairs[:, 1]] == 8).to(r.dtype)
        depth = 0.05 + 0.45 * bond
        r0 = 0.97 * bond + (1 - bond) * (1.55 + 1.35 * oxygen)
        switch = 0.5 * (torch.cos(torch.pi * r / self.cutoff) + 1.0)
        d_switch = -0.5 * torch.pi / self.cutoff * torch.sin(torch.pi * r / self.cutoff)
        e = torch.exp(-2.0 * (r - r0))
        morse = depth * ((1.0 - e) ** 2 - 1.0)
        d_morse = depth * 4.0 * (1.0 - e) * e
        cosine = (vectors @ self.axis) / r
        anisotropic = 0.03 * (1.5 * cosine**2 - 0.5) * switch
        return pairs, vectors, r, morse * switch, d_morse * switch + morse * d_switch, anisotropic

    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels] = None) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        pushes: List[torch.Tensor] = []
        counts: List[int] = []
        for system in systems:
            pairs, vectors, r, isotropic, d_isotropic, anisotropic = self.pair_terms(system)
            energies.append((isotropic + anisotropic).sum().reshape(1))
            n = system.positions.shape[0]
            counts.append(n)
            # direct forces: those of the isotropic part, plus a push along the axis
            along = (d_isotropic / r).unsqueeze(1) * vectors.detach()
            forces = torch.zeros((n, 3), dtype=vectors.dtype, device=vectors.device)
            forces.index_add_(0, pairs[:, 0], along.detach())
            forces.index_add_(0, pairs[:, 1], -along.detach())
            pushes.append(forces + 0.02 * self.axis)
        energy = torch.cat(energies).reshape(-1, 1)
        n_systems = len(systems)
        system_samples = Labels("system", torch.arange(n_systems, device=energy.device).reshape(-1, 1))
        results: Dict[str, TensorMap] = {}
        for key in outputs.keys():
            base = key.split("/")[0]
            suffix = key[len(base):]
            scale = self.scales["energy" + suffix]
            if base == "energy":
                values = scale * energy
            elif base == "energy_uncertainty":
                sizes = torch.tensor(counts, dtype=energy.dtype, device=energy.device)
                values = (0.01 * scale * torch.sqrt(sizes)).reshape(-1, 1)
            else:  # non_conservative_force
                values = scale * torch.cat(pushes).reshape(-1, 3, 1)
                atoms = torch.cat([torch.stack([torch.full((c,), s, dtype=torch.int32),
                                                torch.arange(c, dtype=torch.int32)], dim=1)
                                   for s, c in enumerate(counts)])
                block = TensorBlock(values, Labels(["system", "atom"], atoms.to(values.device)),
                                    [Labels("xyz", torch.arange(3, device=values.device).reshape(-1, 1))],
                                    Labels("non_conservative_force", torch.tensor([[0]], device=values.device)))
                results[key] = TensorMap(Labels("_", torch.tensor([[0]], device=values.device)), [block])
                continue
            block = TensorBlock(values, system_samples, [],
                                Labels(base, torch.tensor([[0]], device=values.device)))
            results[key] = TensorMap(Labels("_", torch.tensor([[0]], device=values.device)), [block])
        return results


def export_foundation_like(path, dtype: str = "float32", variants=tuple(VARIANTS), plain: bool = True,
                           uncertainty: bool = True, direct: bool = True, types=tuple(TYPES)) -> None:
    """Save the stand-in as a metatomic ``.pt`` (see the module docstring)."""
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    suffixes = ([""] if plain else []) + [f"/{v}" for v in variants]
    scales = {"energy" + s: (VARIANTS.get(s[1:], 1.0) if s else 1.0) for s in suffixes}
    outputs = {}
    for s in suffixes:
        outputs["energy" + s] = ModelOutput(unit="eV", sample_kind="system",
                                            description=f"stand-in energy{s}")
        if uncertainty:
            outputs["energy_uncertainty" + s] = ModelOutput(unit="eV", sample_kind="system",
                                                            description=f"stand-in uncertainty{s}")
        if direct:
            outputs["non_conservative_force" + s] = ModelOutput(
                unit="eV/Angstrom", sample_kind="atom", description=f"stand-in direct forces{s}")
    capabilities = ModelCapabilities(outputs=outputs, atomic_types=list(types), interaction_range=4.0,
                                     length_unit="angstrom", supported_devices=["cpu"], dtype=dtype)
    module = FoundationLike(4.0, scales, torch_dtype).eval()
    metadata = ModelMetadata(name="foundation-like stand-in (test)")
    AtomisticModel(module, metadata, capabilities).save(str(path))


ASE_CALCULATOR_FILE = '''"""A user's ASE calculator (as an Orb user writes orb.py:Calculator)."""
from ase.calculators.lj import LennardJones

Calculator = LennardJones(sigma=0.85, epsilon=0.01, rc=4.0, smooth=True)


def make():
    return LennardJones(sigma=0.85, epsilon=0.01, rc=4.0, smooth=True)
'''


def write_ase_calculator_file(path) -> None:
    path.write_text(ASE_CALCULATOR_FILE)


def water_box(n_molecules: int = 16, seed: int = 0):
    """``n_molecules`` H2O, randomly turned, on a cubic grid in a periodic cube at
    1 g/cm^3 (no two atoms of different molecules closer than about 1 A): the
    structure these stand-ins are run on."""
    import ase
    import numpy as np
    from ase.build import molecule
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    side = (n_molecules * 18.015 / 0.6022) ** (1 / 3)
    per_edge = int(np.ceil(n_molecules ** (1 / 3)))
    water = molecule("H2O")
    positions = []
    for index in range(n_molecules):
        centre = (np.array(np.unravel_index(index, (per_edge,) * 3)) + 0.5) * side / per_edge
        positions.append(water.positions @ Rotation.random(random_state=rng).as_matrix().T + centre)
    return ase.Atoms(numbers=np.tile(water.numbers, n_molecules), positions=np.concatenate(positions),
                     cell=[side] * 3, pbc=True)
