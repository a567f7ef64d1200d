"""The i-PI input of an mdsym run, built as an XML tree (``xml.etree.ElementTree``).

Every number is in i-PI's atomic units, converted with ASE's constants
(``mdsym.serving.ipi_protocol``) and written with ``repr`` (no rounding); masses come from
the structure and ``fixcom`` is off, so that with the same initial velocities and
timestep i-PI's NVE run is ASE's ``VelocityVerlet`` run to round-off.

Built here rather than with i-PI's helpers: ``ipi.scripting.templates`` formats
strings (no tree to check or edit), and i-PI's ``Input*`` classes write from its
engine objects (``Beads``, ``Cell``), which would build half a simulation to write
its input.

What i-PI writes (``OUTPUT_FILES``), per output prefix: ``thermo`` (the properties
``THERMO``, every step), ``pos/vel/frc.bin`` (centroid positions, velocities and
forces, every step, at full precision), ``extras_0`` (the rotational std that
``mdsym serve`` returns when it averages, bead 0) and ``RESTART`` (checkpoints).

A restart is i-PI's checkpoint (a complete input) edited: ``restarted`` gives it a new
output prefix and run length and moves its sockets, ``readdressed`` moves each socket
of a multiple-time-step run to its own address. Which grid ``<ffrotations>`` averages
over is ``mdsym.md.ipi_engine.rotation_grid``'s, reading a checkpoint
``mdsym.md.ipi_engine.checkpoints``'.
"""

import dataclasses
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from ase import units

from mdsym.core.errors import MdsymError
from mdsym.md.config import ENSEMBLES, THERMOSTATS, RunConfig
from mdsym.serving import ipi_protocol as p

#: thermo columns, in this order, all in atomic units
THERMO = ("step", "time", "potential", "kinetic_md", "conserved", "temperature")
#: run-directory array -> (i-PI file name, i-PI trajectory): the centroid, which is
#: the system itself with one bead
FRAMES = {"positions": ("pos", "x_centroid"), "velocities": ("vel", "v_centroid"),
          "forces": ("frc", "f_centroid")}
FRAME_FORMAT = "bin"  # full precision (see mdsym.md.ipi_engine.outputs)
#: the extras ``mdsym serve`` returns when it averages over rotations: the rotational
#: std and the degree of the quadrature it used (o3:auto's choice)
ROTATION_STD = ("energy_rot_std", "forces_rot_std", "symmetrize_degree")
#: the extras i-PI's ``<ffrotations>`` returns: the energy of every rotation (Hartree)
IPI_GRID_ENERGIES = ("o3grid_pots",)
PATH_INTEGRAL_THERMOSTATS = {"svr": "pile_g", "langevin": "pile_l"}
NONPERIODIC_BOX_A = 1000.0  # i-PI needs a cell; clusters get a large one, and pbc off


@dataclass(frozen=True)
class Dynamics:
    """How i-PI integrates (ASE units); defaults of ``mdsym run`` (``RunConfig``), but
    NVE: a bare input is plain MD."""

    ensemble: str = "nve"
    thermostat: str = RunConfig.default("thermostat")
    timestep_fs: float = RunConfig.default("timestep_fs")
    temperature_K: float = RunConfig.default("temperature_K")
    tau_fs: float = RunConfig.default("thermostat_tau_fs")
    seed: int = RunConfig.default("seed")
    beads: int = RunConfig.default("beads")

    @classmethod
    def of(cls, config: RunConfig) -> "Dynamics":
        """The dynamics a run's configuration asks for."""
        return cls(ensemble=config.ensemble, thermostat=config.thermostat,
                   timestep_fs=config.timestep_fs, temperature_K=config.temperature_K,
                   tau_fs=config.thermostat_tau_fs, seed=config.seed, beads=config.beads)

    def check(self):
        if self.ensemble not in ENSEMBLES:
            raise MdsymError(f"unknown ensemble {self.ensemble!r}: use nve or nvt")
        if self.beads < 1:
            raise MdsymError(f"--beads must be >= 1, not {self.beads}")
        if self.ensemble == "nvt":
            if self.thermostat not in THERMOSTATS:
                raise MdsymError("the i-PI engine offers thermostats svr and langevin, "
                                 f"not {self.thermostat!r}")
            if not self.temperature_K or self.temperature_K <= 0:
                raise MdsymError("nvt needs a positive --temperature")


