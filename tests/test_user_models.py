"""A user's own model, in process: a metatomic file with energy variants, uncertainty and
direct forces in float32 and float64 (built here: ``tests/user_models.py``), an ASE
calculator in a Python file, and the memory check that refuses a size that does not fit."""

import json

import numpy as np
import pytest

from mdsym import MdsymError, load_model
from mdsym.core.system import System, read_structure
from mdsym.models import memory

from .user_models import export_foundation_like, water_box, write_ase_calculator_file

IDENTITY = np.eye(3)[None]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user-models")
    export_foundation_like(folder / "f32.pt")
    export_foundation_like(folder / "f64.pt", dtype="float64")
    export_foundation_like(folder / "variants-only.pt", plain=False)
    export_foundation_like(folder / "conservative.pt", variants=(), uncertainty=False, direct=False)
    write_ase_calculator_file(folder / "calc.py")
    water_box().write(folder / "water.xyz")
    return folder


@pytest.fixture(scope="module")
def water(files):
    return System.from_atoms(read_structure(files / "water.xyz"))


def evaluate(model, system, properties=("energy", "forces")):
    return model.evaluate(system, IDENTITY, properties)


def test_variants_pick_their_energy_uncertainty_and_direct_forces(files, water, one_torch_thread):
    plain = evaluate(load_model(str(files / "f32.pt"), forces="conservative"), water)
    pbe = evaluate(load_model(str(files / "f32.pt"), forces="conservative", variant="pbe"), water)
    r2scan = load_model(str(files / "f32.pt"), forces="conservative", variant="energy/r2scan")
    assert r2scan.variant == "r2scan" and r2scan.extra_outputs == ("energy_uncertainty",)
    scan = evaluate(r2scan, water)
    assert pbe["energy"] == pytest.approx(plain["energy"], rel=1e-6)
    assert scan["energy"] == pytest.approx(1.1 * plain["energy"], rel=1e-5)
    np.testing.assert_allclose(scan["forces"], 1.1 * plain["forces"], rtol=1e-4, atol=1e-6)
    # the uncertainty of the variant, per structure (the stand-in: 0.01 x scale x sqrt(N))
    assert scan["energy_uncertainty"][0] == pytest.approx(0.011 * np.sqrt(48), rel=1e-5)
    direct = load_model(str(files / "f32.pt"), variant="r2scan")  # auto: its direct forces
    assert direct.forces_kind == "direct" and direct.direct_key == "non_conservative_force/r2scan"
    pushed = evaluate(direct, water)["forces"]
    assert np.abs(pushed - scan["forces"]).max() > 1e-3  # direct forces are another output


@pytest.mark.parametrize("file, options, words", [
    ("f32.pt", {"variant": "hf"}, ("'hf'", "pbe, r2scan")),
    ("variants-only.pt", {}, ("--variant", "pbe, r2scan", "no plain energy")),
    ("conservative.pt", {"forces": "direct"}, ("non_conservative_force",)),
    ("f64.pt", {"dtype": "float32"}, ("float64", "float32")),
    ("f32.pt", {"device": "cuda"}, ("cuda",)),
])
def test_what_a_model_cannot_do_is_one_line(files, file, options, words):
    if options.get("device") == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    with pytest.raises(MdsymError) as error:
        load_model(str(files / file), **options)
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_only_metatomic_models_take_a_variant(files):
    for spec in ("analytic", f"{files / 'calc.py'}:Calculator"):
        with pytest.raises(MdsymError, match="declares no energy variants"):
            load_model(spec, variant="pbe")


def test_float64_model_runs_in_float64(files, water, one_torch_thread):
    model = load_model(str(files / "f64.pt"), forces="conservative")
    assert str(model.dtype) == "torch.float64"
    f64 = evaluate(model, water)
    f32 = evaluate(load_model(str(files / "f32.pt"), forces="conservative"), water)
    assert 0 < np.abs(f64["forces"] - f32["forces"]).max() < 1e-4  # float32 round-off apart


