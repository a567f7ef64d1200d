"""The plots of one analysed run (``make_plots``): one PNG per figure that applies,
drawn from ``analysis.json``'s content and the series of ``series.npz``."""

from pathlib import Path

import numpy as np

from mdsym.reports.formatting import pyplot, sector_label
from mdsym.reports.plots import plot_heatmap


def make_plots(report: dict, series: dict, out: Path) -> list:
    """Write ``energy.png``, ``angular_momentum.png``, ``equivariance.png``,
    ``content.png``, ``equipartition.png``, ``structure.png`` and ``hidden_layers.png``
    (those that apply) into ``out``; returns their names."""
    plt = pyplot()
    made = []
    for draw in (_energy, _angular_momentum, _equivariance, _content, _equipartition, _structure):
        drawn = draw(plt, report, series)
        if drawn is None:
            continue
        fig, name = drawn
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)
    hl = report.get("hidden_layers", {})
    if "first" in hl:
        plot_heatmap(hl["first"]["layers"], out / "hidden_layers.png",
                     f"Symmetry content of the layers of {hl['first']['model']} (first frame)")
        made.append("hidden_layers.png")
    return made


def _energy(plt, report, series):
    if not ("conserved_eV" in series and len(series["conserved_eV"])):
        return None
    n = report["n_atoms"]
    t, e = series["thermo_time_ps"], series["conserved_eV"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(t, (e - e[0]) * 1000 / n, lw=1, label="conserved")
    d = report["drift"]
    if np.isfinite(d["slope_meV_atom_ps"]):
        axes[0].plot(t, (d["intercept_eV"] - e[0]) * 1000 / n + d["slope_meV_atom_ps"] * (t - t[0]),
                     "k--", lw=1, label=f"fit {d['slope_meV_atom_ps']:.3g} meV/atom/ps")
    axes[0].set(xlabel="time (ps)", ylabel="E - E(0) (meV/atom)", title="Conserved energy")
    axes[0].legend(fontsize=8)
    axes[1].plot(t, series["kinetic_eV"], lw=1, label="kinetic")
    axes[1].plot(t, series["potential_eV"] - series["potential_eV"][0], lw=1, label="potential - V(0)")
    axes[1].set(xlabel="time (ps)", ylabel="eV", title="Kinetic and potential energy")
    axes[1].legend(fontsize=8)
    return fig, "energy.png"


def _angular_momentum(plt, report, series):
    if not ("am_time_ps" in series and len(series["am_time_ps"])):
        return None
    t = series["am_time_ps"]
    periodic = "am_dL" not in series
    fig, axes = plt.subplots(1, 1 if periodic else 2, figsize=(5 if periodic else 10, 3.6), squeeze=False)
    axes = axes[0]
    if not periodic:
        axes[0].plot(t, series["am_dL"], lw=1)
        axes[0].set(xlabel="time (ps)", ylabel="|L(t) - L(0)| (amu A$^2$/ps)",
                    title="Angular momentum about the centre of mass")
    ax = axes[-1]
    ax.plot(t, series["am_net_force"], lw=1, label="|net force| (eV/A)")
    if not periodic:
        ax.plot(t, series["am_torque"], lw=1, label="|torque| (eV)")
    ax.set(xlabel="time (ps)", title="Net force and torque" if not periodic else
           "Net force (periodic: L not conserved)")
    ax.legend(fontsize=8)
    return fig, "angular_momentum.png"


def _equivariance(plt, report, series):
    if not ("eq_A_forces" in series and len(series["eq_A_forces"])):
        return None
    t = series["eq_time_ps"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, unit in ((axes[0], "energy", "eV"), (axes[1], "forces", "eV/A")):
        ax.semilogy(t, np.maximum(series[f"eq_A_{key}"], 1e-16), "o-", ms=3, label="raw model")
        if f"eq_A_{key}_sym" in series:
            ax.semilogy(t, np.maximum(series[f"eq_A_{key}_sym"], 1e-16), "s-", ms=3,
                        label=f"symmetrized [{report['config'].get('symmetrize')}]")
        ax.set(xlabel="time (ps)", ylabel=f"A ({unit})", title=f"Equivariance error of the {key}")
        ax.legend(fontsize=8)
    return fig, "equivariance.png"


def _content(plt, report, series):
    if not ("eq_B_forces" in series and len(series["eq_B_forces"])):
        return None
    eq = report.get("equivariance", {})
    t = series["eq_time_ps"]
    labels = [sector_label(s) for s in eq["sectors"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in ((axes[0], "energy"), (axes[1], "forces")):
        B = np.asarray(series[f"eq_B_{key}"])
        expected = (0, 1) if key == "energy" else (1, 1)
        for j, label in enumerate(labels):
            if tuple(eq["sectors"][j]) == expected:
                ax.semilogy(t, np.maximum(1.0 - B[:, j], 1e-16), "k-", lw=2, label=f"1 - B{label}")
            elif B[:, j].max() > 1e-12:
                ax.semilogy(t, np.maximum(B[:, j], 1e-16), lw=1, label=f"B{label}")
        ax.set(xlabel="time (ps)", ylabel="fraction", title=f"Symmetry content of the {key}")
        ax.legend(fontsize=7, ncol=2)
    return fig, "content.png"


def _equipartition(plt, report, series):
    temps = [k for k in series if k.startswith("T_")]
    if not temps:
        return None
    t = series["am_time_ps"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key in temps:
        ax.plot(t, series[key], lw=1, label=key[2:])
    ax.set(xlabel="time (ps)", ylabel="T (K)", title="Kinetic temperatures (equipartition)")
    ax.legend(fontsize=8)
    return fig, "equipartition.png"


def _structure(plt, report, series):
    st = report.get("structure", {})
    if st.get("kind") == "rdf":
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(st["bins"], st["rdf"], lw=1)
        ax.set(xlabel="r (A)", ylabel="g(r)", title="Radial distribution function")
        return fig, "structure.png"
    if st.get("kind") == "bonds":
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].plot(st["bond_bins"], st["bond_hist"], lw=1)
        axes[0].set(xlabel="bond length (A)", ylabel="density", title="Bond lengths")
        axes[1].plot(st["angle_bins"], st["angle_hist"], lw=1)
        axes[1].set(xlabel="angle (deg)", ylabel="density", title="Bond angles")
        return fig, "structure.png"
    return None
