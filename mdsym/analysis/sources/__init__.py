"""Trajectories that other engines wrote, read by the libraries that own their formats,
as the ``RunData`` that mdsym's analyses read from a run directory.

One module per format: ``ase`` (``.traj``, extended XYZ, ``MDLogger`` logs), ``ipi``
(an ``input.xml`` and the outputs it declares), ``lammps`` (dumps and ``log.lammps``),
``mdanalysis`` (TRR, XTC, DCD, NetCDF, H5MD... with a topology); ``frames`` (an
MDAnalysis reader over frames read one by one), ``common`` and ``assemble`` (what they
share); ``detect`` (``open_trajectory``: the format from the extension and content).
"""

from mdsym.analysis.sources.common import SourceOptions
from mdsym.analysis.sources.detect import FORMATS, detect, open_trajectory

__all__ = ["FORMATS", "SourceOptions", "detect", "open_trajectory"]
