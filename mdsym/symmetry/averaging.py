"""Averaging a model over a quadrature: the one definition of the rotated copies, their
back-rotation and the weighted moments.

- ``back_rotated_batches``: the copies ``r R_g^T`` of a system evaluated batch by batch
  (``Model.evaluate``, one neighbour list), every prediction brought back to the input
  frame with the conventions of ``mdsym.core.rotations`` (forces ``F' R``, stress
  ``R^T S' R``);
- ``evaluate_back_rotated``: all copies at once, arrays over ``G`` (the metrics);
- ``accumulate_moments`` / ``finish_moments``: the weighted mean and the rotational
  standard deviation, accumulated batch by batch in torch (float64). These two are
  TorchScript functions of tensors only, so the same definition serves the in-process
  ``SymmetrizedModel`` (numpy predictions enter as zero-copy tensors, whatever the model)
  and a model exported for other engines;
- ``average``: the mean and ``<key>_rot_std`` of every output.
"""

import numpy as np
import torch

from mdsym.core.rotations import back_rotate_tensors, back_rotate_vectors


def back_rotated_batches(model, system, quadrature, properties, batch_size=None):
    """Yield ``(weights, predictions)`` batch by batch, predictions in the input frame.

    ``batch_size`` copies go through the model together (None: the model's choice).
    """
    properties = tuple(p for p in properties if p != "stress" or system.periodic)
    batch_size = batch_size or model.batch_size_for(system)
    for start in range(0, len(quadrature), batch_size):
        rotations = quadrature.rotations[start : start + batch_size]
        out = model.evaluate(system, rotations, properties)
        if "forces" in out:
            out["forces"] = back_rotate_vectors(out["forces"], rotations)
        if "stress" in out:
            out["stress"] = back_rotate_tensors(out["stress"], rotations)
        yield quadrature.weights[start : start + batch_size], out
        del out  # not held while the next batch is evaluated


def evaluate_back_rotated(model, system, quadrature, properties, batch_size=None) -> dict:
    """Every copy's prediction brought back to the input frame: arrays over G."""
    chunks = [out for _, out in back_rotated_batches(model, system, quadrature, properties, batch_size)]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def accumulate_moments(values: torch.Tensor, weights: torch.Tensor, reference: torch.Tensor,
                       first: torch.Tensor, second: torch.Tensor) -> None:
    """Add one batch ``values`` ``(B, ...)`` with ``weights`` ``(B,)`` to the weighted
    first and second moments about ``reference`` (in place). Moments about a reference
    (the first copy's prediction) keep ``E[d^2] - E[d]^2`` free of cancellation when
    the mean is large."""
    shape = [values.shape[0]] + [1] * (values.dim() - 1)
    w = weights.reshape(shape)
    shifted = values - reference
    first.add_(torch.sum(w * shifted, dim=0))
    second.add_(torch.sum(w * shifted * shifted, dim=0))


def finish_moments(reference: torch.Tensor, first: torch.Tensor, second: torch.Tensor):
    """``(mean, std)`` from the moments ``accumulate_moments`` added up."""
    variance = second - first * first
    return reference + first, torch.sqrt(torch.clamp(variance, min=0.0))


def average(model, system, quadrature, properties=("energy", "forces"), batch_size=None) -> dict:
    """Weighted mean over the quadrature, and the rotational std as ``<key>_rot_std``.

    Accumulated batch by batch, so memory grows with the batch, not with the number
    of rotations.
    """
    reference, first, second = {}, {}, {}
    for weights, out in back_rotated_batches(model, system, quadrature, properties, batch_size):
        w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float64))
        for key, values in out.items():
            values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
            if key not in reference:
                reference[key] = values[0].clone()
                first[key] = torch.zeros_like(reference[key])
                second[key] = torch.zeros_like(reference[key])
            accumulate_moments(values, w, reference[key], first[key], second[key])
        del out, values  # not held while the next batch is evaluated
    results = {}
    for key in reference:
        mean, std = finish_moments(reference[key], first[key], second[key])
        results[key], results[f"{key}_rot_std"] = mean.numpy(), std.numpy()
    results["energy"] = float(results["energy"])
    results["energy_rot_std"] = float(results["energy_rot_std"])
    return results
