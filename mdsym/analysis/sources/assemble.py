"""``finish``: what a format's reader found (``common.Opened``) as the ``RunData``
that mdsym's analyses read, with its ``source`` block, notes and thermo table; and
``analysis_config``, the ``RunConfig`` the analyses of a foreign trajectory run under.

Times. A frame's time is the file's when the file has one per frame (strictly
increasing); else the step times the time step (the file's, or ``--timestep``), the
step being the file's or the frame index times ``--stride``; never guessed: without
either, one line asks for ``--timestep``.
"""

import numpy as np
from ase import Atoms

from mdsym.analysis.sources.common import Opened, SourceOptions, summarize
from mdsym.analysis.trajectory import FrameArrays, RunData
from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.md.thermo import THERMO_COLUMNS

#: why a foreign trajectory analysed without ``--model`` has no A
NO_MODEL = ("the trajectory does not name the model that drove it: give --model (the model you "
            "ran) to measure A along it")
NO_VELOCITIES = ("no kinetic energy, no L(t) and no equipartition (L is not differenced from "
                 "positions: strided frames and, in XTC, 1e-3 nm precision are too coarse)")


class Adjust:
    """An MDAnalysis transformation: velocities and forces to MDAnalysis' units
    (Angstrom/ps, kJ/mol/Angstrom) by constant factors, and frame times set by mdsym
    (``times``, ps) when the file has none."""

    def __init__(self, velocity_factor=1.0, force_factor=1.0):
        self.velocity_factor, self.force_factor, self.times = velocity_factor, force_factor, None

    def __call__(self, ts):
        if ts.has_velocities and self.velocity_factor != 1.0:
            ts.velocities = ts.velocities * self.velocity_factor
        if ts.has_forces and self.force_factor != 1.0:
            ts.forces = ts.forces * self.force_factor
        if self.times is not None and ts.frame < len(self.times):
            ts.time = self.times[ts.frame]
        return ts


def adjust(universe, velocity_factor=1.0, force_factor=1.0) -> Adjust:
    """Attach the one ``Adjust`` of a universe (MDAnalysis takes transformations once)."""
    transformation = Adjust(velocity_factor, force_factor)
    universe.trajectory.add_transformations(transformation)
    return transformation


def frame_steps_and_times(opened: Opened, summary, options: SourceOptions, where: str):
    """``(steps, times_fs, timestep_fs, stride, recomputed)`` of the frames."""
    n = len(summary.step)
    steps, times = summary.step, summary.columns["time_fs"]
    stride = options.stride or opened.extra.get("stride")
    known_steps = n > 0 and np.all(steps >= 0) and (n == 1 or np.all(np.diff(steps) > 0))
    if not known_steps:
        steps = np.arange(n, dtype=np.int64) * (stride or 1)
    elif stride is None and n > 1:
        stride = int(np.min(np.diff(steps)))
    timestep = opened.timestep_fs or options.timestep_fs
    good_times = n > 0 and np.all(np.isfinite(times)) and (n == 1 or np.all(np.diff(times) > 0))
    if good_times and known_steps and not opened.timestep_fs and n > 1:
        per_step = (times[-1] - times[0]) / (steps[-1] - steps[0])
        if options.timestep_fs and abs(per_step - options.timestep_fs) > 1e-6 * per_step:
            opened.notes.append(f"--timestep {options.timestep_fs:g} fs differs from the "
                                f"{per_step:.6g} fs per step of {where}'s own times: those are used")
        timestep = per_step
    if good_times:
        return steps, times, float(timestep) if timestep else None, stride or 1, False
    if not timestep:
        raise MdsymError(f"{where} gives no time between frames: give --timestep FS "
                         "(the MD time step; --stride N when frames are N steps apart)")
    return steps, steps * float(timestep), float(timestep), stride or 1, True


