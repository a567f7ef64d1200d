"""Symmetrization: spurious terms of degree <= L cancel exactly; outputs are invariant
or equivariant; the cheap fixes do what they say."""

import ase
import numpy as np
import pytest

from mdsym import MdsymCalculator, MdsymError, SymmetrizedModel, SymmetrizeSpec, System, load_model
from mdsym.models import AnalyticModel, Model, NativeModel, SpuriousTerm
from mdsym.symmetry import quadrature as quad
from mdsym.symmetry.averaging import average

from .helpers import random_o3, transformed

ISOTROPIC = NativeModel(AnalyticModel(terms=()), name="isotropic")


# a lab axis on no symmetry axis of the finite groups, so no term averages out by accident
AXIS = (0.31, 0.52, 0.79)


def spurious(*terms, direct=()):
    return NativeModel(AnalyticModel(terms=terms, direct_terms=direct, axis=AXIS), name="spurious")


CASES = [
    # (terms, direct terms, degree of the spurious response)
    ((SpuriousTerm(2, 1, 0.05),), (), 2),
    ((SpuriousTerm(1, 1, 0.05, "vector"),), (), 1),
    ((SpuriousTerm(3, 1, 0.02, "vector"),), (), 3),
    ((SpuriousTerm(2, -1, 500.0, "vector"),), (), 2),  # chirality is small here
    ((SpuriousTerm(4, 1, 0.05),), (), 4),
    ((), (SpuriousTerm(2, 1, 0.05, "vector"),), 2),
]


@pytest.mark.parametrize("terms,direct,degree", CASES)
@pytest.mark.parametrize("family", ["cheapest", "lebedev", "gauss-legendre"])
def test_spurious_terms_up_to_degree_L_cancel_exactly(small_crystal, terms, direct, degree, family):
    system = System.from_atoms(small_crystal)
    model = spurious(*terms, direct=direct)
    exact = average(ISOTROPIC, system, quad.identity(False), ("energy", "forces", "stress"))
    raw = average(model, system, quad.identity(False), ("energy", "forces", "stress"))
    assert abs(raw["energy"] - exact["energy"]) > 1e-4 or np.abs(raw["forces"] - exact["forces"]).max() > 1e-4

    q = quad.by_name(family, degree)
    sym = average(model, system, q, ("energy", "forces", "stress"))
    assert abs(sym["energy"] - exact["energy"]) < 1e-10
    assert np.abs(sym["forces"] - exact["forces"]).max() < 1e-10
    assert np.abs(sym["stress"] - exact["stress"]).max() < 1e-10

    # over SO(3): with inversion, a degree-(L-1) grid still kills odd proper terms
    below = average(model, system, quad.by_name(family, degree - 1, inversion=False),
                    ("energy", "forces", "stress"))
    error = max(abs(below["energy"] - exact["energy"]), np.abs(below["forces"] - exact["forces"]).max())
    assert error > 1e-6, "a quadrature one degree too low must not cancel the term"


def test_pseudoscalar_survives_so3_but_not_o3(cluster):
    system = System.from_atoms(cluster)
    model = spurious(SpuriousTerm(0, -1, 1.0, "vector"))  # a chiral energy: (0, -1)
    exact = average(ISOTROPIC, system, quad.identity(False), ("energy",))["energy"]
    so3 = average(model, system, quad.cheapest(4, inversion=False), ("energy",))["energy"]
    o3 = average(model, system, quad.cheapest(0, inversion=True), ("energy",))["energy"]
    assert abs(so3 - exact) > 1e-4
    assert abs(o3 - exact) < 1e-10


