"""The run directory every engine writes and every analysis reads.

::

    RUN/
      structure.xyz    initial structure (extended XYZ; MDAnalysis topology)
      trajectory.trr   frames every --stride steps: positions, velocities, forces, box
      thermo.csv       one row per step (columns: THERMO_COLUMNS), flushed per row
      run.json         configuration, seed, versions, wall time, steps/s, status

``trajectory.trr`` is GROMACS TRR written through MDAnalysis, so
``MDAnalysis.Universe(RUN/structure.xyz, RUN/trajectory.trr)`` reads positions
(Angstrom), velocities (Angstrom/ps) and forces (kJ/mol/Angstrom, MDAnalysis'
unit), with ``ts.time`` in ps. Frames are appended one by one, each written
whole and flushed, so a killed run keeps every frame written before the kill; a
torn last frame is cut off by ``truncate_partial_frame`` on resume.
"""

import json
import os
import tempfile
from pathlib import Path

import ase.io
import numpy as np

from mdsym.core.errors import MdsymError
from mdsym.md.thermo import (
    FORCE_TO_KJ_MOL_A,
    HEADER,
    OLDEST_LAST_COLUMN,
    THERMO_COLUMNS,
    VELOCITY_TO_A_PS,
    format_row,
)


class RunDirectory:
    def __init__(self, path):
        self.path = Path(path)

    # file names
    structure = property(lambda self: self.path / "structure.xyz")
    trajectory = property(lambda self: self.path / "trajectory.trr")
    thermo = property(lambda self: self.path / "thermo.csv")
    info = property(lambda self: self.path / "run.json")

    def create(self, atoms, overwrite: bool = False) -> None:
        """Start a new run directory; refuse to overwrite an existing run."""
        if self.info.exists() and not overwrite:
            raise MdsymError(
                f"{self.path} already holds a run: use --resume to continue it, "
                "or choose another --out"
            )
        leftovers = [f.name for f in (self.trajectory, self.thermo, self.structure) if f.exists()]
        if leftovers and not overwrite:
            raise MdsymError(
                f"{self.path} already holds {', '.join(leftovers)} (no run.json): "
                "choose another --out; nothing was changed"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        for old in (self.trajectory, self.thermo):
            if old.exists():
                old.unlink()
        ase.io.write(self.structure, atoms, format="extxyz")
        with open(self.thermo, "w") as handle:
            handle.write(HEADER)

    def read_info(self) -> dict:
        try:
            return json.loads(self.info.read_text())
        except FileNotFoundError:
            raise MdsymError(f"{self.path} is not a run directory (no run.json)") from None
        except json.JSONDecodeError as error:
            raise MdsymError(f"{self.info} is not valid JSON: {error}") from None

    def write_info(self, info: dict) -> None:
        """Write run.json atomically (a kill never leaves it half written)."""
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".run.json.")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: run.json is a file like the others
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle, indent=2, default=json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.info)

    def append_thermo(self, row: dict) -> None:
        with open(self.thermo, "a") as handle:
            handle.write(format_row(row))

    def append_frame(self, step, time_fs, positions, velocities, forces, cell=None, pbc=False) -> None:
        """Append one whole TRR frame and flush it (ASE units in; GROMACS units in the file).

        MDAnalysis' xdr library opens TRR files only for reading or writing, so the
        frame is written to a scratch file and its bytes appended to the trajectory.
        """
        from MDAnalysis.lib.formats.libmdaxdr import TRRFile  # start-up time: MDAnalysis, for frames only

        box = np.asarray(cell, dtype=np.float64) / 10.0 if pbc else np.zeros((3, 3))
        fd, tmp = tempfile.mkstemp(dir=self.path, suffix=".trr")
        os.close(fd)
        try:
            with TRRFile(tmp, "w") as trr:
                trr.write(
                    np.asarray(positions) / 10.0,  # nm
                    np.asarray(velocities) * VELOCITY_TO_A_PS / 10.0,  # nm/ps
                    np.asarray(forces) * FORCE_TO_KJ_MOL_A * 10.0,  # kJ/mol/nm
                    box,
                    int(step),
                    float(time_fs) / 1000.0,  # ps
                    0.0,
                    len(positions),
                )
            with open(tmp, "rb") as source, open(self.trajectory, "ab") as target:
                target.write(source.read())
                target.flush()
                os.fsync(target.fileno())
        finally:
            os.unlink(tmp)

    def universe(self):
        """An MDAnalysis Universe over the run's frames, with the run's masses.

        MDAnalysis guesses masses from the element names; the engines integrated
        with the masses of structure.xyz (ASE's, or the file's own ``masses``, e.g.
        deuterium), so those replace the guess.
        """
        import MDAnalysis as mda  # start-up time: MDAnalysis, for frames only

        for required in (self.structure, self.trajectory):
            if not required.exists():
                raise MdsymError(f"{required} is missing")
        try:
            universe = mda.Universe(str(self.structure), str(self.trajectory), format="TRR")
        except Exception as error:
            raise MdsymError(f"cannot read trajectory {self.trajectory}: {error}") from None
        universe.atoms.masses = ase.io.read(self.structure, format="extxyz").get_masses()
        return universe

    def read_thermo(self) -> dict:
        """thermo.csv as a dict of numpy columns; a torn last line is ignored.

        Columns added since a file was written are NaN."""
        if not self.thermo.exists():
            raise MdsymError(f"{self.thermo} is missing")
        lines = self.thermo.read_text().splitlines()
        header = lines[0].split(",") if lines else []
        if (header != list(THERMO_COLUMNS[: len(header)])
                or len(header) <= THERMO_COLUMNS.index(OLDEST_LAST_COLUMN)):
            raise MdsymError(f"{self.thermo} does not start with mdsym's thermo header")
        rows = [line.split(",") for line in lines[1:]]
        rows = [r for r in rows if len(r) == len(header)]
        try:
            table = np.array(rows, dtype=np.float64).reshape(-1, len(header))
        except ValueError as error:
            raise MdsymError(f"{self.thermo} has an unreadable row: {error}") from None
        return {name: table[:, k] if k < len(header) else np.full(len(table), np.nan)
                for k, name in enumerate(THERMO_COLUMNS)}

    def whole_thermo_lines(self) -> list:
        """``(step, line)`` of thermo.csv's rows up to the first that is not whole (cut
        mid-line by a kill: no end of line, missing cells or an unreadable step)."""
        lines = self.thermo.read_text().splitlines(keepends=True)
        width = len(lines[0].split(",")) if lines else 0
        rows = []
        for line in lines[1:]:
            cells = line.split(",")
            step = _step_of(cells[0])
            if not line.endswith("\n") or len(cells) != width or step is None:
                break
            rows.append((step, line))
        return rows

    def truncate_after(self, last_step: int):
        """Drop thermo rows and frames after ``last_step`` (resume without duplicates),
        and a cut last row. The rows kept stay byte for byte as they were. Returns the
        step of the last row kept (None when none is)."""
        kept = [(step, line) for step, line in self.whole_thermo_lines() if step <= last_step]
        header = self.thermo.read_text().splitlines(keepends=True)[0]
        tmp = self.thermo.with_name(".thermo.csv.tmp")
        tmp.write_text(header + "".join(line for _, line in kept))
        os.replace(tmp, self.thermo)
        frames = complete_frames(self.trajectory)
        kept_frames = [(start, end) for start, end, step in frames if step <= last_step]
        end = kept_frames[-1][1] if kept_frames else 0
        with open(self.trajectory, "r+b") as handle:
            handle.truncate(end)
        return kept[-1][0] if kept else None


def _step_of(text: str):
    """The step a thermo.csv row starts with (an integer; earlier versions could write
    ``48.0``), or None when it is not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if np.isfinite(value) and value == int(value) and value >= 0 else None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def complete_frames(path) -> list:
    """``(start, end, step)`` byte ranges of the whole frames of a TRR file."""
    from MDAnalysis.lib.formats.libmdaxdr import TRRFile  # start-up time: MDAnalysis, for frames only

    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return []
    frames = []
    try:
        with TRRFile(str(path)) as trr:
            offsets = list(trr.offsets) + [Path(path).stat().st_size]
            for k in range(len(offsets) - 1):
                trr.seek(k)
                frame = trr.read()
                frames.append((offsets[k], offsets[k + 1], int(frame.step)))
    except (OSError, EOFError, RuntimeError):
        pass  # a torn last frame: keep the whole ones read so far
    return frames


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
