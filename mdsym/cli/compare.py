"""``mdsym compare``: several runs side by side (``mdsym.workflows.compare``), run
directories and trajectories other engines wrote alike.

An item is ``PATH`` or ``PATH::key=value::key=value...`` with the options of ``mdsym
analyze`` that a foreign trajectory may need: ``format``, ``log``, ``topology``,
``timestep`` (fs), ``stride``, ``units``, ``elements`` (``O,H``), ``model``; e.g.
``dump.lammpstrj::log=log.lammps::elements=Ar``.
"""

import json
from pathlib import Path

import click

from mdsym.cli.options import analysis_options, check_analysis_cost, one_line_errors
from mdsym.core.errors import MdsymError

SEPARATOR = "::"


def split_item(text: str) -> tuple:
    """``PATH::key=value...`` -> ``(Path, {key: value})`` (one line for a bad option)."""
    path, *items = text.split(SEPARATOR)
    options = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise MdsymError(f"{text}: trajectory options are {SEPARATOR}key=value, not {item!r}")
        options[key.strip()] = value.strip()
    return Path(path), options


@click.command()
@click.argument("items", nargs=-1, required=True)
@click.option("--reference", "-r", type=click.Path(path_type=Path), default=None,
              help="Run whose structure the others are compared with [default: the first].")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("comparison"),
              show_default=True, help="Folder for comparison.json, comparison.md and the plots.")
@click.option("--reanalyze", is_flag=True, help="Analyse every run again even if analysis.json exists.")
@analysis_options
@click.option("--json", "as_json", is_flag=True, help="Print comparison.json to stdout.")
@one_line_errors
def compare(items, reference, out, reanalyze, every, degree, content, no_equivariance, model,
            batch_size, yes, as_json):
    """Compare runs: one table and overlaid plots, one column per run. ITEMS are run
    directories or trajectories other engines wrote, each PATH or PATH::key=value::...
    with mdsym analyze's options (format, log, topology, timestep, stride, units,
    elements, model), e.g. dump.lammpstrj::log=log.lammps::elements=Ar."""
    from mdsym.analysis.sources import SourceOptions  # start-up time
    from mdsym.reports.comparison import field_table, table  # start-up time
    from mdsym.workflows.compare import compare_runs  # start-up time

    if not no_equivariance:
        check_analysis_cost(degree, yes)
    parsed = [split_item(item) for item in items]
    sources = {path: SourceOptions.parse(options) for path, options in parsed}
    for path, _ in parsed:
        if not path.exists():
            raise MdsymError(f"{path} does not exist")
    result = compare_runs([path for path, _ in parsed], out=out, reference=reference,
                          reanalyze=reanalyze, sources=sources, every=every, degree=degree,
                          content=content, equivariance=not no_equivariance, model=model,
                          batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for rows in (table(result), field_table(result)):
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    click.echo(f"report: {Path(out) / 'comparison.md'}")
