"""``mdsym study``: raw vs symmetrized NVE dynamics of one model over several seeds
(``mdsym.workflows.study``)."""

from pathlib import Path

import click

from mdsym.cli.options import one_line_errors
from mdsym.core.defaults import (
    DEFAULT_THREADS,
    STUDY_EQUIVARIANCE_FRAMES,
    STUDY_MODEL,
    STUDY_SEEDS,
    STUDY_SPECS,
    STUDY_STEPS,
    STUDY_STRIDE,
    STUDY_STRUCTURE,
    STUDY_TEMPERATURE_K,
    STUDY_TIMESTEP_FS,
    THREADS_HELP,
)


@click.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("study"),
              show_default=True, help="Folder for the runs, study.md, study.json and the plots.")
@click.option("--model", "-m", default=STUDY_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=STUDY_STRUCTURE, show_default=True,
              help="Structure file, or the name of a shipped one.")
@click.option("--specs", default=",".join(STUDY_SPECS), show_default=True,
              help="Comma-separated symmetrizations to run (none is the raw model).")
@click.option("--seeds", default=",".join(map(str, STUDY_SEEDS)), show_default=True,
              help="Comma-separated seeds (initial velocities, random rotations).")
@click.option("--steps", default=STUDY_STEPS, show_default=True, type=int, help="NVE steps per run.")
@click.option("--timestep", "timestep_fs", default=STUDY_TIMESTEP_FS, show_default=True, type=float,
              help="fs")
@click.option("--temperature", default=STUDY_TEMPERATURE_K, show_default=True, type=float,
              help="K: initial velocities.")
@click.option("--stride", default=STUDY_STRIDE, show_default=True, type=int, help="Steps between frames.")
@click.option("--every", type=int, default=None,
              help=f"Measure A every N frames [default: {STUDY_EQUIVARIANCE_FRAMES} frames per run].")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, help=THREADS_HELP)
@one_line_errors
def study(out, model, structure, specs, seeds, steps, timestep_fs, temperature, stride, every, threads):
    """Raw vs symmetrized NVE dynamics of one model, several seeds: study.md opens with the answer.

    The default, 15 runs (5 specs x 3 seeds x 400 steps) and their analyses, took 20 min on
    a 2-core machine under load (most of it o3:3's 48 rotations); fewer --specs and --seeds
    take less."""
    # start-up time: the study runs MD
    from mdsym.reports.study_report import summary_table
    from mdsym.workflows import study as workflow

    spec_list, seed_list = workflow.parse_specs(specs), workflow.parse_seeds(seeds)
    result = workflow.run_study(out, model=model, structure=structure, specs=spec_list, seeds=seed_list,
                              steps=steps, timestep_fs=timestep_fs, temperature_K=temperature, stride=stride,
                              every=every, threads=threads, progress=click.echo)
    rows = summary_table(result["summary"])
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    click.echo("")
    if result["failures"]:
        n_runs = sum(e["runs"] for e in result["summary"])
        click.echo(f"WARNING: {len(result['failures'])} of {n_runs} runs did not complete:")
        for line in result["failures"]:
            click.echo(f"  {line}")
    click.echo(result["conclusion"]["sentence"])
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    click.echo(f"report: {Path(out) / 'study.md'} (numbers: study.json; every run: comparison.md)")
