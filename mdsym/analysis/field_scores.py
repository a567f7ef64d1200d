"""The stability figures of the public MLIP audits, computed on mdsym's arrays.

People who choose a machine-learned potential compare models with public audits.
This module computes their figures, as they define them, from plain arrays (a
run's ``thermo.csv`` columns and frames), so that ``mdsym analyze`` and
``mdsym compare`` can show mdsym's verdict in the field's units. Every function
is written here from the published definition (cited in its docstring); no code
is taken from the packages. Sources read (2026-11):

- MLIP Audit (InstaDeep, ``mlipaudit`` 0.1.8 on PyPI): ``mlipaudit.scoring``,
  ``mlipaudit.benchmarks.nve_energy_conservation``, ``mlipaudit.benchmarks.stability``
  and ``mlipaudit.utils.stability``;
- ml-peg (``ddmms/ml-peg``): the rotational-symmetry test
  (``ml_peg.calcs/analysis.physicality.rotational_symmetry``, ml-peg 0.7.0) and the
  NVE drift in meV/atom/ps (issue #851 / pull request #852, "the fitted slope per
  atom gives the drift in meV/atom/ps");
- MLIP Arena (``atomind-ai/mlip-arena``, ``benchmarks/force_equivariance/run.py``):
  force MAE and cosine similarity between rotated predictions;
- NVIDIA nvalchemi-toolkit 0.3.0: ``nvalchemi.dynamics.hooks.StabilityMonitor.metrics``
  and its record ``StabilityMetrics``.

MLIP Audit's benchmark classes themselves cannot run here: they download their
structures from HuggingFace at run time and run MD through the JAX ``mlip``
library (their ASE path still needs the downloaded structures), and nothing may be
downloaded at run time. So the definitions are reproduced, and the tests compare
``mlipaudit_score`` with ``mlipaudit.scoring.compute_metric_score`` when that
module imports.

Units: energies eV, times ps (fs where a source uses steps and a timestep),
positions Angstrom, momenta amu Angstrom/ps (thermo.csv's).
"""

import numpy as np
from ase.data import covalent_radii

from mdsym.analysis.trajectory import energy_rows

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
#: MLIP Arena: forces below this norm count as zero in the cosine similarity
ARENA_ZERO_FORCE = 1e-10
#: femtoseconds per nanosecond (nvalchemi's rates are per ns)
FS_PER_NS = 1.0e6
#: bonds of the initial structure: closer than this times the sum of covalent radii
#: (mdsym's stability monitor uses the same factor; MLIP Audit reads bonds from a PDB)
BOND_FACTOR = 1.2


# ------------------------------------------------------------------ MLIP Audit


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
        from ase.geometry import find_mic

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


def _frame_positions(run, k):
    """Frame ``k``'s positions, from the arrays when loaded, else streamed."""
    if len(run.positions):
        return run.positions[k]
    return run.universe.trajectory[k].positions.astype(float)


def _hydrogen_drift_of_run(run, bonds, cell, pbc) -> tuple:
    """``mlipaudit_hydrogen_drift`` on the run's frames. When they are streamed, only
    the atoms the test looks at (heavy atoms and bonded hydrogens) are read into memory."""
    numbers = np.asarray(run.numbers)
    if len(run.positions):
        return mlipaudit_hydrogen_drift(run.positions, numbers, bonds, cell, pbc)
    wanted = np.union1d(np.flatnonzero(numbers != 1), np.asarray(bonds).ravel())
    positions = np.empty((run.n_frames, len(wanted), 3), dtype=np.float32)
    for k, ts in enumerate(run.universe.trajectory):
        positions[k] = ts.positions[wanted]
    frame, hydrogen = mlipaudit_hydrogen_drift(positions, numbers[wanted],
                                               np.searchsorted(wanted, bonds), cell, pbc)
    return frame, (int(wanted[hydrogen]) if hydrogen >= 0 else -1)


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
    from scipy.spatial.transform import Rotation

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
    from scipy.spatial.transform import Rotation

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


# ------------------------------------------------------------------ nvalchemi


