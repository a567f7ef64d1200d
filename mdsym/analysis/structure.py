"""Structural distributions along a trajectory, and distances between them.

- Periodic systems: the radial distribution function g(r) of all atoms, with
  MDAnalysis' ``InterRDF``, up to half the shortest box length.
- Isolated systems: the distributions of bond lengths and bond angles
  (``BondsAndAngles``), bonds being pairs closer than 1.2 times the sum of covalent
  radii (``mdsym.core.molecules``), recomputed in every frame used.

``distribution_distance`` is the Wasserstein-1 (earth mover's) distance between
two distributions on the same kind of axis (Angstrom for g(r) and bonds, degrees
for angles); for g(r) the weights are ``g(r) r^2``, the pair-distance density.
At most ``max_frames`` frames, evenly spaced, are used.
"""

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase
from MDAnalysis.analysis.rdf import InterRDF

from mdsym.core.molecules import bonded_pairs

BOND_BINS = np.linspace(0.5, 5.0, 181)
ANGLE_BINS = np.linspace(0.0, 180.0, 181)


def _frames(n_frames: int, max_frames: int) -> np.ndarray:
    if n_frames == 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, max_frames)).round().astype(int))


def rdf(universe, n_frames: int, max_frames: int = 200, nbins: int = 150) -> dict:
    """g(r) of all atoms with ``MDAnalysis.analysis.rdf.InterRDF``."""
    frames = _frames(n_frames, max_frames)
    universe.trajectory[int(frames[0])]
    box = universe.trajectory.ts.dimensions
    r_max = 0.5 * float(np.min(box[:3]))
    atoms = universe.atoms
    analysis = InterRDF(atoms, atoms, nbins=nbins, range=(0.0, r_max), exclusion_block=(1, 1))
    analysis.run(frames=frames)
    return {"kind": "rdf", "bins": analysis.results.bins.tolist(),
            "rdf": analysis.results.rdf.tolist(), "frames_used": int(len(frames))}


class BondsAndAngles(AnalysisBase):
    """``BondsAndAngles(universe, numbers).run(frames=...)``: histograms (densities) of
    the bond lengths and bond angles of the frames walked, their means and the bond
    length's standard deviation, in ``results.figures``. Each frame adds to the
    histograms' counts and to running sums, so memory does not grow with frames."""

    def __init__(self, universe, numbers, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.numbers = np.asarray(numbers)

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)

    def _prepare(self):
        self.bond_counts = np.zeros(len(BOND_BINS) - 1)
        self.angle_counts = np.zeros(len(ANGLE_BINS) - 1)
        self.bonds = self.angles = 0  # how many
        self.bond_sum = self.bond_sum_squares = self.angle_sum = 0.0

    def _single_frame(self):
        positions = np.asarray(self._ts.positions, dtype=np.float64)
        pairs, lengths = bonded_pairs(positions, self.numbers)
        # every bond seen from each end: (centre, unit vector to the neighbour), by centre
        centre = np.concatenate([pairs[:, 0], pairs[:, 1]])
        vectors = positions[pairs[:, 1]] - positions[pairs[:, 0]]
        units = np.concatenate([vectors, -vectors]) / np.concatenate([lengths, lengths])[:, None]
        order = np.argsort(centre, kind="stable")
        centre, units = centre[order], units[order]
        # the angles at a centre: every two of its bonds, k places apart in that order
        degree = np.bincount(centre).max() if len(centre) else 0
        cosines = []
        for k in range(1, degree):
            same = centre[k:] == centre[:-k]
            cosines.append(np.einsum("ij,ij->i", units[k:][same], units[:-k][same]))
        angles = np.degrees(np.arccos(np.clip(np.concatenate(cosines), -1.0, 1.0))) if cosines else np.zeros(0)
        self.bond_counts += np.histogram(lengths, BOND_BINS)[0]
        self.angle_counts += np.histogram(angles, ANGLE_BINS)[0]
        self.bonds += len(lengths)
        self.angles += len(angles)
        self.bond_sum += lengths.sum()
        self.bond_sum_squares += (lengths * lengths).sum()
        self.angle_sum += angles.sum()

    def _conclude(self):
        def density(counts, bins):  # as numpy.histogram(..., density=True)
            return counts / counts.sum() / np.diff(bins) if counts.sum() else np.zeros(len(bins) - 1)

        mean = self.bond_sum / self.bonds if self.bonds else float("nan")
        variance = self.bond_sum_squares / self.bonds - mean**2 if self.bonds else float("nan")
        self.results.figures = {
            "kind": "bonds",
            "bond_bins": (0.5 * (BOND_BINS[1:] + BOND_BINS[:-1])).tolist(),
            "bond_hist": density(self.bond_counts, BOND_BINS).tolist(),
            "angle_bins": (0.5 * (ANGLE_BINS[1:] + ANGLE_BINS[:-1])).tolist(),
            "angle_hist": density(self.angle_counts, ANGLE_BINS).tolist(),
            "bond_mean_A": float(mean),
            "bond_std_A": float(np.sqrt(max(variance, 0.0))) if self.bonds else float("nan"),
            "angle_mean_deg": float(self.angle_sum / self.angles) if self.angles else float("nan"),
            "bonds_per_frame": float(self.bonds / max(self.n_frames, 1)),
            "frames_used": int(self.n_frames),
        }


def structure_of(run, max_frames: int = 200) -> dict:
    """The structural distributions of a ``RunData`` (its frames streamed)."""
    if run.n_frames == 0:
        return {"kind": "none"}
    if run.periodic:
        return rdf(run.universe, run.n_frames, max_frames)
    analysis = BondsAndAngles(run.universe, run.numbers)
    return analysis.run(frames=_frames(run.n_frames, max_frames)).results.figures


def _wasserstein(bins_a, weights_a, bins_b, weights_b) -> float:
    from scipy.stats import wasserstein_distance  # start-up time: scipy.stats (~0.7 s), for comparisons only

    weights_a, weights_b = np.asarray(weights_a, float), np.asarray(weights_b, float)
    if weights_a.sum() <= 0 or weights_b.sum() <= 0:
        return float("nan")
    return float(wasserstein_distance(bins_a, bins_b, weights_a, weights_b))


def distribution_distance(a: dict, b: dict) -> dict:
    """Wasserstein-1 distances between two ``structure_of`` results of the same kind."""
    if a.get("kind") != b.get("kind") or a.get("kind") == "none":
        return {}
    if a["kind"] == "rdf":
        weight = lambda s: np.asarray(s["rdf"]) * np.asarray(s["bins"]) ** 2  # noqa: E731
        return {"rdf_A": _wasserstein(a["bins"], weight(a), b["bins"], weight(b))}
    return {
        "bonds_A": _wasserstein(a["bond_bins"], a["bond_hist"], b["bond_bins"], b["bond_hist"]),
        "angles_deg": _wasserstein(a["angle_bins"], a["angle_hist"], b["angle_bins"], b["angle_hist"]),
    }
