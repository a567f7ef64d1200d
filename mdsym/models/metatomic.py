"""metatomic models (``.pt`` files exported with metatomic-torch: PET, PET-MAD, UPET...).

The neighbour lists the model requests are computed once per structure (vesin) and
shared by every rotated copy: the pair vectors of copy ``g`` are recomputed in torch
from the rotated (and strained) positions and cell, so autograd gives forces and
stress as for the raw model. All copies of a batch go through the model in one call.

Device and dtype: the model runs on a device its ``capabilities.supported_devices``
lists (``auto``: CUDA when available and supported, else the CPU) and in its declared
``capabilities.dtype``; a float32 model may also run in float64: metatomic's
``AtomisticModel.to(dtype=)`` (torch's ``Module.to``) converts its weights exactly, and
only metatomic's consistency check, which compares with the declared dtype, objects.

Outputs (``mdsym.models.outputs``): the energy of ``variant`` (``energy/NAME``, as
metatomic and i-PI name it; None: the plain ``energy``), its direct forces
(``non_conservative_force``) with ``forces`` direct or auto, and, when the model
declares one, its ``energy_uncertainty`` (per structure, eV) beside every prediction.
"""

from pathlib import Path

import numpy as np
import torch
from metatensor.torch import Labels, TensorBlock
from metatomic.torch import ModelEvaluationOptions, ModelOutput, System, load_atomistic_model

from mdsym.core.errors import MdsymError
from mdsym.core.rotations import rotate_vectors
from mdsym.models.base import TorchModel
from mdsym.models.devices import dtype_name, resolve_device, resolve_dtype
from mdsym.models.outputs import DIRECT_FORCE_KEYS, select_outputs


