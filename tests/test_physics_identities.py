"""Physical and mathematical identities that tie mdsym's pieces together.

Each test states an identity that holds whatever the model, checks it on a model
that breaks rotational symmetry (so that nothing holds by accident), and checks
that the plausible wrong versions of the code would fail it:

1. the rotational standard deviation the calculator reports is the equivariance
   error A of ``mdsym.symmetry.metrics``, i.e. the paper's definition (the weighted RMS over
   the quadrature of the back-rotated output's deviation from its mean);
2. removing the net force (mass weighted) keeps the centre of mass of a mixed-mass
   molecule still and leaves the motion about it untouched; removing the net
   torque conserves the angular momentum about the centre of mass to round-off
   under Velocity Verlet;
3. the torque, angular momentum and net force the run engine writes to thermo.csv
   are those the analysis computes from trajectory.trr.
"""

import ase.io
import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from mdsym import MdsymCalculator, System, load_model
from mdsym.analysis import angular_momentum as am
from mdsym.analysis.trajectory import load_run
from mdsym.core.defaults import STRUCTURES
from mdsym.md.run import run_md
from mdsym.md.rundir import RunDirectory
from mdsym.symmetry.averaging import evaluate_back_rotated
from mdsym.symmetry.metrics import equivariance_error, measure

from .helpers import transformed

# Morse parameters scaled to a molecule's bond lengths, so an ethanol stays bound
# for a few hundred femtoseconds; bond2 + vector1 break rotational invariance of
# the energy, direct1 adds a non-conservative force with a net force and a torque
MOLECULAR = "equilibrium=1.5,cutoff=4.0"
CONSERVATIVE = f"analytic:vector1=0.05,bond2=0.03,{MOLECULAR}"
DIRECT = f"analytic:vector1=0.05,bond2=0.03,direct1=0.05,{MOLECULAR}"

EPS = np.finfo(np.float64).eps
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture
def ethanol():
    """C2H5OH: three different masses, the point of the net-force tests."""
    return ase.io.read(STRUCTURES / "ethanol.xyz")


# --- 1. forces_rot_std / energy_rot_std are A ---------------------------------------


def a_by_definition(model, atoms, quadrature):
    """A of energy and forces from the definition, with ASE and numpy only.

    Each element ``R`` of the quadrature acts as ``r -> R r``; the prediction on the
    rotated copy is brought back to the input frame (forces ``F' R``, i.e.
    ``R^T F'`` per atom) and A^2 is ``sum_g w_g |y_g - <y>|^2 / n_components``.
    Also returns the plausible wrong normalisations, so the caller can check the
    identity tells them apart.
    """
    raw = MdsymCalculator(model)
    energies, forces = [], []
    for rotation in quadrature.rotations:
        copy = transformed(atoms, rotation)
        copy.calc = raw
        energies.append(copy.get_potential_energy())
        forces.append(copy.get_forces() @ rotation)
    w = quadrature.weights
    out = {}
    for key, values in (("energy", np.array(energies)[:, None]),
                        ("forces", np.array(forces).reshape(len(w), -1))):
        mean = w @ values
        squared = ((values - mean) ** 2).sum(axis=1) / values.shape[1]
        out[key] = np.sqrt(w @ squared)
        unweighted = ((values - values.mean(axis=0)) ** 2).sum(axis=1) / values.shape[1]
        out[key + "_wrong"] = {
            "equal weights": np.sqrt(unweighted.mean()),
            "ddof=1": np.sqrt(w @ squared * len(w) / (len(w) - 1)),
            "RMS, no mean removed": np.sqrt(w @ (values**2).sum(axis=1) / values.shape[1]),
        }
    return out


