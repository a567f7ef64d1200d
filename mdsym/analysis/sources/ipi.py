"""i-PI: a simulation's ``input.xml`` (or the folder holding it) and the outputs it declares.

The input is parsed by i-PI's own input machinery (``ipi.inputs.simulation``): the
output prefix, each ``<trajectory>`` (what, file name, format, stride) and
``<properties>``, the number of beads, the dynamics mode (the ensemble), its time step,
thermostat and temperature, all with i-PI's units handling. The trajectories used are
positions, velocities and forces (their centroids with several beads, else bead 0),
each frame decoded by i-PI's readers (``ipi.utils.io.read_file``, which takes the
units from the frame's own comment, ``positions{angstrom}``; atomic units when it
names none) for ``xyz`` and ``ase``, and by mdsym's i-PI engine reader
(``mdsym.md.ipi_engine.outputs``, itself i-PI's ``read_file_raw``) for ``bin``, then
converted from i-PI's atomic units with i-PI's ``unit_to_user``. ``properties.out`` is
read by ``ipi.scripting.read_output``, with the units its header gives per column:
``conserved`` is the energy used (the total energy in NVE), ``potential``,
``kinetic_md``, ``time`` and ``temperature`` fill the thermo table.

i-PI always has a cell and does not record whether its driver applied periodic
boundaries: a system whose atoms span less than half of every box length (a molecule
in a large box) is analysed as isolated, else as periodic, and a note says which.
"""

import io
import warnings
from pathlib import Path

import numpy as np

from mdsym.analysis.sources.assemble import adjust
from mdsym.analysis.sources.common import Opened, masses_of
from mdsym.analysis.sources.frames import Frame, universe_of
from mdsym.core.errors import MdsymError
from mdsym.md.thermo import VELOCITY_TO_A_PS

#: trajectories mdsym reads, by what they hold: (centroid, per bead)
WANTED = {"positions": ("x_centroid", "positions"), "velocities": ("v_centroid", "velocities"),
          "forces": ("f_centroid", "forces")}
DIMENSIONS = {"positions": "length", "velocities": "velocity", "forces": "force"}
READ_FORMATS = ("xyz", "ase", "bin", "binary")


def key_of(what: str) -> str:
    """``positions{angstrom}`` -> ``positions``; ``x_centroid(0)`` -> ``x_centroid``."""
    return what.split("{")[0].split("(")[0].strip()


def parse_input(path: Path):
    """i-PI's ``InputSimulation`` of ``path``, parsed (one line if it is not one)."""
    from ipi.inputs.simulation import InputSimulation  # i-PI's input machinery
    from ipi.utils.io.inputs.io_xml import xml_parse_file  # i-PI's XML reader

    try:
        with open(path) as handle:
            xml = xml_parse_file(handle)
        simulation = InputSimulation()
        simulation.parse(xml.fields[0][1])
    except Exception as error:
        raise MdsymError(f"cannot read {path} as an i-PI input: {error}") from None
    return simulation


def declared_outputs(simulation, folder: Path, nbeads: int) -> tuple:
    """``({what: (file, format, stride)}, properties (file, columns) or None)``."""
    prefix = simulation.output.prefix.fetch()
    named = lambda name: folder / (f"{prefix}.{name}" if prefix else name)  # noqa: E731
    trajectories, properties = {}, None
    for kind, output in simulation.output.extra:
        if kind == "properties" and properties is None:
            properties = (named(output.filename.fetch()), list(output.fetch().outlist))
        if kind != "trajectory":
            continue
        what, fmt = key_of(output.fetch().what), output.format.fetch()
        for wanted, (centroid, per_bead) in WANTED.items():
            if what == centroid or (what == per_bead and wanted not in trajectories):
                suffix = ".extxyz" if fmt == "ase" else f".{fmt}"
                name = output.filename.fetch() + ("" if what == centroid else "_" + bead_label(nbeads))
                trajectories[wanted] = (named(name + suffix), fmt, output.stride.fetch(), what)
    return trajectories, properties


