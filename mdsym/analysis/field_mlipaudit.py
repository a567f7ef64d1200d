"""MLIP Audit's stability figures (InstaDeep, ``mlipaudit`` 0.1.8 on PyPI), written from
its definitions (``mlipaudit.scoring``, ``mlipaudit.benchmarks.nve_energy_conservation``,
``mlipaudit.benchmarks.stability`` and ``mlipaudit.utils.stability``; each function
cites its source): the soft-threshold score, the NVE drift ratio and score, the
explosion frame, hydrogen detachment and the stability score. Why the definitions are
reproduced, and the units: ``mdsym.analysis.field_scores``.
"""

import numpy as np
from ase.data import covalent_radii
from ase.geometry import find_mic

#: MLIP Audit: ``mlipaudit.scoring.ALPHA``, the decay rate of the soft threshold
MLIPAUDIT_ALPHA = 3.0
#: MLIP Audit: ``nve_energy_conservation.ENERGY_DRIFT_RATIO_THRESHOLD``
MLIPAUDIT_NVE_RATIO_THRESHOLD = 1.0
#: MLIP Audit: ``utils.stability.HYDROGEN_BOND_CUTOFF_ANGSTROM`` (bond broken / H drifting)
MLIPAUDIT_HYDROGEN_CUTOFF_A = 2.5
#: MLIP Audit: ``utils.stability.TEMPERATURE_THRESHOLD``, K above the target temperature
MLIPAUDIT_EXPLOSION_KELVIN = 10_000.0
#: MLIP Audit: a temperature 100 times the previous frame's is an explosion
MLIPAUDIT_EXPLOSION_JUMP = 100.0
#: bonds of the initial structure: closer than this times the sum of covalent radii
#: (mdsym's stability monitor uses the same factor; MLIP Audit reads bonds from a PDB)
BOND_FACTOR = 1.2


