"""Symmetry content B of the internal features of a model, layer by layer.

The rotated copies ``g x`` of one structure (a quadrature of O(3) exact to
``2 L + 1``) go through the model; each layer's output ``f_layer(g x)``, flattened
per copy, is a function on O(3) whose squared norm splits over the irreducible
sectors ``(lambda, sigma)`` exactly as the model's outputs do
(``mdsym.symmetry.metrics.symmetry_content``). Following Domina et al. (2026), this shows
where across the layers the model gains or loses symmetry: invariant features have
all their content in ``(0, +)``, raw Cartesian inputs in ``(1, +)``, and a layer
that mixes components non-linearly spreads it to higher lambda. Per-atom (node)
features are compared atom by atom, per-pair (edge) features pair by pair: every
copy shares one neighbour list, so pair ``p`` is the same pair in every copy.

Where the layers come from:

- metatomic models exported by metatrain's PET (the shipped ``pet-*`` models):
  ``mdsym.models.pet_layers`` runs the exported model's own compiled submodules in
  forward order and checks that the path reproduces the model's energy (why that
  route, and not metatrain at run time: see that module's docstring);
- native torch modules (``mdsym.models.native``, not TorchScript): forward hooks on
  every submodule record each output whose leading dimension is the batch of copies;
- anything else (the analytic model, ASE calculators, other metatomic models,
  TorchScript native models) has no reachable layers: ``layers_or_reason`` gives the
  one line that says why.

The fractions are exact for content up to degree ``2 L + 1 - lambda``; what lies
above ``L`` shows as ``residual`` (column "above").
"""

import numpy as np
import torch

from mdsym.core.errors import MdsymError
from mdsym.models.metatomic import MetatomicModel
from mdsym.models.native import NativeModel
from mdsym.models.pet_layers import PetLayers
from mdsym.symmetry.metrics import metrics_quadrature, symmetry_content
from mdsym.symmetry.wigner import wigner_d


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _record_native(model, system, rotations, batch_size) -> dict:
    module = model.module
    if isinstance(module, torch.jit.ScriptModule):
        raise MdsymError(
            f"model {model.name} is TorchScript: forward hooks cannot see its layers; "
            "load the Python module instead"
        )
    captured, handles = {}, []

    def hook_for(name):
        def hook(_module, _inputs, output):
            tensor = _first_tensor(output)
            if tensor is not None and tensor.dim() >= 1 and tensor.shape[0] == len(rotations):
                values = tensor.detach().to(torch.float64).reshape(len(rotations), -1).cpu().numpy()
                captured[name] = ("output", values)
        return hook

    for name, sub in module.named_modules():
        if name:  # the root's output is the model's output, not a hidden layer
            handles.append(sub.register_forward_hook(hook_for(name)))
    try:
        # one call with every copy: a hooked output is recognised by its batch dimension
        model.evaluate(system, rotations, ("energy",))
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _record_pet(model, system, rotations, batch_size) -> dict:
    """Every layer of a metatrain PET, batch by batch, checked against its energy."""
    path = PetLayers(model.model.module, model.name)
    chunks = {}
    # unoptimized TorchScript execution: the profiling executor would spend its first
    # calls (seconds) specialising graphs that a measurement runs a few times only;
    # the path and its check run the same operations either way
    with torch.no_grad(), torch.jit.optimized_execution(False):
        for start in range(0, len(rotations), batch_size):
            systems = model.rotated_systems(system, rotations[start:start + batch_size])
            layers, energy = path.run(systems)
            path.check_energy(systems, energy)
            for name, (kind, values) in layers.items():
                chunks.setdefault(name, (kind, []))[1].append(values.cpu().numpy())
    return {name: (kind, np.concatenate(parts)) for name, (kind, parts) in chunks.items()}


def hidden_layer_content(model, system, max_degree: int = 3, inversion: bool = True,
                         batch_size=None) -> list:
    """B per sector for every layer, in forward order:
    ``[{"layer", "kind", "size", "B": [...], "residual"}]``; raises MdsymError
    (one line) when the model's layers cannot be reached."""
    model.check_system(system)
    quadrature = metrics_quadrature(max_degree, inversion)
    rotations = quadrature.rotations
    batch_size = batch_size or model.batch_size_for(system)
    if isinstance(model, NativeModel):
        captured = _record_native(model, system, rotations, batch_size)
    elif isinstance(model, MetatomicModel):
        captured = _record_pet(model, system, rotations, batch_size)
    else:
        raise MdsymError(f"model {model.name} is not a torch model: it has no hidden layers to measure")
    if not captured:
        raise MdsymError(f"model {model.name} has no torch submodule whose output carries the "
                         "rotated copies: no hidden layers to measure")
    d_matrices = wigner_d(rotations, max_degree)
    layers = []
    for name, (kind, values) in captured.items():
        B = symmetry_content(values.astype(np.float64), quadrature, max_degree, d_matrices)
        layers.append({
            "layer": name, "kind": kind, "size": int(values.shape[1]), "B": B,
            "residual": max(0.0, 1.0 - sum(item["fraction"] for item in B)),
        })
    return layers


def layers_or_reason(model, system, max_degree: int = 3, inversion: bool = True,
                     batch_size=None) -> dict:
    """``{"layers": [...], "quadrature": {...}}``, or ``{"skipped": reason}`` with the
    one line that says why this model's layers cannot be measured."""
    try:
        layers = hidden_layer_content(model, system, max_degree, inversion, batch_size)
    except MdsymError as error:
        return {"skipped": str(error)}
    return {"model": model.name, "max_degree": max_degree,
            "quadrature": metrics_quadrature(max_degree, inversion).describe(), "layers": layers}


def content_matrix(layers: list) -> tuple:
    """(layer names, sector labels, fractions array ``(layers, sectors + 1)``), the last
    column being the residual above the largest lambda."""
    if not layers:
        return [], [], np.zeros((0, 0))
    sectors = [f"({b['lambda']},{'+' if b['sigma'] > 0 else '-'})" for b in layers[0]["B"]]
    matrix = np.array([[b["fraction"] for b in layer["B"]] + [layer["residual"]] for layer in layers])
    return [layer["layer"] for layer in layers], sectors + ["above"], matrix


def table_lines(layers: list, markdown: bool = False) -> list:
    """The layers as a table, one row per layer in forward order (markdown or text)."""
    names, sectors, matrix = content_matrix(layers)
    kinds = [layer["kind"] for layer in layers]
    if markdown:
        lines = ["| layer | kind | " + " | ".join(sectors) + " |", "|---" * (len(sectors) + 2) + "|"]
        for name, kind, row in zip(names, kinds, matrix):
            lines.append(f"| `{name}` | {kind} | " + " | ".join(f"{x:.4g}" for x in row) + " |")
        return lines
    width = max(len(name) for name in names)
    lines = [f"{'layer':{width}s}  {'kind':6s} " + " ".join(f"{s:>9s}" for s in sectors)]
    for name, kind, row in zip(names, kinds, matrix):
        lines.append(f"{name:{width}s}  {kind:6s} " + " ".join(f"{x:9.4g}" for x in row))
    return lines


def summary_lines(result: dict) -> list:
    """What a terminal shows of ``layers_or_reason``: the table, or the one line why not."""
    if "skipped" in result:
        return [f"layers: not measured: {result['skipped']}"]
    quadrature = result["quadrature"]
    return [f"layers of {result['model']}, forward order, B per sector (quadrature "
            f"{quadrature['name']}, {quadrature['size']} elements):"] + [
        "  " + line for line in table_lines(result["layers"])]
