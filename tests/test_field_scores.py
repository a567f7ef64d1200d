"""The public audits' figures (mdsym.analysis.field_scores) on synthetic series whose
answers are known by hand."""

import ase.io
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mdsym.analysis.field_mlipaudit import (
    heavy_hydrogen_bonds,
    mlipaudit_explosion_frame,
    mlipaudit_hydrogen_drift,
    mlipaudit_nve,
    mlipaudit_score,
    mlipaudit_stability_score,
)
from mdsym.analysis.field_mlpeg_arena import (
    arena_compare_forces,
    arena_rotations,
    arena_summary,
    mlpeg_drift,
    mlpeg_rotation_deltas,
    mlpeg_rotation_walk,
)
from mdsym.analysis.field_nvalchemi import nvalchemi_stability
from mdsym.analysis.field_scores import of_run
from mdsym.core.defaults import STRUCTURES


def alternating(n, spread):
    """``+spread, -spread, ...``: mean 0, population std exactly ``spread`` (n even)."""
    return spread * (-1.0) ** np.arange(n)


@pytest.mark.parametrize("slope, spread, ratio, score", [
    (0.02, 0.1, 2.0, np.exp(-3.0)),      # drift over 10 ps = 0.2 eV = 2 std(K): e^{-3 (2 - 1) / 1}
    (-0.005, 0.1, 0.5, 1.0),             # below the threshold of 1: full score
    (0.03, 0.2, 1.5, np.exp(-1.5)),
])
def test_mlipaudit_nve_ratio_and_score_by_hand(slope, spread, ratio, score):
    t = np.linspace(0.0, 10.0, 1002)  # ps
    kinetic = 1.0 + alternating(len(t), spread)
    total = -300.0 + slope * t
    result = mlipaudit_nve(t, total, kinetic)
    assert not result["failed"]
    assert result["kinetic_std_eV"] == pytest.approx(spread, rel=1e-12)
    assert result["slope_eV_ps"] == pytest.approx(slope, rel=1e-9)
    assert result["ratio"] == pytest.approx(ratio, rel=1e-9)
    assert result["score"] == pytest.approx(score, rel=1e-9)


def test_mlipaudit_nve_failures_score_zero():
    t = np.linspace(0, 1, 10)
    assert mlipaudit_nve(t, np.full(10, 1.0), np.full(10, 0.5))["score"] == 0.0  # constant K
    diverged = np.where(np.arange(10) < 5, 1.0, np.nan)
    assert mlipaudit_nve(t, diverged, 1 + alternating(10, 0.1))["failed"]


def test_soft_threshold_matches_mlipaudit_when_it_imports():
    scoring = pytest.importorskip("mlipaudit.scoring")
    values = np.array([0.0, 0.3, 1.0, 1.7, 4.0, np.nan])
    for threshold in (0.5, 1.0, 2.0):
        ours = mlipaudit_score(values, threshold)
        theirs = scoring.compute_metric_score(values, threshold, scoring.ALPHA)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)


def test_explosion_frame():
    assert mlipaudit_explosion_frame([300, 320, 290, 10_400, 50_000], 300.0) == 4 - 1
    assert mlipaudit_explosion_frame([300, 2.0, 250.0, 300.0], 300.0) == 2  # 250 > 100 x 2
    assert mlipaudit_explosion_frame([300, 800, 2000, 9000], 300.0) == -1


@pytest.fixture
def ethanol():
    return ase.io.read(STRUCTURES / "ethanol.xyz")


def frames_with_hydrogen(atoms, moves):
    """Ten frames of ``atoms``; ``moves`` maps frame -> displacement of hydrogen 3 (O-H)."""
    frames = np.repeat(atoms.positions[None], 10, axis=0).copy()
    for frame, shift in moves.items():
        frames[frame, 3] += shift
    return frames


def test_heavy_hydrogen_bonds_of_ethanol(ethanol):
    bonds = heavy_hydrogen_bonds(ethanol.numbers, ethanol.positions)
    assert sorted(map(tuple, bonds.tolist())) == [(0, 6), (0, 7), (0, 8), (1, 4), (1, 5), (2, 3)]


