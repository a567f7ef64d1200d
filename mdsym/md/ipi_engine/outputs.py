"""Reading what i-PI writes (``mdsym.md.ipi_engine.input.output_files``) while it writes it.

``SegmentReader(workdir, prefix, names, extras).poll()`` returns the steps that are
complete in every file since the last call, each a ``Step`` in i-PI's atomic units;
``OuterSteps`` relabels them for an ``mts:K`` run (i-PI's step n is inner step K n).

Frames are i-PI's ``format='bin'`` trajectories, the only format i-PI 3.3 writes
at full precision (``xyz`` rounds to 6 digits, ``ase`` to 8 decimals through
ASE's extxyz, and ``json`` is not among the formats its outputs accept): the i-PI
engine matches ASE to round-off, and a net force of 1e-15 eV/A must read as such.
Each frame is decoded by i-PI's own reader (``ipi.utils.io.read_file_raw``). That
reader takes the frame's title to the end of the file (``np.fromfile`` with
``count=-1``), so it is handed one frame at a time: frames all have the length of
one frame written by i-PI's own writer (``frame_length``), and i-PI appends them
one after the other. The step is read from the title as i-PI's
``ipi.scripting.read_trajectory`` reads it.

``thermo`` is i-PI's properties file (columns ``mdsym.md.ipi_engine.input.THERMO``), and
``extras_0`` holds, per step, a ``#EXTRAS(NAMES)# Step: N`` line and the values of
the names (``mdsym.md.ipi_engine.input.ROTATION_STD``, or ``<ffrotations>``' energy of every
rotation, ``IPI_GRID_ENERGIES``).
"""

import re
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ipi.engine.outputs import TrajectoryOutput
from ipi.engine.properties import Trajectories
from ipi.utils.io import read_file_raw

from mdsym.md.ipi_engine.input import FRAMES, ROTATION_STD, THERMO, output_files

#: the step in a frame title, as ``ipi.scripting.read_trajectory`` finds it
STEP = re.compile(r"Step:\s+(\d+)")
EXTRAS_HEADER = re.compile(r"#EXTRAS[^(]*\(([^)]*)\)#\s*Step:\s+(\d+)")


@dataclass
class Step:
    """One MD step as i-PI wrote it (atomic units): ``thermo`` by ``THERMO`` name,
    ``(N, 3)`` arrays by ``FRAMES`` name, ``extras`` by the names in the extras file."""

    thermo: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)


class GrowingFile:
    """The new bytes of a file that another process appends to."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0

    def take(self, unit: int = None, separator: bytes = None) -> bytes:
        """Whole records only: a multiple of ``unit`` bytes, or up to the last
        ``separator``; the rest is left for the next call."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return b""
        end = (len(data) // unit) * unit if unit else data.rfind(separator) + 1
        self.offset += end
        return data[:end]

    def lines(self) -> list:
        return self.take(separator=b"\n").decode("utf-8", errors="replace").splitlines()


def frame_length(what: str, names) -> int:
    """Bytes of one ``format='bin'`` frame of trajectory ``what`` for atoms ``names``,
    measured by letting i-PI's own trajectory writer write one."""
    names = np.asarray(names)
    # the parts of an i-PI system that its trajectory writer reads
    system = types.SimpleNamespace(
        beads=types.SimpleNamespace(natoms=len(names), names=names),
        cell=types.SimpleNamespace(h=np.eye(3)), simul=types.SimpleNamespace(step=0))
    writer = TrajectoryOutput(filename="probe", format="bin", what=what)
    writer.system = system
    dimension = Trajectories().traj_dict[what]["dimension"]
    with tempfile.TemporaryFile() as scratch:  # i-PI writes with ndarray.tofile
        writer.write_traj(np.zeros(3 * len(names)), what, scratch, format="bin",
                          dimension=dimension, flush=False)
        scratch.flush()
        return scratch.tell()


def read_frame(record: bytes) -> tuple:
    """``(step, (N, 3) values)`` of one whole frame, by i-PI's reader."""
    with tempfile.TemporaryFile() as scratch:  # i-PI reads with np.fromfile
        scratch.write(record)
        scratch.flush()
        scratch.seek(0)
        frame = read_file_raw("bin", scratch)
    step = int(STEP.findall(frame["comment"])[-1])
    return step, np.asarray(frame["data"], dtype=np.float64).reshape(-1, 3)


class BinaryFrames:
    """The frames of one growing ``format='bin'`` trajectory."""

    def __init__(self, path: Path, what: str, names):
        self.file = GrowingFile(path)
        self.length = frame_length(what, names)

    def read(self) -> list:
        data = self.file.take(unit=self.length)
        return [read_frame(data[k:k + self.length]) for k in range(0, len(data), self.length)]


class SegmentReader:
    """Follows the files of one i-PI output prefix and yields whole steps, in order."""

    def __init__(self, workdir: Path, prefix: str, names, extras: bool = False):
        files = {key: Path(workdir) / name for key, name in output_files(prefix).items()}
        self.thermo = GrowingFile(files["thermo"])
        self.frames = {key: BinaryFrames(files[key], what, names)
                       for key, (_, what) in FRAMES.items()}
        self.extras = GrowingFile(files["extras"]) if extras else None
        self.pending = {}
        self._extras_step = None
        self._extras_names = list(ROTATION_STD)

    def _slot(self, step: int) -> Step:
        return self.pending.setdefault(step, Step())

    def _read_thermo(self):
        for line in self.thermo.lines():
            if line.startswith("#") or not line.strip():
                continue
            values = [float(x) for x in line.split()]
            self._slot(int(round(values[0]))).thermo = dict(zip(THERMO, values))

    def _read_extras(self):
        for line in self.extras.lines():
            header = EXTRAS_HEADER.search(line)
            if header:
                self._extras_step = int(header.group(2))
                self._extras_names = [n.strip() for n in header.group(1).split(",")]
            elif line.strip() and self._extras_step is not None:
                values = [float(x) for x in line.split()]
                names = self._extras_names
                # one name, many values: a list (``<ffrotations>``'s energy per rotation)
                extras = {names[0]: values} if len(names) == 1 and len(values) > 1 else \
                    dict(zip(names, values))
                self._slot(self._extras_step).extras = extras
                self._extras_step = None

    def _complete(self, step: Step) -> bool:
        return (bool(step.thermo) and len(step.arrays) == len(FRAMES)
                and (self.extras is None or bool(step.extras)))

    def poll(self) -> list:
        """Steps complete in every file since the last call: ``[(step, Step)]``."""
        self._read_thermo()
        for key, frames in self.frames.items():
            for step, values in frames.read():
                self._slot(step).arrays[key] = values
        if self.extras is not None:
            self._read_extras()
        done = []
        for step in sorted(self.pending):
            if not self._complete(self.pending[step]):
                break
            done.append((step, self.pending.pop(step)))
        return done


class OuterSteps:
    """A ``SegmentReader`` of an ``mts:K`` run: i-PI's step n is inner step K n."""

    def __init__(self, reader: SegmentReader, interval: int):
        self.reader, self.interval = reader, interval

    def poll(self) -> list:
        return [(step * self.interval, data) for step, data in self.reader.poll()]
