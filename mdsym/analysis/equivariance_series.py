"""Equivariance error A (and symmetry content B) frame by frame along a trajectory.

``EquivarianceSeries`` walks the frames of a run (``run(step=every)``) and, at each,
evaluates the model that drove the run on the rotated copies of a quadrature of
O(3) (all copies of one frame in batches of ``batch_size`` rotations, sharing one
neighbour list), exactly as ``mdsym equivariance`` does on one structure
(``mdsym.symmetry.metrics``): A of the energy (eV) and of the forces (eV/Angstrom) and,
with ``content=True``, B per (lambda, sigma) sector.

For a symmetrized run the raw model and the symmetrized one (``SymmetrizedModel``)
are both measured: ``A_energy`` / ``A_forces`` and ``A_energy_sym`` /
``A_forces_sym``. The symmetrized model costs ``G_metrics x G_symmetrizer``
evaluations per frame, so its A uses the quadrature of ``symmetrized_degree``
(default 1: 48 elements, exact for the variance of degree-1 responses), turned
by a fixed generic rotation (``offset_quadrature``) so that it never coincides with
the symmetrizer's own group, on which the symmetrized model is exact by construction.
"""

import numpy as np
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from MDAnalysis.analysis.base import AnalysisBase
from scipy.spatial.transform import Rotation

from mdsym.core.rotations import rotate_copies
from mdsym.core.system import System
from mdsym.models import load_model
from mdsym.symmetry.averaging import evaluate_back_rotated
from mdsym.symmetry.metrics import equivariance_error, metrics_quadrature, symmetry_content
from mdsym.symmetry.quadrature import Quadrature
from mdsym.symmetry.symmetrized import SymmetrizedModel
from mdsym.symmetry.wigner import wigner_d


def model_of_run(config, model=None):
    """(raw model, symmetrized model or None) that drove a run, from its ``RunConfig``
    (``model``: another model to measure under the run's symmetrization)."""
    raw = load_model(model if model is not None else config.model, forces=config.forces,
                     dtype=config.dtype if model is None else None,  # the run's precision
                     variant=config.variant if model is None else None)  # and its energy
    # an mts:K run integrates the symmetrized model of the rest of its spec
    spec = config.symmetrize.outer()
    if str(spec) == "none":
        return raw, None
    return raw, SymmetrizedModel(raw, spec, seed=config.seed)


def frame_cell(atoms, dimensions) -> np.ndarray:
    """The frame's cell matrix, in the orientation of the run's structure when it fits."""
    if not np.all(atoms.pbc):
        return np.zeros((3, 3))
    reference = np.asarray(atoms.cell.array)
    if dimensions is None or np.allclose(cell_to_cellpar(reference), dimensions, rtol=1e-5, atol=1e-4):
        return reference
    return cellpar_to_cell(dimensions)


#: a fixed generic rotation (no symmetry axis) that moves A's grid off the symmetrizer's
OFFSET_ROTATION = Rotation.from_rotvec([0.3, -0.7, 1.1]).as_matrix()


def offset_quadrature(quadrature):
    """``quadrature`` with every element ``g`` replaced by ``R0 g`` (``R0`` = OFFSET_ROTATION).

    A model symmetrized over a finite group G is exactly equivariant under G, so its A
    measured on a grid that is (or holds) G reads zero whatever its true error: o3:3
    averages over the octahedral group, which is also the degree-1 metrics grid.
    The coset ``R0 G`` is exact to the same degree (Haar measure is invariant) and
    no longer shares G's elements, so A measures the symmetrized model's real error.
    """
    rotations = np.einsum("ij,gjk->gik", OFFSET_ROTATION, quadrature.rotations)
    return Quadrature(f"{quadrature.name}-offset", rotations, quadrature.weights, quadrature.degree,
                      quadrature.inversion)


