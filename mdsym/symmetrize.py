"""On-the-fly symmetrization: average a model over a quadrature of O(3).

``Symmetrizer`` evaluates the ``G`` rotated copies of a system in batches that share
one neighbour list, brings every prediction back to the input frame (forces
``F' R``, stress ``R^T S' R``, see ``mdsym.rotations``) and returns the weighted
mean with the rotational standard deviation. Cheap physical fixes are applied
after averaging: removing the net force, and removing the net torque of an
isolated system.

Specs (``SymmetrizeSpec.parse``), joined with ``+``:

- ``none``: the raw model;
- ``random`` / ``random-so3``: one Haar-random element of O(3) / SO(3) per call;
- ``o3:L`` / ``so3:L``: the cheapest quadrature exact to degree ``L``;
  ``o3:L:lebedev`` or ``o3:L:gauss-legendre`` to force a family;
- ``netforce``: remove the net force (mass weighted, as a uniform acceleration);
- ``nettorque``: remove the net torque about the centre of mass (isolated only).

Example: ``o3:3+nettorque``, ``random+netforce+nettorque``.
"""

from dataclasses import dataclass

import numpy as np

from . import quadrature as quad
from .errors import MdsymError
from .models.base import Model
from .rotations import back_rotate_tensors, back_rotate_vectors
from .system import System


@dataclass(frozen=True)
class SymmetrizeSpec:
    mode: str = "none"  # none | random | grid
    degree: int = 0
    inversion: bool = True
    family: str = "cheapest"
    remove_net_force: bool = False
    remove_net_torque: bool = False

    @classmethod
    def parse(cls, text) -> "SymmetrizeSpec":
        if isinstance(text, SymmetrizeSpec):
            return text
        if text is None:
            return cls()
        parts = [p.strip().lower() for p in str(text).split("+") if p.strip()]
        if not parts:
            return cls()
        fields = {}
        for part in parts:
            if part == "netforce":
                fields["remove_net_force"] = True
            elif part == "nettorque":
                fields["remove_net_torque"] = True
            elif part == "none":
                fields["mode"] = "none"
            elif part in ("random", "random-o3", "random-so3"):
                fields.update(mode="random", inversion=part != "random-so3")
            elif part.startswith(("o3:", "so3:")):
                group, _, rest = part.partition(":")
                degree_text, _, family = rest.partition(":")
                try:
                    degree = int(degree_text)
                except ValueError:
                    raise MdsymError(f"bad degree {degree_text!r} in symmetrization {text!r}") from None
                family = family or "cheapest"
                # validate the degree and family now, not at the first step
                try:
                    quad.by_name(family, degree, group == "o3")
                except quad.QuadratureError as error:
                    raise MdsymError(str(error)) from None
                fields.update(mode="grid", degree=degree, inversion=group == "o3", family=family)
            else:
                raise MdsymError(
                    f"unknown symmetrization {part!r} in {text!r}; use none, random, "
                    "random-so3, o3:L, so3:L, netforce, nettorque joined with '+'"
                )
        return cls(**fields)

    def evaluations_per_call(self) -> int:
        """Model evaluations one symmetrized call makes (rotated copies)."""
        if self.mode == "grid":
            return len(quad.by_name(self.family, self.degree, self.inversion))
        return 1

    def __str__(self) -> str:
        parts = []
        if self.mode == "random":
            parts.append("random" if self.inversion else "random-so3")
        elif self.mode == "grid":
            group = "o3" if self.inversion else "so3"
            family = "" if self.family == "cheapest" else f":{self.family}"
            parts.append(f"{group}:{self.degree}{family}")
        if self.remove_net_force:
            parts.append("netforce")
        if self.remove_net_torque:
            parts.append("nettorque")
        return "+".join(parts) or "none"


