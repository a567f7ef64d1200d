"""``mdsym compare``: several runs side by side (``mdsym.workflows.compare``)."""

import json
from pathlib import Path

import click

from mdsym.cli.options import analysis_options, check_analysis_cost, one_line_errors


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--reference", "-r", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run whose structure the others are compared with [default: the first].")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("comparison"),
              show_default=True, help="Folder for comparison.json, comparison.md and the plots.")
@click.option("--reanalyze", is_flag=True, help="Analyse every run again even if analysis.json exists.")
@analysis_options
@click.option("--json", "as_json", is_flag=True, help="Print comparison.json to stdout.")
@one_line_errors
def compare(run_dirs, reference, out, reanalyze, every, degree, content, no_equivariance, model,
            batch_size, yes, as_json):
    """Compare runs: one table and overlaid plots, one column per run."""
    # start-up time: the comparison loads numpy, MDAnalysis and the models when the command runs
    from mdsym.reports.comparison import field_table, table
    from mdsym.workflows.compare import compare_runs

    if not no_equivariance:
        check_analysis_cost(degree, yes)
    result = compare_runs(list(run_dirs), out=out, reference=reference, reanalyze=reanalyze,
                          every=every, degree=degree, content=content,
                          equivariance=not no_equivariance, model=model, batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for rows in (table(result), field_table(result)):
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    click.echo(f"report: {Path(out) / 'comparison.md'}")
