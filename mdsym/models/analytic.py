"""Analytic ground-truth models: a smooth pair potential plus spurious terms.

The pair part is a Morse potential (Girifalco-Weizer copper parameters by default)
with a cosine cutoff, so it is exactly O(3) invariant. On top of it, each spurious
term breaks rotational symmetry with a chosen angular degree ``l`` and parity
``sigma`` against a fixed lab axis ``n``; under a rotation ``g`` its energy is a
combination of Wigner-D components of degree exactly ``l`` in the sector
``(l, sigma)``, which makes every symmetry statement checkable in closed form.

Spurious energy terms (``SpuriousTerm.kind``):

- ``bond``: ``eps * sum_{i != j} fc(r_ij) P_l(rhat_ij . n)`` (even ``l``, ``sigma=+1``;
  odd ``l`` would cancel between ``ij`` and ``ji``);
- ``vector``: ``eps * sum_i c_i |a_i|^(l+2) P_l(ahat_i . n)`` where
  ``a_i = sum_j fc(r_ij) rhat_ij`` (the invariant factor ``|a_i|^2`` keeps the
  ``l = 1`` term from cancelling between ``ij`` and ``ji``); ``c_i = 1`` gives
  ``sigma = +1`` and the
  pseudoscalar ``c_i = a_i . (b_i x d_i)`` (three differently weighted neighbour
  sums) gives ``sigma = -1``. Any ``l``, smooth everywhere (a solid harmonic).

The direct-force variant predicts ``F = -dE/dr + F_spur`` with the
non-conservative ``F_spur,i = eps_f sum_j fc(r_ij) P_l(rhat_ij . n) rhat_ij``;
its back-rotated response is of degree ``l`` too.

The model follows mdsym's native torch protocol (``mdsym.models.native``), so it
can be scripted with ``torch.jit.script`` and saved to a file, or exported as a
metatomic model (``mdsym.models.export``).
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch


@dataclass(frozen=True)
class SpuriousTerm:
    degree: int
    parity: int = 1  # +1 proper, -1 pseudo
    strength: float = 0.02  # eV
    kind: str = "bond"  # "bond" or "vector"

    def __post_init__(self):
        if self.kind not in ("bond", "vector"):
            raise ValueError(f"spurious term kind must be 'bond' or 'vector', got {self.kind!r}")
        if self.parity not in (1, -1):
            raise ValueError(f"spurious term parity must be +1 or -1, got {self.parity}")
        if self.degree < 0:
            raise ValueError(f"spurious term degree must be >= 0, got {self.degree}")
        if self.kind == "bond" and (self.degree % 2 == 1 or self.parity == -1):
            raise ValueError(
                "a 'bond' term needs an even degree and parity +1; use kind='vector' "
                "for odd degrees or pseudo-tensor terms"
            )


def solid_harmonic(z: torch.Tensor, r2: torch.Tensor, degree: int) -> torch.Tensor:
    """``|v|^l P_l(vhat . n)`` from ``z = v . n`` and ``r2 = |v|^2`` (Legendre recurrence)."""
    previous = torch.ones_like(z)
    if degree == 0:
        return previous
    current = z
    for k in range(1, degree):
        previous, current = current, ((2 * k + 1) * z * current - k * r2 * previous) / (k + 1)
    return current


class AnalyticModel(torch.nn.Module):
    """Morse pair potential with a cosine cutoff plus spurious anisotropic terms.

    Uses a half neighbour list (each pair once, from ``i`` to ``j``).
    """

    cutoff: float
    direct: bool
    full_neighbour_list: bool
    bond_terms: List[Tuple[int, float]]
    vector_terms: List[Tuple[int, int, float]]
    direct_terms: List[Tuple[int, float]]

    def __init__(
        self,
        terms=(SpuriousTerm(2),),
        axis=(0.0, 0.0, 1.0),
        direct_terms=(),
        depth: float = 0.3429,
        stiffness: float = 1.3588,
        equilibrium: float = 2.866,
        cutoff: float = 5.5,
        direct: bool = False,
    ):
        super().__init__()
        self.cutoff = float(cutoff)
        self.full_neighbour_list = False
        self.depth = float(depth)
        self.stiffness = float(stiffness)
        self.equilibrium = float(equilibrium)
        self.direct = bool(direct) or len(direct_terms) > 0
        axis = torch.tensor(axis, dtype=torch.float64)
        self.register_buffer("axis", axis / axis.norm())
        self.bond_terms = [(t.degree, t.strength) for t in terms if t.kind == "bond"]
        self.vector_terms = [(t.degree, t.parity, t.strength) for t in terms if t.kind == "vector"]
        self.direct_terms = [(t.degree, t.strength) for t in direct_terms]

    def _cutoff_function(self, r: torch.Tensor) -> torch.Tensor:
        # clamping keeps fc = 0 (and flat) beyond the cutoff without a mask
        return 0.5 + 0.5 * torch.cos(r.clamp(max=self.cutoff) * (math.pi / self.cutoff))

    def _atom_sums(self, pair_values: torch.Tensor, edge_index: torch.Tensor, n_atoms: int):
        """``sum_j v(r_ij)`` per atom from half-list pair vectors (``v_ji = -v_ij``)."""
        shape = (pair_values.shape[0], n_atoms, 3)
        sums = torch.zeros(shape, dtype=pair_values.dtype, device=pair_values.device)
        sums = sums.index_add(1, edge_index[0], pair_values)
        return sums.index_add(1, edge_index[1], pair_values, alpha=-1.0)

    def _energy(self, edges: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
        r = torch.linalg.vector_norm(edges, dim=-1)  # (B, P)
        fc = self._cutoff_function(r)
        decay = torch.exp(self.stiffness * (self.equilibrium - r))
        energy = ((self.depth * fc) * decay * (decay - 2.0)).sum(dim=1)
        cos_axis = (edges @ self.axis) / r
        for degree, strength in self.bond_terms:
            # both directions of each pair: P_l is even for the even degrees allowed
            legendre = solid_harmonic(cos_axis, torch.ones_like(cos_axis), degree)
            energy = energy + (2.0 * strength) * (fc * legendre).sum(dim=1)
        if len(self.vector_terms) > 0:
            weighted = (fc / r).unsqueeze(-1) * edges  # fc(r) rhat
            a = self._atom_sums(weighted, edge_index, n_atoms)
            z = a @ self.axis
            r2 = (a * a).sum(-1)
            chirality = torch.zeros_like(z)
            if any([parity == -1 for _, parity, _ in self.vector_terms]):
                scaled = (r / self.cutoff).unsqueeze(-1)
                b = self._atom_sums(weighted * scaled, edge_index, n_atoms)
                d = self._atom_sums(weighted * scaled * scaled, edge_index, n_atoms)
                chirality = (a * torch.linalg.cross(b, d)).sum(-1)  # (B, N) pseudoscalar
            for degree, parity, strength in self.vector_terms:
                term = r2 * solid_harmonic(z, r2, degree)
                if parity == -1:
                    term = term * chirality
                energy = energy + strength * term.sum(dim=1)
        return energy

    def _direct_spurious(self, edges: torch.Tensor, edge_index: torch.Tensor, n_atoms: int):
        r = torch.linalg.vector_norm(edges, dim=-1)
        fc = self._cutoff_function(r)
        unit = edges / r.unsqueeze(-1)
        cos_axis = unit @ self.axis
        forces = torch.zeros((edges.shape[0], n_atoms, 3), dtype=edges.dtype, device=edges.device)
        for degree, strength in self.direct_terms:
            # F_i gets P_l(c) u from the pair, F_j gets P_l(-c) (-u) = (-1)^(l+1) P_l(c) u
            values = (strength * fc * solid_harmonic(cos_axis, torch.ones_like(cos_axis), degree)).unsqueeze(-1) * unit
            sign = 1.0 if degree % 2 == 1 else -1.0
            forces = forces.index_add(1, edge_index[0], values).index_add(1, edge_index[1], sign * values)
        return forces

    def forward(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        n_atoms = positions.shape[1]
        energy = self._energy(edge_vectors, edge_index, n_atoms)
        if not self.direct:
            return {"energy": energy}
        # direct variant: forces are an output, computed here from the model's own
        # energy (the caller enables autograd: mdsym's TorchModel.evaluate does)
        # plus a non-conservative spurious term
        leaf = edge_vectors.detach().requires_grad_(True)
        gradient = torch.autograd.grad([self._energy(leaf, edge_index, n_atoms).sum()], [leaf])[0]
        assert gradient is not None
        zeros = torch.zeros_like(positions.detach())
        forces = zeros.index_add(1, edge_index[0], gradient).index_add(1, edge_index[1], gradient, alpha=-1.0)
        forces = forces + self._direct_spurious(edge_vectors.detach(), edge_index, n_atoms)
        return {"energy": energy, "forces": forces}
