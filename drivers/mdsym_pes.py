"""i-PI PES plugin: any mdsym model, raw or symmetrized, inside i-PI's own drivers.

With i-PI's Python driver (a socket client written by i-PI)::

    i-pi-py_driver -m custom -P drivers/mdsym_pes.py -u -a NAME \\
        -o template=structure.xyz,model=pet-ethanol,symmetrize=o3:3

or inside the i-PI process, with no socket at all::

    <ffdirect name='mdsym'>
      <pes>custom</pes>
      <pes_path>/path/to/drivers/mdsym_pes.py</pes_path>
      <parameters>{template: structure.xyz, model: pet-ethanol, symmetrize: o3:3}</parameters>
    </ffdirect>

Parameters (keyword arguments), the options of ``mdsym serve`` with its defaults
(``mdsym.cli.options``):

- ``template``: the structure i-PI simulates (i-PI sends no atomic numbers): a file
  or a shipped structure name; default the shipped ``ethanol.xyz``;
- ``model``: a shipped model name, a model file or ``analytic[:TERMS]``; default
  ``pet-ethanol``. i-PI splits its parameter strings on ``,``, so write ``;``
  between analytic terms (``analytic:bond2=0.05;vector1=0.05``);
- ``symmetrize``: ``none`` (default), ``random``, ``o3:L``, ``so3:L`` joined with
  ``+`` to ``netforce`` / ``nettorque``;
- ``forces``: ``auto`` (default), ``conservative`` or ``direct``;
- ``batch_size``: rotated copies per model call, ``auto`` (default: chosen from the
  model and the system) or a number;
- ``seed``: of the random rotations (default 0);
- ``threads``: torch threads, ``auto`` (default: one below 256 atoms) or a number;
- ``correction``: ``none`` (default), ``raw`` or ``direct``: serve the outer force
  of i-PI's multiple time stepping, the symmetrized model minus the raw one (or the
  conservative forces minus the direct ones), as ``mdsym serve --correction``.
- ``variant``: a metatomic model's energy variant, ``energy/NAME`` (as i-PI's own
  metatomic driver's ``energy_variant``); default: its plain energy;
- ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``; default ``auto``) and ``dtype``
  (``float32``, ``float64``; default the model's own), as ``mdsym serve``.

Energies, forces, virial and the JSON extras (``energy_rot_std`` in eV,
``forces_rot_std`` in eV/A; ``energy_uncertainty`` in eV when the model declares one)
are those of ``mdsym serve``: both build their
``mdsym.serving.ipi_client.Potential`` with ``mdsym.serving.serve.serving_potential``.
"""

import sys

from ipi.pes.dummy import Dummy_driver

from mdsym.core.defaults import (
    DEFAULT_CORRECTION,
    DEFAULT_DEVICE,
    DEFAULT_FORCES,
    DEFAULT_MODEL,
    DEFAULT_SEED,
    DEFAULT_STRUCTURE,
    DEFAULT_SYMMETRIZE,
    DEFAULT_THREADS,
)

__DRIVER_NAME__ = "mdsym"
__DRIVER_CLASS__ = "MdsymDriver"

AUTO = "auto"  # batch_size: chosen from the model and the system, as in mdsym serve


class MdsymDriver(Dummy_driver):
    """An mdsym model as an i-PI PES (atomic units in and out)."""

    def __init__(self, template=DEFAULT_STRUCTURE, model=DEFAULT_MODEL,
                 symmetrize=DEFAULT_SYMMETRIZE, forces=DEFAULT_FORCES, batch_size=AUTO,
                 seed=DEFAULT_SEED, threads=DEFAULT_THREADS, correction=DEFAULT_CORRECTION,
                 variant=None, device=DEFAULT_DEVICE, dtype=None, *args, **kwargs):
        from mdsym.core.errors import MdsymError

        self.template = str(template)
        self.model_spec = str(model).replace(";", ",")
        self.symmetrize = str(symmetrize)
        self.forces = str(forces)
        self.threads = str(threads)
        self.correction = str(correction)
        self.variant = None if variant is None else str(variant)
        self.device = str(device)
        self.dtype = None if dtype is None else str(dtype)
        try:
            self.batch_size = None if str(batch_size) == AUTO else int(batch_size)
            self.seed = int(seed)
        except ValueError as error:
            raise MdsymError(f"mdsym PES: batch_size must be auto or a number, and seed a "
                             f"number ({error})") from None
        kwargs.pop("verbosity", None)  # <ffdirect> adds i-PI's verbosity level
        super().__init__(*args, **kwargs)

    def check_parameters(self):
        """Load the structure and the model once, when i-PI creates the driver."""
        from mdsym.serving.serve import describe, serving_potential

        self.potential = serving_potential(
            self.model_spec, self.template, self.symmetrize, self.forces, self.batch_size,
            self.seed, self.threads, correction=self.correction, variant=self.variant,
            device=self.device, dtype=self.dtype)
        print(f"mdsym PES: {describe(self.potential, self.template)}", file=sys.stderr,
              flush=True)

    def compute_structure(self, cell, pos):
        energy, forces, virial, extras = self.potential.evaluate(cell, pos)
        return energy, forces.reshape(pos.shape), virial, extras
