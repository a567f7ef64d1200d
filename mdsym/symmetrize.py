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
- ``o3:L:rotated``: the same quadrature turned by a fresh Haar-random rotation
  ``Q`` at every call (elements ``R_g Q``, seeded): still exact to degree ``L``,
  and what lies above ``L`` becomes zero-mean noise instead of a fixed bias;
- ``o3:auto[:TOL[:N]]``: the lowest degree (up to ``mdsym.auto_degree.MAX_DEGREE``)
  whose predicted force error is below ``TOL`` eV/A, measured from the symmetry
  content of the forces at the first call and again every ``N`` calls
  (``mdsym.auto_degree``); the degree may rise or fall, every choice is kept in
  ``Symmetrizer.degree_log``;
- ``mts:K``: multiple time stepping (``mdsym.engines.mts``): the raw model drives
  every step and the correction towards the rest of the spec is an impulse every
  ``K`` steps. A way to integrate, not a model: ``mdsym run`` only (both engines;
  ``mdsym serve --correction`` serves the i-PI engine's outer force);
  ``mts:K:direct``: the model's direct forces drive every step and the correction
  goes to its conservative forces, symmetrized as the rest of the spec says, if
  at all (Bigi, Langer, Ceriotti, "The dark side of the forces", 2024);
- ``netforce``: remove the net force (mass weighted, as a uniform acceleration);
- ``nettorque``: remove the net torque about the centre of mass (isolated only).
  With ``mts:K`` the fixes apply to the raw force of every step and to the
  symmetrized force, so the correction carries no net force or torque either.

Example: ``o3:3+nettorque``, ``random+netforce+nettorque``, ``mts:8+o3:3``,
``o3:1:rotated``, ``mts:4+o3:auto:0.005``.

Rotated grids and i-PI's ``<ffrotations>`` with ``random``: i-PI also turns its
whole grid by one random element per evaluation (``R_g @ R_random``). Its random
element is drawn from O(3) (a coin flip for ``-R``) and its grid is a Lebedev x
in-plane product with no declared degree; mdsym draws ``Q`` from SO(3) only, so
an ``o3`` grid keeps its exact ``+-R`` pairs (pseudoscalar parts cancel at every
call, not on average) and an ``so3`` grid stays a symmetrization over SO(3), on
the cheapest rule exact to ``L`` (8 rotations at ``o3:1``, 48 at ``o3:3``).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from . import auto_degree
from . import quadrature as quad
from .errors import MdsymError
from .models.base import Model
from .rotations import back_rotate_tensors, back_rotate_vectors
from .system import System


@dataclass(frozen=True)
class SymmetrizeSpec:
    mode: str = "none"  # none | random | grid | auto
    degree: int = 0  # grid: the quadrature's degree
    inversion: bool = True
    family: str = "cheapest"
    rotated: bool = False  # grid, auto: turn the quadrature by a random Q every call
    tolerance: float = auto_degree.DEFAULT_TOLERANCE_EVA  # auto: eV/Angstrom
    recheck: int = auto_degree.DEFAULT_RECHECK_CALLS  # auto: calls between measurements
    mts_interval: int = 0  # mts:K; 0 for plain (single time step) dynamics
    mts_direct: bool = False  # mts:K:direct: direct forces inside, conservative outside
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
        fields, modes, intervals = {}, [], []
        for part in parts:
            if part == "netforce":
                fields["remove_net_force"] = True
            elif part == "nettorque":
                fields["remove_net_torque"] = True
            elif part == "none":
                modes.append(part)
                fields["mode"] = "none"
            elif part in ("random", "random-o3", "random-so3"):
                modes.append(part)
                fields.update(mode="random", inversion=part != "random-so3")
            elif part.startswith(("o3:", "so3:")):
                modes.append(part)
                fields.update(_parse_grid(part, text))
            elif part.startswith("mts:"):
                intervals.append(part)
                fields["mts_interval"], fields["mts_direct"] = _parse_mts(part, text)
            else:
                raise MdsymError(
                    f"unknown symmetrization {part!r} in {text!r}; use none, random, "
                    "random-so3, o3:L, so3:L, o3:L:rotated, o3:auto, mts:K, netforce, "
                    "nettorque joined with '+'"
                )
        for kind, named in (("symmetrization", modes), ("time stepping", intervals)):
            if len(named) > 1:
                raise MdsymError(f"{text!r} names more than one {kind} ({', '.join(named)}): keep one")
        spec = cls(**fields)
        if spec.mts_interval and not spec.mts_direct and spec.mode not in ("grid", "auto", "random"):
            raise MdsymError(
                f"{text!r}: mts:{spec.mts_interval} needs a symmetrization to correct the raw "
                "model towards: add o3:L, so3:L, o3:auto or random (e.g. mts:8+o3:3), "
                "or use mts:K:direct (direct forces inside, conservative outside)"
            )
        return spec

    def inner(self) -> "SymmetrizeSpec":
        """Under ``mts:K``: what drives every step, the raw model with the spec's fixes."""
        return SymmetrizeSpec(remove_net_force=self.remove_net_force,
                              remove_net_torque=self.remove_net_torque)

    def outer(self) -> "SymmetrizeSpec":
        """Under ``mts:K``: the symmetrized model the impulses correct towards."""
        return dataclasses.replace(self, mts_interval=0, mts_direct=False)

    def evaluations_per_call(self) -> int:
        """Model evaluations one symmetrized call makes (rotated copies); for ``auto``
        the largest grid it may choose (its measurements cost more, every ``N`` calls)."""
        if self.mode == "grid":
            return len(quad.by_name(self.family, self.degree, self.inversion))
        if self.mode == "auto":
            return len(quad.by_name(self.family, auto_degree.MAX_DEGREE, self.inversion))
        return 1

    def __str__(self) -> str:
        parts = []
        if self.mts_interval:
            parts.append(f"mts:{self.mts_interval}" + (":direct" if self.mts_direct else ""))
        if self.mode == "random":
            parts.append("random" if self.inversion else "random-so3")
        elif self.mode in ("grid", "auto"):
            group = "o3" if self.inversion else "so3"
            degree = self.degree if self.mode == "grid" else f"auto:{self.tolerance!r}:{self.recheck}"
            family = "" if self.family == "cheapest" else f":{self.family}"
            rotated = ":rotated" if self.rotated else ""
            parts.append(f"{group}:{degree}{family}{rotated}")
        if self.remove_net_force:
            parts.append("netforce")
        if self.remove_net_torque:
            parts.append("nettorque")
        return "+".join(parts) or "none"


def _parse_grid(part: str, text) -> dict:
    """The fields of ``o3:L[:FAMILY][:rotated]`` or ``o3:auto[:TOL[:N]][:FAMILY][:rotated]``."""
    group, _, rest = part.partition(":")
    degree_text, *options = rest.split(":")
    fields = {"inversion": group == "o3"}
    numbers = []
    for option in options:
        if option == "rotated":
            fields["rotated"] = True
        elif _is_family(option):
            fields["family"] = option
        elif degree_text == "auto" and _is_number(option):
            numbers.append(option)
        else:
            raise MdsymError(
                f"unknown option {option!r} of {part!r} in symmetrization {text!r}: use a "
                "quadrature family (cheapest, lebedev, gauss-legendre), rotated, and with "
                "auto TOL[:N]"
            )
    if degree_text == "auto":
        if len(numbers) > 2:
            raise MdsymError(f"{part!r} in {text!r}: o3:auto takes at most a tolerance and a re-check interval")
        tolerance = float(numbers[0]) if numbers else auto_degree.DEFAULT_TOLERANCE_EVA
        if not np.isfinite(tolerance) or tolerance <= 0:
            raise MdsymError(f"{part!r} in {text!r}: the tolerance must be a positive number of eV/A")
        recheck = numbers[1] if len(numbers) > 1 else str(auto_degree.DEFAULT_RECHECK_CALLS)
        if not recheck.isdigit() or int(recheck) < 1:
            raise MdsymError(f"{part!r} in {text!r}: the re-check interval must be a whole number >= 1")
        fields.update(mode="auto", tolerance=tolerance, recheck=int(recheck))
        return fields
    try:
        degree = int(degree_text)
    except ValueError:
        raise MdsymError(f"bad degree {degree_text!r} in symmetrization {text!r}") from None
    # validate the degree and family now, not at the first step
    try:
        quad.by_name(fields.get("family", "cheapest"), degree, fields["inversion"])
    except quad.QuadratureError as error:
        raise MdsymError(str(error)) from None
    fields.update(mode="grid", degree=degree)
    return fields


def _parse_mts(part: str, text) -> tuple:
    """``(K, direct)`` of ``mts:K[:direct]``."""
    _, interval, *options = part.split(":")
    if not interval.isdigit() or int(interval) < 1:
        raise MdsymError(f"{part!r} in {text!r}: mts:K needs a whole number of steps K >= 1")
    if options not in ([], ["direct"]):
        raise MdsymError(f"{part!r} in {text!r}: mts:K takes one option, direct")
    return int(interval), options == ["direct"]


def _is_family(text: str) -> bool:
    """Whether ``mdsym.quadrature.by_name`` knows a family of this name."""
    try:
        quad.by_name(text, 0)
    except quad.QuadratureError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Symmetrizer:
    """Average ``model`` over O(3) as ``spec`` says; results in the input frame."""

    def __init__(self, model: Model, spec="none", batch_size=None, seed: int = 0,
                 quadrature: quad.Quadrature = None):
        """``quadrature``: an explicit grid to average over (e.g. i-PI's <ffrotations>
        grid) with a spec that names no rotations itself (``none``, fixes only)."""
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

    @property
    def degree(self):
        """The degree of the quadrature in use; None for none and random."""
        if self.spec.mode in ("grid", "auto") and self.quadrature is not None:
            return self.quadrature.degree
        return None

    def choose_degree(self, system: System) -> int:
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

    def current_quadrature(self, system: System = None) -> quad.Quadrature:
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

    def __call__(self, system: System, properties=("energy", "forces")) -> dict:
        if self.spec.mode == "auto" and self.calls % self.spec.recheck == 0:
            self.choose_degree(system)
        quadrature = self.current_quadrature(system)
        self.calls += 1
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
