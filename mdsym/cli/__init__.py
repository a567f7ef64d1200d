"""The ``mdsym`` command line (click): one module per command, shared options in
``options``. Importing it loads neither torch nor ase.io: ``mdsym --help`` starts at once."""
