"""Native torch models: an ``nn.Module`` or a TorchScript file with a small protocol.

The protocol (the analytic models of ``mdsym.models.analytic`` follow it)::

    class MyModel(torch.nn.Module):
        cutoff: float                 # Angstrom, for the neighbour list
        full_neighbour_list: bool     # optional, default True; False: each pair once
        species: List[int]            # optional: atomic numbers the model knows
        direct: bool                  # optional: True if forward returns "forces"

        def forward(self, positions, cells, numbers, edge_index, edge_vectors):
            # positions (B, N, 3), cells (B, 3, 3): B copies of one system (B rotated
            # copies when symmetrizing); numbers (N,) int64; edge_index (2, P) int64:
            # the pairs i -> j within the cutoff; edge_vectors (B, P, 3): r_j - r_i + S H
            return {"energy": energy}   # (B,); optional "forces" (B, N, 3) direct

Units are eV and Angstrom. Without a ``forces`` output, forces come from autograd
(through the pair vectors, the positions and the cells, whichever the model uses).
The module is moved to the requested device and dtype (``Module.to``); by default it
keeps the dtype of its first parameter or buffer (float64 if it has none).
"""

import torch

from mdsym.core.errors import MdsymError
from mdsym.models.base import TorchModel
from mdsym.models.devices import resolve_device, resolve_dtype


class NativeModel(TorchModel):
    def __init__(self, module: torch.nn.Module, name: str = "native", forces: str = "auto",
                 device=None, dtype=None):
        self.module = module
        self.name = name
        try:
            self.cutoff = float(module.cutoff)
        except AttributeError:
            raise MdsymError(f"native model {name} has no 'cutoff' attribute") from None
        species = getattr(module, "species", None)
        self.species = None if species is None else frozenset(int(z) for z in species)
        floats = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        self.dtype = resolve_dtype(dtype, floats[0].dtype if floats else torch.float64)
        self.device = resolve_device(device)
        module.to(device=self.device, dtype=self.dtype)
        self.full_neighbour_list = bool(getattr(module, "full_neighbour_list", True))
        self.direct_forces = bool(getattr(module, "direct", False))
        if forces not in ("auto", "conservative", "direct"):
            raise MdsymError(f"forces must be auto, conservative or direct, got {forces!r}")
        if forces == "direct" and not self.direct_forces:
            raise MdsymError(f"model {name} has no direct forces output")
        use_direct = self.direct_forces if forces == "auto" else forces == "direct"
        self.forces_kind = "direct" if use_direct else "conservative"

    def compute(self, system, positions, cells, edges, neighbours) -> dict:
        numbers = torch.as_tensor(system.numbers, device=self.device)
        edge_index = torch.stack([neighbours["first"], neighbours["second"]])
        return self.module(positions, cells, numbers, edge_index, edges)


def load_torchscript(path, name=None, forces="auto", device=None, dtype=None) -> NativeModel:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise MdsymError(f"cannot load TorchScript model {path}: {_first_line(error)}") from None
    return NativeModel(module, name=name or str(path), forces=forces, device=device, dtype=dtype)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
