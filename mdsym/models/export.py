"""Export a native mdsym model (``mdsym.models.native`` protocol) as a metatomic model.

The exported ``.pt`` file runs anywhere metatomic models run (metatomic-ase,
i-PI's metatomic driver, LAMMPS...) and lets mdsym be compared with metatomic's own
symmetrization tools on exactly the same model. The wrapper passes metatomic's
neighbour list (pairs and pair vectors) to the native model, so metatomic's
autograd gives forces and stress as usual. A direct model's ``forces`` output
becomes metatomic's ``non_conservative_force``. The whole system's energy only
(no per-atom energies, no ``selected_atoms``).
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

DIRECT = "non_conservative_force"


class NativeAsMetatomic(torch.nn.Module):
    direct: bool

    def __init__(self, native: torch.nn.Module, cutoff: float):
        super().__init__()
        self.native = native
        full = bool(getattr(native, "full_neighbour_list", True))
        self.direct = bool(getattr(native, "direct", False))
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
        forces: List[torch.Tensor] = []
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
            if self.direct and "non_conservative_force" in outputs:
                forces.append(result["forces"].reshape(-1, 3))
        device = systems[0].positions.device
        block = TensorBlock(
            values=torch.cat(energies).reshape(-1, 1),
            samples=Labels("system", torch.arange(len(systems), device=device).reshape(-1, 1)),
            components=[],
            properties=Labels("energy", torch.tensor([[0]], device=device)),
        )
        keys = Labels("_", torch.tensor([[0]], device=device))
        results = {"energy": TensorMap(keys, [block])}
        if len(forces) > 0:
            rows: List[torch.Tensor] = []
            for index, system in enumerate(systems):
                n = system.positions.shape[0]
                rows.append(torch.stack([torch.full((n,), index, device=device, dtype=torch.int32),
                                         torch.arange(n, device=device, dtype=torch.int32)], dim=1))
            forces_block = TensorBlock(
                values=torch.cat(forces).reshape(-1, 3, 1),
                samples=Labels(["system", "atom"], torch.cat(rows)),
                components=[Labels("xyz", torch.arange(3, device=device).reshape(-1, 1))],
                properties=Labels("non_conservative_force", torch.tensor([[0]], device=device)),
            )
            results["non_conservative_force"] = TensorMap(keys, [forces_block])
        return results


def native_capabilities(native: torch.nn.Module, atomic_types: List[int], dtype=None) -> ModelCapabilities:
    """What a native model exported as metatomic declares (its dtype: its first float
    buffer's, float64 if it has none, unless ``dtype`` says)."""
    if dtype is None:
        dtype = next(iter(native.buffers()), torch.zeros((), dtype=torch.float64)).dtype
    outputs = {"energy": ModelOutput(unit="eV", sample_kind="system")}
    if bool(getattr(native, "direct", False)):
        outputs[DIRECT] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
    return ModelCapabilities(
        outputs=outputs,
        atomic_types=[int(z) for z in atomic_types],
        interaction_range=float(native.cutoff),
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype={torch.float64: "float64", torch.float32: "float32"}[dtype],
    )


def export_metatomic(native: torch.nn.Module, path, atomic_types: List[int], name: str = "") -> None:
    """Save ``native`` as a metatomic ``.pt`` file for the given atomic numbers."""
    capabilities = native_capabilities(native, atomic_types)
    wrapper = NativeAsMetatomic(native, float(native.cutoff)).eval()
    AtomisticModel(wrapper, ModelMetadata(name=name or type(native).__name__), capabilities).save(str(path))
