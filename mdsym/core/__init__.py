"""The ground floor: what every other floor stands on and that imports no model.

``errors`` (``MdsymError``, the one-line failure), ``defaults`` (every default the help
text shows, importing nothing heavy), ``system`` (``System``: one structure and its
neighbour lists), ``rotations`` (the rotation conventions), ``mechanics`` (rigid-body
quantities), ``molecules`` (the one definition of a bond), ``threads`` (torch threads).
"""
