"""``mdsym audit``: one stability battery per model, one scorecard, one leaderboard.

For each model and each symmetrization spec (the raw model first), on one structure:

- NVE at three timesteps and NVT at two temperatures, each a run directory made by
  ``mdsym run``'s engine and analysed by ``mdsym analyze`` (``analyze_run``): the
  public audits' figures (``mdsym.analysis.field_scores``: MLIP Audit's NVE ratio
  and score and its stability score, ml-peg's drift, nvalchemi's drift, fluctuation
  and divergence) next to mdsym's own (angular-momentum non-conservation);
- the dynamic equivariance test (``mdsym.analysis.dynamic_equivariance``): the time
  until a transformed run leaves the transformed reference run by 0.1 Angstrom,
  with the floor of an exactly invariant analytic model on the same initial state;
- its static counterparts: MLIP Arena's force equivariance and ml-peg's rotational
  test;
- A and B of the outputs (``mdsym.metrics.measure``), and of the raw model's hidden
  layers (``mdsym.analysis.hidden_layers``; when they cannot be measured, why);
- the cost: model evaluations per MD step, and milliseconds per force call timed
  side by side with the raw model's (their ratio is the cost against raw).

Everything lands in ``OUT/<model>/<spec>/``; a finished piece (a completed run, a
``*.json`` result) is reused, so an interrupted audit resumes where it stopped.
``OUT/audit.json``, ``OUT/audit.md`` and ``OUT/<model>/scorecard.png`` hold the
scorecard: a row per (model, spec). Modes (``MODES``): ``fast`` for CI (seconds on
the analytic model), ``standard`` for users.

Modules: ``battery`` (settings, pieces, rows), ``scorecard`` (tables, the page, the
plot), ``command`` (``run_audit`` and the click command).
"""

from .battery import DEFAULT_SPECS, MODES, ROW_FIELDS, AuditSettings, Battery, structure_for
from .command import audit, run_audit
from .scorecard import COLUMN_TITLES, markdown, table

__all__ = ["AuditSettings", "Battery", "COLUMN_TITLES", "DEFAULT_SPECS", "MODES", "ROW_FIELDS", "audit",
           "markdown", "run_audit", "structure_for", "table"]