class MetatomicModel(TorchModel):
    # learned models carry wide per-pair features: keep batches small (measured:
    # 9-atom ethanol fastest with all 48 copies together, 48 waters with 1 to 4)
    pair_budget = 8192

    def __init__(self, path, name=None, forces: str = "auto", check_consistency: bool = False,
                 device=None, dtype=None, variant=None):
        path = Path(path)
        if not path.exists():
            raise MdsymError(f"model file not found: {path}")
        try:
            self.model = load_atomistic_model(str(path))
        except Exception as error:
            message = str(error).strip().splitlines()
            reason = message[0] if message else type(error).__name__
            raise MdsymError(f"cannot load metatomic model {path}: {reason}") from None
        self.name = name or path.stem
        self.check_consistency = check_consistency
        capabilities = self.model.capabilities()
        self.species = frozenset(int(z) for z in capabilities.atomic_types)
        self.dtype, self.device = _placement(capabilities, self.name, device, dtype, check_consistency)
        self.model.to(dtype=self.dtype, device=self.device)
        outputs = capabilities.outputs
        self.outputs = select_outputs(outputs, self.name, variant, forces)
        self.variant = self.outputs.variant
        self.direct_key = self.outputs.direct_forces
        self.has_stress = True
        self.forces_kind = self.outputs.forces_kind
        self.extra_outputs = ("energy_uncertainty",) if self.outputs.uncertainty else ()
        # in the model's own units (Angstrom, eV) the inner module can be called directly,
        # as metatomic's SymmetrizedModel does: no per-system unit conversion and
        # output checks on every rotated copy (3 ms of 25 for 8 copies of ethanol)
        energy_unit = outputs[self.outputs.energy].unit
        self.direct_module = (
            capabilities.length_unit.lower() in ("angstrom", "a") and energy_unit == "eV"
            and not check_consistency
        )
        self.requests = list(self.model.requested_neighbor_lists())
        # the first requested list is the one TorchModel rotates; others (rare) are
        # recomputed from the rotated positions and cells
        if self.requests:
            self.cutoff = self.requests[0].engine_cutoff("angstrom")
            self.full_neighbour_list = self.requests[0].full_list

    def compute(self, system, positions, cells, edges, neighbours) -> dict:
        systems = self.systems(system, positions, cells, edges)
        keys = self.outputs
        requested = {keys.energy: ModelOutput(unit="eV", sample_kind="system")}
        if self.forces_kind == "direct":
            requested[self.direct_key] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
        if keys.uncertainty is not None:
            requested[keys.uncertainty] = ModelOutput(unit="eV", sample_kind="system")
        options = ModelEvaluationOptions(length_unit="angstrom", outputs=requested)
        try:
            if self.direct_module:
                predictions = self.model.module(systems, requested, None)
                if self.forces_kind == "direct" and self.direct_key not in predictions:
                    predictions = self.module_direct_name(systems, requested, predictions)
            else:
                predictions = self.model(systems, options, check_consistency=self.check_consistency)
        except Exception as error:
            message = str(error).strip().splitlines()
            raise MdsymError(f"model {self.name} failed: {message[0] if message else error}") from None
        results = {"energy": predictions[keys.energy].block().values.reshape(-1)}
        if keys.uncertainty is not None:  # an estimate, not differentiated
            results["energy_uncertainty"] = predictions[keys.uncertainty].block().values.reshape(-1)
        if self.forces_kind == "direct":
            forces = predictions[self.direct_key].block().values
            results["forces"] = forces.reshape(positions.shape[0], positions.shape[1], 3)
        return results

    def module_direct_name(self, systems, requested, predictions):
        """The direct forces under the name the inner module itself knows: metatomic lists
        both ``non_conservative_force`` and its older name ``non_conservative_forces`` for a
        model exported with one of them, but only ``AtomisticModel`` maps the other one
        (called here without it, the module answers to its own name only)."""
        suffix = self.direct_key[len(self.direct_key.split("/")[0]):]
        for key in DIRECT_FORCE_KEYS:
            other = key + suffix
            if other != self.direct_key:
                asked = {k: v for k, v in requested.items() if k != self.direct_key}
                asked[other] = requested[self.direct_key]
                answer = self.model.module(systems, asked, None)
                if other in answer:
                    self.direct_key = other  # remembered: one probe per model
                    return answer
        return predictions

    def systems(self, system, positions, cells, edges) -> list:
        """One metatomic System per copy, with the requested neighbour lists."""
        device = self.device
        types = torch.as_tensor(system.numbers, dtype=torch.int32, device=device)
        pbc = torch.as_tensor(system.pbc, device=device)
        lists = []
        for request in self.requests:
            nl = system.neighbours(request.engine_cutoff("angstrom"), request.full_list)
            samples = Labels(
                ["first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"],
                torch.from_numpy(
                    np.column_stack([nl.first, nl.second, nl.shifts]).astype(np.int32)
                ).to(device),
            )
            if (nl.cutoff, nl.full) == (self.cutoff, self.full_neighbour_list):
                vectors = edges
            else:
                shifts = torch.from_numpy(nl.shifts).to(device, self.dtype)
                vectors = (
                    positions[:, torch.from_numpy(nl.second).to(device)]
                    - positions[:, torch.from_numpy(nl.first).to(device)]
                    + torch.einsum("pk,bkj->bpj", shifts, cells)
                )
            lists.append((request, samples, vectors))
        xyz = Labels("xyz", torch.arange(3, device=device).reshape(-1, 1))
        distance = Labels("distance", torch.zeros((1, 1), dtype=torch.int32, device=device))
        systems = []
        for b in range(positions.shape[0]):
            copy = System(types, positions[b], cells[b], pbc)
            for request, samples, vectors in lists:
                block = TensorBlock(vectors[b].reshape(-1, 3, 1), samples, [xyz], distance)
                copy.add_neighbor_list(request, block)
            systems.append(copy)
        return systems

    def rotated_systems(self, system, rotations) -> list:
        """The metatomic systems of the copies ``r R_g^T`` (no autograd leaves), as
        ``evaluate`` builds them: for measurements inside the model (hidden layers)."""
        rotations = torch.as_tensor(rotations, dtype=self.dtype, device=self.device)
        positions = rotate_vectors(torch.as_tensor(system.positions, dtype=self.dtype,
                                                   device=self.device), rotations)
        cells = rotate_vectors(torch.as_tensor(system.cell, dtype=self.dtype, device=self.device),
                               rotations)
        edges = rotate_vectors(self.neighbour_tensors(system)["vectors"], rotations)
        return self.systems(system, positions, cells, edges)


def _placement(capabilities, name, device, dtype, check_consistency) -> tuple:
    """(dtype, device) for a metatomic model: one line for a combination it does not support."""
    declared = resolve_dtype(capabilities.dtype, torch.float64)
    chosen = resolve_dtype(dtype, declared)
    # an exact conversion: float32 weights are float64 numbers (see the module docstring)
    allowed = (declared, torch.float64) if declared == torch.float32 else (declared,)
    if chosen not in allowed:
        raise MdsymError(f"model {name} is {dtype_name(declared)} (its capabilities.dtype) and "
                         f"cannot run in {dtype_name(chosen)}: use --dtype {dtype_name(declared)}")
    if chosen != declared and check_consistency:
        raise MdsymError(f"model {name}: metatomic's consistency check needs the declared dtype "
                         f"{dtype_name(declared)}, not {dtype_name(chosen)}")
    supported = list(capabilities.supported_devices)
    if device is None or str(device).strip().lower() == "auto":
        wanted = "cuda" if torch.cuda.is_available() and "cuda" in supported else "cpu"
        placed = resolve_device(wanted)
    else:
        placed = resolve_device(device)
    if placed.type not in supported:
        raise MdsymError(f"model {name} does not support device {placed.type} (its "
                         f"capabilities.supported_devices: {', '.join(supported)})")
    return chosen, placed
