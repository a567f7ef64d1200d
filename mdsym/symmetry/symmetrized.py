"""``SymmetrizedModel``: a model wrapping a model, averaged over O(3) as a spec says.

The one symmetrized-model concept of mdsym, as i-PI's ``FFRotations`` and metatomic's
``SymmetrizedModel`` have it: the ASE calculator, the i-PI client and PES plugin, the
multiple-time-step integrators, the analyses and the exporter all use this class.

- Called on a system (``model(system, properties)``), it evaluates the ``G`` rotated
  copies of the quadrature in batches that share one neighbour list, brings every
  prediction back to the input frame and returns the weighted mean
  (``mdsym.symmetry.averaging``), with the rotational standard deviations as further
  outputs (``energy_rot_std``, ``forces_rot_std``, ``stress_rot_std``); then the spec's
  fixes (``mdsym.symmetry.fixes``). ``o3:auto`` keeps what it needs (the degree, its
  log, the latest predicted errors) on the model.
- With ``inner`` (a ``SymmetrizedModel`` of the model that drives the inner steps of
  multiple time stepping: the raw model with the spec's fixes, or the direct forces),
  its outputs also hold the correction, symmetrized minus inner, as
  ``correction_energy``, ``correction_forces`` (and ``correction_stress``): the slow
  force of ``mts:K`` and what ``mdsym serve --correction`` serves.
- As a ``Model`` (``evaluate(system, rotations, properties)``), it answers for the
  copies ``g x`` in their frames, as every model does: the averaging quadrature
  ``{h}`` composed with the requested ``{g}`` (what ``mdsym equivariance
  --symmetrize`` measures).
"""

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from mdsym.core.errors import MdsymError
from mdsym.core.rotations import rotate_copies, rotate_tensor_copies
from mdsym.models.base import Model
from mdsym.symmetry import auto_degree
from mdsym.symmetry import quadrature as quad
from mdsym.symmetry.averaging import average, evaluate_back_rotated
from mdsym.symmetry.fixes import apply_fixes
from mdsym.symmetry.spec import SymmetrizeSpec

CORRECTION_KEYS = ("energy", "forces", "stress")


