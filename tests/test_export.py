"""``mdsym export``: the exported model in metatomic-ase (an engine mdsym did not write)
against mdsym's in-process ``SymmetrizedModel``, the direct forces, the corrections,
the rotated grid, the domain-decomposition claim and the refusals.

Exactness is checked with float64 models (analytic, and PET converted to float64):
the exported and the in-process averages share ``accumulate_moments`` and
``finish_moments``, and agree to 1e-12.
"""

from typing import Dict, List, Optional

import ase.build
import ase.io
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mdsym.cli.main import main
from mdsym.core.defaults import STRUCTURES
from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.models import load_model, parse_analytic
from mdsym.models.export import export_metatomic
from mdsym.serving.ase_calculator import MdsymCalculator
from mdsym.serving.export import export_metadata, export_symmetrized
from mdsym.symmetry import exported
from mdsym.symmetry.symmetrized import SymmetrizedModel

metatomic_ase = pytest.importorskip("metatomic_ase")
from metatensor.torch import Labels, TensorBlock, TensorMap  # noqa: E402
from metatomic.torch import ModelOutput  # noqa: E402
from metatomic.torch import System as MetatomicSystem  # noqa: E402

pytestmark = pytest.mark.timeout(300)

ANISOTROPIC = "analytic:bond2=0.05,vector1=0.05,vector3=0.02,vector2-=0.01"
DIRECT = "analytic:bond2=0.05,vector1=0.03,direct1=0.02,direct3=0.01"
STD_OUTPUTS = {exported.ENERGY_STD: ModelOutput(unit="eV", sample_kind="system"),
               exported.FORCES_STD: ModelOutput(unit="eV/Angstrom", sample_kind="atom")}


@pytest.fixture(scope="module")
def cluster():
    atoms = ase.io.read(STRUCTURES / "cu-cluster-55.xyz")
    atoms.rattle(0.02, seed=4)
    return atoms


@pytest.fixture(scope="module")
def crystal():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.rattle(0.08, seed=3)
    return atoms


def metatomic_results(path, atoms, outputs=None, **options):
    atoms = atoms.copy()
    atoms.calc = metatomic_ase.MetatomicCalculator(str(path), additional_outputs=outputs, **options)
    properties = ["energy", "forces"] + (["stress"] if atoms.pbc.any() else [])
    atoms.calc.calculate(atoms, properties, ["positions"])
    return atoms.calc.results, atoms.calc.additional_outputs


def in_process(model, spec, atoms, forces="auto", dtype=None):
    symmetrized = SymmetrizedModel(load_model(model, forces=forces, dtype=dtype), spec)
    properties = ("energy", "forces", "stress") if atoms.pbc.any() else ("energy", "forces")
    return symmetrized(System.from_atoms(atoms), properties)


