"""Outputs a scientist can trust (issue 20), run as a user runs mdsym: a resume that never
changes or loses a row, no silently ignored option, a folder left by a run that never
started is reusable, SIGTERM recorded, consistent file modes, one clear line for the bad
inputs a new user hit."""

import os
import signal
import socket
import stat
import time

import pytest

from .checks import read_json
from .conftest import assert_one_line_error, mdsym, start_mdsym

MODEL = "analytic:vector1=0.05"
RUN = ("run", "--model", MODEL, "--structure", "cu-cluster-55", "--ensemble", "nve",
       "--timestep", "2", "--stride", "10", "--seed", "1")


def thermo_lines(run_dir):
    return (run_dir / "thermo.csv").read_text().splitlines(keepends=True)


def steps_of(run_dir):
    return [line.split(",")[0] for line in thermo_lines(run_dir)[1:]]


def test_resume_keeps_every_row_byte_for_byte_and_integer_steps(tmp_path):
    mdsym(*RUN, "--steps", "50", "--out", "R", cwd=tmp_path)
    before = thermo_lines(tmp_path / "R")
    mdsym("run", "--resume", "R", "--steps", "80", cwd=tmp_path)
    after = thermo_lines(tmp_path / "R")
    assert after[:len(before)] == before  # the rows it had, as they were written
    assert steps_of(tmp_path / "R") == [str(step) for step in range(81)]  # int(row["step"]) works


def test_a_cut_last_row_is_written_again_on_resume(tmp_path):
    mdsym(*RUN, "--steps", "40", "--out", "R", cwd=tmp_path)
    run_dir = tmp_path / "R"
    lines = thermo_lines(run_dir)
    intact = lines[-1]
    (run_dir / "thermo.csv").write_text("".join(lines[:-1]) + intact[:40])  # a kill mid-row
    result = mdsym("run", "--resume", "R", "--steps", "60", cwd=tmp_path)
    assert steps_of(run_dir) == [str(step) for step in range(61)]  # step 40 is back, once
    assert thermo_lines(run_dir)[41] == intact  # recomputed from the checkpoint, the same bits
    assert "row of step 40 was cut off" in result.stderr


@pytest.mark.parametrize("option,value", [("--model", "analytic:vector1=0.07"), ("--timestep", "1"),
                                          ("--symmetrize", "o3:1"), ("--seed", "5"),
                                          ("--ensemble", "nvt"), ("--stride", "5")])
def test_resume_refuses_options_that_change_the_physics(tmp_path, option, value):
    mdsym(*RUN, "--steps", "10", "--out", "R", cwd=tmp_path)
    result = mdsym("run", "--resume", "R", "--steps", "20", option, value, cwd=tmp_path, check=False)
    assert_one_line_error(result, mentions=(option, "physics"))
    assert steps_of(tmp_path / "R")[-1] == "10"  # nothing ran


def test_resume_records_new_execution_options(tmp_path):
    mdsym(*RUN, "--steps", "10", "--out", "R", cwd=tmp_path)
    mdsym("run", "--resume", "R", "--steps", "20", "--threads", "1", "--batch-size", "3", cwd=tmp_path)
    info = read_json(tmp_path / "R" / "run.json")
    assert info["segments"][-1]["changed"] == {"threads": ["auto", "1"], "batch_size": [None, 3]}
    assert info["config"]["threads"] == "1" and info["config"]["batch_size"] == 3


def test_a_run_that_never_started_leaves_a_reusable_folder(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        failed = mdsym("run", "--model", MODEL, "--structure", "cu-cluster-55", "--engine", "ipi",
                       "--socket", "tcp", "--port", str(port), "--steps", "4", "--out", "R",
                       cwd=tmp_path, check=False)
    assert failed.returncode != 0
    info = read_json(tmp_path / "R" / "run.json")
    assert info["status"] == "failed" and info["failure"] == "error"
    resumed = mdsym("run", "--resume", "R", cwd=tmp_path, check=False)
    assert_one_line_error(resumed, mentions=("never started", "--out"))
    assert "stability" not in resumed.stderr
    mdsym(*RUN, "--steps", "5", "--out", "R", cwd=tmp_path)  # the same folder, reused
    assert read_json(tmp_path / "R" / "run.json")["status"] == "completed"


def test_sigterm_is_recorded_as_an_interruption(tmp_path, stop_later):
    process = start_mdsym(*RUN, "--steps", "200000", "--stride", "1000", "--out", "R", cwd=tmp_path)
    stop_later(process)
    thermo = tmp_path / "R" / "thermo.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not thermo.exists() or len(thermo.read_text().splitlines()) < 5):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    info = read_json(tmp_path / "R" / "run.json")
    assert info["status"] == "interrupted" and info["segments"][-1]["status"] == "interrupted"


def test_run_files_share_one_mode(tmp_path):
    mdsym(*RUN, "--steps", "10", "--out", "R", cwd=tmp_path)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "R").iterdir() if p.is_file()}
    expected = 0o666 & ~_umask()
    assert modes["run.json"] == modes["thermo.csv"] == expected, modes


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("args,mentions", [
    (("--symmetrize", "nettorque+netforce+nettorque"), ("nettorque", "keep one")),
    (("--structure", "/tmp"), ("folder",)),
    (("--model", "{text_pt}"), ("not a model file",)),
])
def test_bad_inputs_are_one_line(tmp_path, args, mentions):
    text_pt = tmp_path / "model.pt"
    text_pt.write_text("this is not a model\n")
    args = [a.format(text_pt=text_pt) for a in args]
    result = mdsym("run", "--steps", "2", *args, "--out", "R", cwd=tmp_path, check=False)
    assert_one_line_error(result, mentions=mentions)
    assert not (tmp_path / "R").exists()