@pytest.mark.parametrize("spec", [CONSERVATIVE, DIRECT])
def test_rotational_std_is_the_equivariance_error(ethanol, spec):
    """mean over components of forces_rot_std^2 = A(forces)^2; energy_rot_std = A(energy).

    A Lebedev grid with unequal weights, so a mean that ignores the weights fails.
    """
    model = load_model(spec)
    calc = MdsymCalculator(model, symmetrize="o3:5:lebedev")
    ethanol.calc = calc
    ethanol.get_forces()
    quadrature = calc.symmetrizer.quadrature
    assert np.ptp(quadrature.weights) > 0.1 * quadrature.weights.mean()

    truth = a_by_definition(model, ethanol, quadrature)
    back = evaluate_back_rotated(model, System.from_atoms(ethanol), quadrature, ("energy", "forces"))
    for key in ("energy", "forces"):
        reported = np.sqrt(np.mean(np.square(calc.results[f"{key}_rot_std"])))
        from_metrics = equivariance_error(back[key], quadrature.weights)
        assert truth[key] > 1e-3, "the model must be clearly anisotropic here"
        assert from_metrics == pytest.approx(truth[key], rel=1e-9), key
        assert reported == pytest.approx(truth[key], rel=1e-9), key
        for name, wrong in truth[key + "_wrong"].items():
            # 1000 times the tolerance above: each wrong version would fail it
            assert abs(wrong / truth[key] - 1) > 1e-6, f"{key}: {name} would pass unnoticed"


def test_equivariance_report_and_calculator_agree_on_the_same_quadrature(ethanol, small_crystal):
    """``measure(max_degree=L)`` integrates over the degree 2L+1 rule; the calculator
    with ``o3:2L+1`` uses the same one: same A for energy, forces and stress."""
    cases = ((ethanol, CONSERVATIVE, 3), (small_crystal, "analytic:bond2=0.05,vector1=0.05", 0))
    for atoms, spec, degree in cases:
        model = load_model(spec)
        report = measure(model, System.from_atoms(atoms), max_degree=degree)
        calc = MdsymCalculator(model, symmetrize=f"o3:{2 * degree + 1}")
        atoms.calc = calc
        atoms.get_forces()
        assert calc.symmetrizer.quadrature.name == report["quadrature"]["name"]
        keys = ["energy", "forces"]
        if atoms.pbc.all():
            atoms.get_stress()
            keys.append("stress")
        for key in keys:
            reported = np.sqrt(np.mean(np.square(calc.results[f"{key}_rot_std"])))
            assert report[key]["A"] > {"stress": 1e-7}.get(key, 1e-4), key  # eV/A^3 for stress
            assert reported == pytest.approx(report[key]["A"], rel=1e-9), key


# --- 2. net force and net torque removal ---------------------------------------------


def velocity_verlet(atoms, spec, steps, timestep_fs=0.5):
    """NVE with ASE's Velocity Verlet from zero momentum and zero angular momentum.

    Returns per step the total momentum P, the centre of mass R, the angular
    momentum about it L, the positions about it, and the round-off scales
    ``sum_i |r_i - R| |F_i|``, ``sum_i |r_i - R| |p_i|``, ``sum_i |F_i|``, ``sum_i |p_i|``.
    """
    atoms = atoms.copy()
    thermalize_momenta(atoms, 300.0, rng=np.random.default_rng(0))
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.calc = MdsymCalculator(load_model(DIRECT), symmetrize=spec)
    masses = atoms.get_masses()
    record = {k: [] for k in ("P", "R", "L", "about_com", "rF", "rp", "F", "p")}

    def observe():
        r, p, f = atoms.positions, atoms.get_momenta(), atoms.get_forces()
        com = masses @ r / masses.sum()
        centred = r - com
        lever = np.linalg.norm(centred, axis=1)
        record["P"].append(p.sum(axis=0))
        record["R"].append(com)
        record["L"].append(np.cross(centred, p).sum(axis=0))
        record["about_com"].append(centred.copy())
        record["rF"].append(lever @ np.linalg.norm(f, axis=1))
        record["rp"].append(lever @ np.linalg.norm(p, axis=1))
        record["F"].append(np.linalg.norm(f, axis=1).sum())
        record["p"].append(np.linalg.norm(p, axis=1).sum())

    dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dynamics.attach(observe, interval=1)
    dynamics.run(steps)
    out = {k: np.array(v) for k, v in record.items()}
    out["dt"] = timestep_fs * units.fs
    out["masses"] = masses
    return out


def round_off_bound(steps, *scales):
    """Each step adds at most a few ulps of each term it sums; 64 ulps per step is generous."""
    return steps * 64 * EPS * sum(np.max(s) for s in scales)


STEPS = 200


