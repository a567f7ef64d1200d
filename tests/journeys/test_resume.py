"""Journey 7: a run killed by SIGKILL mid-way (ASE engine) and continued with
`mdsym run --resume DIR` loses and duplicates nothing, and, NVE with VelocityVerlet
being deterministic, its trajectory is the uninterrupted run's to round-off."""

import numpy as np

from .checks import check_completed_run, read_json, read_thermo, read_trr, sigkill_after_rows
from .conftest import mdsym, start_mdsym

STEPS = 300
STRIDE = 1
TIMESTEP_FS = 2.0
ROWS_BEFORE_KILL = 20
RUN = ("run", "--model", "analytic:vector1=0.05", "--structure", "cu-cluster-55",
       "--ensemble", "nve", "--timestep", TIMESTEP_FS, "--steps", STEPS, "--stride", STRIDE,
       "--seed", "3")


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, stop_later):
    killed = tmp_path / "killed"
    process = start_mdsym(*RUN, "--out", "killed", cwd=tmp_path)
    stop_later(process)
    rows_at_kill = sigkill_after_rows(process, killed, ROWS_BEFORE_KILL)
    assert ROWS_BEFORE_KILL <= rows_at_kill < STEPS + 1
    assert read_json(killed / "run.json")["status"] == "running"  # as a SIGKILL leaves it

    mdsym("run", "--resume", "killed", cwd=tmp_path)
    resumed = check_completed_run(killed, STEPS, STRIDE, TIMESTEP_FS)
    info = read_json(killed / "run.json")
    assert len(info["segments"]) == 2 and info["segments"][1]["resume"] is True

    # no frame lost or duplicated: TRR times strictly increasing by one stride
    frames = read_trr(killed)
    assert [f["step"] for f in frames] == list(range(0, STEPS + 1, STRIDE))
    times_fs = np.array([f["time_ps"] for f in frames]) * 1000.0
    assert (np.diff(times_fs) > 0).all()
    # TRR times are single precision ps: ~1e-5 fs of noise at 0.6 ps
    np.testing.assert_allclose(np.diff(times_fs), STRIDE * TIMESTEP_FS, rtol=0, atol=1e-3)

    # the uninterrupted run of the same seed
    mdsym(*RUN, "--out", "reference", cwd=tmp_path)
    reference = read_thermo(tmp_path / "reference")
    # deterministic integrator, same state at the resume point: the same trajectory to
    # double round-off (a checkpoint that rounds positions or momenta shows here)
    for column in ("potential_eV", "kinetic_eV", "conserved_eV"):
        np.testing.assert_allclose(resumed[column], reference[column], rtol=0, atol=1e-9,
                                   err_msg=f"{column} of the resumed run")
    reference_frames = read_trr(tmp_path / "reference")
    assert len(reference_frames) == len(frames)
    for frame, expected in zip(frames, reference_frames):
        # TRR stores single precision
        np.testing.assert_allclose(frame["positions"], expected["positions"], rtol=0, atol=2e-6)
        np.testing.assert_allclose(frame["velocities"], expected["velocities"], rtol=1e-5, atol=1e-5)


def test_resume_from_another_working_directory(tmp_path):
    """A run started as `--out runs/short` is continued from inside runs/: nothing in
    run.json may depend on the directory the run was started from."""
    short = ("run", "--model", "analytic", "--structure", "cu-cluster-55", "--ensemble", "nve",
             "--timestep", TIMESTEP_FS, "--stride", "2")
    mdsym(*short, "--steps", "4", "--out", "runs/short", cwd=tmp_path)
    mdsym("run", "--resume", "short", "--steps", "8", cwd=tmp_path / "runs")
    check_completed_run(tmp_path / "runs" / "short", 8, 2, TIMESTEP_FS)
