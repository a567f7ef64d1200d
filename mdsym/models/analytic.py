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

    # Layout: the per-pair work runs on pair-major (P, B) arrays, one per Cartesian
    # component. Torch's CPU kernels are slow on a trailing axis of length 3 (a sum
    # over it, or the gradient of a (B, P, 1) factor, costs 10x a (P, B) sum) and on
    # index_add along axis 1, so ``edges`` (B, P, 3) is transposed once to (3, P, B).

    def _pair_geometry(self, edges: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Pair-major components ``[x, y, z]`` (P, B) of ``edges`` (B, P, 3), their
        length ``r`` and the cosine of their angle with the axis."""
        xyz = edges.permute(2, 1, 0).contiguous().unbind(0)
        x, y, z = xyz[0], xyz[1], xyz[2]
        n = self.axis
        r = torch.sqrt(x * x + y * y + z * z)
        return [x, y, z], r, (x * n[0] + y * n[1] + z * n[2]) / r

    def _atom_sums(self, components: List[torch.Tensor], atom_index: torch.Tensor,
                   neighbour_index: torch.Tensor, n_atoms: int,
                   neighbour_sign: float = -1.0) -> List[torch.Tensor]:
        """``sum_j v(r_ij)`` per atom, (N, B) per component, from half-list pair
        components (P, B): each pair counts ``v`` for its first atom and
        ``neighbour_sign * v`` for its second (``v_ji = -v_ij`` by default)."""
        sums: List[torch.Tensor] = []
        for values in components:
            total = torch.zeros((n_atoms, values.shape[1]), dtype=values.dtype, device=values.device)
            total = total.index_add(0, atom_index, values)
            sums.append(total.index_add(0, neighbour_index, values, alpha=neighbour_sign))
        return sums

    def _energy(self, edges: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> torch.Tensor:
        xyz, r, cos_axis = self._pair_geometry(edges)  # (P, B) each
        n = self.axis
        fc = self._cutoff_function(r)
        decay = torch.exp(self.stiffness * (self.equilibrium - r))
        energy = ((self.depth * fc) * decay * (decay - 2.0)).sum(dim=0)  # (B,)
        for degree, strength in self.bond_terms:
            # both directions of each pair: P_l is even for the even degrees allowed
            legendre = solid_harmonic(cos_axis, torch.ones_like(cos_axis), degree)
            energy = energy + (2.0 * strength) * (fc * legendre).sum(dim=0)
        if len(self.vector_terms) > 0:
            scale = fc / r  # fc(r) rhat = scale * e
            weighted = [scale * xyz[0], scale * xyz[1], scale * xyz[2]]
            a = self._atom_sums(weighted, edge_index[0], edge_index[1], n_atoms)  # (N, B) x 3
            a_axis = a[0] * n[0] + a[1] * n[1] + a[2] * n[2]
            a2 = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
            chirality = torch.zeros_like(a_axis)
            if any([parity == -1 for _, parity, _ in self.vector_terms]):
                scaled = r / self.cutoff
                b = self._atom_sums([w * scaled for w in weighted], edge_index[0], edge_index[1], n_atoms)
                d = self._atom_sums([w * scaled * scaled for w in weighted], edge_index[0], edge_index[1], n_atoms)
                # a . (b x d): a pseudoscalar per atom
                chirality = (a[0] * (b[1] * d[2] - b[2] * d[1]) + a[1] * (b[2] * d[0] - b[0] * d[2])
                             + a[2] * (b[0] * d[1] - b[1] * d[0]))
            for degree, parity, strength in self.vector_terms:
                term = a2 * solid_harmonic(a_axis, a2, degree)
                if parity == -1:
                    term = term * chirality
                energy = energy + strength * term.sum(dim=0)
        return energy

    def _direct_spurious(self, edges: torch.Tensor, edge_index: torch.Tensor, n_atoms: int) -> List[torch.Tensor]:
        """The non-conservative forces, (N, B) per component."""
        xyz, r, cos_axis = self._pair_geometry(edges)
        fc = self._cutoff_function(r)
        unit = [xyz[0] / r, xyz[1] / r, xyz[2] / r]
        forces = [torch.zeros((n_atoms, r.shape[1]), dtype=r.dtype, device=r.device) for _ in range(3)]
        for degree, strength in self.direct_terms:
            # F_i gets P_l(c) u from the pair, F_j gets P_l(-c) (-u) = (-1)^(l+1) P_l(c) u
            factor = strength * fc * solid_harmonic(cos_axis, torch.ones_like(cos_axis), degree)
            sign = 1.0 if degree % 2 == 1 else -1.0
            sums = self._atom_sums([factor * u for u in unit], edge_index[0], edge_index[1], n_atoms, sign)
            for k in range(3):
                forces[k] = forces[k] + sums[k]
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
        conservative = self._atom_sums(gradient.permute(2, 1, 0).contiguous().unbind(0),
                                       edge_index[0], edge_index[1], n_atoms)
        spurious = self._direct_spurious(edge_vectors.detach(), edge_index, n_atoms)
        forces = [conservative[k] + spurious[k] for k in range(3)]
        return {"energy": energy, "forces": torch.stack(forces, dim=0).permute(2, 1, 0)}  # (B, N, 3)
