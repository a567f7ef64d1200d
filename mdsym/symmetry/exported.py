"""``ExportedSymmetrizedModel``: ``SymmetrizedModel`` as a TorchScript metatomic module.

What ``mdsym export`` saves (``mdsym.serving.export``): a metatomic ``ModelInterface``
wrapping another one (a metatomic model's module, or a native model's wrapper), so
that every engine that loads metatomic ``.pt`` files (LAMMPS, i-PI's metatomic
driver, metatomic-ase, TorchSim) runs mdsym's symmetrization itself.

- Each system of a call is evaluated on ``G`` rotated copies, ``batch_size`` copies
  per call of the inner module. A copy of ``g`` has positions ``r R_g^T``, cell
  ``H R_g^T`` and, for every neighbour list the engine computed, pair vectors
  ``e R_g^T`` with the samples (pairs and cell shifts) kept: the rotated vectors are
  functions of the engine's own, so the engine's autograd gives forces and virial of
  the averaged energy, and an engine with ghost atoms (LAMMPS' domain decomposition)
  sees the same pairs, rotated, as a single process.
- Rotations: a fixed grid (``o3:L``/``so3:L``: mdsym's ``quadrature.by_name``, the
  same matrices and weights as in process), the grid turned by a fresh rotation
  ``Q`` per evaluated system (``o3:L:rotated``), or one Haar element per evaluated
  system (``random``). The fresh rotations come from a counter-based generator inside
  the module (``haar_rotation(seed, n)``: a 32-bit integer hash of the seed and the
  evaluation counter ``n``, Shoemake's quaternion): reproducible when an engine calls
  the model the same way, and not the same stream as in-process mdsym's numpy one.
- Outputs: ``energy`` (averaged), ``non_conservative_force`` when the inner model has
  it (averaged as a vector, ``F' R``), and, only when the engine requests them, the
  rotational standard deviations ``mdsym::energy_rot_std``, ``mdsym::forces_rot_std``
  (of the conservative forces of the copies) and
  ``mdsym::non_conservative_force_rot_std``.
- ``correction``: ``raw``: ``energy`` is the averaged energy minus the raw model's
  (the outer force of multiple time stepping, forces and virial by autograd);
  ``direct``: ``non_conservative_force`` is the averaged conservative forces minus
  the raw direct forces, ``energy`` the averaged minus the raw energy.

The weighted mean and std are ``mdsym.symmetry.averaging``'s ``accumulate_moments``
and ``finish_moments``, the functions the in-process ``SymmetrizedModel`` uses, in
float64 whatever the model's dtype.
"""

import math
from typing import Dict, List, Optional, Tuple

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import ModelOutput, NeighborListOptions, System

from mdsym.symmetry.averaging import accumulate_moments, finish_moments

DIRECT = "non_conservative_force"
ENERGY_STD = "mdsym::energy_rot_std"
FORCES_STD = "mdsym::forces_rot_std"
DIRECT_STD = "mdsym::non_conservative_force_rot_std"
MODES = ("grid", "rotated", "random")
CORRECTIONS = ("", "raw", "direct")


def _mul32(a: int, b: int) -> int:
    """``a b mod 2^32`` for ``a, b < 2^32`` without leaving int64."""
    return (a * (b & 0xFFFF) + ((a * (b >> 16)) & 0xFFFF) * 65536) & 0xFFFFFFFF


def hash32(x: int) -> int:
    """A 32-bit integer hash (Wellons' lowbias32)."""
    x = x & 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniform_bits(seed: int, counter: int, k: int) -> int:
    """The ``k``-th random 53-bit integer of evaluation ``counter``."""
    base = hash32(hash32(hash32(seed & 0xFFFFFFFF) ^ (counter & 0xFFFFFFFF)) ^ (counter >> 32))
    high = hash32(base ^ hash32(2 * k + 1))
    low = hash32(base ^ hash32(2 * k + 2))
    return high * 2097152 + (low >> 11)