def test_hydrogen_detached_beyond_the_threshold_is_flagged_at_that_frame(ethanol):
    bonds = heavy_hydrogen_bonds(ethanol.numbers, ethanol.positions)
    away = np.array([-6.0, 0.0, 0.0])  # from x = -2.0: more than 2.5 A from every heavy atom
    frames = frames_with_hydrogen(ethanol, {k: away for k in range(6, 10)})
    assert mlipaudit_hydrogen_drift(frames, ethanol.numbers, bonds) == (6, 3)
    # it left at frame 2, came back at 4, left for good at 7: flagged at 7
    moves = {2: away, 3: away, **{k: away for k in range(7, 10)}}
    frames = frames_with_hydrogen(ethanol, moves)
    assert mlipaudit_hydrogen_drift(frames, ethanol.numbers, bonds) == (7, 3)
    # stretched to 2.2 A from O: not beyond the 2.5 A threshold, not flagged
    frames = frames_with_hydrogen(ethanol, {k: np.array([-1.0, 0.6, 0.0]) for k in range(5, 10)})
    assert mlipaudit_hydrogen_drift(frames, ethanol.numbers, bonds) == (-1, -1)


def test_water_is_solvent_and_left_out():
    from ase.build import molecule

    water = molecule("H2O")
    assert len(heavy_hydrogen_bonds(water.numbers, water.positions)) == 0
    assert len(heavy_hydrogen_bonds(water.numbers, water.positions, exclude_water=False)) == 2


def test_stability_score():
    assert mlipaudit_stability_score(-1, -1, 100) == 1.0
    assert mlipaudit_stability_score(-1, 40, 100) == pytest.approx(0.7)
    assert mlipaudit_stability_score(20, -1, 100) == pytest.approx(0.1)
    assert mlipaudit_stability_score(20, 10, 100) == pytest.approx(0.1)  # explosion wins


def test_mlpeg_drift_is_the_slope_per_atom_in_meV_per_ps():
    t = np.linspace(0.0, 2.0, 401)
    total = 5.0 + 0.09 * t + alternating(401, 1e-3) * 0  # 0.09 eV/ps over 9 atoms: 10 meV/atom/ps
    assert mlpeg_drift(t, total, 9) == pytest.approx(10.0, rel=1e-10)


def test_nvalchemi_figures_by_hand():
    steps = np.arange(0, 400, 10)  # 40 samples, 1 fs timestep
    n_atoms = 4
    pattern = np.tile([1.0, -1.0, -1.0, 1.0], 10)  # orthogonal to a constant and to a line
    per_atom_slope = 2e-6  # eV/atom/step
    total = n_atoms * (-3.0 + per_atom_slope * steps + 1e-4 * pattern)
    momenta = np.zeros((len(steps), 3))
    momenta[:, 2] = 0.5 * np.arange(len(steps))
    result = nvalchemi_stability(steps, total, momenta, n_atoms, timestep_fs=1.0)
    assert result["num_samples"] == 40 and result["first_divergence_step"] is None
    assert result["energy_drift_per_atom_per_ns"] == pytest.approx(per_atom_slope * 1e6, rel=1e-9)
    assert result["energy_fluctuation_per_atom"] == pytest.approx(1e-4, rel=1e-9)
    span = per_atom_slope * 390
    assert result["energy_drift_per_atom"] == pytest.approx(span, rel=1e-9)  # both ends: pattern +1
    assert result["energy_drift_per_atom_per_step"] == pytest.approx(span / 390, rel=1e-9)
    assert result["max_energy_excursion_per_atom"] == pytest.approx(span, rel=1e-9)
    assert result["max_momentum_drift"] == pytest.approx(0.5 * 39)
    total[24:] = np.nan  # 24 samples: whole periods of the pattern
    cut = nvalchemi_stability(steps, total, momenta, n_atoms, timestep_fs=2.0)
    assert cut["first_divergence_step"] == 240 and cut["num_samples"] == 24
    assert cut["energy_drift_per_atom_per_ns"] == pytest.approx(per_atom_slope * 1e6 / 2, rel=1e-9)


