"""mdsym's own i-PI client: serve any mdsym model, raw or symmetrized, over a socket.

``Potential`` is the driver boundary: it takes what i-PI sends (atomic units, cell
``h`` with lattice vectors as columns), evaluates the model in ASE units through a
``SymmetrizedModel`` (in-driver rotational averaging, batched over rotations) and
returns what i-PI expects (energy in Hartree, forces in Hartree/Bohr, virial
``-stress V`` in Hartree, extras as a JSON string). The PES plugin
``drivers/mdsym_pes.py`` uses the same class, so the socket client and
``<ffdirect>`` compute exactly the same thing.

i-PI does not send atomic numbers, so a ``Potential`` is built from a template
structure (the species, masses and periodicity of the simulated system); i-PI's
cell is used only when the template is periodic.

Correction mode (``correction``, ``CORRECTIONS``): the potential served is the
spec's symmetrized model *minus* the model that drives the inner steps of i-PI's
multiple time stepping (``<nmts>``, ``mdsym.md.ipi_engine.run``), energy, forces and
virial alike: ``raw`` subtracts the same model with the spec's netforce/nettorque
fixes only (``SymmetrizeSpec.inner``), ``direct`` serves the model's conservative
forces, symmetrized as the spec says, minus its direct forces with those fixes
(``mts:K:direct``). The physics is that of ``mdsym.md.mts``; the rotational
std in the extras is that of the symmetrized part.

``Client`` speaks the socket protocol (``mdsym.serving.ipi_protocol``) with blocking reads:
it sleeps in the kernel between requests, ends cleanly on ``EXIT`` and fails
(``ServerClosed``, one line) when the server goes away without it.
"""

import json
import socket
import sys
import time

import numpy as np

from mdsym.core.defaults import DEFAULT_FIRST_MESSAGE_TIMEOUT_S, DEFAULT_SOCKETS_PREFIX
from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.serving import ipi_protocol as p
from mdsym.symmetry.quadrature import Quadrature
from mdsym.symmetry.spec import SymmetrizeSpec
from mdsym.symmetry.symmetrized import SymmetrizedModel

#: what a correction-mode potential serves as the difference (the rotational std stays
#: that of the symmetrized part)
CORRECTED = ("energy", "forces", "stress")


class Potential:
    """An mdsym model (and symmetrization) seen from i-PI, in atomic units."""

    def __init__(self, model, template, symmetrize="none", batch_size=None, seed: int = 0,
                 extras: bool = None, quadrature=None, subtract=None):
        """``subtract``: in correction mode, the inner model (a ``Model``) whose raw
        forces, with the spec's fixes, are taken off the symmetrized ``model``."""
        self.template = template if isinstance(template, System) else System.from_atoms(template)
        self.model = model
        inner = None
        if subtract is not None:  # correction mode: the inner model with the spec's fixes
            inner = SymmetrizedModel(subtract, SymmetrizeSpec.parse(symmetrize).inner(),
                                     batch_size=batch_size, seed=seed)
        # the spec's quadrature, or an explicit grid (e.g. i-PI's <ffrotations> grid)
        self.symmetrizer = SymmetrizedModel(model, symmetrize, batch_size=batch_size, seed=seed,
                                            quadrature=quadrature, inner=inner)
        self.symmetrizer.check_system(self.template)
        # report the rotational std only when there is something to report
        self.extras = self.symmetrizer.averages if extras is None else extras
        self.calls = 0

    def system(self, cell_h, positions) -> System:
        positions = p.positions_from_ipi(positions)
        if len(positions) != len(self.template):
            raise MdsymError(
                f"i-PI sent {len(positions)} atoms but the structure given to mdsym has "
                f"{len(self.template)}: pass the structure i-PI simulates"
            )
        t = self.template
        cell = p.cell_from_ipi(cell_h) if t.periodic else t.cell
        return System(positions, t.numbers, cell, t.pbc, t.masses)

    def evaluate(self, cell_h, positions):
        """``(energy Ha, forces Ha/Bohr (N,3), virial Ha (3,3), extras str)``."""
        system = self.system(cell_h, positions)
        wanted = ["energy", "forces"]
        if system.periodic and self.symmetrizer.has_stress and (
                self.symmetrizer.inner is None or self.symmetrizer.inner.has_stress):
            wanted.append("stress")
        results = self.symmetrizer(system, wanted)
        if self.symmetrizer.inner is not None:  # correction mode: serve the difference
            results = dict(results, **{key: results[f"correction_{key}"] for key in CORRECTED
                                       if key in results})
        self.calls += 1
        if "stress" in results:
            virial = p.virial_to_ipi(results["stress"], abs(np.linalg.det(system.cell)))
        else:
            virial = np.zeros((3, 3))
        extras = ""
        if self.extras or "energy_uncertainty" in results:
            extras = json.dumps(self.extras_of(results))
        return (
            p.energy_to_ipi(results["energy"]),
            p.forces_to_ipi(results["forces"]),
            virial,
            extras,
        )

    def extras_of(self, results) -> dict:
        """The JSON extras of one answer: the rotational std when averaging, and the
        model's own energy uncertainty (eV) when it declares one."""
        found = {}
        if "energy_uncertainty" in results:  # as i-PI's metatomic driver names it
            found["energy_uncertainty"] = float(results["energy_uncertainty"])
        if self.extras:
            found.update({
                # eV, and the RMS over atoms and components of the per-component std (eV/A)
                "energy_rot_std": float(results.get("energy_rot_std", 0.0)),
                "forces_rot_std": float(np.sqrt(np.mean(results["forces_rot_std"] ** 2)))
                if "forces_rot_std" in results else 0.0,
                # the degree of the quadrature behind this call (o3:auto: the one it chose)
                "symmetrize_degree": float("nan") if self.symmetrizer.degree is None
                else float(self.symmetrizer.degree),
            })
        return found

    def evaluate_batch(self, cells, positions) -> list:
        return [self.evaluate(h, q) for h, q in zip(cells, positions)]


