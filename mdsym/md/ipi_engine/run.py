"""The i-PI engine of ``mdsym run``: i-PI integrates, ``mdsym serve`` clients compute forces.

This module owns ``run_ipi``, the segment loop and the result. ``run_ipi`` prepares
the run (``mdsym.md.ipi_engine.prepare``: unix socket by default, TCP on request,
``mdsym.md.ipi_engine.sockets``), writes each segment's i-PI input
(``mdsym.md.ipi_engine.segment_input``, the XML from ``mdsym.md.ipi_engine.input``),
starts ``i-pi`` in ``RUN/ipi/`` with ``drivers`` ``mdsym serve`` clients
(``mdsym.md.ipi_engine.clients``, ``mdsym.md.ipi_engine.supervisor``), follows i-PI's
output files as they grow (``mdsym.md.ipi_engine.outputs``) and turns them into the
run directory as they appear (``mdsym.md.ipi_engine.steps``): one ``thermo.csv`` row
per step, one ``trajectory.trr`` frame every ``stride`` steps.
With ``beads`` > 1 (path-integral MD) i-PI sends every bead's forces as a separate
request and spreads them over its clients; the run directory holds the centroid.
More clients can join from other hosts over TCP (``mdsym serve --address HOST
--port P``, README).

Segments. i-PI writes, per segment ``K`` (one per start, resume or recovery),
``RUN/ipi/segK.*`` (``mdsym.md.ipi_engine.input.output_files``), its log ``segK.ipi.log``
and one log per client, ``segK.serve{k}.log``. ``--resume`` restarts i-PI from the
newest checkpoint, first converting what the previous segment wrote up to it and
cutting the run directory back to it (no step twice; ``mdsym.md.ipi_engine.checkpoints``). The same happens within a
run when i-PI stalls because a client was lost (``supervisor.IpiProcesses.problem``):
i-PI is stopped (it checkpoints the last step) and continues from there with the
clients left; ``restarts`` in the result says when and why.

Multiple time stepping (``--symmetrize mts:K+SPEC``) runs through i-PI's own
``<nmts>`` (``mdsym.md.ipi_engine.input.multiple_time_step``) with two forcefields on two
sockets: ``mdsym`` (the inner force: the raw model with SPEC's netforce/nettorque
fixes, the model's direct forces under ``mts:K:direct``), served by the
``--drivers`` clients, and ``mdsym-correction`` (the outer force: SPEC minus that,
energy, forces and virial), served by one ``mdsym serve --correction`` client.
The correction's socket is the raw one's unix name with ``-correction``
appended, or, over TCP, the next port (``--port P``: P + 1) or a free one
(``sockets.Socket.correction``).
mdsym's step semantics hold in both engines: ``--timestep`` is the inner step and
``--steps`` counts inner steps, so i-PI runs ``steps / K`` outer steps of ``K dt``
(``--steps`` and ``--stride`` must be multiples of K, ``RunConfig``). i-PI writes
at outer steps only: ``thermo.csv`` has a row per outer step, labelled by its inner
step (``step = K x`` i-PI's step), where the potential is the symmetrized model's
and ``conserved_eV`` its total energy (the physics of ``mdsym.md.mts``). A
restart (resume or stall) starts the raw clients left and a fresh correction client.

Monitors (``mdsym.md.monitors``) are enforced here, on each step as it is converted:
non-finite energy or forces, temperature above ``max_temperature_factor`` times the
target, two atoms closer than ``min_distance_A``, bonds of a molecule broken or
formed. ``mdsym serve`` itself fails (and the run with
it) when the model returns NaN/inf. The run stops at the first trip: every step
up to it is in the run directory, and ``status``/``reason``/``time_to_failure_fs``
say what happened.
"""

import importlib.metadata
import time
from dataclasses import dataclass, field

