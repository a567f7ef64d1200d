"""Bonds and molecules: the one definition mdsym uses.

Two atoms are bonded when they are closer than ``BOND_FACTOR`` (1.2) times the sum
of their covalent radii (``ase.data.covalent_radii``, Cordero et al. 2008); the
molecules are the connected components of that bond graph. The neighbour search is
vesin's (no skin: the threshold is exactly the one above).

A bonded connectivity *changes* (``connectivity_change``) when a bond of the
reference stretches beyond ``BREAK_FACTOR`` (1.6) times the sum of covalent radii,
or two atoms not bonded in the reference come within ``FORM_FACTOR`` (1.0) times
it: the gap between the three factors keeps thermal vibration from counting as a
change. The stability monitors (``mdsym.md.monitors``), the equipartition's molecules,
the bond-length and bond-angle distributions and ``analysis/stability_ethanol.py``
all use these.
"""

import numpy as np
import vesin
from ase.data import covalent_radii
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: bonded: closer than BOND_FACTOR x the sum of the covalent radii
BOND_FACTOR = 1.2
#: a reference bond is broken beyond BREAK_FACTOR x the sum of the covalent radii
BREAK_FACTOR = 1.6
#: a new bond forms within FORM_FACTOR x the sum of the covalent radii
FORM_FACTOR = 1.0


def bonded_pairs(positions, numbers, factor: float = BOND_FACTOR, cell=None):
    """``(pairs, distances)``: pairs ``(P, 2)`` with ``i < j`` closer than ``factor``
    times the sum of their covalent radii, and their distances ``(P,)`` in Angstrom.

    ``cell`` (3x3, rows are lattice vectors) makes the search periodic; a pair then
    appears once per periodic image within reach.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    radii = covalent_radii[np.asarray(numbers)]
    if len(positions) < 2:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    periodic = cell is not None
    box = np.asarray(cell, dtype=np.float64) if periodic else np.zeros((3, 3))
    search = vesin.NeighborList(cutoff=float(2.0 * factor * radii.max()), full_list=False)
    i, j, d = search.compute(points=positions, box=box, periodic=periodic, quantities="ijd")
    keep = d < factor * (radii[i] + radii[j])
    pairs = np.sort(np.stack([i[keep], j[keep]], axis=1).astype(np.int64), axis=1)
    return pairs, d[keep]


def bonds(positions, numbers, factor: float = BOND_FACTOR, cell=None) -> set:
    """The bonded pairs as a set of ``(i, j)`` with ``i < j``."""
    pairs, _ = bonded_pairs(positions, numbers, factor, cell)
    return set(map(tuple, pairs.tolist()))


def molecules(atoms) -> list:
    """Index arrays of the molecules of ``atoms`` (an ``ase.Atoms``): the connected
    components of its bond graph, in order of their first atom."""
    cell = atoms.cell.array if np.all(atoms.pbc) else None
    pairs, _ = bonded_pairs(atoms.positions, atoms.numbers, cell=cell)
    n = len(atoms)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return [np.flatnonzero(labels == k) for k in range(labels.max() + 1)]


def connectivity_change(reference: set, positions, numbers, break_factor: float = BREAK_FACTOR) -> tuple:
    """``(broken, formed)``: sorted lists of the pairs of ``reference`` (bonds, ``i < j``)
    stretched beyond ``break_factor``, and of the pairs not in it within ``FORM_FACTOR``
    times the sum of their covalent radii (isolated systems)."""
    positions = np.asarray(positions, dtype=np.float64)
    radii = covalent_radii[np.asarray(numbers)]
    broken = []
    if reference:
        i, j = np.array(sorted(reference)).T
        stretched = np.linalg.norm(positions[j] - positions[i], axis=1) > break_factor * (radii[i] + radii[j])
        broken = [(int(a), int(b)) for a, b in zip(i[stretched], j[stretched])]
    formed = sorted(bonds(positions, numbers, FORM_FACTOR) - set(reference))
    return broken, formed
