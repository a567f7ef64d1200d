"""Metrics A and B against closed forms on the analytic models."""

import json

import numpy as np
import pytest
from scipy.special import eval_legendre

from mdsym import System
from mdsym.models import AnalyticModel, NativeModel, SpuriousTerm
from mdsym.symmetry.metrics import measure
from mdsym.symmetry.symmetrized import SymmetrizedModel

AXIS = np.array([0.31, 0.52, 0.79]) / np.linalg.norm([0.31, 0.52, 0.79])


def fraction(report, key, lam, sigma):
    return next(b["fraction"] for b in report[key]["B"] if (b["lambda"], b["sigma"]) == (lam, sigma))


def bond_pairs(atoms, cutoff):
    """Unit vectors and cosine-cutoff weights of all ordered pairs of an isolated system."""
    d = atoms.positions[None, :, :] - atoms.positions[:, None, :]
    r = np.linalg.norm(d, axis=-1)
    mask = (r > 0) & (r < cutoff)
    unit = d[mask] / r[mask][:, None]
    fc = 0.5 * (1 + np.cos(np.pi * r[mask] / cutoff))
    return unit, fc


@pytest.mark.parametrize("degree", [2, 4])
def test_bond_term_content_and_error_match_closed_form(cluster, degree):
    eps = 0.05
    model = NativeModel(AnalyticModel(terms=(SpuriousTerm(degree, 1, eps),), axis=AXIS))
    iso = NativeModel(AnalyticModel(terms=()))
    system = System.from_atoms(cluster)
    report = measure(model, system, max_degree=degree)

    unit, fc = bond_pairs(cluster, 5.5)
    # mean over the group of S(g)^2 by the addition theorem: sum fc fc P_l(u.u') / (2l+1)
    spurious_norm = eps**2 * fc @ eval_legendre(degree, unit @ unit.T) @ fc / (2 * degree + 1)
    iso_energy = measure(iso, system, max_degree=0)["energy"]["mean"]
    total = iso_energy**2 + spurious_norm

    assert fraction(report, "energy", 0, 1) == pytest.approx(iso_energy**2 / total, rel=1e-9)
    assert fraction(report, "energy", degree, 1) == pytest.approx(spurious_norm / total, rel=1e-9)
    others = [b["fraction"] for b in report["energy"]["B"]
              if (b["lambda"], b["sigma"]) not in ((0, 1), (degree, 1))]
    assert max(others) < 1e-12
    assert report["energy"]["A"] == pytest.approx(np.sqrt(spurious_norm), rel=1e-9)
    assert report["energy"]["mean"] == pytest.approx(iso_energy, abs=1e-10)


@pytest.mark.parametrize("degree,parity", [(1, 1), (3, 1), (2, -1), (1, -1)])
def test_vector_terms_land_in_their_sector(cluster, degree, parity):
    model = NativeModel(AnalyticModel(terms=(SpuriousTerm(degree, parity, 0.05, "vector"),), axis=AXIS))
    report = measure(model, System.from_atoms(cluster), max_degree=3)
    target = fraction(report, "energy", degree, parity)
    assert target > 1e-12  # tiny next to the isotropic energy squared, but there
    for b in report["energy"]["B"]:
        if (b["lambda"], b["sigma"]) not in ((0, 1), (degree, parity)):
            assert b["fraction"] < 1e-6 * target, b
    # the spurious energy's squared norm, A^2, is all of that sector's content
    assert report["energy"]["A"] ** 2 == pytest.approx(
        target * (report["energy"]["mean"] ** 2 + report["energy"]["A"] ** 2), rel=1e-6)


def test_isotropic_model_is_exactly_equivariant(cluster, small_crystal):
    iso = NativeModel(AnalyticModel(terms=()))
    for atoms in (cluster, small_crystal):
        report = measure(iso, System.from_atoms(atoms), max_degree=2)
        assert report["energy"]["A"] < 1e-10 and report["forces"]["A"] < 1e-10
        assert fraction(report, "energy", 0, 1) == pytest.approx(1.0, abs=1e-12)
        # forces of an equivariant model respond as a vector: all in (1, +1)
        assert fraction(report, "forces", 1, 1) == pytest.approx(1.0, abs=1e-12)
        if atoms.pbc.all():
            assert report["stress"]["A"] < 1e-12
            stress_content = fraction(report, "stress", 0, 1) + fraction(report, "stress", 2, 1)
            assert stress_content == pytest.approx(1.0, abs=1e-12)


def test_symmetrized_model_has_zero_error_up_to_its_degree(small_crystal):
    model = NativeModel(AnalyticModel(terms=(SpuriousTerm(2, 1, 0.05),), axis=AXIS))
    system = System.from_atoms(small_crystal)
    raw = measure(model, system, max_degree=2)
    sym = measure(SymmetrizedModel(model, "o3:2"), system, max_degree=2)
    assert raw["forces"]["A"] > 1e-3
    assert sym["energy"]["A"] < 1e-12 and sym["forces"]["A"] < 1e-12 and sym["stress"]["A"] < 1e-12


def test_cli_json_has_the_documented_keys(cluster, tmp_path):
    from click.testing import CliRunner

    from mdsym.cli.main import main

    path = tmp_path / "cluster.xyz"
    cluster.write(path)
    result = CliRunner().invoke(main, ["equivariance", "--model", "analytic", "--structure", str(path),
                                       "--degree", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"energy", "forces", "quadrature"} and "stress" not in report
    assert {"A", "B"} <= set(report["forces"])
    assert set(report["forces"]["B"][0]) == {"lambda", "sigma", "fraction"}
    assert set(report["quadrature"]) >= {"name", "size", "degree"}
    assert report["quadrature"]["degree"] >= 5