def test_arena_force_comparison():
    rng = np.random.default_rng(0)
    forces = rng.normal(size=(5, 3))
    rotation = Rotation.random(random_state=1).as_matrix()
    mae, cosine = arena_compare_forces(forces, forces @ rotation.T, rotation)
    assert mae < 1e-14 and np.allclose(cosine, 1.0)
    mae, cosine = arena_compare_forces(forces, -(forces @ rotation.T), rotation)
    assert np.allclose(cosine, -1.0) and mae == pytest.approx(2 * np.abs(forces @ rotation.T).mean())
    forces[0] = 0.0
    rotated = forces @ rotation.T
    rotated[1] = 0.0
    _, cosine = arena_compare_forces(forces, rotated, rotation)
    assert cosine[0] == 1.0 and cosine[1] == -1.0
    summary = arena_summary([0.0, 0.01], [[1.0, 1.0], [1.0, 0.5]])
    assert summary["equivariant_ratio"] == 0.5 and summary["mean_cosine"] == pytest.approx(0.875)


def test_arena_rotations_are_the_angles_about_the_axes():
    angles, matrices = arena_rotations(n_axes=7, seed=3)
    assert matrices.shape == (12, 7, 3, 3)
    measured = np.degrees(Rotation.from_matrix(matrices.reshape(-1, 3, 3)).magnitude()).reshape(12, 7)
    expected = np.where(angles > 180, 360 - angles, angles)
    assert np.allclose(measured, expected[:, None], atol=1e-6)


def test_mlpeg_walk_and_deltas():
    walk = mlpeg_rotation_walk()
    assert walk.shape == (114, 3, 3)
    assert np.allclose(np.linalg.det(walk), 1.0)
    relative = Rotation.from_matrix(np.einsum("kij,klj->kil", walk[1:14], walk[:13])).magnitude()
    assert np.allclose(np.degrees(relative), [1, 1, 1, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40])
    energies = np.array([1.0, 1.009, 1.0])
    forces = np.zeros((3, 9, 3))
    forces[1] += 0.002  # every component differs by 2 meV/A from its neighbours
    result = mlpeg_rotation_deltas(energies, forces, 9)
    assert result["mean_dE_meV_atom"] == pytest.approx(1.0) and result["max_dE_meV_atom"] == pytest.approx(1.0)
    assert result["mean_dF_meV_A"] == pytest.approx(2.0) and result["pairs"] == 2


def test_a_run_stopped_by_mdsyms_monitors_is_scored_as_exploded_at_its_last_frame(ethanol):
    from types import SimpleNamespace

    steps = np.arange(0, 31)  # stopped after 30 of 100 steps, frames every 10
    thermo = {"step": steps, "time_fs": steps * 0.5, "potential_eV": -10.0 + 0.001 * steps,
              "kinetic_eV": 0.3 + alternating(31, 0.01), "conserved_eV": -9.7 + 0.001 * steps,
              "temperature_K": np.full(31, 300.0), "px": np.zeros(31), "py": np.zeros(31), "pz": np.zeros(31)}
    frames = np.repeat(ethanol.positions[None], 4, axis=0)
    from mdsym.md.config import RunConfig

    config = RunConfig(ensemble="nve", timestep_fs=0.5, stride=10, steps=100, temperature_K=300.0)
    run = SimpleNamespace(thermo=thermo, n_atoms=9, n_frames=4, step=steps[::10], positions=frames,
                          numbers=ethanol.numbers, atoms=ethanol, periodic=False, status="failed")
    figures = of_run(run, config)
    stability = figures["mlipaudit_stability"]
    assert stability["stopped_by_mdsym"] and stability["expected_frames"] == 11
    assert stability["explosion_frame"] == 3 and stability["score"] == pytest.approx(0.5 * 3 / 11)
    assert figures["mlpeg_drift_meV_atom_ps"] == pytest.approx(0.001 / 0.0005 * 1000 / 9)  # eV/step -> meV/atom/ps
    run.status = "completed"
    assert of_run(run, config)["mlipaudit_stability"]["score"] == 1.0
