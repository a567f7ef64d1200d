"""``mdsym audit``: a stability battery per model, one scorecard (``mdsym.workflows.audit``)."""

import json
from pathlib import Path

import click

from mdsym.cli.options import one_line_errors
from mdsym.core.defaults import AUDIT_SPECS, DEFAULT_THREADS, THREADS_HELP, VARIANT_HELP


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--structure", "-s", default=None,
              help="Structure for every model [default: each shipped model's own; cu-cluster-55 for "
                   "analytic; else ethanol].")
@click.option("--specs", default=",".join(AUDIT_SPECS), show_default=True,
              help="Comma-separated symmetrizations; the raw model (none) is always audited first.")
@click.option("--fast", is_flag=True, help="The CI battery: seconds on the analytic model.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("audit"),
              show_default=True, help="Folder for the runs and the scorecard (an existing one is resumed).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=None, type=int,
              help="Rotated copies per model call (default: chosen from the model and size).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, help=THREADS_HELP)
@click.option("--variant", default=None, help=VARIANT_HELP)
@click.option("--progress/--no-progress", default=None,
              help="A progress bar [default: only on a terminal].")
@click.option("--json", "as_json", is_flag=True, help="Print audit.json to stdout.")
@one_line_errors
def audit(models, structure, specs, fast, out, seed, batch_size, threads, variant, progress, as_json):
    """Stability audit of one or more models: the public audits' figures (MLIP Audit, ml-peg,
    MLIP Arena, nvalchemi) next to mdsym's (L, A, B) and the dynamic equivariance test, for the
    raw model and each symmetrization; one scorecard and leaderboard (OUT/audit.md)."""
    # start-up time: the audit runs MD
    from mdsym.core.system import read_structure
    from mdsym.core.threads import configure_threads
    from mdsym.md.rundir import json_default
    from mdsym.reports.formatting import cell
    from mdsym.reports.scorecard import COLUMN_TITLES
    from mdsym.symmetry.spec import SymmetrizeSpec
    from mdsym.workflows.audit import run_audit
    from mdsym.workflows.audit_battery import structure_for

    spec_list = [str(SymmetrizeSpec.parse(x)) for x in specs.split(",") if x.strip()]
    spec_list = ["none"] + [x for x in dict.fromkeys(spec_list) if x != "none"]
    sizes = [len(read_structure(structure_for(m, structure))) for m in models]
    configure_threads(threads, max(sizes))
    result = run_audit(list(models), out, structure=structure, specs=spec_list,
                       mode="fast" if fast else "standard", seed=seed, batch_size=batch_size,
                       progress=progress, echo=click.echo, variant=variant)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=json_default))
        return
    fields = ("spec", "ms_per_force_call", "A_forces_eVA", "max_dL_amuA2ps", "mlipaudit_nve_score",
              "mlipaudit_stability_score", "time_to_0.1A_fs")
    rows = [["model"] + [COLUMN_TITLES[f] for f in fields]]
    rows += [[row["model"]] + [cell(row[f]) for f in fields] for row in result["leaderboard"]]
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    click.echo(f"scorecard: {Path(out) / 'audit.md'} ({result['wall_s']:.0f} s)")

