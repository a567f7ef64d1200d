"""``RunConfig``: everything one MD run needs, typed, validated in one place, with one
set of defaults.

``mdsym run`` takes the defaults of its options from the fields here
(``RunConfig.default(name)``; an option's destination is the field's name), both
engines read a ``RunConfig``, and ``run.json`` stores one under ``"config"``
(``to_json`` / ``from_json``) with a ``config_version``. So ``--help``, run.json and
the engines read the same numbers.

Versions. ``CONFIG_VERSION`` is the version this mdsym reads and writes. A
``run.json`` without ``config_version`` was written before versions existed; it is
read as the current version when its fields are fields of today (``structure`` is
then its ``source_structure``: those files named the run directory's copy
``structure``, which ``RUN/structure.xyz`` always is). Anything else (another
version, unknown fields, missing fields) is refused in one line that names both
versions, but for the fields added to the current version later
(``ADDED_IN_VERSION``), which take their defaults: what runs without them did.

This module imports no model code but the device names of ``mdsym.models.devices``
(the CLI imports it for its defaults); the symmetrization spec is parsed, once, when
a ``RunConfig`` is made.
"""

import dataclasses
import operator
import os
import types
from dataclasses import dataclass, field, fields

from mdsym.core.defaults import (
    DEFAULT_DEVICE,
    DEFAULT_FORCES,
    DEFAULT_MODEL,
    DEFAULT_SEED,
    DEFAULT_STRUCTURE,
    DEFAULT_SYMMETRIZE,
    DEFAULT_THREADS,
    DTYPE_NAMES,
    FORCES,
)
from mdsym.core.errors import MdsymError

#: the version of ``run.json``'s ``config`` that this mdsym reads and writes
CONFIG_VERSION = 1

ENGINES = ("ase", "ipi", "lammps")
ENSEMBLES = ("nve", "nvt")
THERMOSTATS = ("svr", "langevin")
SOCKETS = ("unix", "tcp")
#: where an ``o3:L`` / ``so3:L`` average is taken under the i-PI engine: in each
#: ``mdsym serve`` client (batched), or by i-PI's own ``<ffrotations>``, which spreads
#: the rotations of one step over raw clients (``mdsym.md.ipi_engine.rotation_grid.RotationGrid``)
AVERAGE_IN = ("driver", "ipi")
AVERAGE_IN_HELP = (
    "i-PI engine: where the rotations of --symmetrize o3:L / so3:L are averaged. driver: each "
    "'mdsym serve' client averages mdsym's cheapest grid, batched (what is spread is beads); "
    "ipi: i-PI's <ffrotations> on its smallest Lebedev grid exact to L (inversion for o3) "
    "spreads the rotations of every step over raw clients, on this and other hosts; "
    "o3:L:rotated becomes its 'random' option (the grid turned by a random O(3) element per "
    "step, improper half the time, where mdsym turns it by a proper rotation). "
    "Fixes, random, o3:auto and mts need driver.")

#: what a resumed run may change: how it executes, not what it computes (every other
#: field defines the physics of the run and is refused when it differs)
EXECUTION_FIELDS = frozenset(("threads", "device", "batch_size", "socket", "port", "address",
                              "drivers", "latency_s", "checkpoint_stride"))

# the stability monitors' defaults (``mdsym.md.monitors.MonitorSettings`` uses them too)
DEFAULT_MIN_DISTANCE_A = 0.5
DEFAULT_MAX_TEMPERATURE_FACTOR = 5.0
DEFAULT_CONNECTIVITY = True

#: the configuration keys ``mdsym run`` wrote before ``config_version`` existed (a
#: version-less run.json with all of them is a run of the current version). ``device``
#: and ``dtype`` came shortly before the version: runs without them ran on the default
#: device in the model's own precision, what their defaults say.
LEGACY_FIELDS = frozenset((
    "model", "structure", "engine", "ensemble", "thermostat", "timestep_fs", "steps",
    "temperature_K", "thermostat_tau_fs", "seed", "symmetrize", "forces", "batch_size",
    "stride", "socket", "port", "address", "drivers", "beads", "min_distance_A",
    "max_temperature_factor", "threads", "connectivity",
))  # fmt: skip
#: fields added to config version 1 after it was first written, with defaults that say
#: what runs without them did (``average_in`` driver: each client averaged its own;
#: ``variant`` None: the model's plain energy)
ADDED_IN_VERSION = frozenset(("average_in", "variant"))


