"""Averaging in i-PI (``--average-in ipi``): which ``<ffrotations>`` grid, and what it gives back.

``ipi_rotation_grid`` is one of i-PI's rotation grids as an mdsym ``Quadrature``,
built by i-PI's own code; ``ipi_grids`` lists i-PI's Lebedev grids with their
measured degree (i-PI declares none). ``RotationGrid`` is the grid an ``o3:L`` /
``so3:L`` spec averages over: its ``<ffrotations>`` block (``input.rotations``), its
description for run.json, and the rotational std of the energy from the energies
i-PI returns for every rotation. ``rotation_grid`` is the grid of a run's
configuration (None unless i-PI averages), ``grid_extras`` the extras of one step
under it, in eV.
"""

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from ipi.utils.mathtools import get_rotation_quadrature_lebedev, get_rotation_quadrature_legendre

from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.md.ipi_engine.input import IPI_GRID_ENERGIES, rotations
from mdsym.serving import ipi_protocol as p
from mdsym.symmetry.quadrature import Quadrature, exactness_degree, worst_error

#: tolerance of the measured exactness of i-PI's grids (their weights are float64)
GRID_TOLERANCE = 1e-10
MAX_GRID_ORDER = 101  # i-PI 3.3's largest Lebedev grid (``ipi/utils/lebedev_grids.npy``)
#: the largest degree averaged in i-PI: its grid (order 13, 1924 rotations over O(3))
#: is measured here with Wigner-D matrices, whose memory grows as size x degree^3
MAX_IPI_DEGREE = 12


def ipi_rotation_grid(grid_mode: str = "lebedev", grid_order: int = 3, inversion: bool = True):
    """The rotations and weights ``rotations()`` makes i-PI average over, as an mdsym
    ``Quadrature``: i-PI rotates ``q R^T`` and ``R h``, mdsym's convention, and adds
    ``-R`` with the same weight when ``inversion`` is on."""
    build = {"lebedev": get_rotation_quadrature_lebedev,
             "legendre": get_rotation_quadrature_legendre}[grid_mode]
    matrices, weights = [], []
    for matrix, weight, _ in build(int(grid_order)):
        matrices.append(matrix)
        weights.append(weight)
        if inversion:
            matrices.append(-matrix)
            weights.append(weight)
    weights = np.array(weights, dtype=np.float64)
    return Quadrature(f"ipi-{grid_mode}-{grid_order}", np.array(matrices), weights / weights.sum(),
                      0, bool(inversion))


def ipi_grids(max_order: int = 13, inversion: bool = True) -> list:
    """i-PI's Lebedev rotation grids up to ``grid_order`` ``max_order``: order, size and
    degree, measured (``mdsym.symmetry.quadrature.exactness_degree``: i-PI declares none)."""
    grids = []
    for order in range(1, max_order + 1):
        try:
            grid = ipi_rotation_grid("lebedev", order, inversion)
        except ValueError:  # i-PI has no Lebedev grid of this order
            continue
        degree = exactness_degree(grid.rotations, grid.weights, inversion, up_to=order + 2,
                                  tol=GRID_TOLERANCE)
        grids.append({"order": order, "size": len(grid), "degree": degree})
    return grids


@dataclass(frozen=True)
class RotationGrid:
    """What ``<ffrotations>`` averages over for an ``o3:L`` / ``so3:L`` spec: i-PI's
    smallest Lebedev grid exact to ``L`` (its ``grid_order``), with inversion for O(3),
    turned at random every evaluation for ``o3:L:rotated``. ``quadrature``: the same
    grid in mdsym (unturned), ``degree``: its measured exactness."""

    grid_order: int
    inversion: bool
    random: bool
    quadrature: object
    degree: int
    grid_mode: str = "lebedev"

    @classmethod
    def for_spec(cls, spec) -> "RotationGrid":
        """The grid of a ``SymmetrizeSpec`` that ``RunConfig`` let through to i-PI."""
        if spec.degree > MAX_IPI_DEGREE:
            raise MdsymError(f"--average-in ipi goes up to degree {MAX_IPI_DEGREE} (i-PI's grids are "
                             f"measured before use), not {spec.degree}: use --average-in driver")
        for order in range(1, MAX_GRID_ORDER + 1):
            try:
                grid = ipi_rotation_grid("lebedev", order, spec.inversion)
            except ValueError:  # i-PI has no Lebedev grid of this order
                continue
            if worst_error(grid.rotations, grid.weights, spec.degree, spec.inversion) < GRID_TOLERANCE:
                degree = exactness_degree(grid.rotations, grid.weights, spec.inversion,
                                          up_to=order + 2, tol=GRID_TOLERANCE)
                return cls(order, spec.inversion, spec.rotated, grid, degree)
        raise MdsymError(f"i-PI has no Lebedev rotation grid exact to degree {spec.degree}: "
                         "use --average-in driver")

    def forcefield(self, name: str, inner: ET.Element) -> ET.Element:
        return rotations(name, inner, self.grid_mode, self.grid_order, self.inversion, self.random)

    def describe(self) -> dict:
        """For ``run.json``: the grid's name, size (force requests per step and bead),
        measured degree, and i-PI's settings."""
        return {"name": self.quadrature.name, "size": len(self.quadrature), "degree": self.degree,
                "grid_mode": self.grid_mode, "grid_order": self.grid_order,
                "inversion": self.inversion, "random": self.random}

    def energy_rot_std(self, grid_energies) -> float:
        """The rotational std of the energy (Hartree in and out) from the energies i-PI
        returns for the rotations, in its order (``ipi_rotation_grid``'s), weighted as
        mdsym's ``symmetrize.average`` weighs them."""
        energies = np.asarray(grid_energies, dtype=np.float64)
        if energies.shape != self.quadrature.weights.shape:
            return float("nan")
        weights = self.quadrature.weights
        shifted = energies - energies[0]
        variance = weights @ shifted**2 - (weights @ shifted) ** 2
        return float(np.sqrt(max(variance, 0.0)))


def rotation_grid(config: RunConfig):
    """The ``<ffrotations>`` grid when i-PI averages (``RotationGrid``), else None."""
    return RotationGrid.for_spec(config.symmetrize) if config.average_in == "ipi" else None


def grid_extras(extras: dict, grid: RotationGrid) -> dict:
    """The rotational std of ``<ffrotations>``'s step (eV): the energy's from the energies
    i-PI returns for every rotation; the forces' is NaN (i-PI keeps no per-rotation
    forces); the degree is the grid's measured exactness."""
    energies = extras.get(IPI_GRID_ENERGIES[0])
    std = float("nan") if energies is None else grid.energy_rot_std(energies) * p.HARTREE
    return {"energy_rot_std": std, "forces_rot_std": float("nan"),
            "symmetrize_degree": float(grid.degree)}