@dataclass(frozen=True)
class Outputs:
    """What i-PI writes, under which prefix. ``verbosity`` is i-PI's: at ``high`` it
    logs the wall time of every MD step."""

    prefix: str = "seg0"
    frames: bool = True
    extras: bool = False
    checkpoint_stride: int = 100
    verbosity: str = "low"
    extras_names: tuple = ROTATION_STD  # what ``extras`` writes (``IPI_GRID_ENERGIES`` under ffrotations)


def output_files(prefix: str) -> dict:
    """The files i-PI writes for ``Outputs(prefix=prefix)``, by what they hold."""
    files = {"thermo": f"{prefix}.thermo", "extras": f"{prefix}.extras_0",
             "checkpoint": f"{prefix}.RESTART"}
    for key, (name, _) in FRAMES.items():
        files[key] = f"{prefix}.{name}.{FRAME_FORMAT}"
    return files


# --- small helpers ----------------------------------------------------------------


def _element(tag, text=None, **attributes) -> ET.Element:
    element = ET.Element(tag, {k: str(v) for k, v in attributes.items()})
    if text is not None:
        element.text = f" {text} "
    return element


def _child(parent, tag, text=None, **attributes) -> ET.Element:
    element = _element(tag, text, **attributes)
    parent.append(element)
    return element


def _array(values) -> str:
    return "[ " + ", ".join(repr(float(x)) for x in np.ravel(values)) + " ]"


def _au(value_fs: float) -> str:
    return repr(float(value_fs) * units.fs / p.AU_TIME)


def to_text(element: ET.Element) -> str:
    """The input file's text."""
    tree = ET.ElementTree(element)
    ET.indent(tree)
    return ET.tostring(element, encoding="unicode") + "\n"


# --- forcefields --------------------------------------------------------------------


def socket(name: str, mode: str, address: str, port=None, pbc=False, latency=1e-4,
           batch_size=1, timeout=0) -> ET.Element:
    """An ``<ffsocket>``: i-PI listens on ``address`` (a unix socket name, or a host
    for ``mode='inet'`` with ``port``) for clients such as ``mdsym serve``."""
    ff = _element("ffsocket", name=name, mode=mode, pbc=str(bool(pbc)).lower())
    _child(ff, "address", address)
    if port is not None:
        _child(ff, "port", int(port))
    _child(ff, "latency", latency)
    _child(ff, "batch_size", int(batch_size))
    _child(ff, "timeout", timeout)
    return ff


def rotations(name: str, inner: ET.Element, grid_mode="lebedev", grid_order=1,
              inversion=False, random=False) -> ET.Element:
    """An ``<ffrotations>`` around the socket ``inner``: i-PI averages over its own grid,
    one request per rotation (``rotation_grid.ipi_rotation_grid`` is the same grid in mdsym);
    ``random``: the grid turned by a fresh random O(3) element at every evaluation."""
    ff = _element("ffrotations", name=name)
    _child(ff, "random", bool(random))
    _child(ff, "grid_mode", grid_mode)
    _child(ff, "grid_order", int(grid_order))
    _child(ff, "inversion", bool(inversion))
    inner.set("name", f"{name}-inner")
    ff.append(inner)
    return ff


def direct(name: str, pes_path, parameters: dict, pbc=False) -> ET.Element:
    """An ``<ffdirect>`` running a custom PES (``drivers/mdsym_pes.py``) inside i-PI."""
    ff = _element("ffdirect", name=name, pbc=str(bool(pbc)).lower())
    _child(ff, "pes", "custom")
    _child(ff, "pes_path", pes_path)
    _child(ff, "parameters", "{ " + ", ".join(f"{k}: {v}" for k, v in parameters.items()) + " }")
    return ff


# --- the simulation ------------------------------------------------------------------


