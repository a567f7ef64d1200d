"""``mdsym analyze`` and ``mdsym compare`` (registered at the end of ``mdsym.cli``)."""

import json
from pathlib import Path

import click

from ..cli_support import THREADS_HELP, YES_HELP, check_cost, one_line_errors
from ..metrics import MAX_CONTENT_DEGREE


def _check_cost(degree, yes):
    """A is measured on every analysed frame over the quadrature of ``degree``."""
    from ..metrics import metrics_quadrature

    check_cost(len(metrics_quadrature(degree)), yes, f"the equivariance error at --degree {degree}",
               per="analysed frame")


_common = [
    click.option("--every", type=click.IntRange(min=1), default=None,
                 help="Measure the equivariance error every N frames [default: about 20 frames]."),
    click.option("--degree", "-L", default=2, show_default=True, type=click.IntRange(0, MAX_CONTENT_DEGREE),
                 help="Largest lambda of A's quadrature and of the symmetry content B."),
    click.option("--content", is_flag=True, help="Also the symmetry content B per sector along the run (heavier)."),
    click.option("--no-equivariance", is_flag=True, help="Skip the equivariance error (no model evaluation)."),
    click.option("--model", "-m", default=None,
                 help="Model to measure, when run.json's model cannot be loaded here."),
    click.option("--batch-size", default=None, type=click.IntRange(min=1),
                 help="Rotated copies per model call (default: chosen from the model and size)."),
    click.option("--yes", "-y", is_flag=True, help=YES_HELP),
]


def _options(function):
    for option in reversed(_common):
        function = option(function)
    return function


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for analysis.json, the plots and report.md [default: RUN_DIR/analysis].")
@_options
@click.option("--layers", is_flag=True, help="Also the symmetry content of the model's hidden layers.")
@click.option("--json", "as_json", is_flag=True, help="Print analysis.json to stdout.")
@one_line_errors
def analyze(run_dir, out, every, degree, content, no_equivariance, model, batch_size, yes, layers,
            as_json):
    """Analyse a run directory: drift, angular momentum, equivariance, equipartition, structure."""
    from .report import _g, analyze_run

    if not no_equivariance:
        _check_cost(degree, yes)
    report = analyze_run(run_dir, out=out, every=every, degree=degree, content=content,
                         equivariance=not no_equivariance, layers=layers, model=model,
                         batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    folder = out or Path(run_dir) / "analysis"
    click.echo(f"{run_dir}: status {report['status']}, {report['frames']} frames, {report['n_atoms']} atoms")
    for note in report["notes"]:
        click.echo(f"  note: {note}")
    d = report.get("drift")
    if d:
        click.echo(f"  drift {d['slope_meV_atom_ps']:.4g} meV/atom/ps, drift/std(K) {d['ratio']:.3g}")
    f = report.get("field", {})
    if "mlipaudit_nve" in f:
        click.echo(f"  public audits: MLIP Audit NVE score {_g(f['mlipaudit_nve']['score'])} "
                   f"(ratio {_g(f['mlipaudit_nve']['ratio'])}), stability score "
                   f"{_g(f['mlipaudit_stability'].get('score'))}; ml-peg drift "
                   f"{_g(f['mlpeg_drift_meV_atom_ps'])} meV/atom/ps; nvalchemi drift "
                   f"{_g(f['nvalchemi']['energy_drift_per_atom_per_ns'])} eV/atom/ns")
    a = report.get("angular_momentum")
    if a:
        if a.get("conserved"):
            click.echo(f"  max |L(t)-L(0)| {a['max_dL']:.4g} amu A^2/ps, max |torque| {a['torque_max_eV']:.3g} eV")
        click.echo(f"  max |net force| {a['net_force_max_eVA']:.3g} eV/A")
    e = report.get("equivariance", {})
    if "A_forces" in e:
        line = f"  mean A: energy {e['A_energy']['mean']:.3g} eV, forces {e['A_forces']['mean']:.3g} eV/A"
        if "A_forces_sym" in e:
            line += f"; symmetrized: {e['A_energy_sym']['mean']:.3g} eV, {e['A_forces_sym']['mean']:.3g} eV/A"
        click.echo(line)
    hl = report.get("hidden_layers", {})
    if "first" in hl:
        from .hidden_layers import summary_lines

        click.echo("\n".join("  " + line for line in summary_lines(hl["first"])))
    click.echo(f"  report: {folder / 'report.md'}")


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--reference", "-r", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run whose structure the others are compared with [default: the first].")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("comparison"),
              show_default=True, help="Folder for comparison.json, comparison.md and the plots.")
@click.option("--reanalyze", is_flag=True, help="Analyse every run again even if analysis.json exists.")
@_options
@click.option("--json", "as_json", is_flag=True, help="Print comparison.json to stdout.")
@one_line_errors
def compare(run_dirs, reference, out, reanalyze, every, degree, content, no_equivariance, model,
            batch_size, yes, as_json):
    """Compare runs: one table and overlaid plots, one column per run."""
    from .compare import compare_runs, field_table, table

    if not no_equivariance:
        _check_cost(degree, yes)
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


from . import study as _study  # noqa: E402  (its defaults are the options' defaults)


@click.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("study"),
              show_default=True, help="Folder for the runs, study.md, study.json and the plots.")
@click.option("--model", "-m", default=_study.DEFAULT_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=_study.DEFAULT_STRUCTURE, show_default=True,
              help="Structure file, or the name of a shipped one.")
@click.option("--specs", default=",".join(_study.DEFAULT_SPECS), show_default=True,
              help="Comma-separated symmetrizations to run (none is the raw model).")
@click.option("--seeds", default=",".join(map(str, _study.DEFAULT_SEEDS)), show_default=True,
              help="Comma-separated seeds (initial velocities, random rotations).")
@click.option("--steps", default=_study.DEFAULT_STEPS, show_default=True, type=int, help="NVE steps per run.")
@click.option("--timestep", "timestep_fs", default=_study.DEFAULT_TIMESTEP_FS, show_default=True, type=float,
              help="fs")
@click.option("--temperature", default=_study.DEFAULT_TEMPERATURE_K, show_default=True, type=float,
              help="K: initial velocities.")
@click.option("--stride", default=_study.DEFAULT_STRIDE, show_default=True, type=int, help="Steps between frames.")
@click.option("--every", type=int, default=None,
              help=f"Measure A every N frames [default: {_study.EQUIVARIANCE_FRAMES} frames per run].")
@click.option("--threads", default="auto", show_default=True, help=THREADS_HELP)
@one_line_errors
def study(out, model, structure, specs, seeds, steps, timestep_fs, temperature, stride, every, threads):
    """Raw vs symmetrized NVE dynamics of one model, several seeds: study.md opens with the answer."""
    spec_list, seed_list = _study.parse_specs(specs), _study.parse_seeds(seeds)
    result = _study.run_study(out, model=model, structure=structure, specs=spec_list, seeds=seed_list,
                              steps=steps, timestep_fs=timestep_fs, temperature_K=temperature, stride=stride,
                              every=every, threads=threads, progress=click.echo)
    rows = _study.summary_table(result["summary"])
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