@pytest.mark.parametrize("spec", ["o3:1", "o3:3", "so3:2"])
def test_symmetrized_outputs_are_invariant_and_equivariant(small_crystal, spec):
    """Spurious terms up to the grid's degree: the results transform exactly."""
    model = load_model("analytic:bond2=0.05,vector1=0.05")
    degree = int(spec.split(":")[1])
    if degree < 2:
        model = load_model("analytic:vector1=0.05")
    calc = MdsymCalculator(model, symmetrize=spec)
    small_crystal.calc = calc
    energy, forces, stress = (small_crystal.get_potential_energy(), small_crystal.get_forces(),
                              small_crystal.get_stress(voigt=False))
    for rotation in random_o3(7, 3):
        if spec.startswith("so3") and np.linalg.det(rotation) < 0:
            rotation = -rotation
        moved = transformed(small_crystal, rotation)
        moved.calc = calc
        assert abs(moved.get_potential_energy() - energy) < 1e-10
        assert np.abs(moved.get_forces() - forces @ rotation.T).max() < 1e-10
        assert np.abs(moved.get_stress(voigt=False) - rotation @ stress @ rotation.T).max() < 1e-10


def test_rotational_std_is_reported_and_vanishes_for_an_isotropic_model(cluster):
    cluster.calc = MdsymCalculator(ISOTROPIC, symmetrize="o3:2")
    cluster.get_forces()
    assert cluster.calc.results["energy_rot_std"] < 1e-10
    assert cluster.calc.results["forces_rot_std"].max() < 1e-10
    cluster.calc = MdsymCalculator(load_model("analytic"), symmetrize="o3:2")
    cluster.get_forces()
    assert cluster.calc.results["energy_rot_std"] > 1e-4
    assert cluster.calc.results["forces_rot_std"].shape == (len(cluster), 3)


def test_random_rotation_is_seeded_and_unbiased_for_invariant_models(cluster):
    model = load_model("analytic")
    a = MdsymCalculator(model, symmetrize="random", seed=4)
    b = MdsymCalculator(model, symmetrize="random", seed=4)
    cluster.calc = a
    fa = cluster.get_forces().copy()
    cluster.calc = b
    assert np.array_equal(cluster.get_forces(), fa)
    cluster.calc = MdsymCalculator(ISOTROPIC, symmetrize="random", seed=1)
    reference = MdsymCalculator(ISOTROPIC).get_forces(cluster)
    assert np.abs(cluster.get_forces() - reference).max() < 1e-10


def test_net_force_and_torque_removal(cluster):
    model = load_model("analytic:vector1=0.2,direct1=0.3")
    cluster.calc = MdsymCalculator(model)
    raw = cluster.get_forces().copy()
    masses = cluster.get_masses()
    com = masses @ cluster.positions / masses.sum()
    assert np.abs(raw.sum(axis=0)).max() > 1e-3
    cluster.calc = MdsymCalculator(model, symmetrize="netforce+nettorque")
    fixed = cluster.get_forces()
    assert np.abs(fixed.sum(axis=0)).max() < 1e-10
    assert np.abs(np.cross(cluster.positions - com, fixed).sum(axis=0)).max() < 1e-10
    # the change is a rigid-body acceleration field: nothing else moves
    cluster.calc = MdsymCalculator(model, symmetrize="nettorque")
    only_torque = cluster.get_forces()
    assert np.abs(only_torque.sum(axis=0) - raw.sum(axis=0)).max() < 1e-10


def test_nettorque_is_refused_for_periodic_systems(small_crystal):
    small_crystal.calc = MdsymCalculator(load_model("analytic"), symmetrize="nettorque")
    with pytest.raises(MdsymError, match="isolated"):
        small_crystal.get_forces()


@pytest.mark.parametrize("text,expected", [
    ("none", "none"), ("o3:3", "o3:3"), ("so3:2:lebedev", "so3:2:lebedev"),
    ("random+nettorque", "random+nettorque"), ("random-so3", "random-so3"),
    ("O3:4+netforce", "o3:4+netforce"),
    ("mts:8+o3:3", "mts:8+o3:3"), ("o3:3+mts:2+nettorque", "mts:2+o3:3+nettorque"),
    ("o3:1:rotated", "o3:1:rotated"), ("so3:2:rotated:lebedev", "so3:2:lebedev:rotated"),
    ("o3:auto", "o3:auto:0.01:200"), ("o3:auto:0.005:50:rotated", "o3:auto:0.005:50:rotated"),
])
def test_spec_round_trip(text, expected):
    assert str(SymmetrizeSpec.parse(text)) == expected