def test_serving_carries_the_variant_and_the_uncertainty(files, one_torch_thread):
    from mdsym.serving.serve import describe, serving_potential

    structure = str(files / "water.xyz")
    potential = serving_potential(str(files / "f32.pt"), structure, "o3:1", variant="r2scan",
                                  forces="conservative")
    assert "energy/r2scan" in describe(potential, structure)
    atoms = read_structure(structure)
    from mdsym.serving import ipi_protocol as p

    energy, forces, virial, extras = potential.evaluate(atoms.cell.array.T / p.BOHR,
                                                        atoms.positions / p.BOHR)
    extras = json.loads(extras)
    assert extras["energy_uncertainty"] == pytest.approx(0.011 * np.sqrt(48), rel=1e-4)
    assert {"energy_rot_std", "forces_rot_std"} <= set(extras)


def test_pes_plugin_takes_variant_device_dtype(files, one_torch_thread):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drivers"))
    from mdsym_pes import MdsymDriver

    driver = MdsymDriver(template=str(files / "water.xyz"), model=str(files / "f32.pt"), variant="pbe",
                         dtype="float64", device="cpu", forces="conservative")
    driver.check_parameters()
    assert driver.potential.model.variant == "pbe" and str(driver.potential.model.dtype) == "torch.float64"
    with pytest.raises(MdsymError, match="'hf'"):
        MdsymDriver(template=str(files / "water.xyz"), model=str(files / "f32.pt"),
                    variant="hf").check_parameters()


def test_a_size_that_does_not_fit_is_refused_with_the_batch_that_fits(files, monkeypatch,
                                                                      one_torch_thread):
    big = System.from_atoms(water_box().repeat((4, 4, 4)))  # 3072 atoms
    fresh = load_model(str(files / "f32.pt"), forces="conservative")
    found = memory.estimate(fresh, big)  # measured once, kept for this model and size
    if found is None:
        pytest.skip("no /proc memory accounting here")
    pairs = len(big.neighbours(fresh.cutoff, fresh.full_neighbour_list).first)
    per_copy = found.bytes_for(len(big), pairs)
    assert per_copy > 1e6
    monkeypatch.setenv("MDSYM_MEMORY", str(int(3.5 * per_copy / memory.USABLE_FRACTION)))
    with pytest.raises(MdsymError, match=r"--batch-size 3 \(fits\)"):
        memory.check_fits(fresh, big, batch_size=8, evaluations=48)
    assert fresh.batch_size_for(big) <= 3  # the automatic batch is sized to fit
    monkeypatch.setenv("MDSYM_MEMORY", "4MB")
    with pytest.raises(MdsymError, match="3072 atoms do not fit in memory"):
        memory.check_fits(load_model(str(files / "f32.pt")), big)


def test_small_work_is_not_measured(files, water, monkeypatch):
    model = load_model(str(files / "f32.pt"))
    monkeypatch.setattr(memory, "measure", lambda *a: pytest.fail("measured small work"))
    assert memory.fitting_batch(model, water, 48) is None


def test_probe_keeps_the_density():
    big = System.from_atoms(water_box().repeat((3, 3, 3)))
    half, ball, boxed = memory.probe_of(big)
    assert len(ball) == len(boxed) == memory.PROBE_ATOMS == 2 * len(half)
    assert not half.periodic and not ball.periodic and boxed.periodic
    density = len(big) / abs(np.linalg.det(big.cell))
    assert len(boxed) / abs(np.linalg.det(boxed.cell)) == pytest.approx(density, rel=0.25)
    assert memory.probe_of(System.from_atoms(water_box()))[0].periodic


def test_byte_sizes_parse():
    assert memory.parse_bytes("16 GiB") == 16 * 2**30 and memory.parse_bytes("500MB") == 5e8
    with pytest.raises(MdsymError, match="MDSYM_MEMORY"):
        memory.parse_bytes("lots")