from mdsym.md.context import RunContext
from mdsym.md.ipi_engine.checkpoints import continue_from_checkpoint, segments
from mdsym.md.ipi_engine.clients import client_commands, clients_left
from mdsym.md.ipi_engine.outputs import SegmentReader
from mdsym.md.ipi_engine.prepare import IpiRun
from mdsym.md.ipi_engine.segment_input import first_input, restart_input
from mdsym.md.ipi_engine.sockets import remove_socket_file
from mdsym.md.ipi_engine.steps import StepWriter, segment_reader
from mdsym.md.ipi_engine.supervisor import IpiProcesses, last_line, terminate_as_interrupt
from mdsym.md.processes import command_for
from mdsym.md.rundir import RunDirectory


def ipi_version() -> str:
    try:
        return importlib.metadata.version("ipi")
    except Exception:
        return "unknown"


@dataclass
class SegmentEnd:
    """How one i-PI process ended: ``kind`` is completed, failed, stalled, stopped
    (i-PI exited before the end) or interrupted."""

    kind: str
    reason: str = None
    clients_left: int = 0
    reader: object = None


def run_segment(run: IpiRun, writer: StepWriter, segment: int, xml: str, clients: int) -> SegmentEnd:
    """Run i-PI once on ``xml`` with ``clients`` local clients, converting as it goes."""
    prefix = f"seg{segment}"
    (run.workdir / f"{prefix}.input.xml").write_text(xml)
    reader = segment_reader(run, prefix)
    with IpiProcesses(run.workdir, run.socket.file) as processes:
        processes.start_server(f"{prefix}.input.xml", f"{prefix}.ipi.log")
        for k, command in enumerate(client_commands(run, clients)):
            processes.start_client(command, f"{prefix}.serve{k}.log")
        end = follow(processes, reader, writer)
        end.clients_left = clients_left(run, processes)
    remove_socket_file(run.correction)
    end.reader = reader
    if end.kind == "stalled":
        writer.write(reader.poll())  # what i-PI wrote before it stopped
    return end


def follow(processes: IpiProcesses, reader: SegmentReader, writer: StepWriter) -> SegmentEnd:
    """Convert i-PI's steps as they appear until it exits, a monitor trips, or a
    problem stops it."""
    try:
        while True:
            exited = not processes.server_running()
            if not writer.write(reader.poll()):
                return SegmentEnd("failed", writer.reason)
            if exited:
                return SegmentEnd("stopped", f"(exit code {processes.server.returncode}): "
                                             f"{last_line(processes.server_log)}")
            problem = processes.problem()
            if problem and problem.kind == "failed":
                time.sleep(0.2)  # let i-PI flush what it has, then read it
                writer.write(reader.poll())
                return SegmentEnd("failed", problem.reason)
            if problem:
                return SegmentEnd("stalled", problem.reason)
            time.sleep(0.1)
    except KeyboardInterrupt:
        # Ctrl-C: the processes stop on leaving IpiProcesses; the run can be resumed
        return SegmentEnd("interrupted", "interrupted by the user")


@dataclass
class Outcome:
    status: str = "failed"
    reason: str = None
    segment: int = 0
    restarts: list = field(default_factory=list)


def run_segments(run: IpiRun, writer: StepWriter, segment: int, xml: str) -> Outcome:
    """Segment after segment until the run ends; a stall continues from i-PI's last
    checkpoint with the clients left, as long as each continuation gets further."""
    outcome = Outcome(segment=segment)
    clients = run.drivers
    while True:
        end = run_segment(run, writer, outcome.segment, xml, clients)
        # with --drivers 0 every client is remote: their loops reconnect after a restart
        if end.kind != "stalled" or (end.clients_left == 0 and run.drivers > 0):
            return finish(outcome, end, writer, run.total)
        step, checkpoint = continue_from_checkpoint(run, writer, end.reader)
        if outcome.restarts and step <= outcome.restarts[-1]["step"]:
            outcome.reason = f"i-PI stalled twice at step {step}: {end.reason}"
            return outcome
        outcome.restarts.append({"step": step, "segment": outcome.segment,
                                 "reason": end.reason, "clients": end.clients_left})
        outcome.segment += 1
        clients = end.clients_left
        xml = restart_input(run, checkpoint, f"seg{outcome.segment}")