def test_serve_reports_a_listener_that_never_speaks(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = mdsym("serve", "--model", MODEL, "--structure", "cu-cluster-55", "--port", str(port),
                       "--first-message-timeout", "2", "--quiet", cwd=tmp_path, check=False, timeout=60)
    assert time.monotonic() - started < 45
    assert_one_line_error(result, mentions=("said nothing", "2 s"))


def test_nettorque_is_judged_on_the_float64_angular_momentum(tmp_path):
    mdsym(*RUN, "--steps", "60", "--symmetrize", "nettorque", "--out", "R", cwd=tmp_path)
    result = mdsym("analyze", "R", "--no-equivariance", cwd=tmp_path)
    am = read_json(tmp_path / "R" / "analysis" / "analysis.json")["angular_momentum"]
    assert "thermo.csv" in am["source"] and "thermo.csv" in result.stdout
    assert am["max_dL"] < 1e-9  # what the torque-free dynamics conserves: round-off
    # the float32 frames alone floor it orders of magnitude higher
    assert am["frames"]["max_dL"] > 100 * am["max_dL"]


def test_a_cut_trajectory_is_a_warning_at_the_top(tmp_path):
    from mdsym.md.rundir import complete_frames

    mdsym(*RUN, "--steps", "50", "--stride", "5", "--out", "R", cwd=tmp_path)
    trr = tmp_path / "R" / "trajectory.trr"
    frames = complete_frames(trr)
    assert len(frames) == 11
    with open(trr, "r+b") as handle:
        handle.truncate(frames[4][1])  # cut on a frame boundary: 5 whole frames left
    result = mdsym("analyze", "R", "--no-equivariance", cwd=tmp_path)
    assert result.stderr.startswith("WARNING:") and "was cut" in result.stderr
    report = (tmp_path / "R" / "analysis" / "report.md").read_text().splitlines()
    assert report[2].startswith("**Warning:**") and "step 20" in report[2]


def test_analyze_fails_when_the_run_model_is_gone(tmp_path):
    from mdsym.models import shipped

    (tmp_path / "work").mkdir()
    model = tmp_path / "work" / "my-model.pt"
    model.write_bytes(shipped.path("pet-ethanol").read_bytes())
    mdsym("run", "--model", "./my-model.pt", "--structure", "ethanol", "--ensemble", "nve",
          "--steps", "4", "--stride", "2", "--out", "R", cwd=tmp_path / "work")
    info = read_json(tmp_path / "work" / "R" / "run.json")
    assert info["config"]["model"] == str(model)  # absolute, readable from anywhere
    assert info["config"]["structure"] == "ethanol"  # a shipped structure by its name
    mdsym("analyze", "work/R", "--degree", "1", cwd=tmp_path)  # from another directory: found
    model.unlink()
    failed = mdsym("analyze", "work/R", cwd=tmp_path, check=False)
    assert_one_line_error(failed, mentions=("--model", "--no-equivariance"))
    mdsym("analyze", "work/R", "--no-equivariance", cwd=tmp_path)


def test_a_start_far_from_equilibrium_is_flagged(tmp_path):
    from ase.io import read, write

    from mdsym.core.defaults import structure_path

    atoms = read(structure_path("cu-cluster-55"))
    atoms.positions *= 0.96  # compressed: the potential energy released heats the run
    write(tmp_path / "compressed.xyz", atoms)
    mdsym("run", "--model", MODEL, "--structure", "compressed.xyz", "--timestep", "2", "--steps", "100",
          "--stride", "20", "--max-temperature-factor", "0", "--out", "R", cwd=tmp_path)
    result = mdsym("analyze", "R", "--no-equivariance", cwd=tmp_path)
    assert "far from the target 300 K" in result.stderr
    report = read_json(tmp_path / "R" / "analysis" / "analysis.json")
    assert any("far from the target" in w for w in report["warnings"])


def test_progress_is_shown_only_on_a_terminal(tmp_path):
    result = mdsym(*RUN, "--steps", "20", "--out", "R", cwd=tmp_path)
    assert result.stderr == ""  # no progress label in a log
    assert result.stdout.startswith("completed: 20 steps")


def test_both_engines_count_the_steps_of_a_segment_alike(tmp_path):
    for engine in ("ase", "ipi"):
        mdsym(*RUN, "--steps", "6", "--stride", "2", "--engine", engine, "--out", engine, cwd=tmp_path)
        mdsym("run", "--resume", engine, "--steps", "10", cwd=tmp_path)
        segments = read_json(tmp_path / engine / "run.json")["segments"]
        assert [s["new_steps"] for s in segments] == [6, 4], (engine, segments)
