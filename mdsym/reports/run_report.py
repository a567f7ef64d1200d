"""``report.md`` of one analysed run (``markdown``): the run's settings and notes, then
one section per analysis that applies, each with its plot (``mdsym.reports.run_plots``)."""

from mdsym.analysis.hidden_layers import table_lines
from mdsym.reports.formatting import g, sector_label


def markdown(report: dict) -> str:
    """The page ``report.md`` of an ``analyze_run`` result."""
    lines = _header(report)
    for section in (_drift, _field, _angular_momentum, _equivariance, _equipartition, _structure,
                    _hidden_layers):
        lines += section(report)
    return "\n".join(lines) + "\n"


def _header(report: dict) -> list:
    config = report.get("config", {})
    lines = [f"# mdsym analysis of `{report['run']}`", ""]
    for warning in report.get("warnings", []):
        lines += [f"**Warning:** {warning}.", ""]
    lines.append(f"- status: **{report['status']}**"
                 + (f" ({report['reason']})" if report.get("reason") else ""))
    if report.get("time_to_failure_fs") is not None:
        lines.append(f"- time to failure: {g(report['time_to_failure_fs'])} fs")
    for key in ("model", "symmetrize", "forces", "engine", "ensemble", "thermostat", "timestep_fs",
                "steps", "temperature_K", "seed", "stride", "structure"):
        if key in config:
            lines.append(f"- {key}: `{config[key]}`")
    lines.append(f"- atoms: {report['n_atoms']} ({'periodic' if report['periodic'] else 'isolated'}),"
                 f" frames analysed: {report['frames']}"
                 + (f", {report['time_span_ps'][0]:.4g} to {report['time_span_ps'][1]:.4g} ps"
                    if report.get("time_span_ps") else ""))
    if report.get("steps_per_s") is not None:
        lines.append(f"- speed: {g(report['steps_per_s'])} steps/s")
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    return lines


def _drift(report: dict) -> list:
    d = report.get("drift")
    if not d:
        return []
    lines = ["", "## Energy drift", "",
             "| slope (meV/atom/ps) | drift over run / std(K) | max deviation (meV/atom) | duration (ps) |",
             "|---|---|---|---|",
             f"| {g(d['slope_meV_atom_ps'])} | {g(d['ratio'])} | {g(d['max_deviation_meV_atom'])} "
             f"| {g(d['duration_ps'])} |"]
    if d.get("ensemble") and str(d["ensemble"]).lower() == "nvt":
        lines.append("\nNVT: the conserved quantity includes the thermostat's exchanged energy.")
    if d.get("rows", "every step") != "every step":
        lines.append(f"\nMultiple time stepping: fitted on the {d['rows']}, where the conserved "
                     "quantity is the symmetrized model's total energy.")
    lines.append("\n![energy](energy.png)")
    return lines


def _field(report: dict) -> list:
    return field_markdown(report.get("field"))


def _angular_momentum(report: dict) -> list:
    a = report.get("angular_momentum")
    if not a:
        return []
    lines = ["", "## Angular momentum, torque, net force", ""]
    if a.get("conserved"):
        lines += ["| max \\|L(t)-L(0)\\| (amu A²/ps) | \\|L(0)\\| | drift rate (amu A²/ps²) | max \\|torque\\| (eV) "
                  "| max \\|net force\\| (eV/A) |", "|---|---|---|---|---|",
                  f"| {g(a['max_dL'])} | {g(a['L0_norm'])} | {g(a['drift_rate'])} | {g(a['torque_max_eV'])} "
                  f"| {g(a['net_force_max_eVA'])} |"]
        if a.get("thermostat_note"):
            lines.append(f"\n{a['thermostat_note']}.")
        if a.get("source"):
            lines.append(f"\nFrom {a['source']}" + (
                f"; from the frames ({a['frames']['source']}): max |L(t)-L(0)| {g(a['frames']['max_dL'])}"
                if a.get("frames") else "") + ".")
    else:
        lines += [a["note"] + ".", "", f"max |net force|: {g(a['net_force_max_eVA'])} eV/A, "
                  f"mean {g(a['net_force_mean_eVA'])} eV/A"]
    lines.append("\n![angular momentum](angular_momentum.png)")
    return lines