class Symmetrizer:
    """Average ``model`` over O(3) as ``spec`` says; results in the input frame."""

    def __init__(self, model: Model, spec="none", batch_size=None, seed: int = 0):
        self.model = model
        self.spec = SymmetrizeSpec.parse(spec)
        if batch_size is not None and batch_size < 1:
            raise MdsymError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)  # None: the model's
        self.rng = np.random.default_rng(seed)
        if self.spec.mode == "grid":
            self.quadrature = quad.by_name(self.spec.family, self.spec.degree, self.spec.inversion)
        else:
            self.quadrature = quad.identity(inversion=False)

    def current_quadrature(self) -> quad.Quadrature:
        if self.spec.mode == "random":
            return quad.random_element(self.rng, self.spec.inversion)
        return self.quadrature

    def __call__(self, system: System, properties=("energy", "forces")) -> dict:
        quadrature = self.current_quadrature()
        results = average(self.model, system, quadrature, properties, self.batch_size)
        if "forces" in results:
            results["forces"] = self.apply_fixes(results["forces"], system)
        return results

    def apply_fixes(self, forces: np.ndarray, system: System) -> np.ndarray:
        """The cheap physical fixes of the spec: net force and net torque removal."""
        if self.spec.remove_net_force:
            forces = remove_net_force(forces, system.masses)
        if self.spec.remove_net_torque:
            if system.periodic:
                raise MdsymError("nettorque applies to isolated systems only")
            forces = remove_net_torque(forces, system.positions, system.masses)
        return forces


def back_rotated_batches(model, system, quadrature, properties, batch_size=None):
    """Yield ``(weights, predictions)`` batch by batch, predictions in the input frame.

    ``batch_size`` copies go through the model together (None: the model's choice).
    """
    properties = tuple(p for p in properties if p != "stress" or system.periodic)
    batch_size = batch_size or model.batch_size_for(system)
    for start in range(0, len(quadrature), batch_size):
        rotations = quadrature.rotations[start : start + batch_size]
        out = model.evaluate(system, rotations, properties)
        if "forces" in out:
            out["forces"] = back_rotate_vectors(out["forces"], rotations)
        if "stress" in out:
            out["stress"] = back_rotate_tensors(out["stress"], rotations)
        yield quadrature.weights[start : start + batch_size], out
        del out  # not held while the next batch is evaluated


def evaluate_back_rotated(model, system, quadrature, properties, batch_size=None) -> dict:
    """Every copy's prediction brought back to the input frame: arrays over G."""
    chunks = [out for _, out in back_rotated_batches(model, system, quadrature, properties, batch_size)]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def average(model, system, quadrature, properties=("energy", "forces"), batch_size=None) -> dict:
    """Weighted mean over the quadrature, and the rotational std as ``<key>_rot_std``.

    Accumulated batch by batch, so memory grows with the batch, not with the number
    of rotations. The moments are taken about the first copy's prediction, which
    keeps ``E[d^2] - E[d]^2`` free of cancellation when the mean is large.
    """
    reference, first, second = {}, {}, {}
    for weights, out in back_rotated_batches(model, system, quadrature, properties, batch_size):
        for key, values in out.items():
            if key not in reference:
                reference[key] = values[0].copy()
                first[key] = np.zeros_like(reference[key])
                second[key] = np.zeros_like(reference[key])
            w = weights.reshape((-1,) + (1,) * (values.ndim - 1))
            shifted = values - reference[key]
            first[key] += np.sum(w * shifted, axis=0)
            second[key] += np.sum(w * shifted**2, axis=0)
        del out, values, shifted  # not held while the next batch is evaluated
    results = {}
    for key in reference:
        variance = second[key] - first[key] ** 2
        results[key] = reference[key] + first[key]
        results[f"{key}_rot_std"] = np.sqrt(np.maximum(variance, 0.0))
    results["energy"] = float(results["energy"])
    results["energy_rot_std"] = float(results["energy_rot_std"])
    return results


def remove_net_force(forces: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract ``m_i / M * sum F``: the net force goes, accelerations shift uniformly."""
    return forces - masses[:, None] / masses.sum() * forces.sum(axis=0)


def remove_net_torque(forces: np.ndarray, positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract the rigid angular acceleration ``m_i alpha x (r_i - r_com)``.

    ``alpha`` solves ``I alpha = tau`` with ``I`` the inertia tensor about the centre
    of mass; the net force is left unchanged and the net torque becomes zero.
    """
    from . import mechanics

    centred = mechanics.about_centre_of_mass(positions, masses)
    torque = mechanics.torque(positions, forces, masses)
    inertia = mechanics.inertia_tensor(positions, masses)
    alpha = np.linalg.lstsq(inertia, torque, rcond=None)[0]  # lstsq: linear molecules
    return forces - masses[:, None] * np.cross(alpha, centred)