class Client:
    """One connection to an i-PI server, answering its requests with ``potential``."""

    def __init__(self, potential: Potential, unix: str = None, address: str = "localhost",
                 port: int = None, sockets_prefix: str = DEFAULT_SOCKETS_PREFIX,
                 wait: float = 0.0, log=None, first_message_timeout=DEFAULT_FIRST_MESSAGE_TIMEOUT_S):
        """``first_message_timeout``: seconds to wait for the server's first message after
        connecting (None: forever); the waits between a healthy server's requests are
        never limited."""
        self.potential = potential
        self.first_message_timeout = first_message_timeout
        self.where = f"unix socket {unix_path(unix, sockets_prefix)}" if unix else f"{address}:{port}"
        self.log = log or (lambda message: None)
        self.sock = connect(unix, address, port, sockets_prefix, wait)
        self.batch = 1
        self.initialised = False
        self.results = None
        self.natoms = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def serve(self) -> None:
        """Answer requests until the server says EXIT.

        A server that goes away without EXIT raises ``ServerClosed`` (one line saying
        when): i-PI says EXIT whenever it ends normally, so anything else is a failure
        (i-PI killed or crashed, or refusing this client before INIT).
        """
        try:
            self.first_message()
            while True:
                message = bytes(p.recv_exact(self.sock, p.HEADER_LENGTH))
                if message == p.STATUS:
                    if not self.initialised:
                        self.sock.sendall(p.NEEDINIT)
                    elif self.results is not None:
                        self.sock.sendall(p.HAVEDATA)
                    else:
                        self.sock.sendall(p.READY)
                elif message == p.INIT:
                    self.receive_init()
                elif message == p.POSDATA:
                    self.receive_positions()
                elif message == p.GETFORCE:
                    self.send_forces()
                elif message == p.EXIT:
                    return
                else:
                    raise p.ProtocolError(f"unexpected message {message!r} from i-PI")
        except (p.ServerClosed, BrokenPipeError, ConnectionResetError):
            if not self.initialised:
                raise p.ServerClosed(
                    "i-PI closed the connection before initialising this client (no INIT): "
                    "it stopped or refused the client (see i-PI's output)") from None
            raise p.ServerClosed(
                f"i-PI closed the connection without EXIT after {self.potential.calls} "
                "evaluations: it was killed or crashed (see i-PI's output)") from None
        finally:
            self.close()

    def first_message(self) -> None:
        """Wait at most ``first_message_timeout`` for the server to speak (a listener that
        is not i-PI would leave the client waiting forever), then answer it as any other."""
        self.sock.settimeout(self.first_message_timeout)
        try:
            self.sock.recv(p.HEADER_LENGTH, socket.MSG_PEEK)
        except (TimeoutError, socket.timeout):
            raise MdsymError(
                f"the server on {self.where} said nothing for {self.first_message_timeout:g} s "
                "after the connection: is it an i-PI server? (--first-message-timeout)") from None
        finally:
            self.sock.settimeout(None)

    def receive_init(self):
        p.recv_int(self.sock)  # replica id: unused
        length = p.recv_int(self.sock)
        text = bytes(p.recv_exact(self.sock, length)).decode("utf-8", errors="replace")
        tokens = p.parse_init(text)
        try:
            self.batch = max(1, int(tokens.get("batch_size", 1)))
        except ValueError:
            raise p.ProtocolError(f"bad batch_size in i-PI's INIT string {text!r}") from None
        self.initialised = True
        self.log(f"initialised by i-PI (batch size {self.batch})")

    def receive_positions(self):
        sock = self.sock
        if self.batch == 1:
            cell = p.recv_array(sock, (3, 3))
            p.recv_array(sock, (3, 3))  # inverse cell: unused
            natoms = p.recv_int(sock)
            positions = p.recv_array(sock, (natoms, 3))
            self.natoms = natoms
            self.results = [self.potential.evaluate(cell, positions)]
        else:
            natoms = p.recv_int(sock)
            cells = p.recv_array(sock, (self.batch, 2, 3, 3))[:, 0]
            positions = p.recv_array(sock, (self.batch, natoms, 3))
            self.natoms = natoms
            self.results = self.potential.evaluate_batch(cells, positions)

    def send_forces(self):
        if self.results is None:
            raise p.ProtocolError("i-PI asked for forces before sending positions")
        results, natoms = self.results, self.natoms
        nat = np.int32(natoms).tobytes()
        extras = [r[3].encode("utf-8") for r in results]
        if self.batch == 1:
            energy, forces, virial, _ = results[0]
            payload = [p.FORCEREADY, np.float64(energy).tobytes(), nat,
                       np.ascontiguousarray(forces, np.float64).tobytes(),
                       np.ascontiguousarray(virial, np.float64).tobytes()]
        else:
            payload = [
                p.FORCEREADY,
                np.array([r[0] for r in results], np.float64).tobytes(),
                nat,
                np.array([np.reshape(r[1], -1) for r in results], np.float64).tobytes(),
                np.array([np.reshape(r[2], (3, 3)) for r in results], np.float64).tobytes(),
            ]
        for extra in extras:
            payload += [np.int32(len(extra)).tobytes(), extra]
        self.sock.sendall(b"".join(payload))
        self.results = None