def energy_table(opened: Opened, summary, steps, times, where) -> dict:
    """thermo.csv's columns: the engine's energy rows, or one row per frame."""
    frame_columns = dict(summary.columns, step=steps.astype(float), time_fs=times)
    rows = opened.energies
    if rows is not None and len(rows["step"]) and len(steps):
        first, last = float(np.min(rows["step"])), float(np.max(rows["step"]))
        if steps[0] < first or steps[-1] > last:
            opened.notes.append(
                f"{opened.energy.get('file')}'s steps ({first:g} to {last:g}) do not match the "
                f"frames' (steps {steps[0]} to {steps[-1]}): its energies are not used")
            opened.energy.update(column=None, file=None, kind=None,
                                 why_not="the energy file's steps do not match the frames")
            rows = None
    if rows is None:
        return frame_columns
    table = {name: np.full(len(rows["step"]), np.nan) for name in THERMO_COLUMNS}
    table.update({name: np.asarray(values, float) for name, values in rows.items() if name in table})
    at = {int(s): k for k, s in enumerate(rows["step"])}
    for k, step in enumerate(steps):
        row = at.get(int(step))
        if row is not None:
            for name in THERMO_COLUMNS[5:18]:  # the mechanics of the frame
                table[name][row] = frame_columns[name][k]
    return table


def conserved_column(opened: Opened, table, where) -> None:
    """``conserved_eV``: the engine's conserved quantity, its total energy in NVE, or NaN
    with ``why_not``."""
    energy = opened.energy
    if energy.get("kind") in ("total", "conserved") and np.isfinite(table["conserved_eV"]).any():
        return
    total = table["potential_eV"] + table["kinetic_eV"]
    if not np.isfinite(total).any():
        missing = "potential energy" if not np.isfinite(table["potential_eV"]).any() else "velocities"
        energy.setdefault("why_not", f"{where} has no {missing}"
                          + (" (give --model to re-evaluate the potential)" if missing ==
                             "potential energy" else ""))
        energy["kind"] = None
        return
    if opened.ensemble not in (None, "nve"):
        energy.setdefault("why_not", f"an {opened.ensemble.upper()} run's total energy is not "
                          "conserved and the file records no thermostat work")
        energy["kind"] = None
        return
    table["conserved_eV"] = total
    energy.update(kind="total", why_not=None)
    if opened.ensemble is None:
        opened.notes.append(f"{where} does not say its ensemble: the drift is that of the total "
                            "energy, conserved in NVE only")


def finish(opened: Opened, options: SourceOptions, model=None, arrays=False) -> RunData:
    """The ``RunData`` of ``opened`` (see the module docstring)."""
    where = str(opened.path)
    if opened.n_frames == 0:
        raise MdsymError(f"{where} holds no whole frame: nothing to analyse")
    summary = summarize(opened, model)
    bad = np.flatnonzero(~summary.finite)
    if bad.size and bad[0] == 0:
        raise MdsymError(f"{where}: the first frame has NaN or infinite coordinates: nothing to analyse")
    n = int(bad[0]) if bad.size else opened.n_frames
    if bad.size:
        opened.notes.append(f"{where}: frame {n} (of {opened.n_frames}) has NaN or infinite "
                            f"coordinates: analysed the {n} frames before it")
        for name in list(summary.columns):
            summary.columns[name] = summary.columns[name][:n]
        summary.step, summary.velocities = summary.step[:n], summary.velocities[:n]
        summary.forces = summary.forces[:n]
    steps, times, timestep, stride, recomputed = frame_steps_and_times(opened, summary, options, where)
    if recomputed:
        opened.extra["adjust"].times = times / 1000.0
    table = energy_table(opened, summary, steps, times, where)
    if model is not None and opened.energies is None:
        opened.energy.update(column=f"potential of {model.name} re-evaluated at each frame + kinetic "
                             "energy of the velocities", file=None)
    conserved_column(opened, table, where)
    if not summary.velocities.any():
        opened.notes.append(f"{where} has no velocities: {NO_VELOCITIES}")
    elif not summary.velocities.all():
        opened.notes.append(f"{where}: {int((~summary.velocities).sum())} frames lack velocities")
    if opened.energy.get("why_not"):
        opened.notes.append(f"drift not computed: {opened.energy['why_not']}")
    return run_data(opened, summary, table, steps, times, n, timestep, stride, arrays)


