"""How long until a model's lack of symmetry changes the trajectory itself.

Dynamic test (``dynamic_equivariance``). One initial state (positions and
velocities) and its copies transformed by several O(3) elements ``g`` (Haar-random
rotations and the inversion) are each run in NVE with the same model, the same
symmetrization and the same seed. For an exactly equivariant model the run of a
transformed copy is the transformed reference run, ``x_g(t) = x(t) g^T``; the
distance

    d_g(t) = sqrt( mean_i |x_g,i(t) - x_i(t) g^T|^2 )      (Angstrom, no alignment)

is then round-off amplified by the chaos of the dynamics. An exactly invariant
analytic model on the same initial state sets that floor (``invariant_floor_model``).
The figure of merit is the time at which ``d_g`` first exceeds a threshold
(default ``THRESHOLD_A`` = 0.1 Angstrom), per ``g``. The floor's chaos is its own,
not the model's: ``perturbation_floor`` measures the model's, the time its run takes
to leave a copy of itself started 1e-6 Angstrom away.

The rotations are Haar-random, never elements of a symmetrization grid: a model
averaged over a finite group is exactly equivariant under that group's elements
(inversion included, for every ``o3:L`` grid), which says nothing about the others.

The runs use ASE's ``VelocityVerlet`` through ``MdsymCalculator``, built by the
integrator factory of ``mdsym.md.ase_engine``. They keep their positions in memory
in float64 instead of writing a run directory: ``trajectory.trr`` stores float32,
which would put a 1e-7 Angstrom floor under a distance whose growth from 1e-16 is
what is measured.

Static counterparts (``static_rotation_tests``): MLIP Arena's force-equivariance
test (cosine similarity and MAE of the forces over rotations about many axes) and
ml-peg's rotational test (energy and force changes along a walk of orientations),
with the definitions of ``mdsym.analysis.field_mlpeg_arena``.
"""

import time

import numpy as np
from scipy.spatial.transform import Rotation

from mdsym.analysis.field_mlpeg_arena import (
    arena_compare_forces,
    arena_rotations,
    arena_summary,
    mlpeg_rotation_deltas,
    mlpeg_rotation_walk,
)
from mdsym.core.rotations import rotate_copies
from mdsym.core.system import System
from mdsym.md.ase_engine import initial_velocities, make_integrator
from mdsym.md.config import RunConfig
from mdsym.md.monitors import NON_METALS
from mdsym.models.base import NonFiniteOutput
from mdsym.serving.ase_calculator import MdsymCalculator
from mdsym.symmetry.averaging import evaluate_back_rotated
from mdsym.symmetry.quadrature import Quadrature

#: distance (Angstrom) whose first crossing is the time reported
THRESHOLD_A = 0.1
#: the exactly invariant floor models: Morse pairs only, no spurious term. For
#: molecules of non-metals, bonds only (cutoff below the second neighbours);
#: otherwise mdsym's default Morse (copper)
FLOOR_MOLECULAR = "analytic:depth=3,stiffness=1.5,equilibrium=1.15,cutoff=1.75"
FLOOR_METALLIC = "analytic:cutoff=5.5"


def invariant_floor_model(atoms) -> str:
    """The exactly invariant analytic model that sets the floor for ``atoms``."""
    return FLOOR_MOLECULAR if set(atoms.numbers.tolist()) <= NON_METALS else FLOOR_METALLIC


def transformations(n_rotations: int = 3, seed: int = 0, inversion: bool = True) -> tuple:
    """``(labels, matrices)``: ``n_rotations`` Haar-random rotations and the inversion."""
    matrices = list(Rotation.random(n_rotations, random_state=seed).as_matrix().reshape(-1, 3, 3))
    labels = [f"rotation {k + 1}" for k in range(n_rotations)]
    if inversion:
        matrices.append(-np.eye(3))
        labels.append("inversion")
    return labels, np.array(matrices)


def initial_state(atoms, temperature_K: float, seed: int):
    """A copy of ``atoms`` with Maxwell-Boltzmann velocities (unless it has its own)."""
    state = atoms.copy()
    state.calc = None
    initial_velocities(state, temperature_K, seed)
    return state


def transformed(atoms, g: np.ndarray):
    """``atoms`` with positions, momenta and cell transformed by ``g`` (rows: ``v g^T``)."""
    copy = atoms.copy()
    copy.positions = atoms.positions @ g.T
    copy.set_momenta(atoms.get_momenta() @ g.T)
    if atoms.pbc.any():
        copy.set_cell(atoms.cell.array @ g.T, scale_atoms=False)
    return copy


