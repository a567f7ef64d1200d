"""i-PI support: the socket protocol and mdsym's socket client.

- ``mdsym.ipi.protocol``: message framing and the atomic-unit conversions;
- ``mdsym.ipi.client``: ``Potential`` (a model seen from i-PI) and ``Client``.

The i-PI engine of ``mdsym run`` is ``mdsym.engines.ipi_md``; its XML templates
are in ``mdsym/data/ipi`` (``inputs/ipi``).
"""
