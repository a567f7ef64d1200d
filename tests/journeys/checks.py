"""Physical checks of what a journey leaves on disk, read with the field's libraries
(csv, json, MDAnalysis' TRR reader), not with mdsym's own readers: the journeys
judge mdsym's files from the outside, as a user's scripts would."""

import csv
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np

# files `mdsym analyze` always writes, and the plots every run with frames gets
ANALYSIS_FILES = ("analysis.json", "report.md")
ANALYSIS_PLOTS = ("energy.png", "angular_momentum.png")


def read_json(path) -> dict:
    path = Path(path)
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text())


def read_thermo(run_dir) -> dict:
    """thermo.csv as numpy columns; every line must be whole (no torn row)."""
    path = Path(run_dir) / "thermo.csv"
    assert path.is_file(), f"{path} is missing"
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    for k, row in enumerate(body):
        assert len(row) == len(header), f"{path} line {k + 2} is torn: {row}"
    table = np.array(body, dtype=np.float64).reshape(-1, len(header))
    return {name: table[:, k] for k, name in enumerate(header)}


def read_trr(run_dir) -> list:
    """Every frame of RUN/trajectory.trr: dicts of step, time (ps), positions (A),
    velocities, forces (MDAnalysis units)."""
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile

    path = Path(run_dir) / "trajectory.trr"
    assert path.is_file() and path.stat().st_size > 0, f"{path} is missing or empty"
    frames = []
    with TRRFile(str(path)) as trr:
        for frame in trr:
            frames.append({"step": int(frame.step), "time_ps": float(frame.time),
                           "positions": np.array(frame.x, dtype=np.float64) * 10.0,
                           "velocities": np.array(frame.v, dtype=np.float64) * 10.0,
                           "forces": np.array(frame.f, dtype=np.float64) / 10.0})
    return frames


def check_completed_run(run_dir, steps: int, stride: int, timestep_fs: float,
                        temperature_K=None) -> dict:
    """A finished run: run.json says completed, one thermo row per step 0..steps,
    a TRR frame every ``stride`` steps with increasing times, finite energies, and
    (when given) temperatures near the target. Returns the thermo columns."""
    run_dir = Path(run_dir)
    info = read_json(run_dir / "run.json")
    assert info["status"] == "completed", f"run.json: status {info['status']}, reason {info.get('reason')}"
    assert (run_dir / "structure.xyz").is_file()

    thermo = read_thermo(run_dir)
    assert len(thermo["step"]) == steps + 1, f"{len(thermo['step'])} thermo rows, expected {steps + 1}"
    np.testing.assert_array_equal(thermo["step"], np.arange(steps + 1))
    np.testing.assert_allclose(thermo["time_fs"], np.arange(steps + 1) * timestep_fs, rtol=1e-9)
    for column in ("potential_eV", "kinetic_eV", "conserved_eV", "temperature_K"):
        assert np.isfinite(thermo[column]).all(), f"non-finite {column} in thermo.csv"
    assert (thermo["kinetic_eV"] > 0).all()

    frames = read_trr(run_dir)
    expected_steps = list(range(0, steps + 1, stride))
    if expected_steps[-1] != steps:
        expected_steps.append(steps)  # the ASE engine also writes the last step
    got_steps = [f["step"] for f in frames]
    assert got_steps in (expected_steps, list(range(0, steps + 1, stride))), \
        f"TRR frames at steps {got_steps}, expected {expected_steps}"
    times_fs = np.array([f["time_ps"] for f in frames]) * 1000.0
    np.testing.assert_allclose(times_fs, np.array(got_steps) * timestep_fs, rtol=1e-5, atol=1e-6)
    for frame in frames:
        assert np.isfinite(frame["positions"]).all() and np.isfinite(frame["velocities"]).all()

    if temperature_K is not None:
        t = thermo["temperature_K"]
        # the run starts at the target and a few fs cannot leave a physical range
        assert abs(t[0] - temperature_K) < 0.05 * temperature_K, f"T(0) = {t[0]} K"
        assert (t > 0.1 * temperature_K).all() and (t < 4.0 * temperature_K).all(), \
            f"temperature left [{0.1 * temperature_K}, {4 * temperature_K}] K: {t.min()}..{t.max()}"
    return thermo


def check_analysis(run_dir) -> dict:
    """`mdsym analyze RUN` wrote its report and plots, with a finite drift."""
    folder = Path(run_dir) / "analysis"
    for name in ANALYSIS_FILES + ANALYSIS_PLOTS:
        path = folder / name
        assert path.is_file() and path.stat().st_size > 0, f"{path} is missing or empty"
    report = read_json(folder / "analysis.json")
    drift = report.get("drift") or {}
    slope = drift.get("slope_meV_atom_ps")
    assert isinstance(slope, (int, float)) and math.isfinite(slope), f"drift not finite: {drift}"
    text = (folder / "report.md").read_text()
    assert "drift" in text.lower()
    assert check_markdown_tables(folder / "report.md") >= 1
    for plot in ANALYSIS_PLOTS:
        assert plot in text, f"report.md does not show {plot}"
    return report


def thermo_rows(run_dir) -> int:
    """Rows of ``run_dir``'s thermo.csv written so far (0 before it exists)."""
    try:
        return max(0, len((Path(run_dir) / "thermo.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def sigkill_after_rows(process, run_dir, rows: int, timeout: float = 240) -> int:
    """SIGKILL the running ``mdsym run`` ``process`` once ``run_dir`` holds ``rows``
    thermo rows (it must still be running then); the rows it had when it died."""
    deadline = time.monotonic() + timeout
    while thermo_rows(run_dir) < rows and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no rows in time"
        time.sleep(0.02)
    assert process.poll() is None, \
        f"the run ended before it could be killed (raise STEPS)\n{process.communicate()}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return thermo_rows(run_dir)



def markdown_tables(text: str) -> list:
    """The tables of a markdown page: lists of rows, each a list of cells (a ``\\|``
    inside a cell is part of it)."""
    import re

    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


def check_markdown_tables(path) -> int:
    """Every table of the page ``path`` renders: a separator row under the header and
    as many cells in every row as in the header. Returns the number of tables."""
    tables = markdown_tables(Path(path).read_text())
    for table in tables:
        width = len(table[0])
        assert len(table) >= 2 and all(set(c) <= set("-: ") and c for c in table[1]), (path, table[:2])
        assert all(len(row) == width for row in table), (path, [len(r) for r in table], table[0])
    return len(tables)