def ase_stress(full):
    """ASE's Voigt form of a 3x3 stress: its symmetric part, as both calculators give it."""
    full = full.reshape(3, 3)
    return (0.5 * (full + full.T))[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


@pytest.mark.parametrize("spec", ["o3:1", "so3:2", "o3:3"])
def test_exported_and_in_process_averages_agree_to_1e12(tmp_path, cluster, crystal, spec):
    out = tmp_path / "sym.pt"
    export_symmetrized(ANISOTROPIC, spec, out, batch_size=5)
    for atoms in (cluster, crystal):
        results, extra = metatomic_results(out, atoms, STD_OUTPUTS)
        expected = in_process(ANISOTROPIC, spec, atoms)
        assert abs(results["energy"] - expected["energy"]) < 1e-12
        np.testing.assert_allclose(results["forces"], expected["forces"], rtol=0, atol=1e-12)
        if atoms.pbc.any():
            np.testing.assert_allclose(results["stress"], ase_stress(expected["stress"]), rtol=0,
                                       atol=1e-12)
        energy_std = extra[exported.ENERGY_STD].block().values.item()
        forces_std = extra[exported.FORCES_STD].block().values.reshape(-1, 3).numpy()
        assert energy_std > 1e-4 and abs(energy_std - expected["energy_rot_std"]) < 1e-12
        np.testing.assert_allclose(forces_std, expected["forces_rot_std"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype,tolerance", [("float64", 1e-6), ("float32", None)])
def test_shipped_pet_in_metatomic_ase_equals_mdsym_calculator(tmp_path, dtype, tolerance):
    out = tmp_path / "pet.pt"
    export_symmetrized("pet-ethanol", "o3:1", out, dtype=dtype)
    atoms = ase.io.read(STRUCTURES / "ethanol.xyz")
    atoms.rattle(0.02, seed=1)
    results, _ = metatomic_results(out, atoms)
    calculator = MdsymCalculator(load_model("pet-ethanol", dtype=dtype), symmetrize="o3:1")
    calculator.calculate(atoms.copy(), ["energy", "forces"], ["positions"])
    if tolerance is None:  # float32: the model's own round-off (float32 eps x |E|, x |F|)
        eps = float(np.finfo(np.float32).eps)
        tolerance_energy = 8 * eps * abs(calculator.results["energy"])
        tolerance = 64 * eps * np.abs(calculator.results["forces"]).max()
    else:
        tolerance_energy = tolerance
    assert abs(results["energy"] - calculator.results["energy"]) < tolerance_energy
    np.testing.assert_allclose(results["forces"], calculator.results["forces"], rtol=0, atol=tolerance)


def test_periodic_water_with_stress_in_float64(tmp_path):
    out = tmp_path / "water.pt"
    export_symmetrized("pet-water", "o3:1", out, dtype="float64", batch_size=4)
    atoms = ase.io.read(STRUCTURES / "water-16.xyz")
    results, _ = metatomic_results(out, atoms)
    expected = in_process("pet-water", "o3:1", atoms, dtype="float64")
    assert abs(results["energy"] - expected["energy"]) < 1e-6
    np.testing.assert_allclose(results["forces"], expected["forces"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(results["stress"], ase_stress(expected["stress"]), rtol=0, atol=1e-8)


def test_direct_forces_of_a_metatomic_model_are_averaged_as_vectors(tmp_path, cluster):
    raw = tmp_path / "direct-raw.pt"
    export_metatomic(parse_analytic(DIRECT), raw, atomic_types=[29], name="direct pairs")
    out = tmp_path / "direct-sym.pt"
    export_symmetrized(str(raw), "o3:2", out)
    outputs = {**STD_OUTPUTS, exported.DIRECT_STD: ModelOutput(unit="eV/Angstrom", sample_kind="atom")}
    results, extra = metatomic_results(out, cluster, outputs, non_conservative="forces")
    expected = in_process(DIRECT, "o3:2", cluster, forces="direct")
    conservative = in_process(DIRECT, "o3:2", cluster, forces="conservative")
    np.testing.assert_allclose(results["forces"], expected["forces"], rtol=0, atol=1e-12)
    assert abs(results["energy"] - expected["energy"]) < 1e-12
    std = extra[exported.DIRECT_STD].block().values.reshape(-1, 3).numpy()
    np.testing.assert_allclose(std, expected["forces_rot_std"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(extra[exported.FORCES_STD].block().values.reshape(-1, 3).numpy(),
                               conservative["forces_rot_std"], rtol=0, atol=1e-12)
    # conservative loading: forces are the autograd of the averaged energy
    results, _ = metatomic_results(out, cluster)
    np.testing.assert_allclose(results["forces"], conservative["forces"], rtol=0, atol=1e-12)


def test_corrections_raw_and_direct(tmp_path, crystal, cluster):
    out = tmp_path / "raw-correction.pt"
    export_symmetrized(ANISOTROPIC, "o3:2", out, correction="raw")
    results, _ = metatomic_results(out, crystal)
    symmetrized = in_process(ANISOTROPIC, "o3:2", crystal)
    raw = in_process(ANISOTROPIC, "none", crystal)
    assert abs(results["energy"] - (symmetrized["energy"] - raw["energy"])) < 1e-12
    np.testing.assert_allclose(results["forces"], symmetrized["forces"] - raw["forces"], atol=1e-12)
    np.testing.assert_allclose(results["stress"], ase_stress(symmetrized["stress"] - raw["stress"]),
                               atol=1e-12)

    out = tmp_path / "direct-correction.pt"
    export_symmetrized(DIRECT, "o3:1", out, correction="direct")
    results, _ = metatomic_results(out, cluster, non_conservative="forces")
    conservative = in_process(DIRECT, "o3:1", cluster, forces="conservative")
    direct = in_process(DIRECT, "none", cluster, forces="direct")
    # metatomic-ase removes the net force of non-conservative forces (the raw direct
    # forces of this model have one)
    correction = conservative["forces"] - direct["forces"]
    np.testing.assert_allclose(results["forces"], correction - correction.mean(axis=0), atol=1e-12)
    assert abs(results["energy"] - (conservative["energy"] - direct["energy"])) < 1e-12
    with pytest.raises(MdsymError, match="no non_conservative_force"):
        export_symmetrized(ANISOTROPIC, "o3:1", tmp_path / "x.pt", correction="direct")


def test_rotated_grid_draws_a_fresh_exact_rotation_per_call_from_seed_and_counter(tmp_path, cluster):
    # a model of degree <= 1: the turned o3:1 grid is still exact, so every call gives
    # the group average (that o3:3 gives too)
    low = "analytic:bond2=0.0,vector1=0.05"
    export_symmetrized(low, "o3:1:rotated", tmp_path / "low.pt", seed=3)
    exact = in_process(low, "o3:3", cluster)
    calculator = metatomic_ase.MetatomicCalculator(str(tmp_path / "low.pt"))
    for _ in range(2):
        assert abs(calculator.get_potential_energy(cluster.copy()) - exact["energy"]) < 1e-11
        calculator.reset()
    # above the degree: a different average each call, the same stream after reloading
    export_symmetrized(ANISOTROPIC, "o3:1:rotated", tmp_path / "high.pt", seed=3)

    def energies():
        calculator = metatomic_ase.MetatomicCalculator(str(tmp_path / "high.pt"))
        found = []
        for _ in range(3):
            found.append(calculator.get_potential_energy(cluster.copy()))
            calculator.reset()
        return found

    first = energies()
    assert len(set(first)) == 3 and energies() == first
    # the module's rotations: orthogonal, proper, Haar (mean of R ~ 0 over 2000 draws)
    draws = torch.stack([exported.haar_rotation(3, n, False, torch.device("cpu")) for n in range(2000)])
    eye = torch.eye(3, dtype=torch.float64).expand(2000, 3, 3)
    assert torch.allclose(draws @ draws.transpose(1, 2), eye, atol=1e-14)
    assert torch.allclose(torch.linalg.det(draws), torch.ones(2000, dtype=torch.float64))
    assert draws.mean(dim=0).abs().max() < 0.06  # 3 sigma of sqrt(1/3 / 2000) = 0.039


def test_random_export_is_one_rotation_per_call_with_both_parities(tmp_path, cluster):
    export_symmetrized(ANISOTROPIC, "random", tmp_path / "random.pt", seed=1)
    calculator = metatomic_ase.MetatomicCalculator(str(tmp_path / "random.pt"))
    values = []
    for _ in range(4):
        values.append(calculator.get_potential_energy(cluster.copy()))
        calculator.reset()
    assert len(set(values)) == 4
    signs = {bool(torch.linalg.det(exported.haar_rotation(1, n, True, torch.device("cpu"))) > 0)
             for n in range(20)}
    assert signs == {True, False}


def test_periodic_energy_through_the_engine_list_is_a_supercell_over_eight(tmp_path, crystal):
    """What a domain-decomposed engine relies on: the rotated copies keep the engine's
    pairs and cell shifts, so the energy of the cell through its periodic list equals
    the 2x2x2 supercell's (other images, other shifts) over 8."""
    out = tmp_path / "sym.pt"
    export_symmetrized(ANISOTROPIC, "o3:2", out)
    cell, _ = metatomic_results(out, crystal)
    supercell, _ = metatomic_results(out, crystal * (2, 2, 2))
    assert abs(cell["energy"] - supercell["energy"] / 8) < 1e-10
    np.testing.assert_allclose(np.tile(cell["forces"], (8, 1)), supercell["forces"], atol=1e-10)
    np.testing.assert_allclose(cell["stress"], supercell["stress"], atol=1e-12)


def test_metadata_is_written_and_shown_by_equivariance(tmp_path):
    out = tmp_path / "sym.pt"
    export_symmetrized(ANISOTROPIC, "o3:2:rotated", out, seed=7, batch_size=3)
    made = export_metadata(out)
    assert made["spec"] == "o3:2:rotated" and made["seed"] == "7" and made["grid-size"] == "24"
    assert made["grid"] == "group-T" and made["batch-size"] == "3" and made["version"]
    result = CliRunner().invoke(main, ["equivariance", "--model", str(out), "--structure",
                                       "cu-cluster-55", "--degree", "1"])
    assert result.exit_code == 0, result.output
    assert "exported by mdsym" in result.output and "o3:2:rotated on group-T (24 rotations), seed 7" \
        in result.output


def test_bad_inputs_are_one_line_exit_2_and_overwrite_nothing(tmp_path):
    runner = CliRunner()
    existing = tmp_path / "existing.pt"
    existing.write_bytes(b"keep me")
    float64 = tmp_path / "float64.pt"
    export_metatomic(parse_analytic("analytic"), float64, atomic_types=[29])
    python_file = tmp_path / "calc.py"
    python_file.write_text("from ase.calculators.emt import EMT\ncalc = EMT()\n")
    cases = [
        (["analytic", "--symmetrize", "o3:auto"], "o3:auto"),
        (["analytic", "--symmetrize", "mts:4+o3:2"], "--correction raw"),
        (["analytic", "--symmetrize", "o3:2+nettorque"], "fix momentum"),
        (["analytic", "--symmetrize", "o3:2+netforce"], "<fixcom>"),
        (["analytic", "--symmetrize", "none"], "nothing to average"),
        ([f"{python_file}:calc", "--symmetrize", "o3:1"], "mdsym serve"),
        ([str(float64), "--symmetrize", "o3:1", "--dtype", "float32"], "cannot be exported in float32"),
        ([str(tmp_path / "missing.pt"), "--symmetrize", "o3:1"], "not found"),
        (["analytic", "--symmetrize", "o3:1", "--correction", "direct"], "no non_conservative_force"),
    ]
    for arguments, message in cases:
        result = runner.invoke(main, ["export", *arguments, "-o", str(existing), "--force"])
        assert result.exit_code == 2 and message in result.output, (arguments, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert existing.read_bytes() == b"keep me"
    result = runner.invoke(main, ["export", "analytic", "--symmetrize", "o3:1", "-o", str(existing)])
    assert result.exit_code == 2 and "--force" in result.output
    assert existing.read_bytes() == b"keep me"
    # a model without an energy output
    no_energy = tmp_path / "features.pt"
    features_only_model(no_energy)
    result = runner.invoke(main, ["export", str(no_energy), "--symmetrize", "o3:1", "-o",
                                  str(tmp_path / "new.pt")])
    assert result.exit_code == 2 and "no 'energy' output" in result.output, result.output
    assert not (tmp_path / "new.pt").exists()


class Features(torch.nn.Module):
    """A metatomic module whose one output is not an energy."""

    def forward(self, systems: List[MetatomicSystem], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels] = None) -> Dict[str, TensorMap]:
        values = torch.stack([s.positions.sum() for s in systems]).reshape(-1, 1)
        block = TensorBlock(values, Labels("system", torch.arange(len(systems)).reshape(-1, 1)),
                            [], Labels("f", torch.tensor([[0]])))
        return {"feature": TensorMap(Labels("_", torch.tensor([[0]])), [block])}


def features_only_model(path):
    from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata

    capabilities = ModelCapabilities(outputs={"feature": ModelOutput(sample_kind="system")},
                                     atomic_types=[29], interaction_range=0.0, length_unit="angstrom",
                                     supported_devices=["cpu"], dtype="float64")
    AtomisticModel(Features().eval(), ModelMetadata(), capabilities).save(str(path))


def test_torchsim_runs_the_exported_model_when_it_imports(tmp_path, crystal):
    torchsim = pytest.importorskip("metatomic_torchsim", reason="metatomic-torchsim needs "
                                   "Python >= 3.12 (not installable on this machine's 3.11)")
    out = tmp_path / "sym.pt"
    export_symmetrized(ANISOTROPIC, "o3:1", out)
    import torch_sim  # the TorchSim engine itself, installed with metatomic-torchsim

    model = torchsim.MetatomicModel(str(out))
    state = torch_sim.io.atoms_to_state([crystal], device=torch.device("cpu"), dtype=torch.float64)
    results = model(state)
    expected = in_process(ANISOTROPIC, "o3:1", crystal)
    assert abs(float(results["energy"].sum()) - expected["energy"]) < 1e-10
    np.testing.assert_allclose(results["forces"].detach().numpy(), expected["forces"], atol=1e-10)
