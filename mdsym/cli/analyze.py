"""``mdsym analyze``: everything mdsym measures along one run (``mdsym.workflows.analyze``)."""

import json
from pathlib import Path

import click

from mdsym.cli.options import analysis_options, check_analysis_cost, one_line_errors


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for analysis.json, the plots and report.md [default: RUN_DIR/analysis].")
@analysis_options
@click.option("--layers", is_flag=True, help="Also the symmetry content of the model's hidden layers.")
@click.option("--json", "as_json", is_flag=True, help="Print analysis.json to stdout.")
@one_line_errors
def analyze(run_dir, out, every, degree, content, no_equivariance, model, batch_size, yes, layers,
            as_json):
    """Analyse a run directory: drift, angular momentum, equivariance, equipartition, structure."""
    # start-up time: the analyses load numpy, MDAnalysis and the models when the command runs
    from mdsym.reports.formatting import g
    from mdsym.workflows.analyze import analyze_run

    if not no_equivariance:
        check_analysis_cost(degree, yes)
    report = analyze_run(run_dir, out=out, every=every, degree=degree, content=content,
                         equivariance=not no_equivariance, layers=layers, model=model,
                         batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    folder = out or Path(run_dir) / "analysis"
    for warning in report.get("warnings", []):
        click.echo(f"WARNING: {warning}", err=True)
    click.echo(f"{run_dir}: status {report['status']}, {report['frames']} frames, {report['n_atoms']} atoms")
    for note in report["notes"]:
        click.echo(f"  note: {note}")
    d = report.get("drift")
    if d:
        click.echo(f"  drift {d['slope_meV_atom_ps']:.4g} meV/atom/ps, drift/std(K) {d['ratio']:.3g}")
    f = report.get("field", {})
    if "mlipaudit_nve" in f:
        click.echo(f"  public audits: MLIP Audit NVE score {g(f['mlipaudit_nve']['score'])} "
                   f"(ratio {g(f['mlipaudit_nve']['ratio'])}), stability score "
                   f"{g(f['mlipaudit_stability'].get('score'))}; ml-peg drift "
                   f"{g(f['mlpeg_drift_meV_atom_ps'])} meV/atom/ps; nvalchemi drift "
                   f"{g(f['nvalchemi']['energy_drift_per_atom_per_ns'])} eV/atom/ns")
    a = report.get("angular_momentum")
    if a:
        if a.get("conserved"):
            click.echo(f"  max |L(t)-L(0)| {a['max_dL']:.4g} amu A^2/ps, max |torque| {a['torque_max_eV']:.3g} eV"
                       + (f" ({a['source']})" if a.get("source") else ""))
            if a.get("thermostat_note"):
                click.echo(f"  ({a['thermostat_note']})")
        click.echo(f"  max |net force| {a['net_force_max_eVA']:.3g} eV/A")
    e = report.get("equivariance", {})
    if "A_forces" in e:
        line = f"  mean A: energy {e['A_energy']['mean']:.3g} eV, forces {e['A_forces']['mean']:.3g} eV/A"
        if "A_forces_sym" in e:
            line += f"; symmetrized: {e['A_energy_sym']['mean']:.3g} eV, {e['A_forces_sym']['mean']:.3g} eV/A"
        click.echo(line)
    hl = report.get("hidden_layers", {})
    if "first" in hl:
        from mdsym.analysis.hidden_layers import summary_lines  # start-up time: torch

        click.echo("\n".join("  " + line for line in summary_lines(hl["first"])))
    click.echo(f"  report: {folder / 'report.md'}")