def output_block(outputs: Outputs) -> ET.Element:
    block = _element("output", prefix=outputs.prefix)
    columns = ", ".join(name if name == "step" else f"{name}{{atomic_unit}}" for name in THERMO)
    _child(block, "properties", f"[ {columns} ]", filename="thermo", stride=1, flush=1)
    if outputs.frames:
        for name, what in FRAMES.values():
            _child(block, "trajectory", what, filename=name, stride=1, format=FRAME_FORMAT,
                   flush=1)
    if outputs.extras:
        _child(block, "trajectory", "extras", filename="extras", stride=1, flush=1,
               extra_type=",".join(outputs.extras_names))
    _child(block, "checkpoint", filename="RESTART", stride=int(outputs.checkpoint_stride),
           overwrite="true")
    return block


def cell_matrix(atoms) -> np.ndarray:
    """i-PI's ``h`` in Angstrom: lattice vectors as columns; a large box if isolated."""
    if atoms.pbc.all():
        return np.array(atoms.cell.array).T
    if not atoms.pbc.any():
        return np.eye(3) * NONPERIODIC_BOX_A
    raise MdsymError("mixed periodic boundary conditions are not supported")


def initialize_block(atoms, velocities, beads: int) -> ET.Element:
    """Every bead starts at the structure with the same velocities (i-PI reads a
    manual array as all its beads)."""
    block = _element("initialize", nbeads=int(beads))
    labels = "[ " + ", ".join(f"'{s}'" for s in atoms.get_chemical_symbols()) + " ]"
    au = {"units": "atomic_unit"}
    positions = np.tile(np.ravel(atoms.positions / p.BOHR), beads)
    _child(block, "positions", _array(positions), mode="manual", **au)
    _child(block, "labels", labels, mode="manual")
    _child(block, "masses", _array(atoms.get_masses() / p.AU_MASS), mode="manual", **au)
    _child(block, "cell", _array(cell_matrix(atoms) / p.BOHR), mode="manual", **au)
    velocities = np.tile(np.ravel(np.asarray(velocities) / p.AU_VELOCITY), beads)
    _child(block, "velocities", _array(velocities), mode="manual", **au)
    return block


def thermostat_mode(dynamics: Dynamics) -> str:
    """i-PI's thermostat: with beads, the path-integral one of the same kind (PILE-G
    is SVR on the centroid, PILE-L Langevin; both Langevin on the internal modes)."""
    if dynamics.beads > 1:
        return PATH_INTEGRAL_THERMOSTATS[dynamics.thermostat]
    return dynamics.thermostat


def motion_block(dynamics: Dynamics) -> ET.Element:
    motion = _element("motion", mode="dynamics")
    _child(motion, "fixcom", False)
    integrator = _child(motion, "dynamics", mode=dynamics.ensemble)
    _child(integrator, "timestep", _au(dynamics.timestep_fs), units="atomic_unit")
    if dynamics.ensemble == "nvt":
        thermostat = _child(integrator, "thermostat", mode=thermostat_mode(dynamics))
        _child(thermostat, "tau", _au(dynamics.tau_fs), units="atomic_unit")
    return motion


def system_block(atoms, velocities, forcefield_name: str, dynamics: Dynamics) -> ET.Element:
    system = _element("system")
    system.append(initialize_block(atoms, velocities, dynamics.beads))
    forces = _child(system, "forces")
    _child(forces, "force", forcefield=forcefield_name)
    system.append(motion_block(dynamics))
    ensemble = _child(system, "ensemble")
    temperature = (dynamics.temperature_K or 0.0) / p.AU_TEMPERATURE
    _child(ensemble, "temperature", repr(temperature), units="atomic_unit")
    return system


def simulation(atoms, velocities, forcefield: ET.Element, total_steps: int,
               dynamics: Dynamics = Dynamics(), outputs: Outputs = Outputs()) -> ET.Element:
    """The i-PI input for ``total_steps`` of MD of ``atoms`` (ASE units in) starting from
    ``velocities``, forces from ``forcefield`` (``socket``, ``rotations``, ``direct``)."""
    dynamics.check()
    root = _element("simulation", verbosity=outputs.verbosity, safe_stride=1,
                    floatformat="%.17e")
    root.append(output_block(outputs))
    _child(root, "total_steps", int(total_steps))
    prng = _child(root, "prng")
    _child(prng, "seed", int(dynamics.seed))
    root.append(forcefield)
    root.append(system_block(atoms, velocities, forcefield.get("name"), dynamics))
    return root


