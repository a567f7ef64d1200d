"""The learned models shipped inside mdsym (mdsym/models/data/<name>.pt).

Every shipped model loads offline from its short name, gives finite energies and
forces, and agrees with metatomic-ase's own calculator. The figures on its card are
recomputed here from the model and the data, not read back: the held-out errors
and the spread of the reference forces (to 0.1%), and, for the molecular models,
A and B at the card's quadrature (pet-water's take a minute on two cores: not
recomputed here). Physical bars: forces far better than their spread, the
augmented model's forces almost all in the vector sector. A wrong name is one line
listing the shipped ones.
"""

import functools
import json
import subprocess
import sys

import numpy as np
import pytest
from ase.io import read

from mdsym import MdsymCalculator, MdsymError, System, load_model
from mdsym.models import shipped
from mdsym.symmetry.metrics import measure

NAMES = shipped.names()
LEARNED = [name for name in NAMES if shipped.DATA.joinpath(f"{name}.json").exists()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model_card(name):
    return json.loads(shipped.DATA.joinpath(f"{name}.json").read_text())


def structure(name):
    from pathlib import Path

    import mdsym

    root = Path(mdsym.__file__).parent.parent
    return read(root / model_card(name)["structure"])


def test_the_learned_models_are_shipped():
    assert {"pet-ethanol", "pet-water", "pet-ethanol-noaug"} <= set(LEARNED)
    for name in LEARNED:
        assert shipped.path(name).stat().st_size <= 5 * 1024 * 1024
        assert shipped.DATA.joinpath(f"{name}.test.xyz").exists()


@pytest.mark.parametrize("name", LEARNED)
def test_loads_by_short_name_and_gives_finite_results(name):
    atoms = structure(name)
    atoms.calc = MdsymCalculator(load_model(name))
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    assert np.isfinite(energy)
    assert forces.shape == (len(atoms), 3) and np.isfinite(forces).all()
    if atoms.pbc.all():
        assert np.isfinite(atoms.get_stress()).all()


# the card was written by the same computation (inputs/training/evaluate.py); float32
# round-off and thread counts move the figures by about 1e-6 of their value
CARD_RTOL = 1e-3


@functools.lru_cache(maxsize=None)
def held_out_errors(name):
    """RMSE of the shipped model against GFN2-xTB on its held-out set, recomputed here
    with the model, and the spread of the reference forces (and Voigt stress)."""
    from mdsym.serving.held_out import held_out_errors as errors_of

    return errors_of(load_model(name), shipped.DATA / f"{name}.test.xyz")


@pytest.mark.parametrize("name", LEARNED)
def test_held_out_errors_agree_with_the_model_card(name):
    card = model_card(name)["held_out"]
    measured = dict(held_out_errors(name))
    assert measured.pop("n_frames") == card["n_frames"]
    assert set(measured) == set(card) - {"n_frames"}
    for key, value in measured.items():
        assert value == pytest.approx(card[key], rel=CARD_RTOL), key


@pytest.mark.parametrize("name", LEARNED)
def test_force_errors_are_small_next_to_the_forces(name):
    """Held-out force RMSE below 0.3 of the reference forces' spread: the model
    explains more than 90% of their variance (pet-water, the weakest, 0.25)."""
    measured = held_out_errors(name)
    assert measured["forces_rmse_meV_per_A"] < 0.3 * measured["forces_reference_std_meV_per_A"]


def test_molecular_model_meets_the_force_quality_bar():
    """The issue's bar: held-out force RMSE against GFN2-xTB <= 100 meV/A."""
    assert held_out_errors("pet-ethanol")["forces_rmse_meV_per_A"] <= 100.0


# A and B recomputed for the molecular models; pet-water's 416 evaluations of 48
# atoms take about a minute on two cores, beyond this file's budget
EQUIVARIANCE_RECOMPUTED = ["pet-ethanol", "pet-ethanol-noaug"]
UNITS = {"energy": "eV", "forces": "eV_per_A", "stress": "eV_per_A3"}


def sector_name(item):
    return f"{item['lambda']},{'+' if item['sigma'] > 0 else '-'}"


@functools.lru_cache(maxsize=None)
def equivariance_report(name):
    """``mdsym equivariance`` of the card, recomputed: same structure, same degree."""
    card = model_card(name)["equivariance"]
    degree = max(int(sector.split(",")[0]) for sector in card["B_energy"])
    return measure(load_model(name), System.from_atoms(structure(name)), max_degree=degree)


@pytest.mark.parametrize("name", EQUIVARIANCE_RECOMPUTED)
def test_equivariance_figures_agree_with_the_model_card(name):
    card = model_card(name)["equivariance"]
    report = equivariance_report(name)
    assert report["quadrature"]["name"] == card["quadrature"]
    for key, unit in UNITS.items():
        if f"A_{key}_{unit}" not in card:
            continue
        assert report[key]["A"] == pytest.approx(card[f"A_{key}_{unit}"], rel=CARD_RTOL), key
        fractions = {sector_name(item): item["fraction"] for item in report[key]["B"]}
        assert set(fractions) == set(card[f"B_{key}"])
        for sector, fraction in fractions.items():
            # fractions below 1e-6 are float32 noise of the model
            assert fraction == pytest.approx(card[f"B_{key}"][sector], rel=CARD_RTOL, abs=1e-6), (key, sector)


def test_augmented_model_is_nearly_symmetric_and_the_weak_variant_is_not():
    """Recomputed: pet-ethanol's energy is invariant to 1e-6 of its norm and its
    forces more than 99% vector (1, +); the variant trained without augmentation has
    more than 3x its equivariance error in the forces."""
    strong = equivariance_report("pet-ethanol")
    weak = equivariance_report("pet-ethanol-noaug")

    def fraction(report, key, sector):
        return next(item["fraction"] for item in report[key]["B"] if sector_name(item) == sector)

    assert fraction(strong, "energy", "0,+") > 1 - 1e-6
    assert fraction(strong, "forces", "1,+") > 0.99
    assert fraction(weak, "forces", "1,+") < fraction(strong, "forces", "1,+")
    assert weak["forces"]["A"] > 3 * strong["forces"]["A"]


def force_kinds(name):
    """The force fields of a shipped model: conservative, and direct for a model with a
    direct force head (pet-ethanol-direct, whose default, forces="auto", is direct)."""
    return sorted({"conservative", load_model(name).forces_kind})


@pytest.mark.parametrize("name,forces", [(name, kind) for name in LEARNED
                                         for kind in force_kinds(name)])
def test_adapter_matches_metatomic_calculator(name, forces):
    from metatomic_ase import MetatomicCalculator

    atoms = structure(name)
    atoms.rattle(0.02, seed=1)
    reference = atoms.copy()
    reference.calc = MetatomicCalculator(
        str(shipped.path(name)), non_conservative="forces" if forces == "direct" else False)
    atoms.calc = MdsymCalculator(load_model(name, forces=forces))
    # float32 models: agreement to float32 round-off of a sum over atoms
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(),
                                                         abs=1e-4 * len(atoms))
    mine = atoms.get_forces()
    if forces == "direct":
        # metatomic's ASE calculator removes the net force of direct forces; mdsym gives
        # the model's raw output
        mine = mine - mine.mean(axis=0)
    assert np.abs(mine - reference.get_forces()).max() < 1e-3
    if atoms.pbc.all():
        assert np.abs(atoms.get_stress() - reference.get_stress()).max() < 1e-4


def test_unknown_name_lists_the_shipped_models():
    with pytest.raises(MdsymError) as error:
        load_model("pet-nope")
    message = str(error.value)
    assert "pet-nope" in message and len(message.splitlines()) == 1
    for name in NAMES:
        assert name in message


def test_unknown_name_on_the_command_line_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "mdsym", "equivariance", "--model", "pet-nope"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pet-nope" in lines[0] and "pet-ethanol" in lines[0]
