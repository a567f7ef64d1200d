"""``run_audit``: one stability battery per model (``mdsym.workflows.audit_battery``),
then one scorecard and leaderboard (``mdsym.reports.scorecard``).

For each model and each symmetrization spec (the raw model first), on one structure:
NVE at three timesteps and NVT at two temperatures, each a run directory made by
``mdsym run``'s engine and analysed as ``mdsym analyze`` does; the public audits'
figures next to mdsym's own; the dynamic equivariance test and its static
counterparts; A and B of the outputs and hidden layers; the cost. Everything lands in
``OUT/<model>/<spec>/``; a finished piece is reused, so an interrupted audit resumes
where it stopped.
"""

import json
import time
from dataclasses import asdict
from pathlib import Path

from mdsym.core.errors import MdsymError
from mdsym.core.progress import Progress
from mdsym.md.rundir import json_default
from mdsym.reports.scorecard import markdown, plot_scorecard
from mdsym.workflows.audit_battery import DEFAULT_SPECS, MODES, Battery, structure_for
from mdsym.workflows.dynamic_equivariance import THRESHOLD_A


def run_audit(models, out, structure=None, specs=DEFAULT_SPECS, mode: str = "standard", seed: int = 0,
              batch_size=None, progress: bool = True, echo=print, variant=None) -> dict:
    """Audit ``models``; writes ``OUT/audit.json`` and ``OUT/audit.md``; returns the result.
    ``progress``: True, False or None (a bar only on a terminal); ``variant``: the
    metatomic energy variant of every model (None: their plain energy)."""
    if mode not in MODES:
        raise MdsymError(f"unknown audit mode {mode!r}: use {' or '.join(MODES)}")
    if not models:
        raise MdsymError("give at least one model to audit")
    settings = MODES[mode]
    out = Path(out)
    started = time.monotonic()
    _check_settings(out, {"mode": mode, "seed": seed, "settings": asdict(settings)})
    batteries = [Battery(m, structure_for(m, structure), specs, settings, out, seed, batch_size, variant)
                 for m in models]
    tasks = [task for battery in batteries for task in battery.tasks()]
    total = sum(weight for _, weight, _ in tasks)
    with Progress(total, "audit", enabled=progress, show_item=True) as bar:
        for label, weight, work in tasks:
            bar.update(0, label)
            work()
            bar.update(weight, label)
    result = {"mode": mode, "settings": asdict(settings), "seed": seed, "specs": list(specs),
              "threshold_A": THRESHOLD_A, "models": [b.collect() for b in batteries]}
    result["leaderboard"] = [row for model in result["models"] for row in model["rows"]]
    result["wall_s"] = time.monotonic() - started
    previous = out / "audit.json"  # a resumed audit adds its time to what the earlier passes took
    earlier = json.loads(previous.read_text()).get("wall_s_total", 0.0) if previous.exists() else 0.0
    result["wall_s_total"] = earlier + result["wall_s"]
    out.mkdir(parents=True, exist_ok=True)
    result["plots"] = [plot_scorecard(model, out, result["threshold_A"]) for model in result["models"]]
    (out / "audit.json").write_text(json.dumps(result, indent=2, default=json_default))
    (out / "audit.md").write_text(markdown(result))
    return result


def _check_settings(out: Path, settings: dict) -> None:
    """Resume only an audit made with the same settings (its pieces are reused as they are)."""
    path = out / "settings.json"
    if path.exists():
        held = json.loads(path.read_text())
        if held != json.loads(json.dumps(settings)):
            raise MdsymError(f"{out} holds an audit made with other settings ({path}): audit into another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))