def haar_rotation(seed: int, counter: int, inversion: bool, device: torch.device) -> torch.Tensor:
    """A Haar-random element ``(3, 3)`` float64 of SO(3) (of O(3) with ``inversion``: a
    fair coin for ``-R``) for evaluation ``counter``: Shoemake's uniform quaternion.
    Built from integer tensors (TorchScript makes float lists float32 first)."""
    bits = [uniform_bits(seed, counter, k) for k in range(4)]
    u = torch.tensor(bits, dtype=torch.int64, device=device).to(torch.float64) / 9007199254740992.0
    a, b = torch.sqrt(1.0 - u[0]), torch.sqrt(u[0])
    x, y = a * torch.sin(2.0 * math.pi * u[1]), a * torch.cos(2.0 * math.pi * u[1])
    z, w = b * torch.sin(2.0 * math.pi * u[2]), b * torch.cos(2.0 * math.pi * u[2])
    r = torch.stack([1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - z * w), 2.0 * (x * z + y * w),
                     2.0 * (x * y + z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - x * w),
                     2.0 * (x * z - y * w), 2.0 * (y * z + x * w), 1.0 - 2.0 * (x * x + y * y)])
    if inversion and bool(u[3] < 0.5):
        r = -r
    return r.reshape(3, 3)


def as_integers(values: List[float]) -> torch.Tensor:
    """float64 values as exact integer pairs ``(mantissa, exponent)`` ``(2, n)``, which
    ``Module.to(dtype=...)`` leaves alone (``from_integers`` reads them back)."""
    pairs = [math.frexp(v) for v in values]
    return torch.tensor([[int(m * 2**53) for m, _ in pairs], [e - 53 for _, e in pairs]],
                        dtype=torch.int64)


def from_integers(pairs: torch.Tensor) -> torch.Tensor:
    return torch.ldexp(pairs[0].to(torch.float64), pairs[1])


def _copy_atoms(selected_atoms: Optional[Labels], index: int, copies: int) -> Optional[Labels]:
    """The selected atoms of input system ``index``, for each of ``copies`` copies."""
    if selected_atoms is None:
        return None
    values = selected_atoms.values
    atoms = values[values[:, 0] == index][:, 1]
    system = torch.arange(copies, dtype=values.dtype, device=values.device)
    rows = torch.stack([system.repeat_interleave(atoms.shape[0]), atoms.repeat(copies)], dim=1)
    return Labels(["system", "atom"], rows)


def _per_copy(block: TensorBlock, copies: int, index: int) -> Tuple[torch.Tensor, Labels]:
    """Values ``(copies, S, ...)`` of a block over the copies (samples ordered by copy),
    and the samples of the first copy renumbered as input system ``index``."""
    values = block.values
    per = values.shape[0] // copies
    samples = block.samples.values[:per].clone()
    samples[:, 0] = index
    shape = [copies, per] + list(values.shape[1:])
    return values.reshape(shape), Labels(block.samples.names, samples)


def _one_block_map(block: TensorBlock) -> TensorMap:
    keys = Labels("_", torch.zeros((1, 1), dtype=torch.int32, device=block.values.device))
    return TensorMap(keys, [block])


def _join(blocks: List[TensorBlock]) -> TensorMap:
    """One TensorMap whose block holds the blocks' samples one after the other."""
    first = blocks[0]
    values = torch.cat([b.values for b in blocks], dim=0)
    samples = torch.cat([b.samples.values for b in blocks], dim=0)
    block = TensorBlock(values, Labels(first.samples.names, samples), first.components,
                        first.properties)
    return _one_block_map(block)