def _equivariance(report: dict) -> list:
    e = report.get("equivariance")
    if not e or "skipped" in e:
        return []
    lines = ["", "## Equivariance error along the trajectory", "",
             f"Model `{e['model']}`, every {e['every']} frames ({e['frames']} frames), quadrature "
             f"{e['quadrature']['name']} ({e['quadrature']['size']} elements).", "",
             "| quantity | mean | max | first | last |", "|---|---|---|---|---|"]
    for key, unit in (("A_energy", "eV"), ("A_forces", "eV/A"), ("A_energy_sym", "eV"),
                      ("A_forces_sym", "eV/A")):
        if key in e:
            f = e[key]
            lines.append(f"| {key} ({unit}) | {g(f['mean'])} | {g(f['max'])} | {g(f['first'])} | {g(f['last'])} |")
    lines.append("\n![equivariance](equivariance.png)")
    if "B_forces" in e:
        labels = [sector_label(s) for s in e["sectors"]]
        lines += ["", "### Symmetry content (mean over frames)", "",
                  "| output | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for key in ("B_energy", "B_forces"):
            lines.append(f"| {key[2:]} | " + " | ".join(f"{x:.3g}" for x in e[key]["mean"]) + " |")
        lines.append("\n![content](content.png)")
    return lines


def _equipartition(report: dict) -> list:
    q = report.get("equipartition")
    if not q:
        return []
    lines = ["", "## Equipartition (kinetic temperatures)", "", "| degrees of freedom | mean T (K) | "
             "second half (K) |", "|---|---|---|"]
    for key, f in q.items():
        if isinstance(f, dict):
            lines.append(f"| {key} | {g(f['mean_K'], '.1f')} | {g(f['mean_second_half_K'], '.1f')} |")
    beads = report.get("config", {}).get("beads", 1)
    if beads > 1:
        lines.append(f"\nPath-integral run ({beads} beads): the frames hold i-PI's centroid, whose "
                     f"velocities give kinetic temperatures of about T/{beads}, not the system's "
                     "temperature; thermo.csv's temperature_K is i-PI's estimator.")
    lines.append("\n![equipartition](equipartition.png)")
    return lines


def _structure(report: dict) -> list:
    s = report.get("structure")
    if s and s.get("kind") == "bonds":
        return ["", "## Structure", "", f"Bond length {g(s['bond_mean_A'], '.4g')} ± "
                f"{g(s['bond_std_A'], '.2g')} A, mean bond angle {g(s['angle_mean_deg'], '.4g')} deg, "
                f"{g(s['bonds_per_frame'], '.4g')} bonds per frame ({s['frames_used']} frames).",
                "\n![structure](structure.png)"]
    if s and s.get("kind") == "rdf":
        return ["", "## Structure", "", f"Radial distribution function over {s['frames_used']} frames.",
                "\n![structure](structure.png)"]
    return []


def _hidden_layers(report: dict) -> list:
    hl = report.get("hidden_layers")
    if not hl:
        return []
    lines = ["", "## Symmetry content of the hidden layers", ""]
    if "skipped" in hl:
        lines.append(f"Not measured: {hl['skipped']}.")
        return lines
    first, last = hl["first"], hl["last"]
    lines += [f"Model `{first['model']}`, every layer in forward order (node: per atom, edge: "
              f"per neighbour pair), fraction of its squared norm per sector, quadrature "
              f"{first['quadrature']['name']} ({first['quadrature']['size']} elements); "
              f"first frame ({first['frame']}):", ""]
    lines += table_lines(first["layers"], markdown=True)
    lines += ["", f"(0,+) at the last frame ({last['frame']}): "
              + ", ".join(f"`{layer['layer']}` {layer['B'][0]['fraction']:.4g}"
                          for layer in last["layers"]) + ".",
              "\n![hidden layers](hidden_layers.png)"]
    return lines


def field_markdown(field) -> list:
    """The public audits' figures (``field_scores.of_run``) as a markdown section."""
    if not field:
        return []
    if "skipped" in field:
        return ["", "## Figures of the public audits", "", f"Not computed: {field['skipped']}."]
    nve, nv, st = field["mlipaudit_nve"], field["nvalchemi"], field["mlipaudit_stability"]
    lines = ["", "## Figures of the public audits", "",
             "Definitions and sources: `mdsym/analysis/field_scores.py`"
             + (" (NVT: over the thermostat's conserved quantity)." if field.get("ensemble") == "nvt" else "."),
             "", "| figure | value |", "|---|---|",
             f"| MLIP Audit NVE: drift / std(K) | {g(nve['ratio'])} |",
             f"| MLIP Audit NVE score (0-1) | {g(nve['score'])} |",
             f"| ml-peg drift (meV/atom/ps) | {g(field['mlpeg_drift_meV_atom_ps'])} |",
             f"| nvalchemi drift (eV/atom/ns, fitted) | {g(nv['energy_drift_per_atom_per_ns'])} |",
             f"| nvalchemi RMS fluctuation about the fit (eV/atom) | {g(nv['energy_fluctuation_per_atom'])} |",
             f"| nvalchemi max excursion (eV/atom) | {g(nv['max_energy_excursion_per_atom'])} |",
             f"| nvalchemi first divergence step | {nv['first_divergence_step'] if nv['first_divergence_step'] is not None else 'none'} |",
             f"| nvalchemi max momentum drift (amu A/ps) | {g(nv['max_momentum_drift'])} |"]
    if "score" in st:
        lines += [f"| MLIP Audit explosion frame / H detachment frame | {st['explosion_frame']} / "
                  f"{st['hydrogen_drift_frame']} (of {st['expected_frames']} expected frames) |",
                  f"| MLIP Audit stability score (0-1) | {g(st['score'])}"
                  + (" (stopped by mdsym's monitors)" if st["stopped_by_mdsym"] else "") + " |"]
    return lines
