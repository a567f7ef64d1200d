"""``RunContext``: what a run needs beyond its configuration, built once per command.

From a ``RunConfig`` it reads the structure, sets torch's threads, loads the model
(once) and checks that the model and the symmetrization apply to the system, so
that a bad input is one line before anything is written. ``mdsym run`` builds it
and hands it to the engine: the ASE engine runs its model in this process; the
i-PI engine runs it in its ``mdsym serve`` clients, and needs only the checks.
"""

from dataclasses import dataclass

from mdsym.core.errors import MdsymError
from mdsym.core.system import System, read_structure
from mdsym.core.threads import configure_threads
from mdsym.md.config import RunConfig
from mdsym.md.monitors import MonitorSettings, StabilityMonitor
from mdsym.models import load_model
from mdsym.models.devices import dtype_name
from mdsym.models.memory import check_fits
from mdsym.serving.ase_calculator import MdsymCalculator


@dataclass(frozen=True, eq=False)
class RunContext:
    config: RunConfig  # with ``dtype`` the model's own when the configuration left it open
    atoms: object  # ase.Atoms: the structure the run starts from
    system: object  # mdsym.core.system.System of ``atoms``
    model: object  # mdsym.models.base.Model, loaded once
    threads: int  # torch's intra-op threads, as configured
    direct_model: object = None  # under mts:K:direct, its direct forces (``model``: conservative)

    @classmethod
    def build(cls, config, atoms=None) -> "RunContext":
        """Check ``config`` (a ``RunConfig`` or a dict of its fields) against its
        structure (or ``atoms``) and model; one clear line for the first problem."""
        config = RunConfig.coerce(config)
        atoms = atoms if atoms is not None else read_structure(config.structure)
        system = System.from_atoms(atoms)
        if config.symmetrize.remove_net_torque and system.periodic:
            raise MdsymError("nettorque applies to isolated systems only (the structure is periodic)")
        threads = configure_threads(config.threads, len(atoms))

        def load(forces):
            return load_model(config.model, forces=forces, device=config.device, dtype=config.dtype,
                              variant=config.variant)

        direct = config.symmetrize.mts_direct  # direct forces inside, conservative outside
        model = load("conservative" if direct else config.forces)
        model.check_system(system)
        check_fits(model, system, config.batch_size, config.symmetrize.evaluations_per_call())
        direct_model = load("direct") if direct else None
        if config.dtype is None and model.dtype is not None:
            # the precision it runs in, recorded: resumed and analysed in the same one
            config = config.replace(dtype=dtype_name(model.dtype))
        return cls(config, atoms, system, model, threads, direct_model)

    @classmethod
    def of(cls, config_or_context, engine: str) -> "RunContext":
        """A context as it is, or built from a configuration for ``engine`` (a direct
        call of that engine runs it, whatever the configuration names)."""
        if isinstance(config_or_context, cls):
            return config_or_context
        if isinstance(config_or_context, dict):
            return cls.build({**config_or_context, "engine": engine})
        return cls.build(RunConfig.coerce(config_or_context).replace(engine=engine))

    def calculator(self, seed: int):
        """An ASE calculator of the run's model under its symmetrization; ``seed``
        seeds its random rotations."""
        return MdsymCalculator(self.model, self.config.symmetrize,
                               batch_size=self.config.batch_size, seed=seed)

    def monitor(self, initial_atoms, reference_temperature_K):
        """The stability monitors, bonds judged against ``initial_atoms``."""
        return StabilityMonitor(initial_atoms, reference_temperature_K,
                                MonitorSettings.from_config(self.config))
