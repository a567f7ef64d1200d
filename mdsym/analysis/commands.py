"""``mdsym analyze`` and ``mdsym compare`` (registered at the end of ``mdsym.cli``)."""

import json
from pathlib import Path

import click

from ..commands_common import one_line_errors
from ..errors import MdsymError


def _check_degree(degree):
    from ..quadrature import MAX_DEGREE

    if degree < 0 or 2 * degree + 1 > MAX_DEGREE:
        raise MdsymError(f"--degree {degree} is outside what the quadratures provide (0 to {(MAX_DEGREE - 1) // 2})")


_common = [
    click.option("--every", type=int, default=None,
                 help="Measure the equivariance error every N frames [default: about 20 frames]."),
    click.option("--degree", "-L", default=2, show_default=True, type=int,
                 help="Largest lambda of A's quadrature and of the symmetry content B."),
    click.option("--content", is_flag=True, help="Also the symmetry content B per sector along the run (heavier)."),
    click.option("--no-equivariance", is_flag=True, help="Skip the equivariance error (no model evaluation)."),
    click.option("--model", "-m", default=None,
                 help="Model to measure, when run.json's model cannot be loaded here."),
    click.option("--batch-size", default=64, show_default=True, type=int),
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
def analyze(run_dir, out, every, degree, content, no_equivariance, model, batch_size, layers, as_json):
    """Analyse a run directory: drift, angular momentum, equivariance, equipartition, structure."""
    from .report import _g, analyze_run

    _check_degree(degree)
    if every is not None and every < 1:
        raise MdsymError(f"--every must be at least 1, got {every}")
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
            batch_size, as_json):
    """Compare runs: one table and overlaid plots, one column per run."""
    from .compare import compare_runs, field_table, table

    _check_degree(degree)
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


@click.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("study"),
              show_default=True, help="Folder for the runs and the comparison.")
@click.option("--model", "-m", default=None, help="Model [default: analytic:vector1=0.05,vector3=0.02].")
@click.option("--structure", "-s", default=None, help="Structure [default: cu-cluster-55].")
@click.option("--specs", default="none,random,nettorque,o3:1,o3:3", show_default=True,
              help="Comma-separated symmetrizations to run.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--steps", default=500, show_default=True, type=int)
@click.option("--timestep", "timestep_fs", default=2.0, show_default=True, type=float, help="fs")
@click.option("--temperature", default=300.0, show_default=True, type=float, help="K")
@click.option("--stride", default=5, show_default=True, type=int)
@click.option("--every", type=int, default=None, help="Equivariance every N frames.")
@one_line_errors
def study(out, model, structure, specs, seeds, steps, timestep_fs, temperature, stride, every):
    """Raw vs symmetrized dynamics of one model: run, analyse, compare in one report."""
    from ..commands_common import structure_path
    from .study import DEFAULT_MODEL, run_study

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise MdsymError(f"--seeds must be integers separated by commas, got {seeds!r}") from None
    spec_list = [s.strip() for s in specs.split(",") if s.strip()]
    from ..symmetrize import SymmetrizeSpec

    for spec in spec_list:
        SymmetrizeSpec.parse(spec)  # a bad spec is one line now, not after the first runs
    result = run_study(out, model=model or DEFAULT_MODEL,
                       structure=structure_path(structure) if structure else None, specs=spec_list,
                       seeds=seed_list, steps=steps, timestep_fs=timestep_fs, temperature_K=temperature,
                       stride=stride, every=every, progress=click.echo)
    click.echo(f"{len(result['runs'])} runs compared: {Path(out) / 'comparison.md'}")