def _setting(default, option=None, choices=None, minimum=None, above=None, maximum=None):
    """A field with what its check needs: the option that sets it (for messages),
    its allowed values or bounds (``minimum`` inclusive, ``above`` exclusive)."""
    return field(default=default, metadata={"option": option, "choices": choices,
                                            "minimum": minimum, "above": above,
                                            "maximum": maximum})


@dataclass(frozen=True)
class RunConfig:
    """One MD run. Every field has the default ``mdsym run`` uses; making one checks
    it (one ``MdsymError`` line for the first problem found)."""

    # what runs
    model: str = _setting(DEFAULT_MODEL, "--model")
    structure: str = _setting(str(DEFAULT_STRUCTURE), "--structure")
    symmetrize: object = _setting(DEFAULT_SYMMETRIZE, "--symmetrize")  # holds the parsed SymmetrizeSpec
    forces: str = _setting(DEFAULT_FORCES, "--forces", choices=FORCES)
    batch_size: int | None = _setting(None, "--batch-size", minimum=1)
    threads: str = _setting(DEFAULT_THREADS, "--threads")
    device: str = _setting(DEFAULT_DEVICE, "--device")  # checked where the model is loaded
    dtype: str | None = _setting(None, "--dtype", choices=DTYPE_NAMES)  # None: the model's own
    variant: str | None = _setting(None, "--variant")  # a metatomic energy/NAME; None: plain energy
    # the dynamics
    engine: str = _setting("ase", "--engine", choices=ENGINES)
    ensemble: str = _setting("nvt", "--ensemble", choices=ENSEMBLES)
    thermostat: str = _setting("svr", "--thermostat", choices=THERMOSTATS)
    timestep_fs: float = _setting(0.5, "--timestep", above=0)
    steps: int = _setting(1000, "--steps", minimum=0)
    temperature_K: float = _setting(300.0, "--temperature", minimum=0)
    thermostat_tau_fs: float = _setting(100.0, "--tau", above=0)
    seed: int = _setting(DEFAULT_SEED, "--seed", minimum=0)
    # what is written
    stride: int = _setting(10, "--stride", minimum=1)
    checkpoint_stride: int = _setting(100, "checkpoint_stride", minimum=1)  # i-PI's checkpoints, steps
    # the i-PI engine
    socket: str = _setting("unix", "--socket", choices=SOCKETS)
    port: int | None = _setting(None, "--port", minimum=1, maximum=65535)
    address: str | None = _setting(None, "--address")
    drivers: int = _setting(1, "--drivers", minimum=0)  # 0: clients started by hand only
    average_in: str = _setting(AVERAGE_IN[0], "--average-in", choices=AVERAGE_IN)
    beads: int = _setting(1, "--beads", minimum=1)
    latency_s: float = _setting(1e-4, "latency_s", above=0)  # how often i-PI polls its clients
    # the stability monitors (mdsym.md.monitors)
    min_distance_A: float = _setting(DEFAULT_MIN_DISTANCE_A, "--min-distance", minimum=0)
    max_temperature_factor: float = _setting(DEFAULT_MAX_TEMPERATURE_FACTOR,
                                             "--max-temperature-factor", minimum=0)
    connectivity: bool = _setting(DEFAULT_CONNECTIVITY, "--no-connectivity")

    def __post_init__(self):
        for item in fields(self):
            object.__setattr__(self, item.name, _checked(item, getattr(self, item.name)))
        if self.ensemble == "nvt" and not self.temperature_K:
            raise MdsymError("nvt needs a positive --temperature")
        _check_average_in(self)
        _check_remote_only(self)
        if self.engine in ("ase", "lammps") and (self.beads > 1 or self.drivers != 1):
            raise MdsymError(f"--beads and --drivers are options of the i-PI engine: add --engine "
                             f"ipi (the {self.engine.upper()} engine runs classical MD in this process)")
        if self.engine == "lammps" and self.symmetrize.mts_interval:
            raise MdsymError(f"--symmetrize {self.symmetrize} is multiple time stepping, which the "
                             "LAMMPS engine does not run (LAMMPS' run_style respa splits force "
                             "styles, not mdsym's correction): use --engine ase or ipi")
        if self.symmetrize.mts_interval and self.engine == "ipi":
            _check_whole_outer_steps(self)
        if self.symmetrize.mts_direct and self.forces == "conservative":
            raise MdsymError("mts:K:direct runs the direct forces inside and the conservative ones "
                             "outside: drop --forces conservative")

    # --- defaults, for the CLI -----------------------------------------------------

    @classmethod
    def default(cls, name: str):
        """The default of field ``name`` (what ``mdsym run --help`` shows)."""
        return cls.__dataclass_fields__[name].default

    @classmethod
    def choices(cls, name: str) -> tuple:
        return cls.__dataclass_fields__[name].metadata["choices"]

    @classmethod
    def option(cls, name: str) -> str:
        """The command-line option that sets field ``name`` (for messages)."""
        return cls.__dataclass_fields__[name].metadata["option"] or name

    # --- from Python and from run.json -----------------------------------------------

    @classmethod
    def coerce(cls, config) -> "RunConfig":
        """A ``RunConfig`` as it is, or one from a dict of its fields (the Python API:
        fields left out take their defaults; an unknown key is one line)."""
        if isinstance(config, cls):
            return config
        if not isinstance(config, dict):
            raise MdsymError(f"a run configuration is a RunConfig or a dict, not {type(config).__name__}")
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise MdsymError(f"unknown run setting {', '.join(map(repr, unknown))}; the settings are "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**config)

    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """``run.json``'s ``config``: the version, then every field (the spec as text)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["symmetrize"] = str(self.symmetrize)
        return {"config_version": CONFIG_VERSION, **values}

    @classmethod
    def from_json(cls, data, where="run.json", partial: bool = False) -> "RunConfig":
        """The configuration ``to_json`` wrote (``where``: the file, for messages).

        A run of another config version, or with fields this mdsym does not know, is
        one line. Missing fields are refused too unless ``partial`` (analysis: they take
        their defaults; only ``model`` is required), which also lets a version-less
        file's ``null`` stand for a default."""
        if not isinstance(data, dict):
            raise MdsymError(f"{where} has no run configuration")
        values = dict(data)
        version = values.pop("config_version", None)
        names = set(cls.__dataclass_fields__)
        if version is None:
            if "source_structure" in values:  # the file the run started from
                values["structure"] = values.pop("source_structure")
            required = LEGACY_FIELDS
        elif version == CONFIG_VERSION:
            required = names - ADDED_IN_VERSION
        else:
            raise _other_version(where, version)
        unknown = sorted(set(values) - names)
        if unknown:
            raise _other_version(where, version, f"fields it does not know: {', '.join(unknown)}")
        if partial:
            values = {k: v for k, v in values.items() if v is not None or _optional(k)}
            required = {"model"}
        missing = sorted(required - set(values))
        if missing:
            raise _other_version(where, version, f"missing: {', '.join(missing)}")
        try:
            return cls(**values)
        except MdsymError as error:
            raise MdsymError(f"{where}: {error}") from None


