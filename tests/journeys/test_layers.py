"""Journey 8: `mdsym analyze --layers` on a run of the shipped pet-ethanol reports
the symmetry content of the model's hidden layers: at least three of them, each
with content fractions over the (lambda, sigma) sectors that add up to one."""

from .checks import read_json
from .conftest import mdsym

STEPS = 10


def _is_layer(item) -> bool:
    return isinstance(item, dict) and any(k in item for k in ("layer", "name"))


def layer_lists(node) -> list:
    """Every list of layer records (dicts naming a layer) anywhere under ``node``."""
    found = []
    if isinstance(node, list):
        if node and all(_is_layer(item) for item in node):
            found.append(node)
        else:
            for item in node:
                found += layer_lists(item)
    elif isinstance(node, dict):
        for value in node.values():
            found += layer_lists(value)
    return found


def test_analyze_layers_of_pet_ethanol(tmp_path):
    mdsym("run", "--steps", STEPS, "--out", "pet", cwd=tmp_path)
    mdsym("analyze", "pet", "--layers", cwd=tmp_path)
    folder = tmp_path / "pet" / "analysis"
    report = read_json(folder / "analysis.json")
    assert "hidden_layers" in report, f"no hidden_layers in analysis.json; notes: {report.get('notes')}"
    section = report["hidden_layers"]
    assert "skipped" not in section, f"hidden layers skipped: {section['skipped']}"
    lists = layer_lists(section)
    assert lists, f"no list of layers in analysis.json's hidden_layers: {str(section)[:500]}"
    layers = max(lists, key=len)
    assert len(layers) >= 3, f"{len(layers)} hidden layers reported: {[l.get('layer', l.get('name')) for l in layers]}"
    for layer in layers:
        if "B" in layer:
            fractions = [b["fraction"] for b in layer["B"]]
            assert all(-1e-9 <= f <= 1 + 1e-9 for f in fractions), layer
            total = sum(fractions) + layer.get("residual", 0.0)
            assert abs(total - 1.0) < 1e-6, f"content of {layer.get('layer')} adds up to {total}"
    assert "layer" in (folder / "report.md").read_text().lower()
    assert [p for p in folder.glob("*.png") if "layer" in p.name], "no plot of the layers"
