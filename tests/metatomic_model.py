"""A tiny metatomic model exported inside the tests: Morse pairs + a P_2 bond term."""

import math
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


class AnisotropicPairs(torch.nn.Module):
    def __init__(self, cutoff: float = 5.0, strength: float = 0.05):
        super().__init__()
        self.cutoff = cutoff
        self.strength = strength
        self.options = NeighborListOptions(cutoff=cutoff, full_list=True, strict=True)
        axis = torch.tensor([0.31, 0.52, 0.79], dtype=torch.float64)
        self.register_buffer("axis", axis / axis.norm())

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        energies: List[torch.Tensor] = []
        for system in systems:
            vectors = system.get_neighbor_list(self.options).values.reshape(-1, 3)
            r = torch.linalg.norm(vectors, dim=1)
            fc = 0.5 * (1.0 + torch.cos(math.pi * r / self.cutoff))
            morse = 0.3429 * ((1.0 - torch.exp(-1.3588 * (r - 2.866))) ** 2 - 1.0)
            cos_axis = (vectors @ self.axis) / r
            legendre = 0.5 * (3.0 * cos_axis**2 - 1.0)
            energies.append(0.5 * (fc * morse).sum() + self.strength * (fc * legendre).sum())
        block = TensorBlock(
            values=torch.stack(energies).reshape(-1, 1),
            samples=Labels("system", torch.arange(len(systems)).reshape(-1, 1)),
            components=[],
            properties=Labels("energy", torch.tensor([[0]])),
        )
        return {"energy": TensorMap(Labels("_", torch.tensor([[0]])), [block])}


def export(path, cutoff: float = 5.0, strength: float = 0.05) -> None:
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        atomic_types=[29],
        interaction_range=cutoff,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    module = AnisotropicPairs(cutoff, strength).eval()
    AtomisticModel(module, ModelMetadata(name="anisotropic pairs"), capabilities).save(str(path))
