"""Serving a model to MD engines: the ASE calculator, the i-PI socket protocol and
client, and ``serve`` (one client process).

``ase_calculator`` (``MdsymCalculator``), ``ipi_protocol`` (framing, atomic units),
``ipi_client`` (``Potential``: a model seen from i-PI; ``Client``), ``serve`` (build the
potential a ``mdsym serve`` process serves and run its client).
"""
