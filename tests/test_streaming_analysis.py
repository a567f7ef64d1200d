"""Streaming analysis (mdsym analyze walks the frames once, keeps none) equals the
same physics computed independently with numpy on the frames held in memory; one
definition of a bond (mdsym.core.molecules) and of rigid-body mechanics (mdsym.core.mechanics)."""

import ase.io
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.data import covalent_radii
from scipy.sparse.csgraph import connected_components

from mdsym.analysis.angular_momentum import AngularMomentum
from mdsym.analysis.equipartition import Equipartition
from mdsym.analysis.structure import ANGLE_BINS, BOND_BINS, _frames
from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2, FrameArrays, load_run, walk
from mdsym.core import mechanics
from mdsym.core.molecules import BOND_FACTOR, bonds, molecules
from mdsym.md.monitors import MonitorSettings, StabilityMonitor
from mdsym.workflows.analyze import analyze_run

from .test_analysis import make_run

# Morse well at 1.5 A, cut at 4 A: the molecules below, 7 A apart, do not interact
MODEL = "analytic:vector1=0.05,bond2=0.03,equilibrium=1.5,cutoff=4.0"


@pytest.fixture(scope="module")
def mixture():
    """Ethanol, two waters, a linear CO2 and an argon atom, 7 A apart: molecules of
    9, 3, 3, 3 and 1 atoms, one of them linear."""
    parts = [molecule("CH3CH2OH"), molecule("H2O"), molecule("H2O"), molecule("CO2"), Atoms("Ar")]
    atoms = Atoms()
    for k, part in enumerate(parts):
        part.positions += (7.0 * k, 0.3 * k, -0.2 * k)
        atoms += part
    return atoms


@pytest.fixture(scope="module")
def mixture_run(mixture, tmp_path_factory):
    path = tmp_path_factory.mktemp("mixture")
    ase.io.write(path / "mixture.xyz", mixture)
    return make_run(path / "run", model=MODEL, structure=path / "mixture.xyz", steps=24, dt_fs=0.5)


# ------------------------------------------- independent numpy, the frames in memory


def reference_molecules(atoms):
    """Connected components of d < 1.2 (r_i + r_j), dense distances."""
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    radii = covalent_radii[atoms.numbers]
    bonded = (d < 1.2 * (radii[:, None] + radii[None])) & ~np.eye(len(atoms), dtype=bool)
    _, labels = connected_components(bonded, directed=False)
    return sorted(tuple(np.flatnonzero(labels == k)) for k in range(labels.max() + 1))


def reference_L_torque_force(x, v, f, m):
    r = x - np.einsum("i,fij->fj", m, x)[:, None] / m.sum()
    u = v - np.einsum("i,fij->fj", m, v)[:, None] / m.sum()
    return np.einsum("i,fij->fj", m, np.cross(r, u)), np.cross(r, f).sum(axis=1), f.sum(axis=1)


def reference_temperatures(x, v, m, groups):
    """(translational, rotational, internal, total) temperatures, one loop per molecule."""
    kB = units.kB * EV_IN_AMU_A2_PS2  # amu A^2/ps^2 per K
    total = 0.5 * np.einsum("i,fij,fij->f", m, v, v)
    trans, rot = np.zeros(len(x)), np.zeros(len(x))
    dof_trans = dof_rot = 0
    for group in groups:
        mg, xg, vg = m[group], x[:, group], v[:, group]
        vcom = np.einsum("i,fij->fj", mg, vg) / mg.sum()
        trans += 0.5 * mg.sum() * (vcom**2).sum(axis=1)
        dof_trans += 3
        if len(group) == 1:
            continue
        r = xg - np.einsum("i,fij->fj", mg, xg)[:, None] / mg.sum()
        u = vg - vcom[:, None]
        L = np.einsum("i,fij->fj", mg, np.cross(r, u))
        inertia = np.array([sum(mi * (ri @ ri * np.eye(3) - np.outer(ri, ri)) for mi, ri in zip(mg, rf))
                            for rf in r])
        rot += 0.5 * np.einsum("fj,fj->f", L, [np.linalg.pinv(I, rcond=1e-8) @ l for I, l in zip(inertia, L)])
        dof_rot += np.linalg.matrix_rank(inertia[0], tol=1e-6 * np.trace(inertia[0]))
    # rotational degrees of freedom: 3 (ethanol) + 3 + 3 (water) + 2 (CO2, linear) + 0 (Ar)
    assert dof_rot == 11
    dof_int = 3 * len(m) - dof_trans - dof_rot
    return (2 * trans / (dof_trans * kB), 2 * rot / (dof_rot * kB),
            2 * (total - trans - rot) / (dof_int * kB), 2 * total / (3 * len(m) * kB))