def nve_positions(atoms, model, symmetrize, timestep_fs: float, steps: int, stride: int = 1,
                  seed: int = 0, batch_size=None) -> dict:
    """Run NVE from ``atoms`` (positions and momenta as given); positions every
    ``stride`` steps in float64. A non-finite model output ends the run early."""
    atoms = atoms.copy()
    atoms.calc = MdsymCalculator(model, symmetrize, batch_size=batch_size, seed=seed)
    dynamics = make_integrator(atoms, RunConfig(ensemble="nve", timestep_fs=timestep_fs), seed)
    frames, steps_at = [], []

    def record():
        frames.append(atoms.positions.copy())
        steps_at.append(dynamics.nsteps)

    dynamics.attach(record, interval=stride)
    status, reason = "completed", None
    started = time.monotonic()
    try:
        dynamics.run(steps)
    except NonFiniteOutput as error:
        status, reason = "failed", str(error)
    wall = time.monotonic() - started
    return {"time_fs": np.array(steps_at) * timestep_fs, "positions": np.array(frames),
            "status": status, "reason": reason, "wall_s": wall,
            "ms_per_step": 1000.0 * wall / max(dynamics.nsteps, 1)}


def rmsd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS over atoms of ``|a - b|`` per frame: ``(F, N, 3)`` -> ``(F,)``."""
    return np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1), axis=-1))


def first_crossing(time_fs, distance, threshold_A: float):
    """The first time at which ``distance`` exceeds ``threshold_A`` (None: never)."""
    above = np.flatnonzero(np.asarray(distance) > threshold_A)
    return float(time_fs[above[0]]) if above.size else None


def dynamic_equivariance(model, atoms, symmetrize="none", steps: int = 400, timestep_fs: float = 0.5,
                         stride: int = 5, seed: int = 0, threshold_A: float = THRESHOLD_A,
                         n_rotations: int = 3, inversion: bool = True, rotation_seed: int = 12345,
                         batch_size=None) -> dict:
    """Distance between each transformed run and the transformed reference run.

    ``atoms`` must carry the initial velocities (``initial_state``). Returns the
    times, per element ``g`` its distance series and the time it first exceeds
    ``threshold_A`` (None when it never does within the run), the median of those
    times and the cost of the runs.
    """
    labels, elements = transformations(n_rotations, rotation_seed, inversion)
    reference = nve_positions(atoms, model, symmetrize, timestep_fs, steps, stride, seed, batch_size)
    times = reference["time_fs"]
    out = {"symmetrize": str(symmetrize), "timestep_fs": timestep_fs, "steps": steps, "stride": stride,
           "threshold_A": threshold_A, "time_fs": times.tolist(), "reference_status": reference["status"],
           "reference_reason": reference["reason"], "elements": []}
    wall = reference["wall_s"]
    for label, g in zip(labels, elements):
        run = nve_positions(transformed(atoms, g), model, symmetrize, timestep_fs, steps, stride, seed,
                            batch_size)
        wall += run["wall_s"]
        n = min(len(run["positions"]), len(reference["positions"]))
        distance = rmsd(run["positions"][:n], reference["positions"][:n] @ g.T)
        out["elements"].append({
            "label": label, "matrix": g.tolist(), "proper": bool(np.linalg.det(g) > 0),
            "distance_A": distance.tolist(), "status": run["status"],
            "time_to_threshold_fs": first_crossing(times[:n], distance, threshold_A),
            "max_distance_A": float(np.max(distance)) if n else None,
        })
    crossing = [e["time_to_threshold_fs"] for e in out["elements"]]
    run_length = float(times[-1]) if len(times) else 0.0
    # a run that never crosses counts as "at least the run length" for the median
    out["median_time_to_threshold_fs"] = float(np.median([run_length if c is None else c for c in crossing]))
    out["crossed"] = int(sum(c is not None for c in crossing))
    out["max_distance_A"] = max((e["max_distance_A"] or 0.0) for e in out["elements"])
    out["wall_s"] = wall
    out["ms_per_step"] = 1000.0 * wall / max(1, steps * (1 + len(elements)))
    return out


def perturbation_floor(model, atoms, symmetrize="none", displacement_A: float = 1e-6, steps: int = 400,
                       timestep_fs: float = 0.5, stride: int = 5, seed: int = 0,
                       threshold_A: float = THRESHOLD_A, batch_size=None) -> dict:
    """The model's own chaos: its run from ``atoms`` against its run from ``atoms``
    with every atom displaced by ``displacement_A`` in a random direction (no
    rotation). The time this distance takes to reach ``threshold_A`` is how fast
    the dynamics amplify a difference of that size, whatever its cause; the default
    1e-6 Angstrom is about the float32 resolution of a coordinate of 10 Angstrom
    (PET and most MLIPs compute in float32). Same layout as ``dynamic_equivariance``."""
    rng = np.random.default_rng(seed + 1)
    directions = rng.normal(size=atoms.positions.shape)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    moved = atoms.copy()
    moved.positions = atoms.positions + displacement_A * directions
    reference = nve_positions(atoms, model, symmetrize, timestep_fs, steps, stride, seed, batch_size)
    run = nve_positions(moved, model, symmetrize, timestep_fs, steps, stride, seed, batch_size)
    times = reference["time_fs"]
    n = min(len(run["positions"]), len(reference["positions"]))
    distance = rmsd(run["positions"][:n], reference["positions"][:n])
    crossing = first_crossing(times[:n], distance, threshold_A)
    return {"symmetrize": str(symmetrize), "timestep_fs": timestep_fs, "steps": steps, "stride": stride,
            "threshold_A": threshold_A, "displacement_A": displacement_A, "time_fs": times.tolist(),
            "reference_status": reference["status"], "reference_reason": reference["reason"],
            "elements": [{"label": f"displaced by {displacement_A:g} A", "matrix": np.eye(3).tolist(),
                          "proper": True, "distance_A": distance.tolist(), "status": run["status"],
                          "time_to_threshold_fs": crossing,
                          "max_distance_A": float(np.max(distance)) if n else None}],
            "median_time_to_threshold_fs": crossing if crossing is not None else float(times[-1]),
            "crossed": int(crossing is not None), "max_distance_A": float(np.max(distance)) if n else None,
            "wall_s": reference["wall_s"] + run["wall_s"]}


# --------------------------------------------------------------- static counterparts


def _direct_predictions(model, system, rotations, batch_size=None) -> dict:
    """Energies and forces of the copies ``r R^T`` in their own frames, and the
    forces brought back to the input frame."""
    quadrature = Quadrature("test", np.asarray(rotations, float), np.full(len(rotations), 1.0 / len(rotations)),
                            0, True)
    back = evaluate_back_rotated(model, system, quadrature, ("energy", "forces"), batch_size)
    return {"energy": back["energy"], "back_forces": back["forces"],
            "forces": rotate_copies(back["forces"], quadrature.rotations)}


def static_rotation_tests(model, atoms, arena_axes: int = 100, arena_angles=None, mlpeg_random: int = 100,
                          seed: int = 0, batch_size=None) -> dict:
    """MLIP Arena's force-equivariance test and ml-peg's rotational test on ``atoms``.

    Arena: the forces of each rotated copy against the rotated forces of the
    structure (``arena_compare_forces``) for every angle (30 to 360
    degrees) about ``arena_axes`` random axes. ml-peg: energy and force changes
    between successive orientations of its walk (``mlpeg_rotation_deltas``).
    """
    system = System.from_atoms(atoms)
    identity = np.eye(3)[None]
    angles, matrices = arena_rotations(arena_angles, arena_axes, seed)
    flat = matrices.reshape(-1, 3, 3)
    arena = _direct_predictions(model, system, np.concatenate([identity, flat]), batch_size)
    original = arena["forces"][0]
    maes, cosines = [], []
    for k, rotation in enumerate(flat):
        mae, cosine = arena_compare_forces(original, arena["forces"][k + 1], rotation)
        maes.append(mae)
        cosines.append(cosine)
    maes, cosines = np.array(maes), np.array(cosines)
    result = {"arena": arena_summary(maes, cosines)}
    per_angle = maes.reshape(len(angles), arena_axes)
    result["arena"]["by_angle"] = {
        "angle_deg": angles.tolist(), "mean_mae_eVA": per_angle.mean(axis=1).tolist(),
        "mean_cosine": cosines.mean(axis=1).reshape(len(angles), arena_axes).mean(axis=1).tolist()}
    walk = mlpeg_rotation_walk(mlpeg_random)
    walked = _direct_predictions(model, system, np.concatenate([identity, walk]), batch_size)
    result["mlpeg"] = mlpeg_rotation_deltas(walked["energy"], walked["back_forces"], len(atoms))
    return result

