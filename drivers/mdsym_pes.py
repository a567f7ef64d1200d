"""i-PI PES plugin: any mdsym model, raw or symmetrized, inside i-PI's own drivers.

With i-PI's Python driver (a socket client written by i-PI)::

    i-pi-py_driver -m custom -P drivers/mdsym_pes.py -u -a NAME \\
        -o template=structure.xyz,model=analytic,symmetrize=o3:3

or inside the i-PI process, with no socket at all::

    <ffdirect name='mdsym'>
      <pes>custom</pes>
      <pes_path>/path/to/drivers/mdsym_pes.py</pes_path>
      <parameters>{template: structure.xyz, model: analytic, symmetrize: o3:3}</parameters>
    </ffdirect>

Parameters (keyword arguments):

- ``template``: a structure file with the species (i-PI sends no atomic numbers);
- ``model``: ``analytic[:TERMS]``, a shipped model name or a model file; i-PI splits
  its parameter strings on ``,`` so write ``;`` between analytic terms
  (``analytic:bond2=0.05;vector1=0.05``);
- ``symmetrize``: ``none``, ``random``, ``o3:L``, ``so3:L`` joined with ``+`` to
  ``netforce`` / ``nettorque``;
- ``forces`` (``auto``), ``batch_size`` (rotations per model call, 64), ``seed`` (0).

Energies, forces, virial and the JSON extras (``energy_rot_std`` in eV,
``forces_rot_std`` in eV/A) are those of ``mdsym serve``: both use
``mdsym.ipi.client.Potential``.
"""

from ipi.pes.dummy import Dummy_driver

__DRIVER_NAME__ = "mdsym"
__DRIVER_CLASS__ = "MdsymDriver"


class MdsymDriver(Dummy_driver):
    """An mdsym model as an i-PI PES (atomic units in and out)."""

    def __init__(self, template, model="analytic", symmetrize="none", forces="auto",
                 batch_size=64, seed=0, *args, **kwargs):
        self.template = template
        self.model_spec = str(model).replace(";", ",")
        self.symmetrize = str(symmetrize)
        self.forces = str(forces)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        kwargs.pop("verbosity", None)  # <ffdirect> adds i-PI's verbosity level
        super().__init__(*args, **kwargs)

    def check_parameters(self):
        """Load the structure and the model once, when i-PI creates the driver."""
        from mdsym.ipi.client import Potential
        from mdsym.models import load_model
        from mdsym.system import read_structure

        atoms = read_structure(self.template)
        model = load_model(self.model_spec, forces=self.forces)
        self.potential = Potential(model, atoms, self.symmetrize,
                                   batch_size=self.batch_size, seed=self.seed)

    def compute_structure(self, cell, pos):
        energy, forces, virial, extras = self.potential.evaluate(cell, pos)
        return energy, forces.reshape(pos.shape), virial, extras