def load_quadrature(path) -> Quadrature:
    """A quadrature saved with ``numpy.savez(path, rotations=(G,3,3), weights=(G,))``."""
    try:
        with np.load(path) as data:
            rotations = np.asarray(data["rotations"], dtype=np.float64)
            weights = np.asarray(data["weights"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as error:
        raise MdsymError(f"cannot read quadrature {path}: {error}") from None
    if rotations.ndim != 3 or rotations.shape[1:] != (3, 3) or len(weights) != len(rotations):
        raise MdsymError(f"quadrature {path} needs rotations (G,3,3) and weights (G,)")
    if not np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-8):
        raise MdsymError(f"quadrature {path} holds matrices that are not orthogonal")
    inversion = bool(np.any(np.linalg.det(rotations) < 0))
    return Quadrature(str(path), rotations, weights / weights.sum(), 0, inversion)


def unix_path(name: str, sockets_prefix: str = DEFAULT_SOCKETS_PREFIX) -> str:
    """i-PI's unix socket file: ``prefix + name``, or ``name`` itself if it is a path."""
    return name if "/" in name else sockets_prefix + name


def connect(unix=None, address="localhost", port=None, sockets_prefix=DEFAULT_SOCKETS_PREFIX,
            wait: float = 0.0) -> socket.socket:
    """A connected blocking socket, retrying for ``wait`` seconds; else one clear line."""
    if unix:
        target = unix_path(unix, sockets_prefix)
        where = f"unix socket {target}"
    else:
        if port is None:
            raise MdsymError("give --unix NAME, or --address HOST and --port PORT")
        target = (address, int(port))
        where = f"{address}:{port}"
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        if unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # the protocol exchanges many small messages: do not let Nagle delay them
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(target)
            sock.settimeout(None)
            return sock
        except (FileNotFoundError, ConnectionRefusedError, socket.gaierror, OSError) as error:
            sock.close()
            if time.monotonic() >= deadline or isinstance(error, socket.gaierror):
                reason = error.strerror or str(error)
                raise MdsymError(
                    f"cannot connect to an i-PI server on {where}: {reason} "
                    "(is i-PI running with a matching <ffsocket>?)"
                ) from None
            time.sleep(0.1)


def log_to_stderr(prefix="mdsym serve"):
    def log(message):
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    return log


__all__ = ["Potential", "Client", "connect", "unix_path"]