def mlipaudit_score(values, threshold: float, alpha: float = MLIPAUDIT_ALPHA) -> np.ndarray:
    """MLIP Audit's soft threshold: 1 below ``threshold``, then
    ``exp(-alpha (x - threshold) / threshold)``; a missing (NaN/None) value scores 0.

    Source: ``mlipaudit.scoring.compute_metric_score(values, threshold, alpha)``.
    """
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    x = np.array([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)
    scores = np.ones_like(x)
    above = np.isfinite(x) & (x >= threshold)
    scores[above] = np.exp(-alpha * (x[above] - threshold) / threshold)
    scores[~np.isfinite(x)] = 0.0
    return scores


def mlipaudit_nve(time_ps, total_eV, kinetic_eV) -> dict:
    """MLIP Audit's NVE energy-conservation figures of one trajectory.

    The total energy's drift from its first value, ``E(t) - E(0)``, is fitted with
    a straight line; ``ratio = |slope| * duration / std(K)`` (the fitted drift over
    the run against the kinetic energy's natural fluctuation, population std);
    ``score = mlipaudit_score(ratio, 1.0)``. A series with fewer than two points,
    a non-finite total energy or a constant kinetic energy has ``failed`` set and
    scores 0.

    Source: ``mlipaudit.benchmarks.nve_energy_conservation``,
    ``NVEEnergyConservationBenchmark._analyze_structure`` (threshold
    ``ENERGY_DRIFT_RATIO_THRESHOLD = 1.0``, ``ALPHA = 3``). MLIP Audit samples a
    snapshot every 50 steps; mdsym passes every step of thermo.csv.
    """
    t = np.asarray(time_ps, dtype=float)
    total = np.asarray(total_eV, dtype=float)
    kinetic = np.asarray(kinetic_eV, dtype=float)
    out = {"failed": True, "score": 0.0, "ratio": None, "slope_eV_ps": None,
           "total_drift_eV": None, "kinetic_std_eV": None, "points": int(total.size)}
    if total.size < 2 or not np.all(np.isfinite(total)) or np.ptp(t) == 0:
        return out
    slope, _ = np.polyfit(t, total - total[0], 1)
    kinetic_std = float(np.std(kinetic))
    out.update(slope_eV_ps=float(slope), kinetic_std_eV=kinetic_std)
    if kinetic_std == 0.0 or not np.isfinite(kinetic_std):
        return out
    drift = abs(float(slope)) * float(t[-1] - t[0])
    ratio = drift / kinetic_std
    out.update(failed=False, total_drift_eV=drift, ratio=ratio,
               score=float(mlipaudit_score(ratio, MLIPAUDIT_NVE_RATIO_THRESHOLD)[0]))
    return out


def mlipaudit_explosion_frame(temperature_K, target_K: float) -> int:
    """The first frame at which MLIP Audit calls a run exploded, or -1.

    Exploded: the temperature exceeds ``target + 10000 K``, or (when it never does)
    the first frame whose temperature is more than 100 times the previous one's.

    Source: ``mlipaudit.utils.stability.find_explosion_frame``.
    """
    temps = np.asarray(temperature_K, dtype=float)
    hot = np.flatnonzero(temps > target_K + MLIPAUDIT_EXPLOSION_KELVIN)
    if hot.size:
        return int(hot[0])
    jumps = np.flatnonzero(temps[1:] > MLIPAUDIT_EXPLOSION_JUMP * temps[:-1])
    return int(jumps[0] + 1) if jumps.size else -1


def _distances(positions, first, second, cell=None, pbc=None) -> np.ndarray:
    """``|r_second - r_first|`` for every frame: ``(F, N, 3)`` -> ``(F, pairs)``,
    minimum image when periodic (ASE's ``find_mic``)."""
    vectors = positions[:, second] - positions[:, first]
    if pbc is not None and np.any(pbc):
        flat, _ = find_mic(vectors.reshape(-1, 3), cell, pbc)
        vectors = flat.reshape(vectors.shape)
    return np.linalg.norm(vectors, axis=-1)


def heavy_hydrogen_bonds(numbers, positions, cell=None, pbc=None, exclude_water: bool = True) -> np.ndarray:
    """(heavy atom, hydrogen) pairs bonded in ``positions``: ``(bonds, 2)``.

    MLIP Audit takes these bonds from each system's PDB topology and leaves out
    solvent residues (``WAT``, ``HOH``): ``find_heavy_to_hydrogen_starting_bonds``.
    mdsym has no topology, so a bond is a pair closer than ``BOND_FACTOR`` times the
    sum of covalent radii in the initial structure, and water (an O bonded to
    exactly two H and nothing else) is left out when ``exclude_water``.
    """
    numbers = np.asarray(numbers)
    positions = np.asarray(positions, dtype=float)
    hydrogens = np.flatnonzero(numbers == 1)
    heavy = np.flatnonzero(numbers != 1)
    if hydrogens.size == 0 or heavy.size == 0:
        return np.zeros((0, 2), dtype=int)
    first = np.repeat(heavy, hydrogens.size)
    second = np.tile(hydrogens, heavy.size)
    d = _distances(positions[None], first, second, cell, pbc)[0]
    limit = BOND_FACTOR * (covalent_radii[numbers[first]] + covalent_radii[numbers[second]])
    bonds = np.stack([first, second], axis=1)[d < limit]
    if exclude_water and len(bonds):
        every = np.arange(len(numbers))
        a, b = np.repeat(every, len(every)), np.tile(every, len(every))
        d_all = _distances(positions[None], a, b, cell, pbc)[0].reshape(len(every), len(every))
        limit_all = BOND_FACTOR * (covalent_radii[numbers][:, None] + covalent_radii[numbers][None])
        bonded = (d_all < limit_all) & ~np.eye(len(every), dtype=bool)
        water = {o for o in np.flatnonzero(numbers == 8)
                 if bonded[o].sum() == 2 and np.all(numbers[bonded[o]] == 1)}
        bonds = np.array([bond for bond in bonds if bond[0] not in water], dtype=int).reshape(-1, 2)
    return bonds


def mlipaudit_hydrogen_drift(positions, numbers, bonds, cell=None, pbc=None,
                             cutoff_A: float = MLIPAUDIT_HYDROGEN_CUTOFF_A) -> tuple:
    """``(frame, hydrogen)``: the first frame from which a hydrogen stays detached
    to the end of the trajectory, or ``(-1, -1)``.

    A (heavy, H) bond of the initial structure is broken in a frame where it is
    longer than ``cutoff_A`` (2.5 Angstrom). For every hydrogen whose bond breaks
    somewhere, the hydrogen is drifting in a frame where it is farther than
    ``cutoff_A`` from every heavy atom; its drift starts at the first frame from
    which it drifts in every later frame. The result is the earliest such start.

    Source: ``mlipaudit.benchmarks.stability.stability.detect_hydrogen_drift`` and
    ``find_first_drifting_frames`` (distances in nm there, Angstrom here).
    """
    positions = np.asarray(positions, dtype=float)
    numbers = np.asarray(numbers)
    bonds = np.asarray(bonds, dtype=int).reshape(-1, 2)
    if len(bonds) == 0 or len(positions) == 0:
        return -1, -1
    broken = _distances(positions, bonds[:, 0], bonds[:, 1], cell, pbc) > cutoff_A
    candidates = bonds[broken.any(axis=0), 1]
    if candidates.size == 0:
        return -1, -1
    heavy = np.flatnonzero(numbers != 1)
    first = np.tile(heavy, candidates.size)
    second = np.repeat(candidates, heavy.size)
    far = _distances(positions, first, second, cell, pbc) > cutoff_A
    drifting = far.reshape(len(positions), candidates.size, heavy.size).all(axis=2)
    # drifting in this frame and in every later one
    to_the_end = np.logical_and.accumulate(drifting[::-1], axis=0)[::-1]
    starts = np.where(to_the_end.any(axis=0), to_the_end.argmax(axis=0), len(positions))
    if np.all(starts == len(positions)):
        return -1, -1
    k = int(np.argmin(starts))
    return int(starts[k]), int(candidates[k])


def mlipaudit_stability_score(explosion_frame: int, drift_frame: int, expected_frames: int) -> float:
    """MLIP Audit's per-structure stability score.

    1 when stable; ``0.5 + 0.5 min(drift_frame / expected, 1)`` when a hydrogen
    detached and nothing exploded; ``0.5 min(explosion_frame / expected, 1)`` when
    the run exploded. ``expected_frames`` is the number of frames the full run
    would have had (a run stopped early is scored against the full length).

    Source: ``mlipaudit.benchmarks.stability.StabilityBenchmark._calculate_score``.
    """
    if explosion_frame == -1 and drift_frame == -1:
        return 1.0
    expected = max(int(expected_frames), 1)
    if explosion_frame == -1:
        return 0.5 + 0.5 * min(drift_frame / expected, 1.0)
    return 0.5 * min(explosion_frame / expected, 1.0)
