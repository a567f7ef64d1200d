"""Export a native mdsym model (``mdsym.models.native`` protocol) as a metatomic model.

The exported ``.pt`` file runs anywhere metatomic models run (metatomic-ase,
i-PI's metatomic driver, LAMMPS...) and lets mdsym be compared with metatomic's own
symmetrization tools on exactly the same model. The wrapper passes metatomic's
neighbour list (pairs and pair vectors) to the native model, so metatomic's
autograd gives forces and stress as usual. Conservative models only.
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

from mdsym.core.errors import MdsymError


class NativeAsMetatomic(torch.nn.Module):
    def __init__(self, native: torch.nn.Module, cutoff: float):
        super().__init__()
        self.native = native
        full = bool(getattr(native, "full_neighbour_list", True))
        self.options = NeighborListOptions(cutoff=cutoff, full_list=full, strict=True)

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
            neighbours = system.get_neighbor_list(self.options)
            edge_index = neighbours.samples.values[:, :2].T.to(torch.int64)
            result = self.native(
                system.positions.unsqueeze(0),
                system.cell.unsqueeze(0),
                system.types.to(torch.int64),
                edge_index,
                neighbours.values.reshape(1, -1, 3),
            )
            energies.append(result["energy"].reshape(1))
        block = TensorBlock(
            values=torch.cat(energies).reshape(-1, 1),
            samples=Labels("system", torch.arange(len(systems)).reshape(-1, 1)),
            components=[],
            properties=Labels("energy", torch.tensor([[0]])),
        )
        return {"energy": TensorMap(Labels("_", torch.tensor([[0]])), [block])}


def export_metatomic(native: torch.nn.Module, path, atomic_types: List[int], name: str = "") -> None:
    """Save ``native`` as a metatomic ``.pt`` file for the given atomic numbers."""
    if bool(getattr(native, "direct", False)):
        raise MdsymError("only conservative native models can be exported to metatomic")
    cutoff = float(native.cutoff)
    dtype = next(iter(native.buffers()), torch.zeros((), dtype=torch.float64)).dtype
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        atomic_types=[int(z) for z in atomic_types],
        interaction_range=cutoff,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype={torch.float64: "float64", torch.float32: "float32"}[dtype],
    )
    wrapper = NativeAsMetatomic(native, cutoff).eval()
    AtomisticModel(wrapper, ModelMetadata(name=name or type(native).__name__), capabilities).save(str(path))