class EquivarianceSeries(AnalysisBase):
    """``EquivarianceSeries(universe, atoms, model, symmetrized=None).run(step=every)``."""

    def __init__(self, universe, atoms, model, symmetrized=None, max_degree: int = 2,
                 content: bool = False, inversion: bool = True, batch_size=None,
                 symmetrized_degree: int = 1, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.atoms = atoms
        self.model = model
        self.symmetrized = symmetrized
        self.max_degree = int(max_degree)
        self.content = content
        self.batch_size = None if batch_size is None else int(batch_size)  # None: the model chooses
        self.quadrature = metrics_quadrature(self.max_degree, inversion)
        self.sym_quadrature = offset_quadrature(
            metrics_quadrature(min(symmetrized_degree, self.max_degree), inversion))
        self.d_matrices = wigner_d(self.quadrature.rotations, self.max_degree) if content else None

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)

    def _prepare(self):
        n = self.n_frames
        r = self.results
        r.time_ps = np.zeros(n)
        r.frame = np.zeros(n, dtype=int)
        r.A_energy, r.A_forces = np.zeros(n), np.zeros(n)
        if self.symmetrized is not None:
            r.A_energy_sym, r.A_forces_sym = np.zeros(n), np.zeros(n)
        sigmas = (1, -1) if self.quadrature.inversion else (1,)
        r.sectors = [(lam, s) for lam in range(self.max_degree + 1) for s in sigmas]
        if self.content:
            r.B_energy = np.zeros((n, len(r.sectors)))
            r.B_forces = np.zeros((n, len(r.sectors)))
        r.quadrature = self.quadrature.describe()

    def system_of_frame(self) -> System:
        ts = self._ts
        return System(
            positions=np.asarray(ts.positions, dtype=np.float64),
            numbers=np.asarray(self.atoms.numbers, dtype=np.int64),
            cell=frame_cell(self.atoms, ts.dimensions),
            pbc=np.array(self.atoms.pbc, dtype=bool),
            masses=np.asarray(self.atoms.get_masses(), dtype=np.float64),
        )

    def _single_frame(self):
        k, r = self._frame_index, self.results
        system = self.system_of_frame()
        r.time_ps[k], r.frame[k] = self._ts.time, self._ts.frame
        q = self.quadrature
        back = evaluate_back_rotated(self.model, system, q, ("energy", "forces"), self.batch_size)
        r.A_energy[k] = equivariance_error(back["energy"], q.weights)
        r.A_forces[k] = equivariance_error(back["forces"], q.weights)
        if self.content:
            direct = {"energy": back["energy"], "forces": rotate_copies(back["forces"], q.rotations)}
            for key in ("energy", "forces"):
                B = symmetry_content(direct[key], q, self.max_degree, self.d_matrices)
                r[f"B_{key}"][k] = [item["fraction"] for item in B]
        if self.symmetrized is not None:
            qs = self.sym_quadrature
            back = evaluate_back_rotated(self.symmetrized, system, qs, ("energy", "forces"), self.batch_size)
            r.A_energy_sym[k] = equivariance_error(back["energy"], qs.weights)
            r.A_forces_sym[k] = equivariance_error(back["forces"], qs.weights)

    def _conclude(self):
        pass


def summarize(results) -> tuple:
    """(figures, series) of an ``EquivarianceSeries``' results."""
    keys = [k for k in ("A_energy", "A_forces", "A_energy_sym", "A_forces_sym", "B_energy", "B_forces")
            if k in results]
    series = {"time_ps": np.asarray(results.time_ps), "frame": np.asarray(results.frame)}
    figures = {"frames": int(len(results.time_ps)), "quadrature": results.quadrature,
               "sectors": [list(s) for s in results.sectors],
               "units": {"A_energy": "eV", "A_forces": "eV/Angstrom"}}
    for key in keys:
        values = np.asarray(results[key])
        series[key] = values
        if len(values) == 0:
            continue
        if key.startswith("A_"):
            figures[key] = {"mean": float(values.mean()), "max": float(values.max()),
                            "first": float(values[0]), "last": float(values[-1])}
        else:
            figures[key] = {"mean": values.mean(axis=0).tolist()}
    return figures, series
