"""Analyses of mdsym run directories: what the lack of symmetry does to a trajectory.

One idea per module:

- ``trajectory``: read a run directory (``RunData``), partial and failed runs
  included (up to the last whole frame); its frames streamed through MDAnalysis
  ``AnalysisBase`` analyses, several in one pass (``walk``), or copied into arrays
  (small runs, tests);
- ``drift``: energy drift of the conserved quantity (meV/atom/ps and drift/std(K));
- ``angular_momentum``: L about the centre of mass, torque and net force;
- ``equipartition``: translational / rotational / internal and per-species
  kinetic temperatures;
- ``structure``: radial distribution functions (periodic) or bond-length and
  angle distributions (isolated), and distances between them;
- ``equivariance_series``: equivariance error A (and symmetry content B) of the
  model that drove the run, frame by frame;
- ``hidden_layers``: B per (lambda, sigma) of a torch model's internal features;
- ``field_scores``: the public audits' figures of one run (``of_run``), from their
  definitions, one module per audit: ``field_mlipaudit`` (MLIP Audit),
  ``field_mlpeg_arena`` (ml-peg, MLIP Arena), ``field_nvalchemi`` (nvalchemi).

What runs them all on a run and writes the report (``analyze_run``) is
``mdsym.workflows.analyze``; the pages and plots are ``mdsym.reports``'.
"""

from mdsym.analysis.angular_momentum import AngularMomentum
from mdsym.analysis.drift import energy_drift
from mdsym.analysis.equipartition import Equipartition, kinetic_temperatures
from mdsym.analysis.structure import BondsAndAngles
from mdsym.analysis.trajectory import FrameArrays, RunData, load_run, walk

__all__ = ["AngularMomentum", "BondsAndAngles", "Equipartition", "FrameArrays", "RunData",
           "energy_drift", "kinetic_temperatures", "load_run", "walk"]
