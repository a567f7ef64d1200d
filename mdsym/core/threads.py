"""torch's intra-op threads for one command: ``--threads``."""

from mdsym.core.defaults import SMALL_SYSTEM_ATOMS
from mdsym.core.errors import MdsymError


def configure_threads(threads: str, n_atoms: int) -> int:
    """Set torch's intra-op threads: ``auto`` is 1 below SMALL_SYSTEM_ATOMS atoms
    (small tensors gain nothing from threads, and lose a lot when another process
    holds a core), torch's default otherwise; or an explicit number."""
    import torch  # start-up time: the command line imports this module

    if threads == "auto":
        if n_atoms < SMALL_SYSTEM_ATOMS:
            torch.set_num_threads(1)
    else:
        try:
            count = int(threads)
        except ValueError:
            raise MdsymError(f"--threads must be 'auto' or a number, got {threads!r}") from None
        if count < 1:
            raise MdsymError(f"--threads must be at least 1, got {count}")
        torch.set_num_threads(count)
    return torch.get_num_threads()
