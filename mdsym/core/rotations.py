"""The one place that owns the rotation conventions of mdsym.

Rotations act on row vectors. For an orthogonal matrix ``R`` (proper, or improper
``-R``):

- positions ``r' = r R^T``, cell ``H' = H R^T`` (rows of H are lattice vectors);
- forces of the rotated system are brought back with ``F = F' R``;
- stress / virial of the rotated system are brought back with ``S = R^T S' R``.

Everything else in the package calls these functions instead of re-deriving them.
All functions accept a stack of rotations ``(G, 3, 3)`` and broadcast over it.
"""

import numpy as np
import torch


def rotate_vectors(vectors, rotations):
    """Rotate row vectors: ``(..., 3)`` with ``(G, 3, 3)`` -> ``(G, ..., 3)``, contiguous."""
    flat = vectors.reshape(-1, 3)
    if isinstance(vectors, torch.Tensor):
        rotated = torch.matmul(flat, rotations.transpose(-1, -2))
    else:
        rotated = np.matmul(flat, np.swapaxes(rotations, -1, -2))
    return rotated.reshape((len(rotations),) + tuple(vectors.shape))


def back_rotate_vectors(vectors, rotations):
    """Bring per-copy vectors back to the input frame: ``(G, ..., 3)`` -> ``F' R``."""
    if isinstance(vectors, torch.Tensor):
        return torch.einsum("g...k,gkj->g...j", vectors, rotations)
    return np.einsum("g...k,gkj->g...j", vectors, rotations)


def back_rotate_tensors(tensors, rotations):
    """Bring per-copy rank-2 tensors back: ``(G, 3, 3)`` -> ``R^T S' R``."""
    if isinstance(tensors, torch.Tensor):
        return torch.einsum("gki,gkl,glj->gij", rotations, tensors, rotations)
    return np.einsum("gki,gkl,glj->gij", rotations, tensors, rotations)


def rotate_copies(vectors, rotations):
    """Rotate copy ``g`` of ``(G, ..., 3)`` by its own ``R_g``: ``v R_g^T``."""
    if isinstance(vectors, torch.Tensor):
        return torch.einsum("g...k,gjk->g...j", vectors, rotations)
    return np.einsum("g...k,gjk->g...j", vectors, rotations)


def rotate_tensor_copies(tensors, rotations):
    """Rotate rank-2 tensor copy ``g`` by ``R_g``: ``R_g S R_g^T``."""
    return np.einsum("gik,gkl,gjl->gij", rotations, tensors, rotations)
