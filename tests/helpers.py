"""Helpers shared by the tests."""

from scipy.spatial.transform import Rotation


def random_o3(seed, n=3):
    """``n`` Haar-random O(3) elements, alternating proper and improper."""
    rotations = Rotation.random(n, random_state=seed).as_matrix()
    rotations[1::2] *= -1.0
    return rotations


def transformed(atoms, rotation):
    """A copy of ``atoms`` with positions and cell transformed by ``rotation``."""
    copy = atoms.copy()
    copy.positions = atoms.positions @ rotation.T
    if atoms.pbc.any():
        copy.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return copy


def serve_processes(*addresses) -> list:
    """``(pid, argv)`` of the running ``mdsym serve`` clients whose command line names
    one of ``addresses`` (a socket name or port), sorted by pid (Linux /proc)."""
    from pathlib import Path

    wanted = {str(a).encode() for a in addresses}
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"serve" in argv and wanted & set(argv):
            found.append((int(entry.name), argv))
    return sorted(found)

