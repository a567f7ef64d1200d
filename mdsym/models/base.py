"""The one model interface of mdsym.

A model evaluates a batch of rotated copies of one system and returns its
predictions *in the rotated frames* (the symmetrizer brings them back):

- ``energy``: ``(G,)`` eV
- ``forces``: ``(G, N, 3)`` eV/Angstrom, conservative (autograd) or direct
- ``stress``: ``(G, 3, 3)`` eV/Angstrom^3, periodic systems only

``TorchModel`` implements the autograd part once for every torch-based model: the
rotated positions ``r R^T`` are the leaves of the graph, conservative forces are
``-dE/dr'`` and the stress is ``(1/V) dE/d(strain)`` of the rotated cell. Its tensors
live on the model's ``device`` in its ``dtype`` (``mdsym.models.devices``); whatever
they are, predictions come back as float64 numpy arrays on the CPU.
"""

import abc
import functools

import numpy as np
import torch
from ase.data import chemical_symbols

from mdsym.core.errors import MdsymError
from mdsym.core.rotations import rotate_vectors
from mdsym.core.system import System
from mdsym.models.memory import fitting_batch

#: outputs a model may give beside its predictions, one value per copy, passed through
#: (averaged over rotations like the energy): the model's own error estimate, in eV
EXTRA_OUTPUTS = ("energy_uncertainty",)


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
    #: where the model runs, and its precision (None: not a torch model, its own)
    device = torch.device("cpu")
    dtype = None
    #: the energy variant used (metatomic ``energy/NAME``), None for the default
    variant = None
    #: what the model gives beside its predictions (of ``EXTRA_OUTPUTS``)
    extra_outputs = ()

    def batch_size_for(self, system: System) -> int:
        """How many rotated copies to evaluate together when the user does not say."""
        return 64

    def check_system(self, system: System) -> None:
        if self.species is not None:
            unknown = sorted(set(system.numbers.tolist()) - set(self.species))
            if unknown:
                names = ", ".join(chemical_symbols[z] for z in unknown)
                known = ", ".join(chemical_symbols[z] for z in sorted(self.species))
                raise MdsymError(
                    f"model {self.name} does not know species {names} (it knows {known})"
                )

    @abc.abstractmethod
    def evaluate(self, system: System, rotations: np.ndarray, properties) -> dict:
        """Predictions for the copies ``r R_g^T`` of ``system``, in their frames."""


