"""i-PI support: the socket protocol, mdsym's socket client, and i-PI runs.

- ``mdsym.ipi.protocol``: message framing and the atomic-unit conversions;
- ``mdsym.ipi.client``: ``Potential`` (a model seen from i-PI) and ``Client``;
- ``mdsym.ipi.input``: i-PI's input, built as an XML tree;
- ``mdsym.ipi.outputs``: reading i-PI's outputs while it writes them;
- ``mdsym.ipi.supervisor``: i-PI and its clients started, watched and stopped together.

The i-PI engine of ``mdsym run`` (``mdsym.engines.ipi_md``) puts these together.
"""
