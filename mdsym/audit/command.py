"""``run_audit`` and the ``mdsym audit`` command (registered at the end of ``mdsym.cli``)."""

import json
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import MdsymError
from ..rundir import _json_default
from .battery import DEFAULT_SPECS, MODES, Battery, structure_for
from .scorecard import COLUMN_TITLES, _cell, _threshold, markdown, plot_scorecard


def run_audit(models, out, structure=None, specs=DEFAULT_SPECS, mode: str = "standard", seed: int = 0,
              batch_size=None, progress: bool = True, echo=print) -> dict:
    """Audit ``models``; writes ``OUT/audit.json`` and ``OUT/audit.md``; returns the result."""
    import click

    if mode not in MODES:
        raise MdsymError(f"unknown audit mode {mode!r}: use {' or '.join(MODES)}")
    if not models:
        raise MdsymError("give at least one model to audit")
    settings = MODES[mode]
    out = Path(out)
    started = time.monotonic()
    _check_settings(out, {"mode": mode, "seed": seed, "settings": asdict(settings)})
    batteries = [Battery(m, structure_for(m, structure), specs, settings, out, seed, batch_size) for m in models]
    tasks = [task for battery in batteries for task in battery.tasks()]
    total = sum(weight for _, weight, _ in tasks)
    with click.progressbar(length=total, label="audit", show_eta=True, file=None,
                           item_show_func=lambda label: label) if progress else _Silent() as bar:
        for label, weight, work in tasks:
            bar.update(0, label)
            work()
            bar.update(weight, label)
    result = {"mode": mode, "settings": asdict(settings), "seed": seed, "specs": list(specs),
              "threshold_A": _threshold(), "models": [b.collect() for b in batteries]}
    result["leaderboard"] = [row for model in result["models"] for row in model["rows"]]
    result["wall_s"] = time.monotonic() - started
    previous = out / "audit.json"  # a resumed audit adds its time to what the earlier passes took
    earlier = json.loads(previous.read_text()).get("wall_s_total", 0.0) if previous.exists() else 0.0
    result["wall_s_total"] = earlier + result["wall_s"]
    out.mkdir(parents=True, exist_ok=True)
    result["plots"] = [plot_scorecard(model, out) for model in result["models"]]
    (out / "audit.json").write_text(json.dumps(result, indent=2, default=_json_default))
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


class _Silent:
    current_item = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *args):
        pass


def _command():
    import click

    from ..cli_support import THREADS_HELP, configure_threads, one_line_errors

    @click.command()
    @click.argument("models", nargs=-1, required=True)
    @click.option("--structure", "-s", default=None,
                  help="Structure for every model [default: each shipped model's own; cu-cluster-55 for "
                       "analytic; else ethanol].")
    @click.option("--specs", default=",".join(DEFAULT_SPECS), show_default=True,
                  help="Comma-separated symmetrizations; the raw model (none) is always audited first.")
    @click.option("--fast", is_flag=True, help="The CI battery: seconds on the analytic model.")
    @click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("audit"),
                  show_default=True, help="Folder for the runs and the scorecard (an existing one is resumed).")
    @click.option("--seed", default=0, show_default=True, type=int)
    @click.option("--batch-size", default=None, type=int,
                  help="Rotated copies per model call (default: chosen from the model and size).")
    @click.option("--threads", default="auto", show_default=True, help=THREADS_HELP)
    @click.option("--progress/--no-progress", default=True, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print audit.json to stdout.")
    @one_line_errors
    def audit(models, structure, specs, fast, out, seed, batch_size, threads, progress, as_json):
        """Stability audit of one or more models: the public audits' figures (MLIP Audit, ml-peg,
        MLIP Arena, nvalchemi) next to mdsym's (L, A, B) and the dynamic equivariance test, for the
        raw model and each symmetrization; one scorecard and leaderboard (OUT/audit.md)."""
        from ..symmetrize import SymmetrizeSpec
        from ..system import read_structure

        spec_list = [str(SymmetrizeSpec.parse(x)) for x in specs.split(",") if x.strip()]
        spec_list = ["none"] + [x for x in dict.fromkeys(spec_list) if x != "none"]
        sizes = [len(read_structure(structure_for(m, structure))) for m in models]
        configure_threads(threads, max(sizes))
        result = run_audit(list(models), out, structure=structure, specs=spec_list,
                           mode="fast" if fast else "standard", seed=seed, batch_size=batch_size,
                           progress=progress, echo=click.echo)
        if as_json:
            click.echo(json.dumps(result, indent=2, default=_json_default))
            return
        fields = ("spec", "ms_per_force_call", "A_forces_eVA", "max_dL_amuA2ps", "mlipaudit_nve_score",
                  "mlipaudit_stability_score", "time_to_0.1A_fs")
        rows = [["model"] + [COLUMN_TITLES[f] for f in fields]]
        rows += [[row["model"]] + [_cell(row[f]) for f in fields] for row in result["leaderboard"]]
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        click.echo(f"scorecard: {Path(out) / 'audit.md'} ({result['wall_s']:.0f} s)")

    return audit


audit = _command()
