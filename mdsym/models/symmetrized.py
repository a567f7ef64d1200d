"""A symmetrized model seen as a model: what ``mdsym equivariance --symmetrize`` measures.

Evaluating it on the copies ``g x`` evaluates the wrapped model on every composite
``h g`` of the averaging quadrature ``{h}`` with the requested ``{g}`` in batches,
averages over ``h`` in the frame of ``x`` and rotates the result into the frame
of each ``g x``, as the model interface asks.
"""

import numpy as np

from ..rotations import rotate_copies, rotate_tensor_copies
from ..symmetrize import Symmetrizer, evaluate_back_rotated
from ..quadrature import Quadrature
from .base import Model


class QuadratureAveragedModel(Model):
    """A ``Symmetrizer`` as a ``Model`` (not metatomic's ``SymmetrizedModel``, which
    wraps a metatomic model for its own O(3) averaging)."""

    def __init__(self, symmetrizer: Symmetrizer):
        self.symmetrizer = symmetrizer
        inner = symmetrizer.model
        self.name = f"{inner.name} [{symmetrizer.spec}]"
        self.species = inner.species
        self.forces_kind = inner.forces_kind
        self.has_stress = inner.has_stress
        self.device, self.dtype = inner.device, inner.dtype

    def evaluate(self, system, rotations, properties) -> dict:
        inner = self.symmetrizer.current_quadrature(system)
        n_inner, n_outer = len(inner), len(rotations)
        composite = np.einsum("hij,gjk->ghik", inner.rotations, rotations).reshape(-1, 3, 3)
        weights = np.tile(inner.weights, n_outer)
        stacked = Quadrature("composite", composite, weights, 0, True)
        per_copy = evaluate_back_rotated(
            self.symmetrizer.model, system, stacked, properties, self.symmetrizer.batch_size
        )
        results = {}
        for key, values in per_copy.items():
            values = values.reshape((n_outer, n_inner) + values.shape[1:])
            w = inner.weights.reshape((1, n_inner) + (1,) * (values.ndim - 2))
            results[key] = np.sum(w * values, axis=1)
        if "forces" in results:
            fixed = [self.symmetrizer.apply_fixes(f, system) for f in results["forces"]]
            results["forces"] = rotate_copies(np.stack(fixed), rotations)
        if "stress" in results:
            results["stress"] = rotate_tensor_copies(results["stress"], rotations)
        return results
