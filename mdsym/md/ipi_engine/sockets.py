"""Where i-PI listens: a run's sockets, checked free before anything starts.

``Socket.open`` takes a unix socket (the default: a fresh ``mdsym-PID-HEX`` name
unless ``--address`` names one; one clear line if its file exists) or a TCP port
(``--port``, or a free one). ``Socket.correction`` is the second socket of a
multiple-time-step run (``mts:K``), for its correction forcefield: the unix name
with ``-correction`` appended, or, over TCP, the next port (``--port P``: P + 1) or
a free one. A socket gives i-PI its ``<ffsocket>`` (``forcefield``) and the local
clients their ``mdsym serve`` options (``client_args``: a host on which i-PI listens
on every interface is reached at localhost).
"""

import os
import secrets
import socket
from dataclasses import dataclass

from mdsym.core.errors import MdsymError
from mdsym.md.config import RunConfig
from mdsym.md.ipi_engine import input as ipi_input
from mdsym.serving.ipi_client import DEFAULT_SOCKETS_PREFIX, unix_path

#: hosts on which i-PI listens on every interface; local clients connect to localhost
EVERY_INTERFACE = ("", "0.0.0.0", "::")


def check_unix_socket(name: str, prefix: str = DEFAULT_SOCKETS_PREFIX) -> str:
    path = unix_path(name, prefix)
    if os.path.exists(path):
        raise MdsymError(
            f"the unix socket {path} is in use (another i-PI run, or a stale file from a "
            "killed one: remove it if no i-PI is running)"
        )
    return path


def check_port(port: int, address: str = "localhost") -> int:
    """``port`` if free (a free one if ``None``), else one clear line."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, int(port or 0)))
        except OSError as error:
            raise MdsymError(f"TCP port {port} on {address} is in use ({error.strerror})") from None
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Socket:
    """Where i-PI listens (``mode`` unix: ``address`` is the socket's name; inet: the
    host, with ``port``) and how the local clients reach it."""

    mode: str
    address: str
    port: int = None
    file: str = None  # the unix socket file, removed when the run ends
    name: str = "mdsym"  # i-PI's forcefield

    @classmethod
    def open(cls, config: RunConfig) -> "Socket":
        """The run's socket, checked free now (one clear line if not)."""
        if config.socket == "unix":
            name = config.address or f"mdsym-{os.getpid()}-{secrets.token_hex(4)}"
            return cls("unix", name, None, check_unix_socket(name))
        address = config.address or "localhost"
        return cls("inet", address, check_port(config.port, address))

    def correction(self, config: RunConfig) -> "Socket":
        """The socket of the correction forcefield of a multiple-time-step run, beside
        this one: the unix name with ``-correction``, or over TCP the next port when
        ``--port`` was given (below 65535), else a free one (checked free now)."""
        name = f"{self.name}-correction"
        if self.mode == "unix":
            address = f"{self.address}-correction"
            return Socket("unix", address, None, check_unix_socket(address), name)
        wanted = self.port + 1 if config.port and self.port < 65535 else None
        port = check_port(wanted, self.address or "localhost")
        while port == self.port:  # a free port, not the one just taken for the raw clients
            port = check_port(None, self.address or "localhost")
        return Socket("inet", self.address, port, None, name)

    def client_args(self) -> list:
        if self.mode == "unix":
            return ["--unix", self.address]
        host = "localhost" if self.address in EVERY_INTERFACE else self.address
        return ["--address", host, "--port", str(self.port)]

    def forcefield(self, pbc: bool, latency: float):
        return ipi_input.socket(self.name, self.mode, self.address, self.port, pbc=pbc,
                                latency=latency)

    def details(self) -> dict:
        return {"socket": self.mode, "address": self.address, "port": self.port}


def remove_socket_file(socket: Socket):
    """The correction's unix socket file, which ``IpiProcesses`` does not know."""
    if socket is not None and socket.file and os.path.exists(socket.file):
        try:
            os.unlink(socket.file)
        except OSError:
            pass
