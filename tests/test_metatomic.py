"""The metatomic adapter against metatomic-ase's own calculators."""

import numpy as np
import pytest
from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

from mdsym import MdsymCalculator, MdsymError, load_model

from .metatomic_model import export


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "pairs.pt"
    export(path)
    return path


@pytest.mark.parametrize("fixture", ["cluster", "small_crystal"])
def test_raw_adapter_matches_metatomic_calculator(model_file, fixture, request):
    atoms = request.getfixturevalue(fixture)
    reference = atoms.copy()
    reference.calc = MetatomicCalculator(str(model_file))
    atoms.calc = MdsymCalculator(load_model(str(model_file)))
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-10)
    assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-10
    if atoms.pbc.all():
        assert np.abs(atoms.get_stress() - reference.get_stress()).max() < 1e-10


@pytest.mark.parametrize("l_max", [2, 3])
@pytest.mark.parametrize("fixture", ["cluster", "small_crystal"])
def test_symmetrized_adapter_matches_symmetrized_calculator(model_file, fixture, l_max, request):
    atoms = request.getfixturevalue(fixture)
    reference = atoms.copy()
    reference.calc = SymmetrizedCalculator(MetatomicCalculator(str(model_file)), l_max=l_max)
    atoms.calc = MdsymCalculator(load_model(str(model_file)), symmetrize=f"o3:{l_max}")
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-8)
    assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-8
    if atoms.pbc.all():
        assert np.abs(atoms.get_stress() - reference.get_stress()).max() < 1e-8
    # and the spurious P_2 term is really gone: the raw model differs
    raw = MdsymCalculator(load_model(str(model_file))).get_forces(atoms)
    assert np.abs(raw - atoms.get_forces()).max() > 1e-3


def test_unknown_species_is_one_clear_error(model_file, cluster):
    cluster.numbers[0] = 8
    cluster.calc = MdsymCalculator(load_model(str(model_file)))
    with pytest.raises(MdsymError, match="does not know species O"):
        cluster.get_forces()


def test_corrupt_and_missing_files_are_one_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a model")
    with pytest.raises(MdsymError, match="cannot load"):
        load_model(str(corrupt))
    with pytest.raises(MdsymError, match="not found"):
        load_model(str(tmp_path / "missing.pt"))