def bead_label(nbeads: int) -> str:
    """Bead 0's label in i-PI's per-bead file names (zero-padded to the beads' digits)."""
    return "0" * int(1 + np.floor(np.log10(max(nbeads, 1))))


class IpiFrames:
    """The frames of one i-PI trajectory file (whole ones only), in mdsym's units."""

    def __init__(self, path: Path, fmt: str, what: str, names=None):
        self.path, self.fmt, self.what, self.name = Path(path), fmt, what, str(path)
        self.dimension = DIMENSIONS[next(k for k, v in WANTED.items() if what in v)]
        if fmt in ("bin", "binary"):
            from mdsym.md.ipi_engine.outputs import frame_length  # i-PI's own writer measures it

            self.length = frame_length(what, names)
            size = self.path.stat().st_size
            self.offsets = list(range(0, size - self.length + 1, self.length))
            self.torn = size % self.length != 0
            self.counts = [len(names)] * len(self.offsets)
        else:
            from mdsym.analysis.sources.ase import xyz_offsets  # the same frame layout

            self.offsets, self.counts, self.torn = xyz_offsets(self.path)
        self.steps = {}

    def __len__(self):
        return len(self.offsets)

    def raw(self, k) -> dict:
        """Frame ``k``: names, values (atomic units), cell, step."""
        from ipi.utils.io import read_file  # i-PI's reader, with its units from the comment

        if self.fmt in ("bin", "binary"):
            from mdsym.md.ipi_engine.outputs import read_frame  # i-PI's bin reader, one frame

            with open(self.path, "rb") as handle:
                handle.seek(self.offsets[k])
                step, values = read_frame(handle.read(self.length))
            return {"values": values, "step": step, "names": None, "cell": None}
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[k])
            text = b"".join(handle.readline() for _ in range(self.counts[k] + 2)).decode()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = read_file(self.fmt, io.StringIO(text), dimension=self.dimension)
        from mdsym.md.ipi_engine.outputs import STEP  # the step in a title, as i-PI finds it

        steps = STEP.findall(frame["comment"])
        return {"values": np.asarray(frame["atoms"].q, float).reshape(-1, 3),
                "step": int(steps[-1]) if steps else None, "names": list(frame["atoms"].names),
                "cell": np.asarray(frame["cell"].h, float)}


class IpiSystem:
    """Positions, and velocities and forces at the same steps, as ``Frame`` s."""

    def __init__(self, files: dict, names, timestep_fs):
        from ipi.utils.units import unit_to_user  # i-PI's atomic units to ASE's

        self.to = {"length": unit_to_user("length", "ase", 1.0),
                   "velocity": unit_to_user("velocity", "ase", 1.0) * VELOCITY_TO_A_PS,
                   "force": unit_to_user("force", "ase", 1.0)}
        self.positions = files["positions"]
        self.others = {key: files[key] for key in ("velocities", "forces") if key in files}
        self.index = {key: {} for key in self.others}
        self.name, self.timestep_fs = self.positions.name, timestep_fs
        first = self.positions.raw(0)
        self.names = first["names"] or names
        self.n_atoms, self.cell_au = len(first["values"]), first["cell"]
        if self.cell_au is None:
            self.cell_au = None

    def __len__(self):
        return len(self.positions)

    def other(self, key, step):
        frames, index = self.others[key], self.index[key]
        while step not in index and len(index) < len(frames):
            index[frames.raw(len(index))["step"]] = len(index)
        return frames.raw(index[step])["values"] * self.to[frames.dimension] if step in index else None

    def frame(self, k):
        from ase.geometry import cell_to_cellpar  # the box as MDAnalysis holds it

        raw = self.positions.raw(k)
        step = raw["step"] if raw["step"] is not None else k
        cell = raw["cell"] if raw["cell"] is not None else self.cell_au
        data = {"step": step}
        return Frame(raw["values"] * self.to["length"], self.other("velocities", step)
                     if "velocities" in self.others else None,
                     self.other("forces", step) if "forces" in self.others else None,
                     cell_to_cellpar(cell.T * self.to["length"]) if cell is not None else None,
                     step * self.timestep_fs / 1000.0 if self.timestep_fs else None, data)


