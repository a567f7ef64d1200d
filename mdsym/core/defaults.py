"""Every default that a command's help text shows, in one place that imports nothing
heavy (no torch, numpy or ASE): the command line reads its defaults from here, and so
do the modules that use them, so ``--help`` shows what the code does.

Structures are named by their shipped names (``ethanol``), resolved to files by
``structure_path``.
"""

from pathlib import Path

#: the shipped structures (``--structure NAME`` for ``NAME.xyz`` here)
STRUCTURES = Path(__file__).resolve().parent.parent / "data" / "structures"
DEFAULT_STRUCTURE = "ethanol"
DEFAULT_MODEL = "pet-ethanol"
DEFAULT_SYMMETRIZE = "none"
DEFAULT_FORCES = "auto"  # the model's own: direct if it predicts forces, else autograd
FORCES = ("auto", "conservative", "direct")
DEFAULT_SEED = 0
DEFAULT_THREADS = "auto"  # see mdsym.core.threads.configure_threads
#: ``--threads auto`` runs torch on one thread below this many atoms
SMALL_SYSTEM_ATOMS = 256
THREADS_HELP = f"torch threads: a number, or auto (1 below {SMALL_SYSTEM_ATOMS} atoms)."

# where a model runs and in which precision (mdsym.models.devices)
DEFAULT_DEVICE = "auto"
DEVICE_HELP = "Where the model runs: cpu, cuda, cuda:N or auto (CUDA when available)."
DTYPE_NAMES = ("float32", "float64")
DTYPE_HELP = ("Precision of the model: float32 or float64 (default: the model's own, float64 for "
              "analytic and native models, the declared dtype of a metatomic model).")
VARIANT_HELP = ("Energy variant of a metatomic model (PET-MAD, UPET): NAME uses its output "
                "energy/NAME, and non_conservative_force/NAME and energy_uncertainty/NAME when it "
                "has them, as metatomic-ase's variants and i-PI's energy_variant do; without it, "
                "the plain energy.")

# mdsym serve and the PES plugin (mdsym.serving)
#: what a correction-mode potential subtracts from the symmetrized model (``none``: nothing)
CORRECTIONS = ("none", "raw", "direct")
DEFAULT_CORRECTION = "none"
#: i-PI's ``<simulation sockets_prefix>``: unix socket NAME is the file PREFIX + NAME
DEFAULT_SOCKETS_PREFIX = "/tmp/ipi_"
#: seconds ``mdsym serve`` waits for the server's first message after connecting: i-PI
#: polls its clients every few milliseconds once it runs; a listener that never speaks is
#: not i-PI. The waits between requests are never limited (i-PI may pause for minutes).
DEFAULT_FIRST_MESSAGE_TIMEOUT_S = 60.0

# o3:auto (mdsym.symmetry.auto_degree)
#: default tolerance of ``o3:auto`` (eV/Angstrom, RMS per force component): well
#: below the force errors of ML potentials (tens of meV/A), above round-off
DEFAULT_TOLERANCE_EVA = 0.01
#: ``o3:auto`` measures again after this many symmetrized calls (steps of plain
#: MD, outer steps under ``mts:K``), and at the first call of every run segment
DEFAULT_RECHECK_CALLS = 200
#: the largest degree ``o3:auto`` chooses; measuring the content up to it takes
#: ``len(metrics_quadrature(AUTO_MAX_DEGREE))`` evaluations (416 over O(3))
AUTO_MAX_DEGREE = 3

#: the largest exactness degree of mdsym's quadratures: the largest Lebedev order
#: scipy.integrate.lebedev_rule accepts (mdsym.symmetry.quadrature checks it)
MAX_QUADRATURE_DEGREE = 131
#: the largest degree of A and B: their quadrature must be exact to 2 L + 1
MAX_CONTENT_DEGREE = (MAX_QUADRATURE_DEGREE - 1) // 2
DEFAULT_CONTENT_DEGREE = 3

#: above this many model evaluations per step (or per frame), a command asks for --yes
MAX_EVALUATIONS_WITHOUT_CONSENT = 1000
YES_HELP = (f"Run even when it costs more than {MAX_EVALUATIONS_WITHOUT_CONSENT} model "
            "evaluations per step.")


def structure_path(text) -> Path:
    """A structure file, or the short name of a shipped one (``cu-fcc-108``)."""
    shipped = STRUCTURES / f"{text}.xyz"
    return shipped if not Path(text).exists() and shipped.exists() else Path(text)

# mdsym study (mdsym.workflows.study): a small, fast comparison that still separates
# raw from symmetrized dynamics
STUDY_MODEL = "pet-ethanol-noaug"
STUDY_STRUCTURE = "ethanol"  # the shipped structure the model was trained around
STUDY_SPECS = ("none", "random", "nettorque", "o3:1", "o3:3")
STUDY_SEEDS = (0, 1, 2)
STUDY_STEPS = 400
STUDY_TIMESTEP_FS = 1.0
STUDY_TEMPERATURE_K = 300.0
STUDY_STRIDE = 5
#: frames per run on which A is measured
STUDY_EQUIVARIANCE_FRAMES = 4
STUDY_DEGREE = 2

# mdsym audit (mdsym.workflows.audit_battery)
AUDIT_SPECS = ("none", "random", "nettorque", "o3:1")

# mdsym analyze PATH (mdsym.analysis.sources): the formats it reads, and their detection
TRAJECTORY_FORMATS = ("mdsym", "ipi", "traj", "extxyz", "lammps", "mdanalysis")