class SymmetrizedModel(Model):
    """``model`` averaged over O(3) as ``spec`` says; results in the input frame."""

    def __init__(self, model: Model, spec="none", batch_size=None, seed: int = 0,
                 quadrature: quad.Quadrature = None, inner: "SymmetrizedModel" = None):
        """``quadrature``: an explicit grid to average over (e.g. i-PI's <ffrotations>
        grid) with a spec that names no rotations itself (``none``, fixes only).
        ``inner``: the model whose outputs the correction outputs subtract."""
        self.model = model
        self.spec = SymmetrizeSpec.parse(spec)
        if self.spec.mts_interval:
            raise MdsymError(
                f"{self.spec} is a way to integrate (multiple time stepping), not a model: "
                f"run it with mdsym run; to evaluate, use {self.spec.outer()}"
            )
        if batch_size is not None and batch_size < 1:
            raise MdsymError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)  # None: the model's
        self.inner = inner
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        #: o3:auto: one entry per choice of degree (the first and every change)
        self.degree_log = []
        self.predicted_errors = None  # o3:auto: the latest measurement
        if quadrature is not None and self.spec.mode != "none":
            raise MdsymError(f"an explicit quadrature replaces the rotations of a spec: "
                             f"give it with none, netforce or nettorque, not {self.spec}")
        if quadrature is not None:
            self.quadrature = quadrature
        elif self.spec.mode == "grid":
            self.quadrature = quad.by_name(self.spec.family, self.spec.degree, self.spec.inversion)
        elif self.spec.mode == "auto":
            self.quadrature = None  # chosen at the first call
        else:
            self.quadrature = quad.identity(inversion=False)
        self.explicit_grid = quadrature is not None
        self.name = f"{model.name} [{self.spec}]"
        self.species = model.species
        self.forces_kind = model.forces_kind
        self.has_stress = model.has_stress
        self.device, self.dtype = model.device, model.dtype
        self.variant, self.extra_outputs = model.variant, model.extra_outputs

    # --- what the spec and o3:auto say -----------------------------------------------

    @property
    def averages(self) -> bool:
        """Whether the model averages over rotations (a grid, random or an explicit one)."""
        return self.spec.mode != "none" or self.explicit_grid

    @property
    def degree(self):
        """The degree of the quadrature in use; None for none and random."""
        if self.spec.mode in ("grid", "auto") and self.quadrature is not None:
            return self.quadrature.degree
        return None

    def check_system(self, system) -> None:
        self.model.check_system(system)
        if self.inner is not None:
            self.inner.check_system(system)

    def batch_size_for(self, system) -> int:
        return self.model.batch_size_for(system)

    def choose_degree(self, system) -> int:
        """o3:auto: measure the predicted errors at ``system`` and pick the degree."""
        errors = auto_degree.predicted_force_errors(self.model, system, self.spec.inversion,
                                                    self.batch_size)
        degree, met = auto_degree.choose_degree(errors, self.spec.tolerance)
        self.predicted_errors = errors
        if degree != self.degree:
            self.degree_log.append({
                "call": self.calls, "degree": degree, "previous": self.degree,
                "predicted_error_eVA": errors, "tolerance_eVA": self.spec.tolerance,
                "tolerance_met": met,
            })
            self.quadrature = quad.by_name(self.spec.family, degree, self.spec.inversion)
        return degree

    def current_quadrature(self, system=None) -> quad.Quadrature:
        """The rotations of the next average: a fresh random element, the grid turned by
        a fresh rotation, or the grid."""
        if self.spec.mode == "random":
            return quad.random_element(self.rng, self.spec.inversion)
        if self.quadrature is None:  # o3:auto before its first choice
            if system is None:
                raise MdsymError("o3:auto chooses its degree from a structure: evaluate one first")
            self.choose_degree(system)
        if self.spec.rotated:
            # Q from SO(3): the +-R pairs of an O(3) quadrature stay exact pairs
            turn = Rotation.random(random_state=self.rng).as_matrix()
            return dataclasses.replace(self.quadrature, rotations=self.quadrature.rotations @ turn,
                                       name=f"{self.quadrature.name}-rotated")
        return self.quadrature

    def apply_fixes(self, forces: np.ndarray, system) -> np.ndarray:
        """The cheap physical fixes of the spec: net force and net torque removal."""
        return apply_fixes(self.spec, forces, system)

    # --- one system, in its own frame ---------------------------------------------------

    def __call__(self, system, properties=("energy", "forces"), inner: dict = None) -> dict:
        """The averaged outputs at ``system`` with their rotational std; with an
        ``inner`` model, the correction outputs too. ``inner`` here: the inner model's
        results at the same positions, when the caller has them already (an ASE
        calculator's ``results``, whose full stress is ``stress_3x3``)."""
        if self.spec.mode == "auto" and self.calls % self.spec.recheck == 0:
            self.choose_degree(system)
        quadrature = self.current_quadrature(system)
        self.calls += 1
        results = average(self.model, system, quadrature, properties, self.batch_size)
        if "forces" in results:
            results["forces"] = self.apply_fixes(results["forces"], system)
        if self.inner is not None or inner is not None:
            if inner is None:
                inner = self.inner(system, properties)
            for key in CORRECTION_KEYS:
                if key in results:
                    other = inner["stress_3x3"] if key == "stress" and "stress_3x3" in inner else inner[key]
                    results[f"correction_{key}"] = results[key] - other
        return results

    # --- the Model interface: copies g x, in their frames -------------------------------

    def evaluate(self, system, rotations, properties) -> dict:
        inner = self.current_quadrature(system)
        n_inner, n_outer = len(inner), len(rotations)
        composite = np.einsum("hij,gjk->ghik", inner.rotations, rotations).reshape(-1, 3, 3)
        weights = np.tile(inner.weights, n_outer)
        stacked = quad.Quadrature("composite", composite, weights, 0, True)
        per_copy = evaluate_back_rotated(self.model, system, stacked, properties, self.batch_size)
        results = {}
        for key, values in per_copy.items():
            values = values.reshape((n_outer, n_inner) + values.shape[1:])
            w = inner.weights.reshape((1, n_inner) + (1,) * (values.ndim - 2))
            results[key] = np.sum(w * values, axis=1)
        if "forces" in results:
            fixed = [self.apply_fixes(f, system) for f in results["forces"]]
            results["forces"] = rotate_copies(np.stack(fixed), rotations)
        if "stress" in results:
            results["stress"] = rotate_tensor_copies(results["stress"], rotations)
        return results