@pytest.mark.parametrize("text", ["o3:x", "o3:-1", "o3:500", "so3:2:simpson", "sideways",
                                  "mts:4", "mts:0+o3:1", "mts:1.5+o3:1", "o3:3:0.1", "o3:auto:0",
                                  "o3:auto:0.1:0", "o3:auto:0.1:5:7", "o3:1+random"])
def test_bad_specs_are_one_clear_error(text):
    with pytest.raises(MdsymError):
        SymmetrizeSpec.parse(text)


def test_calculator_parameters_follow_ase_conventions(cluster):
    """``set()`` changes the symmetrization of the next result and drops the old one."""
    model = load_model("analytic:vector1=0.05")
    calc = MdsymCalculator(model)
    assert calc.parameters["symmetrize"] == "none" and calc.parameters["batch_size"] is None
    cluster.calc = calc
    arms = cluster.positions - cluster.get_center_of_mass()

    def torque(forces):
        return np.abs(np.cross(arms, forces).sum(axis=0)).max()

    assert torque(cluster.get_forces()) > 1e-3  # the spurious vector term turns the cluster
    changed = calc.set(symmetrize="o3:2")
    assert changed == {"symmetrize": "o3:2"} and calc.results == {}
    assert torque(cluster.get_forces()) < 1e-10  # an invariant energy exerts no torque
    assert calc.results["energy_rot_std"] > 0
    assert calc.set(symmetrize="o3:2") == {}  # no change, results kept
    assert "forces" in calc.results


# --- o3:auto -----------------------------------------------------------------------


@pytest.mark.parametrize("terms,group,needed", [
    ((), "o3", 0),
    ((SpuriousTerm(1, -1, 500.0, "vector"),), "o3", 1),
    ((SpuriousTerm(2, 1, 0.05),), "o3", 2),
    ((SpuriousTerm(3, -1, 500.0, "vector"),), "o3", 3),
    # an odd proper term is odd under inversion: the +-R pairs of any O(3) grid cancel it
    ((SpuriousTerm(3, 1, 0.002, "vector"),), "o3", 0),
    ((SpuriousTerm(3, 1, 0.002, "vector"),), "so3", 3),
    ((SpuriousTerm(1, 1, 0.01, "vector"),), "so3", 1),
])
def test_auto_picks_the_degree_the_spurious_content_needs(cluster, terms, group, needed):
    system = System.from_atoms(cluster)
    model = spurious(*terms)
    symmetrizer = SymmetrizedModel(model, f"{group}:auto:1e-6")
    results = symmetrizer(system)
    assert symmetrizer.degree == needed
    errors = symmetrizer.predicted_errors
    assert errors[needed] < 1e-6 and (needed == 0 or errors[needed - 1] > 1e-3)
    # the prediction is right: that degree is exact, one lower is not
    exact = average(ISOTROPIC, system, quad.identity(False), ("energy", "forces"))
    assert np.abs(results["forces"] - exact["forces"]).max() < 1e-9
    if needed:
        below = average(model, system, quad.cheapest(needed - 1, group == "o3"), ("energy", "forces"))
        assert np.abs(below["forces"] - exact["forces"]).max() > 1e-4


def test_auto_says_when_no_degree_meets_the_tolerance(cluster):
    symmetrizer = SymmetrizedModel(spurious(SpuriousTerm(4, 1, 0.05)), "o3:auto:1e-6")
    symmetrizer(System.from_atoms(cluster))
    entry = symmetrizer.degree_log[-1]
    assert entry["degree"] == 3 and entry["tolerance_met"] is False
    assert min(entry["predicted_error_eVA"]) > 1e-3


def test_auto_degree_rises_and_falls_and_logs_each_change(cluster):
    """Re-checked every N calls: a system without spurious forces (a dimer beyond
    the cutoff) needs degree 0."""
    model = spurious(SpuriousTerm(2, 1, 0.05))
    busy = System.from_atoms(cluster)
    quiet = System.from_atoms(ase.Atoms("Cu2", positions=[[0, 0, 0], [0.3, 1.2, 6.0]]))
    symmetrizer = SymmetrizedModel(model, "o3:auto:1e-6:3")
    for system in [busy, busy, busy, quiet, quiet, quiet, busy]:
        symmetrizer(system)
    assert [(e["call"], e["degree"], e["previous"]) for e in symmetrizer.degree_log] == [
        (0, 2, None), (3, 0, 2), (6, 2, 0)]


