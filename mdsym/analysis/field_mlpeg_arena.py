"""ml-peg's and MLIP Arena's figures, written from their definitions (each function
cites its source):

- ml-peg (``ddmms/ml-peg``): the NVE drift in meV/atom/ps (issue #851 / pull request
  #852) and the rotational-symmetry test (``ml_peg.calcs/analysis.physicality.
  rotational_symmetry``, ml-peg 0.7.0): the walk of orientations and its deltas;
- MLIP Arena (``atomind-ai/mlip-arena``, ``benchmarks/force_equivariance/run.py``):
  force MAE and cosine similarity between rotated predictions, its rotations and
  their summary.

The predictions these figures read come from ``mdsym.workflows.dynamic_equivariance``
(``static_rotation_tests``). Units: ``mdsym.analysis.field_scores``.
"""

import numpy as np
from scipy.spatial.transform import Rotation

#: MLIP Arena: forces below this norm count as zero in the cosine similarity
ARENA_ZERO_FORCE = 1e-10


# ---------------------------------------------------------------------- ml-peg


def mlpeg_drift(time_ps, total_eV, n_atoms: int) -> float:
    """ml-peg's NVE drift, meV/atom/ps: the slope of a least-squares line through
    the total energy per atom against time (signed).

    Source: ml-peg's NVE energy-conservation benchmark, ``ddmms/ml-peg`` issue #851 and
    pull request #852 ("the fitted slope per atom gives the drift in meV/atom/ps").
    """
    t = np.asarray(time_ps, dtype=float)
    e = np.asarray(total_eV, dtype=float)
    good = np.isfinite(t) & np.isfinite(e)
    if good.sum() < 2 or np.ptp(t[good]) == 0:
        return float("nan")
    slope = np.polyfit(t[good], e[good] / n_atoms, 1)[0]
    return float(slope * 1000.0)


