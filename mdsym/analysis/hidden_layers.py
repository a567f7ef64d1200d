"""Symmetry content B of the internal features of a torch model, layer by layer.

The rotated copies ``g x`` of one structure (a quadrature of O(3) exact to
``2 L + 1``) go through the model in one batch; forward hooks on every submodule
of a native torch model (``mdsym.models.native``) record each layer's output
``f_layer(g x)``, whose leading dimension is the batch of copies. Each output,
flattened per copy, is a function on O(3); its squared norm splits over the
irreducible sectors ``(lambda, sigma)`` exactly as the model's outputs do
(``mdsym.metrics.symmetry_content``). Following the paper, this shows where
across the layers the model gains or loses symmetry: invariant features have all
their content in ``(0, +)``, raw Cartesian inputs in ``(1, +)``, and a layer that
mixes components non-linearly spreads it to higher lambda.

metatomic models: when the model exposes a ``features`` output (metatomic's
standard name for last-layer features), that output is measured as one layer.
TorchScript modules do not take forward hooks; their layers cannot be measured.
"""

import numpy as np
import torch

from ..errors import MdsymError
from ..metrics import metrics_quadrature, symmetry_content
from ..wigner import wigner_d


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


def _record_native(model, system, rotations) -> dict:
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
                captured[name] = tensor.detach().to(torch.float64).reshape(len(rotations), -1).cpu().numpy()
        return hook

    for name, sub in module.named_modules():
        handles.append(sub.register_forward_hook(hook_for(name or "(output)")))
    try:
        model.evaluate(system, rotations, ("energy",))
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _record_metatomic(model, system, rotations) -> dict:
    """The ``features`` output of a metatomic model, per rotated copy, as one layer."""
    from metatomic.torch import ModelOutput

    if "features" not in model.model.capabilities().outputs:
        raise MdsymError(f"metatomic model {model.name} exposes no 'features' output")
    inner, captured = model.model, {}

    class FeaturesInstead:
        """Stands for the model during one evaluation: asks for 'features' only."""

        def __call__(self, systems, options, check_consistency=False):
            options.outputs = {"features": ModelOutput(per_atom=False)}
            out = inner(systems, options, check_consistency=check_consistency)
            values = out["features"].block().values.detach().to(torch.float64)
            captured["features"] = values.reshape(len(rotations), -1).cpu().numpy()
            return {"energy": out["features"]}

        def __getattr__(self, name):
            return getattr(inner, name)

    model.model = FeaturesInstead()
    try:
        model.evaluate(system, rotations, ("energy",))
    finally:
        model.model = inner
    return captured


def hidden_layer_content(model, system, max_degree: int = 3, inversion: bool = True) -> list:
    """B per sector for every layer: ``[{"layer", "size", "B": [...], "residual"}]``,
    in the order the layers ran."""
    from ..models.metatomic import MetatomicModel
    from ..models.native import NativeModel

    quadrature = metrics_quadrature(max_degree, inversion)
    rotations = quadrature.rotations
    if isinstance(model, NativeModel):
        captured = _record_native(model, system, rotations)
    elif isinstance(model, MetatomicModel):
        captured = _record_metatomic(model, system, rotations)
    else:
        raise MdsymError(f"model {model.name} is not a torch model: no hidden layers to measure")
    d_matrices = wigner_d(rotations, max_degree)
    layers = []
    for name, values in captured.items():
        B = symmetry_content(values, quadrature, max_degree, d_matrices)
        layers.append({
            "layer": name, "size": int(values.shape[1]), "B": B,
            "residual": max(0.0, 1.0 - sum(item["fraction"] for item in B)),
        })
    return layers


def content_matrix(layers: list) -> tuple:
    """(layer names, sector labels, fractions array ``(layers, sectors + 1)``), the last
    column being the residual above the largest lambda."""
    if not layers:
        return [], [], np.zeros((0, 0))
    sectors = [f"({b['lambda']},{'+' if b['sigma'] > 0 else '-'})" for b in layers[0]["B"]]
    matrix = np.array([[b["fraction"] for b in layer["B"]] + [layer["residual"]] for layer in layers])
    return [layer["layer"] for layer in layers], sectors + ["above"], matrix
