"""``mdsym run``: one entry point for both engines, and the run.json bookkeeping.

``run_md(config, out)`` starts a run directory, ``resume_md(out)`` continues one;
both record the configuration, the seed, package versions, every segment's wall
time and steps/s, and the final status in ``run.json``.
"""

import datetime
import importlib.metadata
import platform
from pathlib import Path

import click

from ..errors import MdsymError
from ..rundir import THERMO_UNITS, RunDirectory
from ..symmetrize import SymmetrizeSpec
from ..system import read_structure

ENGINES = ("ase", "ipi")
DEFAULT_TIMESTEP_FS = 0.5  # ``mdsym run --timestep``; every engine's fallback
PACKAGES = ("mdsym", "ase", "numpy", "scipy", "torch", "vesin", "metatomic-torch", "ipi", "MDAnalysis")


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


def validate(config: dict) -> dict:
    """Check a run configuration before anything starts; one clear line per problem."""
    if config.get("engine") not in ENGINES:
        raise MdsymError(f"unknown engine {config.get('engine')!r}: use ase or ipi")
    if int(config.get("steps", 0)) < 0:
        raise MdsymError("--steps must be >= 0")
    if float(config.get("timestep_fs", 0)) <= 0:
        raise MdsymError("--timestep must be positive")
    if int(config.get("stride", 1)) < 1:
        raise MdsymError("--stride must be >= 1")
    if config.get("ensemble") == "nvt" and not config.get("temperature_K"):
        raise MdsymError("nvt needs a positive --temperature")
    if config["engine"] == "ase" and (int(config.get("beads") or 1) > 1
                                      or int(config.get("drivers") or 1) > 1):
        raise MdsymError("--beads and --drivers are options of the i-PI engine: "
                         "add --engine ipi (the ASE engine runs classical MD in this process)")
    spec = SymmetrizeSpec.parse(config.get("symmetrize"))
    if spec.mts_interval and config["engine"] != "ase":
        raise MdsymError(f"mts:{spec.mts_interval} (multiple time stepping) runs in the ASE engine "
                         "only: use --engine ase")
    if spec.mts_direct and config.get("forces") == "conservative":
        raise MdsymError("mts:K:direct runs the direct forces inside and the conservative ones "
                         "outside: drop --forces conservative")
    config["symmetrize"] = str(spec)
    return config


def _engine(name):
    if name == "ase":
        from .ase_md import run_ase

        return run_ase
    from .ipi_md import run_ipi

    return run_ipi


def run_md(config: dict, out, progress=None, overwrite: bool = False) -> dict:
    """Start a new run in ``out`` and carry it to its end (or failure)."""
    config = validate(dict(config))
    atoms = read_structure(config["structure"])
    from ..models import load_model
    from ..models.devices import dtype_name
    from ..system import System

    system = System.from_atoms(atoms)
    model = load_model(config["model"], forces=config.get("forces") or "auto",
                       device=config.get("device"), dtype=config.get("dtype"))
    model.check_system(system)
    if model.dtype is not None:  # the precision it runs in, also when resumed or analysed
        config["dtype"] = dtype_name(model.dtype)
    if SymmetrizeSpec.parse(config["symmetrize"]).remove_net_torque and system.periodic:
        raise MdsymError("nettorque applies to isolated systems only (the structure is periodic)")
    if config["engine"] == "ipi":
        from ..processes import command_for

        command_for("i-pi")  # no i-PI: one line now, before a run directory exists
    rundir = RunDirectory(out)
    rundir.create(atoms, overwrite=overwrite)
    config["source_structure"] = str(config["structure"])
    config["structure"] = str(rundir.structure)
    info = {"config": config, "seed": config.get("seed", 0), "versions": versions(),
            "thermo_units": THERMO_UNITS, "status": "running", "segments": [],
            "started": now(), "host": platform.node()}
    rundir.write_info(info)
    return _run_segment(rundir, info, resume=False, progress=progress)


def resume_md(out, steps=None, progress=None) -> dict:
    """Continue an interrupted, failed-by-interrupt or finished run; ``steps`` extends it."""
    rundir = RunDirectory(out)
    info = rundir.read_info()
    config = info["config"]
    if steps is not None:
        if steps < config["steps"]:
            raise MdsymError(f"--steps {steps} is shorter than the run's {config['steps']} steps")
        config["steps"] = int(steps)
    # the run's own copy of the structure, wherever the run is resumed from
    config["structure"] = str(rundir.structure)
    if info.get("status") == "failed":
        raise MdsymError(f"the run in {out} failed ({info.get('reason')}): a failed stability "
                         "test is not resumed; start a new run")
    info["status"] = "running"
    rundir.write_info(info)
    return _run_segment(rundir, info, resume=True, progress=progress)


def _run_segment(rundir, info, resume, progress) -> dict:
    config = info["config"]
    for earlier in info["segments"]:
        if earlier.get("status") == "running":  # its process was killed
            earlier["status"] = "killed"
    segment = {"started": now(), "resume": resume, "status": "running"}
    info["segments"].append(segment)
    rundir.write_info(info)
    try:
        result = _engine(config["engine"])(config, rundir, resume=resume, progress=progress)
    except BaseException as error:
        info["status"] = "failed" if isinstance(error, MdsymError) else "interrupted"
        info["reason"] = str(error) or type(error).__name__
        segment.update(status=info["status"], reason=info["reason"], finished=now())
        rundir.write_info(info)
        raise
    segment.update(result)
    segment["finished"] = now()
    info["status"] = result["status"]
    info["reason"] = result.get("reason")
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


class Progress:
    """A click progress bar fed with (step, total)."""

    def __init__(self, total, start=0, enabled=True):
        self.bar = click.progressbar(length=total, label="MD", show_pos=True,
                                     show_eta=True, file=None) if enabled else None
        self.position = start
        if self.bar is not None:
            self.bar.__enter__()
            self.bar.update(start)

    def __call__(self, step, total):
        if self.bar is not None and step > self.position:
            self.bar.update(step - self.position)
            self.position = step

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
