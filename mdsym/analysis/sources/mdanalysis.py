"""Any trajectory MDAnalysis reads, with a topology (``--topology``): TRR, XTC, DCD,
NetCDF, H5MD...

MDAnalysis reads the frames and converts them to its units (Angstrom, Angstrom/ps,
kJ/mol/Angstrom, ps), as it does for a run directory's ``trajectory.trr``. Elements,
masses, cell and periodicity come from the topology, read by ASE when it can (an
extended XYZ keeps its own masses, e.g. deuterium), else by MDAnalysis (its
``elements``); a topology whose atom count differs from the trajectory's is one line.
These formats hold no energies: the potential is re-evaluated with ``--model`` and the
kinetic energy taken from the velocities; XTC and DCD hold no velocities, so there is
no kinetic energy, no L(t) and no drift. For TRR and XTC only the whole frames count
(a truncated last frame is left out and noted).
"""

import warnings
from pathlib import Path

import numpy as np

from mdsym.analysis.sources.assemble import adjust
from mdsym.analysis.sources.common import Opened, masses_of
from mdsym.core.errors import MdsymError

XDR = {".trr": "TRRFile", ".xtc": "XTCFile"}


def whole_xdr_frames(path: Path) -> int:
    """The whole frames of a TRR or XTC file (a torn last one does not count)."""
    from MDAnalysis.lib.formats import libmdaxdr  # MDAnalysis' XDR files

    reader = getattr(libmdaxdr, XDR[path.suffix.lower()])
    count = 0
    try:
        with reader(str(path)) as xdr:
            for k in range(len(xdr.offsets)):
                xdr.seek(k)
                xdr.read()
                count += 1
    except (OSError, EOFError, RuntimeError):
        pass  # the torn last frame
    return count


def topology_atoms(topology: Path):
    """The topology as ``ase.Atoms`` when ASE reads it, else None."""
    import ase.io  # ASE's readers of structure files

    try:
        return ase.io.read(str(topology))
    except Exception:  # noqa: BLE001 (MDAnalysis reads it below: GRO, TPR, PSF...)
        return None


def open_mdanalysis(path: Path, options) -> Opened:
    import MDAnalysis as mda  # the formats MDAnalysis reads

    if options.topology is None:
        raise MdsymError(f"{path} needs a topology: give --topology (a PDB, GRO, extended XYZ... "
                         "with the trajectory's atoms)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MDAnalysis: guessed masses, missing boxes
        try:
            universe = mda.Universe(str(options.topology), str(path))
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MdsymError(f"cannot read {path} with topology {options.topology}: {first}") from None
    atoms = topology_atoms(options.topology)
    if atoms is not None and len(atoms) != len(universe.atoms):
        raise MdsymError(f"{options.topology} has {len(atoms)} atoms but {path} has "
                         f"{len(universe.atoms)}")
    if atoms is not None:
        names, masses = atoms.get_chemical_symbols(), atoms.get_masses()
    elif hasattr(universe.atoms, "elements") and all(universe.atoms.elements):
        names = [str(e).capitalize() for e in universe.atoms.elements]
        masses = masses_of(names)
    else:
        raise MdsymError(f"{options.topology} gives no elements for its atoms")
    n = universe.trajectory.n_frames
    notes = []
    if Path(path).suffix.lower() in XDR:
        whole = whole_xdr_frames(Path(path))
        if whole < n or (whole == n and torn_tail(Path(path), whole)):
            notes.append(f"{path} ends with a truncated frame: analysed its {whole} whole frames")
        n = min(n, whole)
    first = universe.trajectory[0]
    box = first.dimensions
    periodic = bool(atoms.pbc.all()) if atoms is not None else (
        box is not None and bool(np.all(np.asarray(box[:3]) > 0)))
    cell = None
    if periodic:
        from ase.geometry import cellpar_to_cell  # the first frame's box

        cell = atoms.cell.array if atoms is not None and box is None else cellpar_to_cell(box)
    opened = Opened(kind="mdanalysis", path=Path(path), files=[str(path), str(options.topology)],
                    universe=universe, n_frames=n, names=names, masses=masses, periodic=periodic,
                    cell=cell, notes=notes,
                    units={"reader": type(universe.trajectory).__name__,
                           "converted by MDAnalysis to": "Angstrom, Angstrom/ps, kJ/mol/Angstrom, ps"})
    opened.extra["adjust"] = adjust(universe)
    opened.energy = {"column": None, "file": None}
    return opened


def torn_tail(path: Path, whole: int) -> bool:
    """Bytes after the last whole frame of a TRR/XTC file."""
    from MDAnalysis.lib.formats import libmdaxdr  # MDAnalysis' XDR files

    reader = getattr(libmdaxdr, XDR[path.suffix.lower()])
    with reader(str(path)) as xdr:
        offsets = list(xdr.offsets)
    if whole == 0 or whole > len(offsets):
        return False
    end = offsets[whole] if whole < len(offsets) else None
    return end is not None and end < path.stat().st_size
