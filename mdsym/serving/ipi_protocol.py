"""The i-PI socket protocol, and the one place where atomic units meet ASE units.

i-PI talks to its clients in atomic units over a stream socket (unix or TCP).
Every message starts with a 12-byte, space-padded, upper-case header:

- server ``STATUS``: the client answers ``NEEDINIT``, ``READY`` or ``HAVEDATA``;
- server ``INIT`` + int32 replica id + int32 length + parameter string; i-PI >= 3.3
  appends ``batch_size:B`` to that string when its ``<ffsocket>`` has
  ``<batch_size>B</batch_size>`` with ``B > 1``;
- server ``POSDATA``: unbatched, ``h`` (3x3 float64, columns are the lattice
  vectors), ``h^-1`` (3x3), int32 ``N``, positions (N x 3 float64, Bohr);
  batched, int32 ``N``, then ``B`` blocks of ``(h, h^-1)``, then ``B x 3N``
  positions (padded by i-PI to exactly ``B`` structures);
- server ``GETFORCE``: the client answers ``FORCEREADY`` and, unbatched, the energy
  (float64, Hartree), int32 ``N``, forces (3N float64, Hartree/Bohr), the virial
  (3x3 float64, Hartree), int32 length + extras string; batched, ``B`` energies,
  int32 ``N``, ``B x 3N`` forces, ``B`` virials, then ``B`` (length, string) extras;
- server ``EXIT``: the client leaves. A server that closes the connection without
  EXIT (killed, crashed, or refusing the client before INIT) is a failure.

The conversion factors use ASE's constants (``ase.units``), so a trajectory run by
i-PI with inputs written by mdsym in atomic units is the trajectory ASE would run.
"""

import socket

import numpy as np
from ase import units

from mdsym.core.errors import MdsymError

HEADER_LENGTH = 12

# ASE units per atomic unit
BOHR = units.Bohr  # Angstrom per Bohr
HARTREE = units.Hartree  # eV per Hartree
AU_TIME = units._aut * units.second  # ASE time per atomic unit of time
AU_MASS = units._me / units._amu  # amu per electron mass
AU_VELOCITY = BOHR / AU_TIME  # (Angstrom / ASE time) per (Bohr / au time)
AU_FORCE = HARTREE / BOHR  # (eV / Angstrom) per (Hartree / Bohr)
AU_TEMPERATURE = HARTREE / units.kB  # Kelvin per atomic unit of temperature


def header(text: str) -> bytes:
    return text.upper().ljust(HEADER_LENGTH).encode("ascii")


STATUS = header("STATUS")
INIT = header("INIT")
POSDATA = header("POSDATA")
GETFORCE = header("GETFORCE")
EXIT = header("EXIT")
NEEDINIT = header("NEEDINIT")
READY = header("READY")
HAVEDATA = header("HAVEDATA")
FORCEREADY = header("FORCEREADY")


class ServerClosed(MdsymError):
    """The server closed or reset the connection without saying EXIT."""


class ProtocolError(MdsymError):
    """The server sent something this client does not understand."""


def recv_exact(sock: socket.socket, nbytes: int) -> bytearray:
    """Exactly ``nbytes`` from a blocking socket; ``ServerClosed`` at end of stream.

    The socket is blocking with no timeout: the process sleeps in the kernel
    while the server has nothing to say, and an orderly close or a reset ends
    the loop at once (``recv`` returns 0 bytes), so nothing ever spins.
    """
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    got = 0
    while got < nbytes:
        try:
            n = sock.recv_into(view[got:], nbytes - got)
        except (ConnectionResetError, BrokenPipeError):
            n = 0
        if n == 0:
            raise ServerClosed()
        got += n
    return buffer


def recv_array(sock, shape, dtype=np.float64) -> np.ndarray:
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    data = recv_exact(sock, count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def recv_int(sock) -> int:
    return int(recv_array(sock, (), np.int32))


def parse_init(text: str) -> dict:
    """The ``key:value`` tokens of an INIT string (``batch_size`` among them)."""
    tokens = {}
    for token in text.split(","):
        key, sep, value = token.partition(":")
        if sep:
            tokens[key.strip()] = value.strip()
    return tokens


# --- conversions at the boundary --------------------------------------------


def cell_from_ipi(h: np.ndarray) -> np.ndarray:
    """i-PI's ``h`` (Bohr, columns are lattice vectors) -> ASE cell (Angstrom, rows)."""
    return np.asarray(h, dtype=np.float64).T * BOHR


def positions_from_ipi(positions: np.ndarray) -> np.ndarray:
    return np.asarray(positions, dtype=np.float64).reshape(-1, 3) * BOHR


def energy_to_ipi(energy_ev: float) -> float:
    return float(energy_ev) / HARTREE


def forces_to_ipi(forces_ev_a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(forces_ev_a, dtype=np.float64) / AU_FORCE


def virial_to_ipi(stress_3x3: np.ndarray, volume_a3: float) -> np.ndarray:
    """i-PI's virial (Hartree) from an ASE stress (eV/A^3): ``-stress V``, transposed
    as i-PI's own ASE driver does (a no-op for the symmetric stress of a potential)."""
    return np.ascontiguousarray((-np.asarray(stress_3x3) * volume_a3).T / HARTREE)
