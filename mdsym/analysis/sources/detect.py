"""``open_trajectory``: any trajectory mdsym reads, detected from its extension and
content (``format`` forces it), as the ``RunData`` the analyses read.

=============  =========================================================  ==========
format         what PATH is                                               read by
=============  =========================================================  ==========
``mdsym``      a run directory (``run.json``)                             mdsym
``ipi``        an i-PI ``input.xml``, or the folder holding one           i-PI
``traj``       an ASE ``.traj``                                           ASE
``extxyz``     extended XYZ (``.xyz``, ``.extxyz``)                       ASE
``lammps``     a LAMMPS dump (``.lammpstrj``, ``.dump``, ``ITEM: TIMESTEP``)  MDAnalysis
``mdanalysis`` TRR, XTC, DCD, NetCDF, H5MD... with ``--topology``          MDAnalysis
=============  =========================================================  ==========
"""

from pathlib import Path

from mdsym.analysis.sources.common import SourceOptions
from mdsym.core.defaults import TRAJECTORY_FORMATS
from mdsym.core.errors import MdsymError

FORMATS = TRAJECTORY_FORMATS
#: extensions MDAnalysis reads with a topology
MDANALYSIS_EXTENSIONS = (".trr", ".xtc", ".dcd", ".nc", ".ncdf", ".netcdf", ".h5md", ".tng",
                         ".gro", ".pdb", ".xyz")
LAMMPS_EXTENSIONS = (".lammpstrj", ".dump", ".lammpsdump")


def _starts_with(path: Path, text: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(text) + 64).lstrip().startswith(text)
    except OSError:
        return False


def detect(path, options: SourceOptions = None) -> str:
    """The format of ``path`` (one line when it cannot be told)."""
    path = Path(path)
    options = options or SourceOptions()
    if options.format is not None:
        if options.format not in FORMATS:
            raise MdsymError(f"--format must be one of {', '.join(FORMATS)}, not {options.format!r}")
        return options.format
    if not path.exists():
        raise MdsymError(f"{path} does not exist")
    if path.is_dir():
        if (path / "run.json").exists():
            return "mdsym"
        if (path / "input.xml").exists():
            return "ipi"
        raise MdsymError(f"{path} is a folder with neither run.json (an mdsym run directory) nor "
                         "input.xml (an i-PI simulation)")
    suffix = path.suffix.lower()
    if suffix == ".xml" and _starts_with(path, b"<simulation") or suffix == ".xml":
        return "ipi"
    if suffix == ".traj":
        return "traj"
    if suffix in LAMMPS_EXTENSIONS or _starts_with(path, b"ITEM: TIMESTEP"):
        return "lammps"
    if suffix in (".xyz", ".extxyz") and options.topology is None:
        return "extxyz"
    if suffix in MDANALYSIS_EXTENSIONS or options.topology is not None:
        return "mdanalysis"
    raise MdsymError(f"cannot tell the format of {path} from its extension ({suffix or 'none'}): "
                     f"give --format ({', '.join(FORMATS)})")


def open_trajectory(path, options: SourceOptions = None, arrays: bool = False, **given):
    """The ``RunData`` of ``path`` (any format above); ``options`` or keyword
    arguments of ``SourceOptions``. Foreign trajectories carry a ``source`` block."""
    options = options or SourceOptions(**given)
    kind = detect(path, options)
    if kind == "mdsym":
        from mdsym.analysis.trajectory import load_run  # start-up time: the run directory reader

        return load_run(path, arrays=arrays)
    from mdsym.analysis.sources.assemble import finish  # start-up time: numpy, MDAnalysis

    opened = opened_source(Path(path), kind, options)
    has_energy = opened.energies is not None or opened.energy.get("column")
    return finish(opened, options, None if has_energy else energy_model(options), arrays=arrays)


def opened_source(path: Path, kind: str, options: SourceOptions):
    """What the reader of ``kind`` finds in ``path``."""
    if kind in ("traj", "extxyz"):
        from mdsym.analysis.sources.ase import open_ase  # each reader loads its library when used

        return open_ase(path, options, kind)
    if kind == "ipi":
        from mdsym.analysis.sources.ipi import open_ipi  # i-PI

        return open_ipi(path, options)
    if kind == "lammps":
        from mdsym.analysis.sources.lammps import open_lammps  # lammps' log reader

        return open_lammps(path, options)
    from mdsym.analysis.sources.mdanalysis import open_mdanalysis  # MDAnalysis' formats

    return open_mdanalysis(path, options)


def energy_model(options: SourceOptions):
    """The model that re-evaluates a missing potential (``--model``), or None."""
    if options.model is None:
        return None
    from mdsym.models import load_model  # torch: only when a model is named

    return load_model(options.model)