def run_data(opened, summary, table, steps, frame_times, n, timestep, stride, arrays) -> RunData:
    universe = opened.universe
    first = universe.trajectory[0]
    atoms = Atoms(symbols=opened.names, positions=np.asarray(first.positions, float),
                  cell=opened.cell if opened.periodic else None, pbc=opened.periodic)
    atoms.set_masses(opened.masses)
    source = {"kind": opened.kind, "files": [str(f) for f in opened.files], "units": opened.units,
              "energy": {key: opened.energy.get(key) for key in ("column", "file", "kind", "why_not")},
              "timestep_fs": timestep, "stride": int(stride),
              "velocities": bool(summary.velocities.all()), "forces": bool(summary.forces.all())}
    config = {"timestep_fs": timestep, "stride": int(stride), "steps": int(steps[-1]),
              "ensemble": opened.ensemble, "thermostat": opened.thermostat,
              "temperature_K": opened.temperature_K, **opened.extra.get("config", {})}
    truncated = any("truncated" in note or "NaN" in note for note in opened.notes)
    info = {"status": "truncated" if truncated else "completed", "config": config}
    empty = np.zeros((0, len(atoms), 3))
    data = RunData(path=opened.path, info=info, atoms=atoms, masses=np.asarray(opened.masses, float),
                   numbers=np.asarray(atoms.numbers), periodic=opened.periodic,
                   time_ps=np.asarray(frame_times[:n], float) / 1000.0,
                   step=np.asarray(steps[:n], dtype=np.int64), positions=empty, velocities=empty, forces=empty,
                   boxes=np.zeros((0, 6)), thermo=table if len(table["step"]) else None,
                   notes=list(opened.notes), universe=universe, n_frames=n, source=source,
                   # a cut file is said first, on the terminal and at the top of the report
                   warnings=[note for note in opened.notes if "truncated" in note or "NaN" in note])
    if arrays:
        r = FrameArrays(universe).run(stop=n).results
        data.positions = r.positions
        data.velocities, data.forces, data.boxes = r.velocities, r.forces, r.boxes
    return data


def analysis_config(run: RunData, model=None) -> RunConfig:
    """The ``RunConfig`` the analyses of a foreign trajectory run under: its time step,
    stride, steps, ensemble and temperature, ``model`` (``--model``) or a placeholder."""
    config = run.config
    ensemble = "nve" if config.get("ensemble") in (None, "nve") else "nvt"
    temperature = config.get("temperature_K")
    if not temperature and run.thermo is not None:
        finite = run.thermo["temperature_K"][np.isfinite(run.thermo["temperature_K"])]
        temperature = float(finite[0]) if len(finite) else None
    return RunConfig(model=str(model) if model is not None else "unknown", ensemble=ensemble,
                     timestep_fs=config.get("timestep_fs") or 1.0, stride=config.get("stride") or 1,
                     steps=max(int(config.get("steps") or 0), 0),
                     temperature_K=temperature if temperature and ensemble == "nvt" else
                     (temperature or 0.0) if ensemble == "nve" else 300.0)


def analysis_folder(run: RunData):
    """Where a run's analysis goes by default: ``RUN/analysis`` for a folder (a run
    directory, an i-PI simulation), ``NAME-analysis`` beside a file."""
    path = run.path
    return path / "analysis" if path.is_dir() else path.with_name(f"{path.stem}-analysis")


def is_foreign(run: RunData) -> bool:
    """Whether ``run`` is a trajectory another engine wrote (not an mdsym run directory)."""
    return (run.source or {}).get("kind") not in (None, "mdsym")


def energy_provenance(run: RunData) -> dict:
    """A foreign trajectory's energy column, or why it has none (``{}`` for a run directory)."""
    if not is_foreign(run):
        return {}
    return {"column": run.source["energy"]["column"], "why_not": run.source["energy"]["why_not"]}


def frames_precision(run: RunData) -> str:
    """What the frames' figures were computed from (analysis.json's ``frames.source``)."""
    if is_foreign(run):
        return "its frames as MDAnalysis holds them (float32)"
    return "trajectory.trr (float32, every stride steps)"