def nvalchemi_stability(steps, total_eV, momenta, n_atoms: int, timestep_fs: float,
                        finite=None) -> dict:
    """nvalchemi's ``StabilityMetrics`` of one trajectory (one graph).

    ``steps`` ``(S,)`` step counts, ``total_eV`` the total energy ``(S,)``,
    ``momenta`` ``(S, 3)`` the total momentum. The series stops at the first
    sample that is not ``finite`` (default: a non-finite energy), whose step is
    ``first_divergence_step`` (None when none). Over the samples before it, with
    ``e = E / N``:

    - ``energy_drift_per_atom``: ``|e(end) - e(0)|`` (eV/atom), and per step;
    - ``energy_drift_per_atom_per_ns``: ``|slope|`` of a least-squares line through
      ``e`` against the step, times ``1e6 / timestep_fs`` (eV/atom/ns);
    - ``energy_fluctuation_per_atom``: RMS residual of ``e`` about that line;
    - ``max_energy_excursion_per_atom``: ``max |e(t) - e(0)|``;
    - ``max_momentum_drift``: ``max |P(t) - P(0)|`` (here amu A/ps).

    Source: nvalchemi-toolkit 0.3.0, ``nvalchemi.dynamics.hooks.monitors``:
    ``StabilityMonitor._record`` and ``StabilityMonitor.metrics``.
    """
    steps = np.asarray(steps, dtype=float)
    total = np.asarray(total_eV, dtype=float)
    momenta = np.asarray(momenta, dtype=float).reshape(len(total), 3)
    finite = np.isfinite(total) if finite is None else np.asarray(finite, bool)
    bad = np.flatnonzero(~finite)
    first_divergence = int(steps[bad[0]]) if bad.size else None
    stop = bad[0] if bad.size else len(total)
    steps, total, momenta = steps[:stop], total[:stop], momenta[:stop]
    out = {"num_samples": int(len(steps)), "first_divergence_step": first_divergence,
           "timestep_fs": float(timestep_fs)}
    if len(steps) < 2 or steps[-1] - steps[0] <= 0:
        out.update({key: None for key in (
            "energy_drift_per_atom", "energy_drift_per_atom_per_step", "energy_drift_per_atom_per_ns",
            "energy_fluctuation_per_atom", "max_energy_excursion_per_atom", "max_momentum_drift")})
        return out
    per_atom = total / n_atoms
    centred = steps - steps.mean()
    deviation = per_atom - per_atom.mean()
    slope = float(centred @ deviation / (centred @ centred))
    residual = deviation - slope * centred
    drift = abs(per_atom[-1] - per_atom[0])
    out.update(
        first_step=int(steps[0]), last_step=int(steps[-1]),
        energy_drift_per_atom=float(drift),
        energy_drift_per_atom_per_step=float(drift / (steps[-1] - steps[0])),
        energy_drift_per_atom_per_ns=abs(slope) * FS_PER_NS / float(timestep_fs),
        energy_fluctuation_per_atom=float(np.sqrt(np.mean(residual**2))),
        max_energy_excursion_per_atom=float(np.max(np.abs(per_atom - per_atom[0]))),
        max_momentum_drift=float(np.max(np.linalg.norm(momenta - momenta[0], axis=1))),
    )
    return out


# ------------------------------------------------------------- one run directory


def of_run(run, config) -> dict:
    """Every field figure above for one run (a ``trajectory.RunData``) made with
    ``config`` (its ``RunConfig``; None: another mdsym wrote it, and they are skipped).

    Energies and momenta come from thermo.csv (every step), positions from the
    frames (every ``stride`` steps), temperatures at the frames' steps. For NVT the
    energy figures use thermo.csv's conserved quantity (potential + kinetic minus
    the energy the thermostat exchanged): MLIP Audit and nvalchemi define them for
    NVE, where it is the total energy.

    mdsym's own monitors stop a run long before MLIP Audit's 10,000 K criterion (at
    5 times the target temperature, a broken bond or atoms closer than 0.5 A). A run
    they stopped before MLIP Audit's criteria fired is scored as exploded at its last
    frame (``stopped_by_mdsym``), the stricter reading.
    """
    if config is None:
        return {"skipped": "run.json's configuration is not readable by this mdsym"}
    thermo = run.thermo
    out = {"ensemble": config.ensemble}
    if thermo is None or len(thermo["step"]) < 2:
        out["skipped"] = "no thermo.csv rows to fit"
        return out
    rows = energy_rows(thermo, config)  # mts:K: the outer steps, where conserved_eV is conserved
    t_ps = np.asarray(thermo["time_fs"], float)[rows] / 1000.0
    total = np.asarray(thermo["conserved_eV"], float)[rows]
    kinetic = np.asarray(thermo["kinetic_eV"], float)[rows]
    momenta = np.stack([thermo[k] for k in ("px", "py", "pz")], axis=1)[rows]
    finite = np.isfinite(total) & np.isfinite(np.asarray(thermo["potential_eV"], float)[rows])
    out["mlipaudit_nve"] = mlipaudit_nve(t_ps[finite], total[finite], kinetic[finite])
    out["mlpeg_drift_meV_atom_ps"] = mlpeg_drift(t_ps, total, run.n_atoms)
    out["nvalchemi"] = nvalchemi_stability(np.asarray(thermo["step"])[rows], total, momenta,
                                           run.n_atoms, config.timestep_fs, finite)
    out["mlipaudit_stability"] = _stability_of_run(run, config)
    return out


def _stability_of_run(run, config) -> dict:
    if run.n_frames == 0:
        return {"skipped": "no frames"}
    expected = config.steps // config.stride + 1
    steps = np.asarray(run.thermo["step"]).astype(int)
    temperature = np.asarray(run.thermo["temperature_K"], float)
    at_step = dict(zip(steps.tolist(), temperature.tolist()))
    frame_temps = np.array([at_step.get(int(s), np.nan) for s in run.step])
    target = config.temperature_K or float(frame_temps[0])
    explosion = mlipaudit_explosion_frame(frame_temps, target)
    drift_frame, hydrogen = -1, -1
    cell = run.atoms.cell.array if run.periodic else None
    pbc = run.atoms.pbc if run.periodic else None
    bonds = heavy_hydrogen_bonds(run.numbers, _frame_positions(run, 0), cell, pbc)
    if explosion == -1 and len(bonds):
        drift_frame, hydrogen = _hydrogen_drift_of_run(run, bonds, cell, pbc)
    stopped = run.status == "failed" and explosion == -1 and drift_frame == -1
    if stopped:
        explosion = run.n_frames - 1
    return {"explosion_frame": explosion, "hydrogen_drift_frame": drift_frame,
            "detached_hydrogen": hydrogen, "heavy_hydrogen_bonds": int(len(bonds)),
            "frames": run.n_frames, "expected_frames": expected, "stopped_by_mdsym": stopped,
            "score": mlipaudit_stability_score(explosion, drift_frame, expected)}
