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
    ax.set(xlabel="time (ps)", ylabel="|net force| (eV/A)" + ("" if periodic else ", |torque| (eV)"),
           title="Net force and torque" if not periodic else "Net force (periodic: L not conserved)")
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
    t = series["T_time_ps"] if "T_time_ps" in series else series["am_time_ps"]
    fig, ax = plt.subplots(figsize=(7, 4))
    window = max(1, len(t) // 10)
    for k, key in enumerate(k for k in temps if k != "T_time_ps"):
        values = np.asarray(series[key], float)
        ax.plot(t, values, lw=0.5, alpha=0.3, color=f"C{k}")
        ax.plot(t, running_mean(values, window), lw=1.5, color=f"C{k}", label=key[2:])
    ax.set(xlabel="time (ps)", ylabel="T (K)",
           title=f"Kinetic temperatures (equipartition): running mean over {window} frames")
    if report.get("config", {}).get("beads", 1) > 1:
        ax.set_title(ax.get_title() + f"\nper bead ({report['config']['beads']} beads): T/P each", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig, "equipartition.png"


def _structure(plt, report, series):
    st = report.get("structure", {})
    if st.get("kind") == "rdf":
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ax.plot(st["bins"], st["rdf"], lw=1)
        ax.set(xlabel="r (A)", ylabel="g(r)", title="Radial distribution function, all atom pairs")
        return fig, "structure.png"
    if st.get("kind") == "bonds":
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, key, unit, title in ((axes[0], "bond", "A", "Bond lengths"),
                                     (axes[1], "angle", "deg", "Bond angles")):
            bins, hist = np.asarray(st[f"{key}_bins"]), np.asarray(st[f"{key}_hist"])
            ax.plot(bins, hist, lw=1)
            ax.set(xlabel=f"{'bond length' if key == 'bond' else 'angle'} ({unit})",
                   ylabel=f"probability density (1/{unit})", title=title, xlim=data_range(bins, hist))
        return fig, "structure.png"
    return None


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last ``window`` values at each point (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(len(values)) + 1 - counts]) / counts


def data_range(bins: np.ndarray, hist: np.ndarray) -> tuple:
    """The span of the bins that hold data, with a margin of a tenth of it (the whole
    axis when none do)."""
    filled = np.flatnonzero(hist > 0)
    if not len(filled):
        return float(bins[0]), float(bins[-1])
    low, high = float(bins[filled[0]]), float(bins[min(filled[-1] + 1, len(bins) - 1)])
    margin = 0.1 * (high - low) or 1.0
    return low - margin, high + margin
