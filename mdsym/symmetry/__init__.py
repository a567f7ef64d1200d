"""Symmetry: specs, quadratures of O(3), averaging, the metrics A and B, the one
symmetrized model.

``spec`` (``SymmetrizeSpec``, parsed once), ``quadrature`` (weighted sets of O(3) with a
declared exactness degree), ``wigner`` (Wigner-D matrices), ``averaging`` (evaluate
rotated copies, back-rotate, weighted moments: one torch definition), ``fixes`` (net force
and torque removal), ``metrics`` (A and B), ``auto_degree`` (what ``o3:auto`` chooses),
``symmetrized`` (``SymmetrizedModel``: a model wrapping a model, with the rotational std and
the MTS correction as further outputs).
"""