class TorchModel(Model):
    """A model written as a torch function of rotated pair vectors (and positions).

    The neighbour list is built once; its pair vectors ``e = r_j - r_i + S H`` are
    computed once in the input frame and rotated for every copy, ``e R^T``. The
    rotated pair vectors, positions and cells are the leaves of the autograd graph,
    so a model may use any of them, and

    - forces: ``F_i = -dE/dr_i + sum_{p: i -> j} dE/de_p - sum_{p: j -> i} dE/de_p``;
    - stress: ``(1/V) [sum_p e_p (x) dE/de_p + sum_i r_i (x) dE/dr_i + sum_k h_k (x) dE/dh_k]``,
      the derivative of the energy under a homogeneous strain of the copy.
    """

    dtype = torch.float64
    device = torch.device("cpu")
    cutoff: float = 0.0
    full_neighbour_list: bool = True
    #: pairs (copies x neighbour pairs) per model call when batching automatically:
    #: large batches amortise per-call overhead, but past the cache they cost more
    #: per copy than they save (PET on 48 waters: 40 ms/copy one at a time, 62 at 48)
    pair_budget: int = 200_000
    #: the same on a GPU, where large batches keep the device busy (capped by memory)
    gpu_pair_budget: int = 2_000_000

    def batch_size_for(self, system: System) -> int:
        """Copies per call: as many as the pair budget of the device allows, at most 64,
        and no more than fit in memory (``mdsym.models.memory``: measured on a probe
        when the system is large; one clear line when not even one copy fits)."""
        pairs = len(system.neighbours(self.cutoff, self.full_neighbour_list).first)
        budget = self.pair_budget if self.device.type == "cpu" else max(self.pair_budget,
                                                                         self.gpu_pair_budget)
        batch = int(max(1, min(64, budget // max(pairs, 1))))
        fits = fitting_batch(self, system, batch)
        return batch if fits is None else min(batch, fits)

    @abc.abstractmethod
    def compute(self, system: System, positions, cells, edges, neighbours) -> dict:
        """Torch outputs ``energy`` (B,) and optionally direct ``forces`` (B, N, 3).

        ``positions`` is ``(B, N, 3)``, ``cells`` ``(B, 3, 3)``, ``edges`` the pair
        vectors ``(B, P, 3)``; ``neighbours`` holds the pair indices ``first`` and
        ``second`` (and the input-frame pair ``vectors``), shared by the whole batch.
        """

    def neighbour_tensors(self, system: System) -> dict:
        nl = system.neighbours(self.cutoff, self.full_neighbour_list)
        return {
            "first": torch.from_numpy(nl.first).to(self.device),
            "second": torch.from_numpy(nl.second).to(self.device),
            "vectors": torch.from_numpy(
                system.positions[nl.second] - system.positions[nl.first] + nl.shifts @ system.cell
            ).to(self.device, self.dtype),
        }

    def evaluate(self, system: System, rotations: np.ndarray, properties) -> dict:
        self.check_system(system)
        rotations = torch.as_tensor(rotations, dtype=self.dtype, device=self.device)
        neighbours = self.neighbour_tensors(system)
        as_tensor = functools.partial(torch.as_tensor, dtype=self.dtype, device=self.device)
        positions = rotate_vectors(as_tensor(system.positions), rotations)
        cells = rotate_vectors(as_tensor(system.cell), rotations)
        edges = rotate_vectors(neighbours["vectors"], rotations)
        want_forces = "forces" in properties and self.forces_kind == "conservative"
        want_stress = "stress" in properties and system.periodic and self.has_stress
        leaves = (positions, cells, edges)

        # TorchScript's profiling executor runs the first call unoptimised and later
        # calls through an optimised graph whose gradients are summed in another order
        # (measured: PET forces differ by 7e-7 eV/A between the first and the second
        # call): unoptimised execution gives the same bits on every call, at no measured
        # cost. The switch is per thread (i-PI may call from its own threads), so it is
        # set around every evaluation rather than once at load.
        with torch.enable_grad(), torch.jit.optimized_execution(False):
            if want_forces or want_stress:
                for leaf in leaves:
                    leaf.requires_grad_(True)
            outputs = self.compute(system, positions, cells, edges, neighbours)
            energy = outputs["energy"]
            if want_forces or want_stress:
                grads = torch.autograd.grad(energy.sum(), leaves, allow_unused=True)
                d_positions, d_cells, d_edges = (
                    torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)
                )

        results = {"energy": to_numpy(energy)}
        if want_forces:
            forces = -d_positions + pair_sums(d_edges, neighbours["first"], neighbours["second"],
                                               positions.shape[1])
            results["forces"] = to_numpy(forces)
        elif "forces" in properties:
            results["forces"] = to_numpy(outputs["forces"])
        if want_stress:
            strain_derivative = (
                torch.einsum("bpi,bpj->bij", edges, d_edges)
                + torch.einsum("bni,bnj->bij", positions, d_positions)
                + torch.einsum("bki,bkj->bij", cells, d_cells)
            )
            volume = abs(np.linalg.det(system.cell))
            results["stress"] = to_numpy(strain_derivative) / volume
        elif "stress" in properties and system.periodic:
            raise MdsymError(f"model {self.name} cannot compute a stress")
        check_finite(results, self.name)
        for key in EXTRA_OUTPUTS:  # beside the predictions, per copy (not checked: an estimate)
            if key in outputs:
                results[key] = to_numpy(outputs[key])
        return results


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A model output as float64 numpy on the CPU, whatever its device and dtype."""
    return tensor.detach().cpu().numpy().astype(np.float64)


def pair_sums(values: torch.Tensor, first: torch.Tensor, second: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """``sum_{p: i -> j} v_p - sum_{p: j -> i} v_p`` per atom: (B, P, 3) -> (B, N, 3).

    Accumulated pair-major, on (N, B, 3): torch's index_add along axis 0 is 5x
    faster than along axis 1 of (B, N, 3) (64 copies x 1481 pairs: 0.1 against 0.5 ms).
    """
    pairs = values.transpose(0, 1).contiguous()  # (P, B, 3)
    sums = torch.zeros((n_atoms,) + pairs.shape[1:], dtype=values.dtype, device=values.device)
    sums.index_add_(0, first, pairs)
    sums.index_add_(0, second, pairs, alpha=-1.0)
    return sums.transpose(0, 1)


def check_finite(results: dict, name: str) -> None:
    for key, value in results.items():
        if not np.all(np.isfinite(value)):
            raise NonFiniteOutput(f"model {name} returned non-finite {key}")


class NonFiniteOutput(MdsymError):
    """The model produced NaN or inf: a stability monitor trips on this."""
