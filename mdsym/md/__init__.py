"""Molecular dynamics: one configuration, one run directory, one MD loop per engine.

``config`` (``RunConfig``), ``rundir`` (the run directory), ``thermo`` (its thermo rows),
``monitors`` (stability monitors), ``processes`` (the one place that launches and stops
processes), ``context`` (what a run needs, built once), ``run`` (``run_md``, ``resume_md``,
the engine registry), ``ase_engine`` (ASE integrators with observers), ``mts`` (RESPA),
``ipi_engine`` (i-PI as a server, split by concern).
"""
