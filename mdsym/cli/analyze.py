"""``mdsym analyze``: everything mdsym measures along one run directory or one trajectory
another engine wrote (ASE, i-PI, LAMMPS, MDAnalysis formats: ``mdsym.analysis.sources``)."""

import json
from pathlib import Path

import click

from mdsym.cli.options import (
    analysis_options,
    check_analysis_cost,
    one_line_errors,
    source_options,
)
from mdsym.core.errors import MdsymError


def open_source(path, source_format, log, topology, timestep_fs, stride, units, elements, model):
    """The run of PATH: None for an mdsym run directory (``analyze_run`` reads it), else
    the ``RunData`` of the foreign trajectory."""
    from mdsym.analysis.sources import SourceOptions, detect, open_trajectory  # start-up time
    from mdsym.analysis.sources.common import element_map  # start-up time

    options = SourceOptions(format=source_format, log=log and Path(log),
                            topology=topology and Path(topology), timestep_fs=timestep_fs,
                            stride=stride, units=units,
                            elements=element_map(elements) if elements else None, model=model)
    if detect(path, options) == "mdsym":
        given = [name for name, value in (("--log", log), ("--topology", topology),
                                          ("--timestep", timestep_fs), ("--stride", stride),
                                          ("--units", units), ("--elements", elements)) if value]
        if given:
            raise MdsymError(f"{path} is an mdsym run directory: {', '.join(given)} apply to "
                             "trajectories other engines wrote")
        return None
    return open_trajectory(path, options)


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for analysis.json, the plots and report.md [default: PATH/analysis "
                   "for a folder, NAME-analysis beside a file].")
@source_options
@analysis_options
@click.option("--layers", is_flag=True, help="Also the symmetry content of the model's hidden layers.")
@click.option("--json", "as_json", is_flag=True, help="Print analysis.json to stdout.")
@one_line_errors
def analyze(path, out, source_format, log, topology, timestep_fs, stride, units, elements, every,
            degree, content, no_equivariance, model, batch_size, yes, layers, as_json):
    """Analyse a run directory, or a trajectory an engine wrote (ASE .traj or extended XYZ,
    an i-PI input.xml or its folder, a LAMMPS dump with --log log.lammps, TRR/XTC/DCD/NetCDF
    with --topology): drift, angular momentum, equivariance, equipartition, structure."""
    from mdsym.workflows.analyze import analyze_run  # start-up time

    if not no_equivariance:
        check_analysis_cost(degree, yes)
    run = open_source(path, source_format, log, topology, timestep_fs, stride, units, elements, model)
    report = analyze_run(path, out=out, every=every, degree=degree, content=content,
                         equivariance=not no_equivariance, layers=layers, model=model,
                         batch_size=batch_size, run=run)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    folder = out or (path / "analysis" if path.is_dir() else path.with_name(f"{path.stem}-analysis"))
    echo_report(report, path, folder)


def echo_report(report, path, folder):
    """The figures of ``report`` on the terminal, one line each."""
    from mdsym.reports.formatting import g as _g  # start-up time

    for warning in report.get("warnings", []):
        click.echo(f"WARNING: {warning}", err=True)
    click.echo(f"{path}: status {report['status']}, {report['frames']} frames, {report['n_atoms']} atoms")
    source = report.get("source") or {}
    if source.get("kind") not in (None, "mdsym"):
        energy = source["energy"]
        click.echo(f"  source: {source['kind']} ({', '.join(source['files'])}); energy: "
                   + (f"{energy['column']} ({energy['kind']})" if energy.get("kind") else "none"))
    for note in report["notes"]:
        click.echo(f"  note: {note}")
    d = report.get("drift")
    if d and d.get("points"):
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
            click.echo(f"  max |L(t)-L(0)| {_g(a['max_dL'], '.4g')} amu A^2/ps, max |torque| "
                       f"{_g(a['torque_max_eV'])} eV" + (f" ({a['source']})" if a.get("source") else ""))
            if a.get("thermostat_note"):
                click.echo(f"  ({a['thermostat_note']})")
        click.echo(f"  max |net force| {_g(a['net_force_max_eVA'])} eV/A")
    e = report.get("equivariance", {})
    if "A_forces" in e:
        line = f"  mean A: energy {e['A_energy']['mean']:.3g} eV, forces {e['A_forces']['mean']:.3g} eV/A"
        if "A_forces_sym" in e:
            line += f"; symmetrized: {e['A_energy_sym']['mean']:.3g} eV, {e['A_forces_sym']['mean']:.3g} eV/A"
        click.echo(line)
    hl = report.get("hidden_layers", {})
    if "first" in hl:
        from mdsym.analysis.hidden_layers import summary_lines  # start-up time

        click.echo("\n".join("  " + line for line in summary_lines(hl["first"])))
    click.echo(f"  report: {Path(folder) / 'report.md'}")
