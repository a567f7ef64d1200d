"""The i-PI engine of ``mdsym run``: i-PI as a server, ``mdsym serve`` clients, its
input, outputs and checkpoints, each concern in its own module.

Bottom up: ``input`` (i-PI's XML input), ``rotation_grid`` (averaging in i-PI:
``<ffrotations>``' grid), ``sockets`` (where i-PI listens), ``outputs`` (reading what
i-PI writes), ``supervisor`` (i-PI and its clients as processes), ``prepare``
(``IpiRun``: a run checked before anything starts), ``segment_input`` (each
segment's input), ``clients`` (the ``mdsym serve`` command lines), ``steps`` (i-PI's
steps into the run directory, from atomic units), ``checkpoints`` (where a run
continues from), ``run`` (``run_ipi`` and the segment loop)."""
