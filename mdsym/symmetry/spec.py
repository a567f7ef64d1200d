"""``SymmetrizeSpec``: what ``--symmetrize`` says, parsed once and passed on as an object.

Specs (``SymmetrizeSpec.parse``), joined with ``+``:

- ``none``: the raw model;
- ``random`` / ``random-so3``: one Haar-random element of O(3) / SO(3) per call;
- ``o3:L`` / ``so3:L``: the cheapest quadrature exact to degree ``L``;
  ``o3:L:lebedev`` or ``o3:L:gauss-legendre`` to force a family;
- ``o3:L:rotated``: the same quadrature turned by a fresh Haar-random rotation
  ``Q`` at every call (elements ``R_g Q``, seeded): still exact to degree ``L``,
  and what lies above ``L`` becomes zero-mean noise instead of a fixed bias;
- ``o3:auto[:TOL[:N]]``: the lowest degree (up to ``mdsym.core.defaults.AUTO_MAX_DEGREE``)
  whose predicted force error is below ``TOL`` eV/A, measured from the symmetry
  content of the forces at the first call and again every ``N`` calls
  (``mdsym.symmetry.auto_degree``); the degree may rise or fall, every choice is kept in
  ``SymmetrizedModel.degree_log``;
- ``mts:K``: multiple time stepping (``mdsym.md.mts``): the raw model drives
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

from mdsym.core.defaults import AUTO_MAX_DEGREE, DEFAULT_RECHECK_CALLS, DEFAULT_TOLERANCE_EVA
from mdsym.core.errors import MdsymError
from mdsym.symmetry import quadrature as quad


@dataclass(frozen=True)
class SymmetrizeSpec:
    mode: str = "none"  # none | random | grid | auto
    degree: int = 0  # grid: the quadrature's degree
    inversion: bool = True
    family: str = "cheapest"
    rotated: bool = False  # grid, auto: turn the quadrature by a random Q every call
    tolerance: float = DEFAULT_TOLERANCE_EVA  # auto: eV/Angstrom
    recheck: int = DEFAULT_RECHECK_CALLS  # auto: calls between measurements
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
        for fix in ("netforce", "nettorque"):
            if parts.count(fix) > 1:
                raise MdsymError(f"{text!r} names {fix} {parts.count(fix)} times: keep one")
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
            return len(quad.by_name(self.family, AUTO_MAX_DEGREE, self.inversion))
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
        tolerance = float(numbers[0]) if numbers else DEFAULT_TOLERANCE_EVA
        if not np.isfinite(tolerance) or tolerance <= 0:
            raise MdsymError(f"{part!r} in {text!r}: the tolerance must be a positive number of eV/A")
        recheck = numbers[1] if len(numbers) > 1 else str(DEFAULT_RECHECK_CALLS)
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
    """Whether ``mdsym.symmetry.quadrature.by_name`` knows a family of this name."""
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