def read_properties(path: Path) -> tuple:
    """``(thermo rows in mdsym's units, energy provenance)`` of an i-PI properties file."""
    from ipi.engine.properties import Properties  # each property's dimension
    from ipi.scripting import read_output  # i-PI's properties reader, units from the header
    from ipi.utils.units import unit_to_internal, unit_to_user  # i-PI's units

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values, info = read_output(str(path))
    except Exception as error:
        raise MdsymError(f"cannot read {path} as i-PI properties: {error}") from None
    dims = Properties().property_dict
    target = {"energy": "electronvolt", "time": "femtosecond", "temperature": "kelvin"}

    def column(name):
        unit = info[name][0] or "atomic_unit"
        dimension = dims[name.split("(")[0]]["dimension"]
        au = unit_to_internal(dimension, unit, np.atleast_1d(np.asarray(values[name], float)))
        return unit_to_user(dimension, target[dimension], au) if dimension in target else au

    rows = {"step": np.atleast_1d(np.asarray(values["step"], float))} if "step" in values else None
    if rows is None:
        raise MdsymError(f"{path} has no step column: its rows cannot be matched to frames")
    for name, key in (("time", "time_fs"), ("potential", "potential_eV"), ("kinetic_md", "kinetic_eV"),
                      ("conserved", "conserved_eV"), ("temperature", "temperature_K")):
        if name in values:
            rows[key] = column(name)
    units = {name: info[name][0] or "atomic_unit" for name in values}
    return rows, units


def simulation_file(path: Path) -> Path:
    path = Path(path)
    return path / "input.xml" if path.is_dir() else path


def open_ipi(path: Path, options) -> Opened:
    from ipi.utils.units import unit_to_user  # i-PI's atomic units

    xml = simulation_file(path)
    simulation = parse_input(xml)
    system = [value for kind, value in simulation.extra if kind == "system"]
    if not system:
        raise MdsymError(f"{xml} declares no <system>")
    system = system[0]
    nbeads = int(system.initialize.nbeads.fetch())
    dynamics = system.motion.dynamics
    timestep_fs = unit_to_user("time", "femtosecond", dynamics.timestep.fetch())
    trajectories, properties = declared_outputs(simulation, xml.parent, nbeads)
    if "positions" not in trajectories:
        raise MdsymError(f"{xml} declares no positions trajectory (<trajectory> positions or "
                         "x_centroid): nothing to analyse")
    files, notes = {}, []
    for key, (file, fmt, stride, what) in trajectories.items():
        if fmt not in READ_FORMATS:
            raise MdsymError(f"{file}: i-PI trajectory format {fmt} is not read by mdsym (xyz, ase, bin)")
        if not file.exists():
            message = f"{xml} declares {file.name} ({what}) but it is missing: has i-PI run in {xml.parent}?"
            if key == "positions":
                raise MdsymError(message)
            notes.append(message)
            continue
        files[key] = IpiFrames(file, fmt, what, names=initial_names(system, xml.parent))
    return opened_of(path, xml, simulation, system, files, properties, timestep_fs, nbeads, notes)


def initial_names(system, folder: Path):
    """The element names the input starts from (``<labels>`` or the initial file), or None."""
    import ase.io  # the initial structure file, when i-PI reads one
    from ipi.utils.io.inputs.io_xml import read_list  # i-PI's list syntax

    for kind, value in system.initialize.extra:
        if kind == "labels" and value.mode.fetch() == "manual":
            return [str(name) for name in read_list(value.value)]
        if kind == "file" and value.mode.fetch() in ("xyz", "pdb", "ase"):
            try:
                return ase.io.read(folder / str(value.value).strip()).get_chemical_symbols()
            except Exception:  # noqa: BLE001 (the trajectory's own names are used instead)
                return None
    return None