class ExportedSymmetrizedModel(torch.nn.Module):
    """A metatomic model averaged over O(3): see the module docstring."""

    calls: int
    seed: int
    batch_size: int
    mode: str
    inversion: bool
    correction: str
    has_direct: bool
    energy_sample_kind: str

    def __init__(self, inner: torch.nn.Module, rotations: List[List[float]], weights: List[float],
                 mode: str, inversion: bool, seed: int, batch_size: int, correction: str,
                 has_direct: bool, energy_sample_kind: str,
                 neighbor_lists: List[NeighborListOptions]):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        self.inner = inner
        self.register_buffer("rotation_integers", as_integers([float(v) for r in rotations for v in r]))
        self.register_buffer("weight_integers", as_integers([float(w) for w in weights]))
        self.mode, self.inversion, self.seed = mode, bool(inversion), int(seed)
        self.batch_size, self.correction = int(batch_size), correction
        self.has_direct, self.energy_sample_kind = bool(has_direct), energy_sample_kind
        self.calls = 0
        self.neighbor_lists = neighbor_lists

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return self.neighbor_lists

    def quadrature(self, counter: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rotations ``(G, 3, 3)`` and weights ``(G,)``, float64, of evaluation ``counter``."""
        if self.mode == "random":
            rotation = haar_rotation(self.seed, counter, self.inversion, device).reshape(1, 3, 3)
            return rotation, torch.ones(1, dtype=torch.float64, device=device)
        rotations = from_integers(self.rotation_integers.to(device)).reshape(-1, 3, 3)
        weights = from_integers(self.weight_integers.to(device))
        if self.mode == "rotated":
            # Q from SO(3), on the right (R_g Q): the +-R pairs of an O(3) grid stay pairs
            turn = haar_rotation(self.seed, counter, False, device)
            rotations = rotations @ turn
        return rotations, weights

    def copies(self, system: System, rotations: torch.Tensor,
               leaves: bool) -> Tuple[List[System], torch.Tensor, List[torch.Tensor], List[torch.Tensor]]:
        """The rotated copies of ``system``: systems, positions ``(B, N, 3)``, pair vectors
        ``(B, P, 3)`` per neighbour list and their ``(first, second)`` atoms. ``leaves``:
        positions and pair vectors made differentiable (for the copies' own forces)."""
        turn = rotations.to(system.positions.dtype).transpose(1, 2)
        positions = system.positions.unsqueeze(0) @ turn
        cells = system.cell.unsqueeze(0) @ turn
        if leaves and not positions.requires_grad:
            positions.requires_grad_(True)
        options = system.known_neighbor_lists()
        vectors: List[torch.Tensor] = []
        pairs: List[torch.Tensor] = []
        blocks: List[TensorBlock] = []
        for option in options:
            neighbours = system.get_neighbor_list(option)
            rotated = neighbours.values.reshape(1, -1, 3) @ turn
            if leaves and not rotated.requires_grad:
                rotated.requires_grad_(True)
            vectors.append(rotated)
            pairs.append(neighbours.samples.values[:, :2].to(torch.int64))
            blocks.append(neighbours)
        systems: List[System] = []
        for b in range(rotations.shape[0]):
            copy = System(system.types, positions[b], cells[b], system.pbc)
            for k in range(len(options)):
                block = TensorBlock(vectors[k][b].reshape(-1, 3, 1), blocks[k].samples,
                                    blocks[k].components, blocks[k].properties)
                copy.add_neighbor_list(options[k], block)
            systems.append(copy)
        return systems, positions, vectors, pairs

    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels] = None) -> Dict[str, TensorMap]:
        per_output: Dict[str, List[TensorBlock]] = {}
        for name in outputs:
            empty: List[TensorBlock] = []
            per_output[name] = empty
        for index, system in enumerate(systems):
            results = self.evaluate_system(system, index, outputs, selected_atoms)
            for name in outputs:
                per_output[name].append(results[name])
        joined: Dict[str, TensorMap] = {}
        for name in outputs:
            joined[name] = _join(per_output[name])
        return joined

    def evaluate_system(self, system: System, index: int, outputs: Dict[str, ModelOutput],
                        selected_atoms: Optional[Labels]) -> Dict[str, TensorBlock]:
        """The requested outputs of one input system, as blocks of input system ``index``."""
        device, dtype = system.positions.device, system.positions.dtype
        rotations, weights = self.quadrature(self.calls, device)
        self.calls += 1
        want_forces = "mdsym::forces_rot_std" in outputs or self.correction == "direct"
        want_direct = self.has_direct and ("non_conservative_force" in outputs or "mdsym::non_conservative_force_rot_std" in outputs
                                           or self.correction == "direct")
        inner_outputs: Dict[str, ModelOutput] = {
            "energy": ModelOutput(unit="eV", sample_kind=self.energy_sample_kind
                                  if "energy" not in outputs else outputs["energy"].sample_kind)}
        if want_direct and self.correction != "direct":
            inner_outputs["non_conservative_force"] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
        moments: Dict[str, List[torch.Tensor]] = {}
        energy_meta = TensorBlock(torch.zeros((0, 1), dtype=dtype, device=device),
                                  Labels(["system"], torch.zeros((0, 1), dtype=torch.int32, device=device)), [],
                                  Labels("energy", torch.zeros((1, 1), dtype=torch.int32, device=device)))
        direct_meta = energy_meta
        for start in range(0, rotations.shape[0], self.batch_size):
            batch = rotations[start:start + self.batch_size]
            copies, positions, vectors, pairs = self.copies(system, batch, want_forces)
            predicted = self.inner(copies, inner_outputs,
                                   _copy_atoms(selected_atoms, index, batch.shape[0]))
            energy, energy_samples = _per_copy(predicted["energy"].block(), batch.shape[0], index)
            energy_meta = TensorBlock(energy[0], energy_samples, predicted["energy"].block().components,
                                      predicted["energy"].block().properties)
            values: Dict[str, torch.Tensor] = {"energy": energy.to(torch.float64)}
            values["total"] = values["energy"].reshape(batch.shape[0], -1).sum(dim=1)
            if want_forces:
                values["forces"] = self.copy_forces(energy, positions, vectors, pairs, batch)
            if "non_conservative_force" in inner_outputs:
                direct, direct_samples = _per_copy(predicted["non_conservative_force"].block(), batch.shape[0], index)
                direct_meta = TensorBlock(direct[0], direct_samples, predicted["non_conservative_force"].block().components,
                                          predicted["non_conservative_force"].block().properties)
                values["direct"] = torch.bmm(direct.reshape(batch.shape[0], -1, 3).to(torch.float64),
                                             batch)
            w = weights[start:start + self.batch_size]
            for key, value in values.items():
                if key not in moments:
                    reference = value[0].clone()
                    moments[key] = [reference, torch.zeros_like(reference), torch.zeros_like(reference)]
                m = moments[key]
                accumulate_moments(value, w, m[0], m[1], m[2])
        return self.finish(system, index, outputs, moments, energy_meta, direct_meta, selected_atoms)

    def copy_forces(self, energy: torch.Tensor, positions: torch.Tensor, vectors: List[torch.Tensor],
                    pairs: List[torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
        """The conservative forces of every copy, back in the input frame ``(B, N, 3)``:
        ``-dE/dr'`` plus the pair terms, then ``F' R`` (the engine's graph is kept)."""
        leaves = [positions] + vectors
        grads = torch.autograd.grad([energy.sum()], leaves, retain_graph=True, allow_unused=True)
        d_positions = grads[0]
        forces = torch.zeros_like(positions) if d_positions is None else -d_positions
        for k in range(len(vectors)):
            d_vectors = grads[k + 1]
            if d_vectors is not None:
                forces = forces.index_add(1, pairs[k][:, 0], d_vectors)
                forces = forces.index_add(1, pairs[k][:, 1], -d_vectors)
        return torch.bmm(forces.detach().to(torch.float64), batch)

    def raw(self, system: System, index: int, sample_kind: str, selected_atoms: Optional[Labels],
            direct: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """The raw model's energy values and (when ``direct``) direct forces ``(N, 3)``."""
        requested: Dict[str, ModelOutput] = {"energy": ModelOutput(unit="eV", sample_kind=sample_kind)}
        if direct:
            requested["non_conservative_force"] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
        eye = torch.eye(3, dtype=torch.float64, device=system.positions.device).reshape(1, 3, 3)
        copies, _, _, _ = self.copies(system, eye, False)
        predicted = self.inner(copies, requested, _copy_atoms(selected_atoms, index, 1))
        energy = predicted["energy"].block().values.to(torch.float64)
        forces = torch.zeros((0, 3), dtype=torch.float64, device=energy.device)
        if direct:
            forces = predicted["non_conservative_force"].block().values.reshape(-1, 3).to(torch.float64)
        return energy, forces

    def finish(self, system: System, index: int, outputs: Dict[str, ModelOutput],
               moments: Dict[str, List[torch.Tensor]], energy_meta: TensorBlock,
               direct_meta: TensorBlock, selected_atoms: Optional[Labels]) -> Dict[str, TensorBlock]:
        """Means and stds of the moments, corrections subtracted, as output blocks."""
        dtype, device = system.positions.dtype, system.positions.device
        stats: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}
        for key, m in moments.items():
            stats[key] = finish_moments(m[0], m[1], m[2])
        energy = stats["energy"][0]
        direct_forces = torch.zeros((0, 3), dtype=torch.float64, device=device)
        if "direct" in stats:
            direct_forces = stats["direct"][0]
        if self.correction != "":
            raw_energy, raw_direct = self.raw(system, index, self.energy_sample_kind if "energy"
                                              not in outputs else outputs["energy"].sample_kind,
                                              selected_atoms, self.correction == "direct")
            energy = energy - raw_energy.reshape(energy.shape)
            if self.correction == "direct":
                direct_forces = stats["forces"][0] - raw_direct
        xyz = Labels("xyz", torch.arange(3, device=device, dtype=torch.int32).reshape(-1, 1))
        atoms = Labels(["system", "atom"], torch.stack([
            torch.full((system.positions.shape[0],), index, dtype=torch.int32, device=device),
            torch.arange(system.positions.shape[0], dtype=torch.int32, device=device)], dim=1))
        one = Labels(["system"], torch.tensor([[index]], dtype=torch.int32, device=device))
        blocks: Dict[str, TensorBlock] = {}
        for name in outputs:
            if name == "energy":
                blocks[name] = TensorBlock(energy.to(dtype).reshape(energy_meta.values.shape),
                                           energy_meta.samples, energy_meta.components,
                                           energy_meta.properties)
            elif name == "non_conservative_force":
                samples, properties = atoms, Labels("non_conservative_force", torch.zeros((1, 1), dtype=torch.int32,
                                                                         device=device))
                if self.correction != "direct":
                    samples, properties = direct_meta.samples, direct_meta.properties
                blocks[name] = TensorBlock(direct_forces.to(dtype).reshape(-1, 3, 1), samples,
                                           [xyz], properties)
            elif name == "mdsym::energy_rot_std":
                blocks[name] = TensorBlock(stats["total"][1].to(dtype).reshape(1, 1), one, [],
                                           Labels("energy_rot_std", torch.zeros((1, 1), dtype=torch.int32,
                                                                                device=device)))
            elif name == "mdsym::forces_rot_std" or name == "mdsym::non_conservative_force_rot_std":
                key = "forces" if name == "mdsym::forces_rot_std" else "direct"
                if key not in stats:
                    raise ValueError(f"{name} needs direct forces, which this model has not")
                blocks[name] = TensorBlock(stats[key][1].to(dtype).reshape(-1, 3, 1), atoms, [xyz],
                                           Labels(name.split("::")[1], torch.zeros((1, 1), dtype=torch.int32,
                                                                                   device=device)))
            else:
                raise ValueError(f"this mdsym-exported model has no output '{name}'")
        return blocks
