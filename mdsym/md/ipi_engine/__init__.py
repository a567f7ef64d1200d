"""The i-PI engine of ``mdsym run``: i-PI as a server, ``mdsym serve`` clients, its
input, outputs and checkpoints, each concern in its own module."""