def opened_of(path, xml, simulation, system, files, properties, timestep_fs, nbeads, notes) -> Opened:
    from ipi.utils.units import unit_to_user  # i-PI's atomic units

    frames = IpiSystem(files, initial_names(system, xml.parent), timestep_fs)
    if frames.names is None:
        raise MdsymError(f"{files['positions'].name} is a bin trajectory, which holds no element "
                         "names: write positions as xyz too")
    names = [str(n) for n in frames.names]
    universe = universe_of(frames, names, masses_of(names))
    dynamics = system.motion.dynamics
    mode = dynamics.mode.fetch()
    ensemble = {"nve": "nve", "nvt": "nvt", "nvt-cc": "nvt"}.get(mode, "npt" if "np" in mode else mode)
    periodic = looks_periodic(universe)
    opened = Opened(kind="ipi", path=Path(path), files=[str(xml)] + [f.name for f in files.values()],
                    universe=universe, n_frames=len(frames), names=names, masses=masses_of(names),
                    periodic=periodic, timestep_fs=timestep_fs, ensemble=ensemble, notes=notes,
                    units={"frames": "i-PI atomic units unless the frame names others"})
    opened.cell = (frames.cell_au.T * frames.to["length"]) if periodic else None
    opened.extra["adjust"] = adjust(universe)
    opened.extra["config"] = {"beads": nbeads, "dynamics": mode}
    opened.thermostat = dynamics.thermostat.mode.fetch() or None
    temperature = system.ensemble.temperature.fetch()
    opened.temperature_K = unit_to_user("temperature", "kelvin", temperature) if temperature > 0 else None
    extent = np.ptp(universe.trajectory[0].positions, axis=0)
    opened.notes.append(f"i-PI does not record periodic boundaries: the atoms span "
                        f"{', '.join(f'{e:.3g}' for e in extent)} A of the box: analysed as "
                        + ("periodic" if periodic else "isolated"))
    if nbeads > 1 and files["positions"].what == "positions":
        opened.notes.append(f"{nbeads} beads and no centroid trajectory: bead 0 is analysed")
    for key, frames_of_key in files.items():
        if frames_of_key.torn:
            opened.notes.append(f"{frames_of_key.name} ends with a truncated frame: its whole frames are read")
    properties_rows(opened, properties, xml)
    return opened


def looks_periodic(universe) -> bool:
    ts = universe.trajectory[0]
    if ts.dimensions is None:
        return False
    extent = np.ptp(ts.positions, axis=0)
    return not bool(np.all(extent < 0.5 * np.asarray(ts.dimensions[:3])))


def properties_rows(opened: Opened, properties, xml) -> None:
    """The energies of i-PI's properties file, or the note why there are none."""
    if properties is None:
        opened.energy["why_not"] = f"{xml} declares no <properties> output"
        return
    file, columns = properties
    if not file.exists():
        opened.energy["why_not"] = f"{xml} declares {file.name} but it is missing"
        return
    rows, units = read_properties(file)
    opened.files.append(str(file))
    opened.units["properties"] = units
    energy = {"file": str(file), "column": None, "kind": None, "why_not": None}
    if "conserved_eV" in rows:
        energy.update(column="conserved", kind="total" if opened.ensemble == "nve" else "conserved")
    elif opened.ensemble == "nve" and "potential_eV" in rows and "kinetic_eV" in rows:
        rows["conserved_eV"] = rows["potential_eV"] + rows["kinetic_eV"]
        energy.update(column="potential + kinetic_md", kind="total")
    else:
        energy["why_not"] = f"{file.name} has no conserved column"
    opened.energies, opened.energy = rows, energy
