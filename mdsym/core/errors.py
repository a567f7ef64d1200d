"""Errors that reach the user as one clear line (see ``mdsym.cli.main``)."""


class MdsymError(Exception):
    """A bad input or a failed run, reported as one line and a non-zero exit."""