def finish(outcome: Outcome, end: SegmentEnd, writer: StepWriter, total: int) -> Outcome:
    if end.kind == "interrupted":
        outcome.status, outcome.reason = "interrupted", end.reason
    elif end.kind == "failed":
        outcome.reason = end.reason
    elif end.kind == "stalled":
        outcome.reason = f"i-PI stalled and no client is left: {end.reason}"
    elif writer.last >= total:
        outcome.status = "completed"
    else:
        outcome.reason = f"i-PI stopped at step {writer.last} of {total} {end.reason}"
    return outcome


def run_ipi(context, rundir: RunDirectory, resume: bool = False, progress=None) -> dict:
    """Run (or resume) MD with i-PI as the integrator and ``mdsym serve`` as the clients.

    ``context``: the run's ``RunContext``, or its ``RunConfig`` (or a dict of its
    fields) to build one; ``steps`` is the total length of the run, resume included.
    The run starts from ``rundir``'s structure.xyz. ``progress``: an object with
    ``update(n)`` (tqdm-like) or a callable ``progress(step, total)``. Returns status,
    reason, steps, steps_done, new_steps, wall_time_s, steps_per_s,
    time_to_failure_fs, start_step, restarts, ipi details.
    """
    rundir = rundir if isinstance(rundir, RunDirectory) else RunDirectory(rundir)
    command_for("i-pi")  # one clear line now if i-PI is missing
    run = IpiRun.prepare(RunContext.of(context, "ipi"), rundir)
    run.workdir.mkdir(parents=True, exist_ok=True)
    done = segments(run.workdir)
    segment = (done[-1] + 1) if done else 0
    writer = StepWriter(run, progress)
    start, checkpoint = continue_from_checkpoint(run, writer) if resume else (0, None)
    result = {"steps": run.total, "start_step": start, "restarts": [],
              "ipi": {"version": ipi_version(), "workdir": str(run.workdir),
                      "segment": segment, "beads": run.config.beads,
                      "drivers": run.drivers, "average_in": run.config.average_in,
                      **run.socket.details()}}
    if run.grid is not None:  # which grid i-PI averaged over
        result["ipi"]["rotations"] = run.grid.describe()
    if run.correction is not None:  # mts:K: the correction's socket, i-PI's outer steps
        result["ipi"].update(mts_interval=run.interval, correction_address=run.correction.address,
                             correction_port=run.correction.port)
    if start >= run.total:
        return {**result, "status": "completed", "reason": None, "steps_done": start,
                "new_steps": 0, "wall_time_s": 0.0, "steps_per_s": None,
                "time_to_failure_fs": None}
    xml = (restart_input(run, checkpoint, f"seg{segment}") if resume
           else first_input(run, f"seg{segment}"))
    started = time.monotonic()
    with terminate_as_interrupt():
        outcome = run_segments(run, writer, segment, xml)
    return summary(result, outcome, writer, time.monotonic() - started)


def summary(result: dict, outcome: Outcome, writer: StepWriter, wall: float) -> dict:
    result.update(status=outcome.status, reason=outcome.reason, restarts=outcome.restarts,
                  steps_done=max(writer.last, 0), new_steps=writer.new_steps, wall_time_s=wall,
                  steps_per_s=writer.new_steps / wall if wall > 0 and writer.new_steps else None,
                  time_to_failure_fs=writer.time_to_failure_fs)
    result["ipi"]["segment"] = outcome.segment
    if writer.degree_log is not None:
        result["degree_log"] = writer.degree_log
    if outcome.status == "failed" and result["time_to_failure_fs"] is None:
        thermo = writer.run.rundir.read_thermo()
        if len(thermo["time_fs"]):
            result["time_to_failure_fs"] = float(thermo["time_fs"][-1])
    return result