def _check_average_in(config):
    """``--average-in ipi``: i-PI averages, so the spec must be a grid it can take."""
    if config.average_in != "ipi":
        return
    spec = config.symmetrize
    if config.engine != "ipi":
        raise MdsymError("--average-in ipi is an option of the i-PI engine: add --engine ipi")
    if spec.mts_interval:
        raise MdsymError(f"--average-in ipi cannot run {spec}: multiple time stepping needs the "
                         "raw and averaged forces apart: use --average-in driver")
    if spec.remove_net_force or spec.remove_net_torque:
        raise MdsymError(f"--average-in ipi cannot run {spec}: netforce and nettorque cannot be "
                         "applied after i-PI's average (each client sees one rotation): drop "
                         "them or use --average-in driver")
    if spec.mode != "grid":
        what = {"none": "there are no rotations to average",
                "random": "one random rotation per call has nothing for i-PI to spread",
                "auto": "o3:auto picks its degree in the client from the model's forces"}[spec.mode]
        raise MdsymError(f"--average-in ipi takes o3:L, so3:L or o3:L:rotated, not {spec}: {what}; "
                         "use --average-in driver")
    if spec.family == "gauss-legendre":
        raise MdsymError(f"--average-in ipi cannot run {spec}: i-PI's grid is Lebedev x in-plane "
                         "angles; drop :gauss-legendre or use --average-in driver")


