"""``run_study``: the showcase. Raw vs symmetrized dynamics of one model, analysed and compared.

For one model and structure it runs, with several seeds each:

- ``none``: the raw model;
- ``random``: one random rotation of O(3) per step;
- ``nettorque``: the raw model with its net torque removed (isolated systems);
- ``o3:L1`` and ``o3:L2``: grid symmetrization at two degrees;

then analyses every run (``analyze_run``) and compares them all in one report
(``compare_runs``) whose reference is the ``o3:L2`` run of the first seed.

The runs go through ``mdsym.engines.run.run_md`` (what ``mdsym run`` calls), with
the ASE engine unless ``engine="ipi"`` is asked for.
Runs already completed in ``out`` are reused, so a study can be resumed.
"""

from pathlib import Path

from ..errors import MdsymError
from ..rundir import RunDirectory

DEFAULT_MODEL = "analytic:vector1=0.05,vector3=0.02"
DEFAULT_SPECS = ("none", "random", "nettorque", "o3:1", "o3:3")


def run_one(config: dict, path) -> Path:
    """Run one MD simulation into ``path`` (skipped when a completed run is there).

    A run that fails (a stability monitor trips) is kept: its analysis says so."""
    rundir = RunDirectory(path)
    if rundir.info.exists() and rundir.read_info().get("status") == "completed":
        return rundir.path
    try:
        from ..engines.run import run_md  # ``mdsym run``: writes run.json itself
    except ImportError:
        run_md = None
    try:
        if run_md is not None:
            run_md(config, rundir.path, overwrite=True)
        else:
            _run_ipi(config, rundir)
    except MdsymError as error:
        if not rundir.info.exists():
            raise
        info = rundir.read_info()
        if info.get("status") != "failed":
            info.update(status="failed", reason=str(error))
            rundir.write_info(info)
    return rundir.path


def _run_ipi(config, rundir):
    """Fallback without ``mdsym.engines.run``: i-PI directly, run.json written here."""
    from ..engines.ipi_md import run_ipi
    from ..system import read_structure

    config = dict(config, engine="ipi")
    rundir.create(read_structure(config["structure"]), overwrite=True)
    info = {"config": config, "status": "running"}
    rundir.write_info(info)
    result = run_ipi(config, rundir)
    rundir.write_info({**info, **(result or {}), "config": config})


def run_study(out, model: str = DEFAULT_MODEL, structure=None, specs=DEFAULT_SPECS, seeds=(0, 1, 2),
              steps: int = 500, timestep_fs: float = 2.0, temperature_K: float = 300.0, stride: int = 5,
              every=None, degree: int = 2, engine: str = "ase", progress=print) -> dict:
    """Run, analyse and compare the study; returns ``compare_runs``' result."""
    from ..commands_common import DEFAULT_STRUCTURE
    from .compare import compare_runs
    from .report import analyze_run

    out = Path(out)
    structure = str(structure or DEFAULT_STRUCTURE)
    paths = []
    for spec in specs:
        for seed in seeds:
            path = out / "runs" / f"{spec.replace(':', '').replace('+', '_')}-seed{seed}"
            config = {"engine": engine, "model": model, "symmetrize": spec, "forces": "auto", "ensemble": "nve",
                      "timestep_fs": timestep_fs, "steps": steps,
                      "temperature_K": temperature_K, "seed": seed, "stride": stride,
                      "structure": structure}
            if progress:
                progress(f"run {path.name}")
            run_one(config, path)
            analyze_run(path, every=every, degree=degree)
            paths.append(path)
    reference = next((p for p in paths if p.name.startswith(specs[-1].replace(":", ""))), paths[0])
    result = compare_runs(paths, out=out, reference=reference, every=every, degree=degree)
    result["plots"].append(plot_study(result, out))
    from .compare import markdown

    (out / "comparison.md").write_text(markdown(result))
    return result


def plot_study(result: dict, out: Path) -> str:
    """One bar per symmetrization, mean and spread over seeds, of the key figures."""
    import numpy as np

    from .report import _pyplot

    plt = _pyplot()
    specs = list(dict.fromkeys(row["symmetrize"] for row in result["runs"]))
    for row in result["runs"]:
        sym = row.get("mean_A_forces_sym")
        row["A_driving"] = max(sym, 1e-16) if sym is not None else row.get("mean_A_forces")
    panels = (("drift_meV_atom_ps", "|energy drift| (meV/atom/ps)", True),
              ("max_dL", "max |L(t) - L(0)| (amu A$^2$/ps)", True),
              ("A_driving", "mean A of the forces that drove the run (eV/A)", True),
              ("steps_per_s", "speed (steps/s)", False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, (key, title, log) in zip(axes, panels):
        values = [[abs(r[key]) for r in result["runs"] if r["symmetrize"] == spec
                   and isinstance(r.get(key), (int, float)) and np.isfinite(r[key])] for spec in specs]
        means = [np.mean(v) if v else np.nan for v in values]
        ax.bar(range(len(specs)), means, color=[f"C{k}" for k in range(len(specs))])
        for k, v in enumerate(values):
            ax.plot([k] * len(v), v, "k.", ms=5)
        ax.set_xticks(range(len(specs)), specs, rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
        if log and np.nanmin(np.where(np.isfinite(means), means, np.nan), initial=np.inf) > 0:
            ax.set_yscale("log")
    fig.suptitle("Raw vs symmetrized dynamics (bars: mean over seeds, dots: each seed)")
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=110)
    plt.close(fig)
    return "study.png"
