"""The dynamic equivariance test and ``mdsym audit``."""

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.cluster import Icosahedron

from mdsym.models import load_model
from mdsym.reports.scorecard import ROW_FIELDS
from mdsym.workflows.dynamic_equivariance import dynamic_equivariance, initial_state, static_rotation_tests
from tests.journeys.checks import check_markdown_tables

INVARIANT = "analytic:cutoff=5.5"  # Morse pairs, no spurious term: exactly O(3) invariant
ANISOTROPIC = "analytic:vector1=0.05,bond2=0.05"


@pytest.fixture
def state():
    atoms = Icosahedron("Cu", 2)  # 13 atoms
    atoms.rattle(0.05, seed=1)
    return initial_state(atoms, 300.0, seed=0)


def distances(result):
    return np.array([e["distance_A"] for e in result["elements"]])


def test_invariant_model_runs_stay_transformed_copies_to_round_off(state):
    result = dynamic_equivariance(load_model(INVARIANT), state, steps=40, timestep_fs=2.0, stride=4)
    assert len(result["elements"]) == 4  # three rotations and the inversion
    assert result["reference_status"] == "completed"
    assert np.max(distances(result)) < 1e-10
    assert result["crossed"] == 0


def test_anisotropic_model_runs_drift_apart_and_grow(state):
    result = dynamic_equivariance(load_model(ANISOTROPIC), state, steps=40, timestep_fs=2.0, stride=4)
    d = distances(result)
    assert np.all(d[:, 0] == 0.0)  # same start, transformed exactly
    assert np.all(d[:, -1] > 1e-4)
    assert np.all(d[:, -1] > 10 * d[:, 2])  # it grows along the run


def test_grid_symmetrization_restores_the_dynamic_equivariance(state):
    result = dynamic_equivariance(load_model("analytic:vector1=0.05"), state, "o3:1", steps=20, timestep_fs=2.0,
                                  stride=4)
    assert np.max(distances(result)) < 1e-10


def test_the_own_chaos_floor_starts_at_the_displacement(state):
    from mdsym.workflows.dynamic_equivariance import perturbation_floor

    result = perturbation_floor(load_model(INVARIANT), state, displacement_A=1e-6, steps=20, timestep_fs=2.0,
                                stride=4)
    distance = result["elements"][0]["distance_A"]
    assert distance[0] == pytest.approx(1e-6, rel=1e-9)  # RMS of unit displacements times 1e-6 A
    assert result["crossed"] == 0 and max(distance) < 1e-3


def test_static_tests_see_equivariant_forces_as_such(state):
    exact = static_rotation_tests(load_model(INVARIANT), state, arena_axes=3, mlpeg_random=3)
    assert exact["arena"]["mean_cosine"] == pytest.approx(1.0, abs=1e-12)
    assert exact["arena"]["equivariant_ratio"] == 1.0
    assert exact["mlpeg"]["max_dF_meV_A"] < 1e-9
    broken = static_rotation_tests(load_model(ANISOTROPIC), state, arena_axes=3, mlpeg_random=3)
    assert broken["arena"]["mean_mae_eVA"] > 1e-3 and broken["arena"]["equivariant_ratio"] < 1.0
    assert broken["mlpeg"]["mean_dF_meV_A"] > 1.0


USER_MODEL = """
from ase.calculators.lj import LennardJones


class CopperLJ(LennardJones):
    def __init__(self):
        super().__init__(sigma=2.3, epsilon=0.4, rc=6.0, smooth=True)
"""


@pytest.fixture
def user_model(tmp_path):
    path = tmp_path / "my_potential.py"
    path.write_text(USER_MODEL)
    return path


def test_a_python_file_names_an_ase_calculator(user_model, cluster):
    from ase.calculators.lj import LennardJones

    from mdsym.core.errors import MdsymError
    from mdsym.core.system import System

    model = load_model(f"{user_model}:CopperLJ")
    forces = model.evaluate(System.from_atoms(cluster), np.eye(3)[None], ("energy", "forces"))["forces"][0]
    cluster.calc = LennardJones(sigma=2.3, epsilon=0.4, rc=6.0, smooth=True)
    np.testing.assert_allclose(forces, cluster.get_forces(), atol=1e-12)
    with pytest.raises(MdsymError, match="defines no 'Nope'"):
        load_model(f"{user_model}:Nope")
    with pytest.raises(MdsymError, match="name the object"):
        load_model(str(user_model))


def test_audit_fast_on_the_analytic_model_writes_every_field(tmp_path, user_model):
    out = tmp_path / "audit"
    result = subprocess.run([sys.executable, "-m", "mdsym", "audit", "analytic:vector1=0.05",
                             f"{user_model}:CopperLJ", "--structure", "cu-cluster-55", "--fast",
                             "--specs", "none,o3:1", "--out", str(out), "--no-progress"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    audit = json.loads((out / "audit.json").read_text())
    rows = audit["leaderboard"]
    user = f"{user_model}:CopperLJ"
    assert [(row["model"], row["spec"]) for row in rows] == [
        ("analytic:vector1=0.05", "none"), ("analytic:vector1=0.05", "o3:1"), (user, "none"), (user, "o3:1")]
    lj = rows[2:]
    assert max(row["A_forces_eVA"] for row in lj) < 1e-10  # an invariant potential, raw or averaged
    rows = rows[:2]
    for row in rows:
        assert set(row) == set(ROW_FIELDS)
        missing = [k for k in ROW_FIELDS if row[k] is None]
        assert not missing, missing
    raw, symmetrized = rows
    assert raw["A_forces_eVA"] > 0.01 and symmetrized["A_forces_eVA"] < 1e-10
    assert symmetrized["arena_mean_cosine"] == pytest.approx(1.0, abs=1e-12)
    assert raw["arena_mean_cosine"] < 0.99
    assert raw["evaluations_per_step"] == 1 and symmetrized["evaluations_per_step"] == 8
    assert (out / "audit.md").read_text().count("| `analytic:vector1=0.05` |") == 2
    assert check_markdown_tables(out / "audit.md") >= 1
    assert (out / "analytic_vector1_0.05" / "scorecard.png").exists()
    # the same folder with other settings is refused in one line, nothing overwritten
    again = subprocess.run([sys.executable, "-m", "mdsym", "audit", "analytic:vector1=0.05", "--fast", "--seed", "1",
                            "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "other settings" in again.stderr
    assert json.loads((out / "audit.json").read_text())["seed"] == 0
