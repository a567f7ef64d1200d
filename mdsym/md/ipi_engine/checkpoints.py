"""i-PI's checkpoints and a run's segments: where a resume or a recovery continues from.

i-PI writes, per segment ``K`` (``segK.*``, one segment per start, resume or
recovery), ``segK.RESTART`` every ``checkpoint_stride`` steps and ``RESTART`` when
it exits; ``checkpoint_step`` reads the step one was written at (-1 when a kill cut
it short), ``latest_checkpoint`` finds the newest readable one, ``segments`` the
segments written so far. ``continue_from_checkpoint`` converts what the last
segment wrote up to the newest checkpoint, cuts the run directory back to it (no
step twice) and returns it; i-PI counts outer steps under ``mts:K``.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

from mdsym.core.errors import MdsymError
from mdsym.md.ipi_engine.prepare import IpiRun
from mdsym.md.ipi_engine.steps import StepWriter, last_whole_step, segment_reader


def checkpoint_step(path) -> int:
    """The step an i-PI checkpoint was written at, or -1 if it cannot be read (a
    checkpoint cut short by a kill)."""
    try:
        return int(ET.parse(path).getroot().find("step").text)
    except (ET.ParseError, AttributeError, ValueError, OSError):
        return -1


def latest_checkpoint(workdir: Path):
    """``(step, path)`` of i-PI's newest readable checkpoint: ``segK.RESTART`` (periodic)
    or ``RESTART`` (written when i-PI exits); ``(None, None)`` if there is none."""
    files = list(workdir.glob("seg*.RESTART")) + [workdir / "RESTART"]
    found = [(checkpoint_step(f), f) for f in files if f.exists()]
    found = [c for c in found if c[0] >= 0]
    return max(found, key=lambda c: c[0]) if found else (None, None)


def segments(workdir: Path) -> list:
    return sorted(int(f.name[3:].split(".")[0]) for f in workdir.glob("seg*.thermo"))


def continue_from_checkpoint(run: IpiRun, writer: StepWriter, reader=None) -> tuple:
    """Write what the last segment wrote up to i-PI's newest checkpoint, cut the run
    directory back to it, and return ``(step, path)`` of the checkpoint."""
    step, path = latest_checkpoint(run.workdir)
    if step is None:
        raise MdsymError(f"cannot continue {run.rundir.path}: no i-PI checkpoint in {run.workdir}")
    step *= run.interval  # i-PI counts outer steps
    writer.cut_back(last_whole_step(run.rundir, run.stride))  # written again below
    done = segments(run.workdir)
    if reader is None and done:
        reader = segment_reader(run, f"seg{done[-1]}")
    if reader is not None and writer.last < step:
        writer.write(reader.poll(), up_to=step)
    writer.cut_back(step)
    return step, path