def _check_remote_only(config):
    """``--drivers 0``: every client is started by hand, so it must know where to connect."""
    if config.drivers != 0 or config.engine != "ipi":
        return
    if config.socket == "tcp" and config.port is None:
        raise MdsymError("--drivers 0 waits for clients you start (mdsym serve --address HOST "
                         "--port P): give i-PI a fixed --port")
    if config.socket == "unix" and config.address is None:
        raise MdsymError("--drivers 0 waits for clients you start (mdsym serve --unix NAME): "
                         "give the socket a name with --address NAME")


def _check_whole_outer_steps(config: RunConfig) -> None:
    """The i-PI engine runs ``mts:K`` as i-PI's ``<nmts>``: whole outer steps of K
    inner ones, with positions only at outer steps (``mdsym.md.ipi_engine.run``)."""
    k = config.symmetrize.mts_interval
    for option, value in (("--steps", config.steps), ("--stride", config.stride)):
        if value % k:
            lower, upper = value // k * k, (value // k + 1) * k
            suggestion = f"{lower} or {upper}" if lower else f"{upper}"
            raise MdsymError(f"{option} {value} is not a multiple of K = {k} (mts:{k}): the i-PI "
                             f"engine integrates whole outer steps of K inner steps; use {option} "
                             f"{suggestion}")


def _other_version(where, version, detail=None) -> MdsymError:
    """The one line for a run.json this mdsym does not read."""
    if version == CONFIG_VERSION:  # the same version, other fields: another build wrote it
        return MdsymError(f"{where} has mdsym config version {version}, as this mdsym, but {detail}: "
                          "another build of mdsym wrote it")
    written = "no config version" if version is None else f"mdsym config version {version}"
    return MdsymError(f"{where} was written by {written}; this mdsym reads version {CONFIG_VERSION}"
                      + (f" ({detail})" if detail else ""))


def _optional(name) -> bool:
    kind = RunConfig.__dataclass_fields__[name].type
    return isinstance(kind, types.UnionType) and type(None) in kind.__args__


def _checked(item, value):
    """``value`` of field ``item`` in its type, within its bounds; one line if not."""
    name, meta = item.name, item.metadata
    option = meta["option"] or name
    if name == "symmetrize":
        from mdsym.symmetry.spec import SymmetrizeSpec  # start-up time: the CLI loads this, spec loads numpy

        return SymmetrizeSpec.parse(value)
    if name == "model" and not isinstance(value, (str, os.PathLike)):
        raise MdsymError(
            "a run's model is a shipped name, 'analytic[:...]' or a model file, not a Python "
            f"object ({type(value).__name__}): run that in ASE with mdsym.MdsymCalculator")
    if value is None and _optional(name):
        return None
    kind = item.type.__args__[0] if isinstance(item.type, types.UnionType) else item.type
    value = _typed(kind, value, option, name)
    if meta["choices"] is not None and value not in meta["choices"]:
        raise MdsymError(f"{option} must be one of {', '.join(meta['choices'])}, not {value!r}")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise MdsymError(f"{option} must be >= {meta['minimum']}, not {value}")
    if meta["above"] is not None and value <= meta["above"]:
        raise MdsymError(f"{option} must be positive, not {value}")
    if meta["maximum"] is not None and value > meta["maximum"]:
        raise MdsymError(f"{option} must be <= {meta['maximum']}, not {value}")
    return value


def _typed(kind, value, option, name):
    if kind is bool:
        if not isinstance(value, bool):
            raise MdsymError(f"{option} ({name}) must be true or false, not {value!r}")
        return value
    if kind is float or kind is int:
        if isinstance(value, bool):
            raise MdsymError(f"{option} must be a number, not {value!r}")
        try:
            return float(value) if kind is float else operator.index(value)
        except (TypeError, ValueError):
            what = "a number" if kind is float else "a whole number"
            raise MdsymError(f"{option} must be {what}, not {value!r}") from None
    if name == "threads":  # 'auto' or a count (mdsym.cli.options.configure_threads)
        text = str(value)
        if text != "auto" and not (text.isdigit() and int(text) >= 1):
            raise MdsymError(f"--threads must be 'auto' or a number >= 1, not {value!r}")
        return text
    if not isinstance(value, (str, os.PathLike)):
        raise MdsymError(f"{option} must be text, not {value!r}")
    return os.fspath(value)
