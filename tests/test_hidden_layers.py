"""Symmetry content of every hidden layer of the shipped PET models.

The layer path (``mdsym.models.pet_layers``) must be the shipped model: same energy
and forces as the ``.pt``; its layers come in forward order; exactly invariant
layers (species embeddings) have all their content in (0, +); the linear embedding
of the pair vectors has content in (0, +) and (1, +) only, so the rotated copies
really reach the layers; and a model without reachable layers gets one line saying
why, from both commands.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.io import read
from click.testing import CliRunner

from mdsym import MdsymError, load_model
from mdsym.analysis.hidden_layers import hidden_layer_content
from mdsym.cli.main import main
from mdsym.core.rotations import rotate_vectors
from mdsym.core.system import System
from mdsym.models.pet_layers import PetLayers

from .helpers import random_o3
from .metatomic_model import export
from .test_analysis import make_run

ETHANOL = Path(__file__).resolve().parent.parent / "mdsym" / "data" / "structures" / "ethanol.xyz"

#: pet-ethanol's layers, in the order its forward pass computes them
PET_ETHANOL_LAYERS = [
    "embedding node", "embedding edge",
    "gnn0 edge geometry", "gnn0 edge tokens",
    "gnn0 attention0 node", "gnn0 attention0 edge",
    "gnn0 attention1 node", "gnn0 attention1 edge",
    "gnn0 messages", "head node", "head edge", "atomic energies", "energy",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pet():
    return load_model("pet-ethanol")


@pytest.fixture(scope="module")
def ethanol():
    return System.from_atoms(read(ETHANOL))


def fractions(layer):
    return {(b["lambda"], b["sigma"]): b["fraction"] for b in layer["B"]}


def test_layer_path_reproduces_the_shipped_energy_and_forces(ethanol):
    # in float64, where round-off cannot hide a difference in the operations
    pet = load_model("pet-ethanol")
    pet.model.to(dtype=torch.float64)
    pet.dtype = torch.float64
    rotations = random_o3(7, n=6)  # proper and improper elements
    reference = pet.evaluate(ethanol, rotations, ("energy", "forces"))
    path = PetLayers(pet.model.module, pet.name)
    rotations_t = torch.as_tensor(rotations, dtype=pet.dtype)
    positions = rotate_vectors(torch.as_tensor(ethanol.positions, dtype=pet.dtype), rotations_t)
    positions.requires_grad_(True)
    cells = rotate_vectors(torch.as_tensor(ethanol.cell, dtype=pet.dtype), rotations_t)
    edges = rotate_vectors(pet.neighbour_tensors(ethanol)["vectors"], rotations_t)
    edges.requires_grad_(True)  # as in evaluate (PET recomputes them from the positions)
    layers, energy = path.run(pet.systems(ethanol, positions, cells, edges))
    forces = -torch.autograd.grad(energy.sum(), positions)[0]

    energy = energy.detach().numpy()
    assert np.abs(energy - reference["energy"]).max() <= 1e-10 * np.abs(reference["energy"]).max()
    assert np.abs(forces.numpy() - reference["forces"]).max() <= 1e-10 * np.abs(reference["forces"]).max()
    assert list(layers) == PET_ETHANOL_LAYERS
    assert path.check_energy(pet.rotated_systems(ethanol, rotations), torch.as_tensor(energy)) <= 1e-12


@pytest.mark.parametrize("model", ["pet-ethanol", "pet-ethanol-noaug"])
def test_equivariance_layers_of_the_shipped_pet(model, tmp_path):
    heatmap = tmp_path / "layers.png"
    command = ["equivariance", "--model", model, "--structure", str(ETHANOL), "--degree", "1",
               "--layers-plot", str(heatmap), "--json"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert heatmap.stat().st_size > 0
    again = CliRunner().invoke(main, command)  # the heatmap is never overwritten
    assert again.exit_code == 2 and again.output.count("\n") == 1 and "exists" in again.output
    report = json.loads(result.output)
    layers = report["layers"]["layers"]
    assert [layer["layer"] for layer in layers] == PET_ETHANOL_LAYERS
    by_name = {layer["layer"]: layer for layer in layers}
    for layer in layers:  # Parseval: the sectors share the squared norm, never more
        total = sum(fractions(layer).values())
        assert -1e-12 <= min(fractions(layer).values()) and total <= 1 + 1e-9, layer["layer"]
    for name in ("embedding node", "embedding edge"):  # species only: exactly invariant
        assert fractions(by_name[name])[(0, 1)] == pytest.approx(1.0, abs=1e-12)
    geometry = fractions(by_name["gnn0 edge geometry"])  # linear in (r_ij, |r_ij|)
    assert geometry[(0, 1)] + geometry[(1, 1)] == pytest.approx(1.0, abs=1e-9)
    assert geometry[(1, 1)] > 0.1
    # the last layer is the model's energy: its content is the one `measure` reports
    measured = [b["fraction"] for b in report["energy"]["B"]]
    assert [b["fraction"] for b in by_name["energy"]["B"]] == pytest.approx(measured, abs=1e-9)


def test_analyze_layers_of_a_shipped_pet_run(tmp_path):
    run = make_run(tmp_path / "pet", model="pet-ethanol", structure=ETHANOL, steps=2, dt_fs=0.5)
    result = CliRunner().invoke(main, ["analyze", str(run.path), "--layers", "--degree", "1",
                                       "--no-equivariance"])
    assert result.exit_code == 0, result.output
    assert "gnn0 attention1 edge" in result.output
    analysis = run.path / "analysis"
    layers = json.loads((analysis / "analysis.json").read_text())["hidden_layers"]
    for frame in ("first", "last"):
        assert [layer["layer"] for layer in layers[frame]["layers"]] == PET_ETHANOL_LAYERS
    report = (analysis / "report.md").read_text()
    assert "| `gnn0 messages` | edge |" in report
    assert (analysis / "hidden_layers.png").stat().st_size > 0


def test_models_without_layers_say_why(tmp_path, ethanol):
    result = CliRunner().invoke(main, ["equivariance", "--model", "analytic", "--structure", str(ETHANOL),
                                       "--degree", "1", "--layers"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("layers")]
    assert lines == ["layers: not measured: model analytic has no torch submodule whose output "
                     "carries the rotated copies: no hidden layers to measure"]

    run = make_run(tmp_path / "analytic", steps=2)
    result = CliRunner().invoke(main, ["analyze", str(run.path), "--layers", "--degree", "1",
                                       "--no-equivariance"])
    assert result.exit_code == 0, result.output
    report = (run.path / "analysis" / "report.md").read_text()
    section = report.split("## Symmetry content of the hidden layers")[1].strip().splitlines()
    assert section[0].startswith("Not measured: model analytic")

    export(tmp_path / "pairs.pt")  # a metatomic model that is not a PET
    with pytest.raises(MdsymError, match="not a metatrain PET"):
        hidden_layer_content(load_model(str(tmp_path / "pairs.pt")), System.from_atoms(read(
            Path(__file__).resolve().parent.parent / "mdsym" / "data" / "structures" / "cu-cluster-55.xyz")), 1)
