"""The one model interface of mdsym.

A model evaluates a batch of rotated copies of one system and returns its
predictions *in the rotated frames* (the symmetrizer brings them back):

- ``energy``: ``(G,)`` eV
- ``forces``: ``(G, N, 3)`` eV/Angstrom, conservative (autograd) or direct
- ``stress``: ``(G, 3, 3)`` eV/Angstrom^3, periodic systems only

``TorchModel`` implements the autograd part once for every torch-based model: the
rotated positions ``r R^T`` are the leaves of the graph, conservative forces are
``-dE/dr'`` and the stress is ``(1/V) dE/d(strain)`` of the rotated cell.
"""

import abc

import numpy as np
import torch

from ..errors import MdsymError
from ..rotations import rotate_vectors
from ..system import System

PROPERTIES = ("energy", "forces", "stress")


class Model(abc.ABC):
    """Anything that maps rotated copies of a system to energy, forces, stress."""

    #: short human-readable name, recorded in run.json and reports
    name: str = "model"
    #: atomic numbers the model knows, or None for any
    species = None
    #: "conservative" (forces = -dE/dr) or "direct" (forces predicted directly)
    forces_kind: str = "conservative"
    #: whether the model can give a stress for periodic systems
    has_stress: bool = True

    def check_system(self, system: System) -> None:
        if self.species is not None:
            unknown = sorted(set(system.numbers.tolist()) - set(self.species))
            if unknown:
                from ase.data import chemical_symbols

                names = ", ".join(chemical_symbols[z] for z in unknown)
                known = ", ".join(chemical_symbols[z] for z in sorted(self.species))
                raise MdsymError(
                    f"model {self.name} does not know species {names} (it knows {known})"
                )

    @abc.abstractmethod
    def evaluate(self, system: System, rotations: np.ndarray, properties) -> dict:
        """Predictions for the copies ``r R_g^T`` of ``system``, in their frames."""


class TorchModel(Model):
    """A model written as a torch function of batched positions and cells."""

    dtype = torch.float64
    device = torch.device("cpu")
    cutoff: float = 0.0
    full_neighbour_list: bool = True

    @abc.abstractmethod
    def compute(self, system: System, positions, cells, neighbours) -> dict:
        """Torch outputs ``energy`` (B,) and optionally direct ``forces`` (B, N, 3).

        ``positions`` is ``(B, N, 3)``, ``cells`` ``(B, 3, 3)``; ``neighbours`` is
        the system's neighbour list as torch tensors (``first``, ``second``,
        ``shifts``), shared by the whole batch.
        """

    def neighbour_tensors(self, system: System) -> dict:
        nl = system.neighbours(self.cutoff, self.full_neighbour_list)
        return {
            "first": torch.from_numpy(nl.first).to(self.device),
            "second": torch.from_numpy(nl.second).to(self.device),
            "shifts": torch.from_numpy(nl.shifts).to(self.device, self.dtype),
        }

    def evaluate(self, system: System, rotations: np.ndarray, properties) -> dict:
        self.check_system(system)
        rotations = torch.as_tensor(rotations, dtype=self.dtype, device=self.device)
        positions = rotate_vectors(
            torch.as_tensor(system.positions, dtype=self.dtype, device=self.device),
            rotations,
        )
        cells = rotate_vectors(
            torch.as_tensor(system.cell, dtype=self.dtype, device=self.device), rotations
        )
        want_forces = "forces" in properties and self.forces_kind == "conservative"
        want_stress = "stress" in properties and system.periodic and self.has_stress
        neighbours = self.neighbour_tensors(system)

        with torch.enable_grad():
            if want_forces:
                positions.requires_grad_(True)
            if want_stress:
                strain = torch.eye(3, dtype=self.dtype, device=self.device)
                strain = strain.expand(len(rotations), 3, 3).clone().requires_grad_(True)
                positions_in = positions @ strain
                cells_in = cells @ strain
            else:
                positions_in, cells_in = positions, cells
            outputs = self.compute(system, positions_in, cells_in, neighbours)
            energy = outputs["energy"]
            inputs = ([positions] if want_forces else []) + ([strain] if want_stress else [])
            if inputs:
                grads = torch.autograd.grad(energy.sum(), inputs, allow_unused=True)
                grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]

        results = {"energy": energy.detach().cpu().numpy().astype(np.float64)}
        if "forces" in properties:
            forces = -grads[0] if want_forces else outputs["forces"]
            results["forces"] = forces.detach().cpu().numpy().astype(np.float64)
        if want_stress:
            volume = abs(np.linalg.det(system.cell))
            stress = grads[-1] / volume
            results["stress"] = stress.detach().cpu().numpy().astype(np.float64)
        elif "stress" in properties and system.periodic:
            raise MdsymError(f"model {self.name} cannot compute a stress")
        _check_finite(results, self.name)
        return results


def _check_finite(results: dict, name: str) -> None:
    for key, value in results.items():
        if not np.all(np.isfinite(value)):
            raise NonFiniteOutput(f"model {name} returned non-finite {key}")


class NonFiniteOutput(MdsymError):
    """The model produced NaN or inf: a stability monitor trips on this."""


def edge_vectors(positions, cells, neighbours):
    """Pair vectors ``r_j - r_i + S H`` for a batch: ``(B, P, 3)``."""
    first, second, shifts = neighbours["first"], neighbours["second"], neighbours["shifts"]
    return (
        positions[:, second]
        - positions[:, first]
        + torch.einsum("pk,bkj->bpj", shifts, cells)
    )