def reference_bonds_and_angles(positions, numbers):
    radii = covalent_radii[numbers]
    lengths, angles = [], []
    for x in positions:
        vectors = x[None] - x[:, None]
        d = np.linalg.norm(vectors, axis=-1)
        bonded = (d < 1.2 * (radii[:, None] + radii[None])) & ~np.eye(len(x), dtype=bool)
        lengths += list(d[np.triu(bonded, 1)])
        for i in range(len(x)):
            for a in np.flatnonzero(bonded[i]):
                for b in np.flatnonzero(bonded[i]):
                    if a < b:
                        cosine = vectors[i, a] @ vectors[i, b] / (d[i, a] * d[i, b])
                        angles.append(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    return np.array(lengths), np.array(angles)


# ------------------------------------------------------------------------------ tests


def test_streamed_report_equals_numpy_on_the_frames_in_memory(mixture_run):
    report = analyze_run(mixture_run.path, equivariance=False, plots=False)
    series = np.load(mixture_run.path / "analysis" / "series.npz")
    run = load_run(mixture_run.path)  # every frame in memory (FrameArrays)
    assert report["frames"] == run.n_frames == 25
    assert report["time_span_ps"] == [run.time_ps[0], run.time_ps[-1]]
    np.testing.assert_array_equal(series["am_time_ps"], run.time_ps)

    L, tau, fnet = reference_L_torque_force(run.positions, run.velocities, run.forces, run.masses)
    assert np.abs(tau).max() > 0.05  # the model turns the molecules: nothing is zero by accident
    np.testing.assert_allclose(series["am_L"], L, rtol=1e-12, atol=1e-12 * np.abs(L).max())
    np.testing.assert_allclose(series["am_dL"], np.linalg.norm(L - L[0], axis=1), rtol=1e-9,
                               atol=1e-12 * np.abs(L).max())
    np.testing.assert_allclose(series["am_torque"], np.linalg.norm(tau, axis=1), rtol=1e-12)
    np.testing.assert_allclose(series["am_net_force"], np.linalg.norm(fnet, axis=1), rtol=1e-9,
                               atol=1e-12 * np.abs(run.forces).max())
    a = report["angular_momentum"]
    assert a["max_dL"] == pytest.approx(np.linalg.norm(L - L[0], axis=1).max(), rel=1e-9)
    slope = np.polyfit(run.time_ps - run.time_ps[0], L, 1)[0]
    assert a["drift_rate"] == pytest.approx(np.linalg.norm(slope), rel=1e-9)

    groups = reference_molecules(run.atoms)
    assert [len(g) for g in groups] == [9, 3, 3, 3, 1]
    trans, rot, internal, total = reference_temperatures(run.positions, run.velocities, run.masses,
                                                         [np.array(g) for g in groups])
    q = report["equipartition"]
    assert q["molecules"] == 5
    for key, values in (("translational", trans), ("rotational", rot), ("internal", internal),
                        ("total", total)):
        np.testing.assert_allclose(series[f"T_{key}"], values, rtol=1e-10, err_msg=key)
        assert q[key]["mean_K"] == pytest.approx(values.mean(), rel=1e-10)

    lengths, angles = reference_bonds_and_angles(run.positions[_frames(run.n_frames, 200)], run.numbers)
    s = report["structure"]
    assert s["bonds_per_frame"] == len(lengths) / run.n_frames
    assert s["bonds_per_frame"] > 10  # 14 at the start; the Morse well at 1.5 A stretches some
    assert s["bond_mean_A"] == pytest.approx(lengths.mean(), rel=1e-12)
    assert s["bond_std_A"] == pytest.approx(lengths.std(), rel=1e-9)
    assert s["angle_mean_deg"] == pytest.approx(angles.mean(), rel=1e-12)
    np.testing.assert_allclose(s["bond_hist"], np.histogram(lengths, BOND_BINS, density=True)[0], rtol=1e-12)
    np.testing.assert_allclose(s["angle_hist"], np.histogram(angles, ANGLE_BINS, density=True)[0], rtol=1e-12)


def test_report_does_not_hold_the_frames(mixture_run, tmp_path, monkeypatch):
    """mdsym analyze streams: copying the frames into arrays would fail here."""

    def refuse(self):
        raise AssertionError("FrameArrays used: the frames are being held in memory")

    monkeypatch.setattr(FrameArrays, "_single_frame", refuse)
    report = analyze_run(mixture_run.path, out=tmp_path, equivariance=False, plots=False)
    assert report["frames"] == 25 and report["angular_momentum"]["conserved"]


def test_walk_gives_each_analysis_what_its_own_run_gives(mixture_run):
    run = load_run(mixture_run.path, arrays=False)
    groups = molecules(run.atoms)
    alone = [AngularMomentum(run.universe, run.masses).run(stop=20),
             Equipartition(run.universe, run.masses, run.numbers, groups).run(stop=20)]
    together = walk([AngularMomentum(run.universe, run.masses),
                     Equipartition(run.universe, run.masses, run.numbers, groups)], stop=20)
    np.testing.assert_array_equal(together[0].results.L, alone[0].results.L)
    np.testing.assert_array_equal(together[0].results.torque, alone[0].results.torque)
    assert together[0].results.L.shape == (20, 3) and list(together[0].frames) == list(range(20))
    for key, values in alone[1].results.temperatures.items():
        np.testing.assert_array_equal(together[1].results.temperatures[key], values)


def test_one_bond_definition_hydrogen_bond_is_not_a_bond():
    """Two waters hydrogen bonded at O...H = 1.75 A are two molecules (the bond
    threshold for O-H is 1.2 x 0.97 = 1.16 A); the monitors see the same bonds."""
    donor, acceptor = molecule("H2O"), molecule("H2O")
    h = donor.positions[1]
    direction = (h - donor.positions[0]) / np.linalg.norm(h - donor.positions[0])
    acceptor.positions += h + 1.75 * direction - acceptor.positions[0]
    pair = donor + acceptor
    assert [len(m) for m in molecules(pair)] == [3, 3]
    assert bonds(pair.positions, pair.numbers) == {(0, 1), (0, 2), (3, 4), (3, 5)}
    monitor = StabilityMonitor(pair, 300.0, MonitorSettings())
    assert monitor.bonds == bonds(pair.positions, pair.numbers)
    # just outside 1.2 x the sum of covalent radii: not bonded; just inside: bonded
    limit = BOND_FACTOR * 2 * covalent_radii[6]
    for d, expected in ((limit + 1e-9, set()), (limit - 1e-9, {(0, 1)})):
        assert bonds([[0, 0, 0], [d, 0, 0]], [6, 6]) == expected


def test_mechanics_inertia_tensor_and_L_of_a_rigid_rotation(mixture):
    m = mixture.get_masses()
    inertia = mechanics.inertia_tensor(mixture.positions, m)
    np.testing.assert_allclose(np.linalg.eigvalsh(inertia), np.sort(mixture.get_moments_of_inertia()),
                               rtol=1e-12)
    omega = np.array([0.3, -0.2, 0.5])
    centred = mixture.positions - mixture.get_center_of_mass()
    velocities = np.cross(omega, centred) + (1.0, 2.0, 3.0)  # rotation plus a drift
    np.testing.assert_allclose(mechanics.angular_momentum(mixture.positions, velocities, m), inertia @ omega,
                               rtol=1e-12)
    # padded with a massless atom: nothing changes
    padded = np.vstack([mixture.positions, [[50.0, 50.0, 50.0]]])
    np.testing.assert_allclose(mechanics.inertia_tensor(padded, np.append(m, 0.0)), inertia, rtol=1e-12)


def test_rotational_energy_is_half_L_dot_pseudo_inverse_of_I_L():
    """The closed form (adjugate) equals numpy's pseudo-inverse, for ordinary, nearly
    linear, exactly linear and single-point bodies."""
    rng = np.random.default_rng(1)
    bodies = [rng.normal(size=(5, 3)) for _ in range(20)]
    bodies.append(np.outer([0.0, 1.2, -1.2], [0.2, 0.3, 0.9]))  # linear: one zero moment
    bodies.append(bodies[-1] + 1e-4 * rng.normal(size=(3, 3)))  # nearly linear
    bodies.append(np.zeros((1, 3)) + 2.0)  # one atom
    inertia, L = [], []
    for x in bodies:
        m = rng.uniform(1.0, 16.0, size=len(x))
        omega = rng.normal(size=3)
        v = np.cross(omega, x) + rng.normal(size=x.shape)
        inertia.append(mechanics.inertia_tensor(x, m))
        L.append(mechanics.angular_momentum(x, v, m))
    inertia, L = np.array(inertia), np.array(L)
    expected = [0.5 * l @ np.linalg.pinv(I, rcond=1e-8) @ l for I, l in zip(inertia, L)]
    np.testing.assert_allclose(mechanics.rotational_energy(L, inertia), expected, rtol=1e-9, atol=1e-12)
    assert mechanics.rotational_energy(L, inertia)[-1] == 0.0