def test_netforce_keeps_the_centre_of_mass_of_a_mixed_mass_molecule_still(ethanol):
    """Sum of the fixed forces is zero, so Velocity Verlet keeps P = 0 and R fixed.

    P changes by dt/2 (F_n + F_{n+1}) summed over atoms, R by dt P / M: both are
    round-off when the forces sum to zero. The raw model (direct1: a net force)
    moves the centre of mass by a fraction of an Angstrom in 100 fs.
    """
    for spec in ("netforce", "netforce+nettorque"):
        run = velocity_verlet(ethanol, spec, STEPS)
        p_bound = round_off_bound(STEPS, run["dt"] * run["F"], run["p"])
        r_bound = round_off_bound(STEPS, np.abs(run["about_com"]).max() + np.abs(run["R"]))
        assert np.abs(run["P"]).max() < p_bound, spec
        assert np.abs(run["R"] - run["R"][0]).max() < r_bound, spec
    raw = velocity_verlet(ethanol, "none", STEPS)
    assert np.abs(raw["P"]).max() > 1e6 * p_bound
    assert np.abs(raw["R"] - raw["R"][0]).max() > 1e6 * r_bound


def test_netforce_is_a_uniform_acceleration_shift(ethanol):
    """Mass-weighted removal, ``F_i - m_i/M F_net``, shifts every acceleration by the
    same ``-F_net/M``: the motion about the centre of mass is exactly that of the raw
    model (translation invariance), and the torque about it is unchanged.

    Removing ``F_net/N`` from every atom also zeroes the net force (so it also keeps
    the centre of mass still), but on a mixed-mass molecule it shifts the light
    atoms' accelerations more than the heavy ones' and so changes the internal
    motion and the torque: the checks below fail for it (computed alongside).
    """
    model = load_model(DIRECT)
    masses = ethanol.get_masses()
    raw = MdsymCalculator(model).get_forces(ethanol)
    fixed = MdsymCalculator(model, symmetrize="netforce").get_forces(ethanol)
    equal_share = raw - raw.sum(axis=0) / len(raw)
    centred = ethanol.positions - masses @ ethanol.positions / masses.sum()

    net = raw.sum(axis=0)
    assert np.linalg.norm(net) > 1e-2
    shift = (fixed - raw) / masses[:, None]
    assert np.abs(shift + net / masses.sum()).max() < 1e-12
    assert np.abs(np.cross(centred, fixed - raw).sum(axis=0)).max() < 1e-12
    # the alternative fails both, by far more than the tolerance
    spread = np.ptp((equal_share - raw) / masses[:, None], axis=0).max()
    assert spread > 1e-3
    assert np.abs(np.cross(centred, equal_share - raw).sum(axis=0)).max() > 1e-3

    # the trajectories about the centre of mass coincide: Velocity Verlet is linear
    # in the positions, and a uniform acceleration only moves the centre of mass
    steps = 100
    a = velocity_verlet(ethanol, "none", steps)["about_com"]
    b = velocity_verlet(ethanol, "netforce", steps)["about_com"]
    assert np.abs(a[-1] - a[0]).max() > 1e-2  # the molecule does move
    assert np.abs(a - b).max() < 1e-9


def test_nettorque_conserves_angular_momentum_to_round_off(ethanol):
    """Velocity Verlet gives exactly ``L_{n+1} - L_n = dt/2 (tau_n + tau_{n+1})`` for
    the angular momentum about the centre of mass (the position update adds
    ``r x p`` parallel terms only, and ``R x P`` changes by the same trapezoid of
    ``R x F_net``). With the torque about the centre of mass removed the
    integrator's error is therefore zero, and only round-off is left:
    ``|L_n - L_0| <= n * c * eps * (dt sum |r_i - R||F_i| + sum |r_i - R||p_i|)``.
    The raw model's L drifts by many orders of magnitude more. ``nettorque`` alone
    leaves the net force, so the centre of mass accelerates; L about it is still
    conserved.
    """
    for spec in ("nettorque", "netforce+nettorque"):
        run = velocity_verlet(ethanol, spec, STEPS)
        bound = round_off_bound(STEPS, run["dt"] * run["rF"], run["rp"])
        assert np.linalg.norm(run["L"] - run["L"][0], axis=1).max() < bound, spec
    assert np.abs(run["L"][0]).max() < 1e-10  # ZeroRotation
    moving = velocity_verlet(ethanol, "nettorque", 20)
    assert np.linalg.norm(moving["R"][-1] - moving["R"][0]) > 1e-4

    raw = velocity_verlet(ethanol, "none", STEPS)
    assert np.linalg.norm(raw["L"] - raw["L"][0], axis=1).max() > 1e6 * bound
    # and the raw drift is the trapezoid of its torque, step by step
    forces = []
    atoms = ethanol.copy()
    atoms.calc = MdsymCalculator(load_model(DIRECT))
    for positions in raw["about_com"]:
        atoms.positions = positions
        forces.append(atoms.get_forces())
    torque = np.cross(raw["about_com"], np.array(forces)).sum(axis=1)
    expected = 0.5 * raw["dt"] * (torque[1:] + torque[:-1])
    assert np.abs(np.diff(raw["L"], axis=0) - expected).max() < 1e-12 * np.abs(raw["L"]).max() + bound