def mlpeg_rotation_walk(n_random: int = 100, seed: int = 42) -> np.ndarray:
    """The orientations of ml-peg's rotational test: ``(14 + n_random, 3, 3)``.

    A cumulative walk: 14 steps of 1, 1, 1, 1, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40
    degrees about random axes, then ``n_random`` Haar-random steps, each composed
    onto the previous orientation; successive orientations are compared.

    Source: ``ml_peg.calcs.physicality.rotational_symmetry.calc_rotational_symmetry``
    (``STEP_ANGLES``, ``N_RANDOM = 100``, ``_build_rotations``; seed 42 as there,
    drawn here with numpy's and scipy's generators, so the axes are not theirs).
    """
    step_angles = np.array([1.0, 1, 1, 1, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40])
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(len(step_angles), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    steps = np.concatenate([Rotation.from_rotvec(np.radians(step_angles)[:, None] * axes).as_matrix(),
                            Rotation.random(n_random, random_state=seed).as_matrix()])
    walk, current = [], np.eye(3)
    for step in steps:
        current = step @ current
        walk.append(current)
    return np.array(walk)


def mlpeg_rotation_deltas(energies_eV, back_rotated_forces, n_atoms: int) -> dict:
    """ml-peg's rotational-symmetry figures from the predictions along the walk.

    ``energies_eV`` ``(K + 1,)`` and ``back_rotated_forces`` ``(K + 1, N, 3)``
    (forces brought back to the unrotated frame, ``F R``) of the unrotated
    structure then each orientation of the walk. Successive pairs are compared:
    ``dE = |E_k+1 - E_k| / N`` (meV/atom) and ``dF = mean |F_k+1 - F_k|`` over
    components (meV/A, "adapted from MLIP Arena"). Returns their means and maxima.

    Source: ``ml_peg.analysis.physicality.rotational_symmetry.analyse_rotational_symmetry``
    (``struct_deltas``, ``rotation_metrics``; metrics "Mean/Max dE", "Mean/Max dF").
    """
    e = np.asarray(energies_eV, dtype=float)
    f = np.asarray(back_rotated_forces, dtype=float)
    d_energy = np.abs(np.diff(e)) / n_atoms * 1000.0
    d_forces = np.abs(np.diff(f, axis=0)).reshape(len(f) - 1, -1).mean(axis=1) * 1000.0
    return {"mean_dE_meV_atom": float(d_energy.mean()), "max_dE_meV_atom": float(d_energy.max()),
            "mean_dF_meV_A": float(d_forces.mean()), "max_dF_meV_A": float(d_forces.max()),
            "pairs": int(len(d_energy))}


# ----------------------------------------------------------------- MLIP Arena


def arena_compare_forces(original, rotated, rotation, zero: float = ARENA_ZERO_FORCE) -> tuple:
    """MLIP Arena's comparison of the forces of a structure and of its rotated copy.

    ``original`` ``(N, 3)`` are the forces of the structure, ``rotated`` those of
    the copy ``r R^T``; an equivariant model has ``rotated = original R^T``.
    Returns ``(mae, cosine)``: the mean absolute difference of the components
    between ``original R^T`` and ``rotated`` (eV/A), and each atom's cosine
    similarity between the two; an atom where both vanish counts 1, one where only
    one vanishes counts -1 (below ``zero`` eV/A).

    Source: MLIP Arena, ``benchmarks/force_equivariance/run.py``, ``compare_forces``.
    """
    expected = np.asarray(original, float) @ np.asarray(rotation, float).T
    rotated = np.asarray(rotated, float)
    mae = float(np.mean(np.abs(expected - rotated)))
    n_expected = np.linalg.norm(expected, axis=1)
    n_rotated = np.linalg.norm(rotated, axis=1)
    zero_a, zero_b = n_expected < zero, n_rotated < zero
    cosine = np.zeros(len(expected))
    valid = ~(zero_a | zero_b)
    cosine[valid] = np.sum(expected[valid] * rotated[valid], axis=1) / (n_expected[valid] * n_rotated[valid])
    cosine[zero_a & zero_b] = 1.0
    cosine[zero_a ^ zero_b] = -1.0
    return mae, cosine


def arena_rotations(angles_deg=None, n_axes: int = 100, seed: int = 0) -> tuple:
    """MLIP Arena's rotations: every angle (default 30, 60, ..., 360 degrees) about
    each of ``n_axes`` random unit axes. Returns ``(angles (A,), matrices (A, n_axes, 3, 3))``.

    Source: MLIP Arena, ``benchmarks/force_equivariance/run.py``, ``run`` (defaults
    ``np.arange(30, 361, 30)`` and ``num_random_axes = 100``) and
    ``rotate_molecule_arbitrary``.
    """
    angles = np.arange(30, 361, 30, dtype=float) if angles_deg is None else np.asarray(angles_deg, float)
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n_axes, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    rotvecs = np.radians(angles)[:, None, None] * axes[None]
    matrices = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(len(angles), n_axes, 3, 3)
    return angles, matrices


def arena_summary(maes, cosines, threshold: float = 1e-3) -> dict:
    """MLIP Arena's summary over rotations: mean cosine similarity, mean MAE, and
    the fraction of rotations that pass (MAE below ``threshold`` eV/A and every
    atom's cosine above ``1 - threshold``).

    ``maes`` ``(R,)``, ``cosines`` ``(R, N)``. Source: MLIP Arena,
    ``benchmarks/force_equivariance/run.py``, ``run`` (``threshold = 1e-3``,
    ``equivariant_ratio``).
    """
    maes = np.asarray(maes, float)
    cosines = np.asarray(cosines, float)
    passed = (maes < threshold) & np.all(cosines > 1.0 - threshold, axis=1)
    return {"mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min()),
            "mean_mae_eVA": float(maes.mean()), "max_mae_eVA": float(maes.max()),
            "equivariant_ratio": float(passed.mean()), "rotations": int(len(maes))}