# --- rotated grids -------------------------------------------------------------------


class ExponentialAnisotropy(Model):
    """Direct forces ``exp(k u_i . n) u_i`` (``u_i``: unit vector from the centroid to
    atom i): every degree of rotation is in it, so no finite grid is exact."""

    forces_kind = "direct"
    has_stress = False
    name = "exponential-anisotropy"

    def evaluate(self, system, rotations, properties):
        centred = system.positions - system.positions.mean(axis=0)
        rotated = np.einsum("nj,gij->gni", centred, rotations)
        u = rotated / np.linalg.norm(rotated, axis=-1, keepdims=True)
        weight = np.exp(1.5 * u @ (np.array(AXIS) / np.linalg.norm(AXIS)))
        return {"energy": weight.sum(axis=1), "forces": weight[..., None] * u}


def test_rotated_grid_is_unbiased_where_a_fixed_grid_keeps_a_bias(cluster):
    system = System.from_atoms(cluster)
    model = ExponentialAnisotropy()
    exact = average(model, system, quad.cheapest(14), ("energy", "forces"))["forces"]
    assert np.abs(average(model, system, quad.cheapest(18), ("energy", "forces"))["forces"]
                  - exact).max() < 1e-10  # converged: the exact O(3) mean
    fixed = SymmetrizedModel(model, "o3:1")(system)["forces"]
    rotated = SymmetrizedModel(model, "o3:1:rotated", seed=3)
    calls = np.array([rotated(system)["forces"] for _ in range(400)])
    standard_error = np.sqrt(np.mean(calls.var(axis=0)) / len(calls))
    rms = lambda x: np.sqrt(np.mean(x**2))  # noqa: E731
    assert rms(calls.mean(axis=0) - exact) < 4 * standard_error
    assert rms(fixed - exact) > 10 * standard_error
    assert rms(calls[0] - calls[1]) > 1e-3  # a fresh rotation at every call


def test_rotated_grid_keeps_its_degree_and_its_seed(cluster):
    system = System.from_atoms(cluster)
    model = spurious(SpuriousTerm(1, -1, 500.0, "vector"), SpuriousTerm(2, 1, 0.05))
    exact = average(ISOTROPIC, system, quad.identity(False), ("energy", "forces"))
    a, b = SymmetrizedModel(model, "o3:2:rotated", seed=5), SymmetrizedModel(model, "o3:2:rotated", seed=5)
    for _ in range(3):
        quadrature, _ = a.current_quadrature(), b.current_quadrature()  # one draw each
        assert np.allclose(np.einsum("gij,gkj->gik", quadrature.rotations, quadrature.rotations), np.eye(3))
        result = a(system)
        assert np.abs(result["forces"] - exact["forces"]).max() < 1e-9
        assert abs(result["energy"] - exact["energy"]) < 1e-9
        assert np.array_equal(b(system)["forces"], result["forces"])


def test_a_symmetrized_model_given_to_the_calculator_keeps_its_rotational_std(cluster):
    model = load_model("analytic:vector1=0.05")
    symmetrized = SymmetrizedModel(model, "o3:1")
    direct, wrapped = cluster.copy(), cluster.copy()
    direct.calc = MdsymCalculator(model, symmetrize="o3:1")
    wrapped.calc = MdsymCalculator(symmetrized)
    np.testing.assert_allclose(wrapped.get_forces(), direct.get_forces(), atol=1e-12)
    assert wrapped.calc.results["energy_rot_std"] == pytest.approx(direct.calc.results["energy_rot_std"], rel=1e-12)
    assert direct.calc.results["energy_rot_std"] > 1e-4
    with pytest.raises(MdsymError, match="already symmetrized"):
        MdsymCalculator(symmetrized, symmetrize="o3:2")