# --- 3. thermo.csv and the analysis agree ---------------------------------------------


def test_thermo_torque_and_angular_momentum_match_the_analysis_of_the_trajectory(ethanol, tmp_path):
    """Per frame, thermo.csv's torque, L and net force equal what the analysis
    computes from trajectory.trr (float32 in nm, nm/ps, kJ/mol/nm) to float32
    precision. The molecule is deuterated (masses that MDAnalysis would not guess
    from the element) and moved away from the origin (the origin of the torque and
    of L matters), so a different mass source or origin would fail.
    """
    masses = ethanol.get_masses()
    masses[ethanol.numbers == 1] = 2.014
    ethanol.set_masses(masses)
    ethanol.positions += (3.0, -2.0, 5.0)
    structure = tmp_path / "d-ethanol.xyz"
    ase.io.write(structure, ethanol, format="extxyz")
    config = dict(model=DIRECT, structure=str(structure), engine="ase", ensemble="nve",
                  thermostat="svr", timestep_fs=0.5, steps=40, temperature_K=300.0, seed=1,
                  symmetrize="none", forces="auto", batch_size=None, stride=1, connectivity=False,
                  # the analytic molecule starts strained and heats up: not a failure here
                  max_temperature_factor=100.0)
    assert run_md(config, tmp_path / "run")["status"] == "completed"

    run = load_run(tmp_path / "run")
    assert np.allclose(run.masses, masses)
    thermo = run.thermo
    assert list(run.step) == list(thermo["step"]) == list(range(41))

    def column(prefix):
        return np.stack([thermo[f"{prefix}{axis}"] for axis in "xyz"], axis=1)

    com = np.einsum("i,fij->fj", masses, run.positions) / masses.sum()
    centred = run.positions - com[:, None, :]
    lever = np.linalg.norm(centred, axis=2) + np.linalg.norm(run.positions, axis=2)
    # float32 storage: a few ulps of each term of the sums
    torque_tol = 8 * FLOAT32_EPS * np.einsum("fi,fi->f", lever, np.linalg.norm(run.forces, axis=2))
    L_tol = 8 * FLOAT32_EPS * np.einsum("i,fi,fi->f", masses, lever, np.linalg.norm(run.velocities, axis=2))
    force_tol = 8 * FLOAT32_EPS * np.linalg.norm(run.forces, axis=2).sum(axis=1)

    universe = RunDirectory(tmp_path / "run").universe()
    by_class = am.AngularMomentum(universe).run().results  # masses from the run directory
    for name, analysed, written, tol in (
        ("torque", am.torque(run.positions, run.forces, masses), column("torque_"), torque_tol),
        ("L", am.angular_momentum(run.positions, run.velocities, masses), column("L"), L_tol),
        ("net force", am.net_force(run.forces), column("fnet_"), force_tol),
        ("torque (AngularMomentum)", by_class.torque, column("torque_"), torque_tol),
        ("L (AngularMomentum)", by_class.L, column("L"), L_tol),
    ):
        error = np.linalg.norm(analysed - written, axis=1)
        assert np.all(error < tol), f"{name}: {error.max():.3g} > {tol[np.argmax(error)]:.3g}"

    # the checks can fail: the torque about the origin and L with the standard
    # hydrogen mass differ from the written ones by far more than the tolerances
    about_origin = np.cross(run.positions, run.forces).sum(axis=1)
    assert np.linalg.norm(about_origin - column("torque_"), axis=1).max() > 100 * torque_tol.max()
    standard = ase.io.read(STRUCTURES / "ethanol.xyz").get_masses()
    light = am.angular_momentum(run.positions, run.velocities, standard)
    assert np.linalg.norm(light - column("L"), axis=1).max() > 100 * L_tol.max()
