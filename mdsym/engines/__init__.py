"""MD engines: ASE in-process (``ase_md``) and i-PI over sockets (``ipi_md``)."""