def restarted(checkpoint_text: str, prefix: str, total_steps: int, address=None,
              port=None, rotations_socket: ET.Element = None) -> ET.Element:
    """i-PI's checkpoint (a complete input) with a new output prefix, run length and,
    if given, socket address and port. ``rotations_socket``: the socket to put back
    inside ``<ffrotations>``, whose checkpoint keeps only the inner socket's name and
    port (i-PI 3.3 drops its mode, address, pbc and latency)."""
    root = ET.fromstring(checkpoint_text)
    root.find("total_steps").text = f" {int(total_steps)} "
    root.find("output").set("prefix", prefix)
    if rotations_socket is not None:
        for ff in root.iter("ffrotations"):
            for inner in ff.findall("ffsocket"):
                ff.remove(inner)
            inner = ET.fromstring(ET.tostring(rotations_socket))  # a copy
            inner.set("name", f"{ff.get('name')}-inner")
            ff.append(inner)
    for ff in root.iter("ffsocket"):
        _move_socket(ff, address, port)
    return root


def _move_socket(ff: ET.Element, address=None, port=None) -> None:
    """Point the ``<ffsocket>`` ``ff`` at ``address`` / ``port`` (None: left as is)."""
    if address is not None:
        ff.find("address").text = f" {address} "
    if port is not None:
        found = ff.find("port")
        if found is None:
            found = _child(ff, "port")
        found.text = f" {int(port)} "


# --- multiple time stepping ------------------------------------------------------------


def multiple_time_step(atoms, velocities, inner: ET.Element, outer: ET.Element, interval: int,
                       total_steps: int, dynamics: Dynamics = Dynamics(),
                       outputs: Outputs = Outputs()) -> ET.Element:
    """An i-PI input running reversible RESPA through its own ``<nmts>``: ``inner``
    (a forcefield: the raw model) every step of ``dynamics.timestep_fs``, ``outer``
    (the correction, symmetrized minus raw) as a kick every ``interval`` of them;
    ``total_steps`` inner steps, a whole number of outer ones.

    i-PI's semantics (``ipi.engine.motion.dynamics.NVEIntegrator.mtsprop``): its
    ``<timestep>`` is the *outer* step, ``<nmts>[1, K]</nmts>`` splits it into K
    inner velocity Verlet steps, and each ``<force>``'s ``<mts_weights>`` gives its
    weight per level, outer first (``[1, 0]``: outer only, ``[0, 1]``: inner
    only). One i-PI step is one outer step: the opening kick ``dt_out/2`` with the
    outer force, K inner steps of ``dt_out/K``, the closing kick; a thermostat acts
    for ``dt_out/2`` before and after (``obabo``). i-PI's step counter, its
    outputs' strides and checkpoints all count outer steps; its potential, forces
    and conserved quantity are those of the sum of both forces (the weights
    summed over levels), i.e. of the symmetrized model, at outer steps."""
    interval = int(interval)
    if interval < 1 or total_steps % interval:
        raise MdsymError(f"multiple time stepping runs whole outer steps: {total_steps} steps "
                         f"are not a multiple of K = {interval}")
    outer_dynamics = dataclasses.replace(dynamics, timestep_fs=dynamics.timestep_fs * interval)
    root = simulation(atoms, velocities, inner, total_steps // interval, outer_dynamics, outputs)
    root.insert(list(root).index(inner) + 1, outer)  # forcefields before the system
    forces = root.find("system/forces")
    for force in forces.findall("force"):
        _child(force, "mts_weights", "[ 0, 1 ]")
    _child(_child(forces, "force", forcefield=outer.get("name")), "mts_weights", "[ 1, 0 ]")
    _child(root.find("system/motion/dynamics"), "nmts", f"[ 1, {interval} ]")
    return root


def readdressed(root: ET.Element, sockets: dict) -> ET.Element:
    """``root`` with each ``<ffsocket>`` named in ``sockets`` (``{name: (address,
    port)}``, port None for unix sockets) moved to that address (a restart of a run
    with several sockets: ``restarted`` moves them all to one)."""
    for ff in root.iter("ffsocket"):
        if ff.get("name") not in sockets:
            continue
        _move_socket(ff, *sockets[ff.get("name")])
    return root
