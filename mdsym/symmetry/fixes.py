"""The cheap physical fixes of a spec, applied to forces: remove the net force, remove
the net torque of an isolated system (``netforce``, ``nettorque``)."""

import numpy as np

from mdsym.core import mechanics
from mdsym.core.errors import MdsymError


def remove_net_force(forces: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract ``m_i / M * sum F``: the net force goes, accelerations shift uniformly."""
    return forces - masses[:, None] / masses.sum() * forces.sum(axis=0)


def remove_net_torque(forces: np.ndarray, positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract the rigid angular acceleration ``m_i alpha x (r_i - r_com)``.

    ``alpha`` solves ``I alpha = tau`` with ``I`` the inertia tensor about the centre
    of mass; the net force is left unchanged and the net torque becomes zero.
    """
    centred = mechanics.about_centre_of_mass(positions, masses)
    torque = mechanics.torque(positions, forces, masses)
    inertia = mechanics.inertia_tensor(positions, masses)
    alpha = np.linalg.lstsq(inertia, torque, rcond=None)[0]  # lstsq: linear molecules
    return forces - masses[:, None] * np.cross(alpha, centred)


def apply_fixes(spec, forces: np.ndarray, system) -> np.ndarray:
    """The fixes ``spec`` (a ``SymmetrizeSpec``) names, applied to ``forces`` of ``system``."""
    if spec.remove_net_force:
        forces = remove_net_force(forces, system.masses)
    if spec.remove_net_torque:
        if system.periodic:
            raise MdsymError("nettorque applies to isolated systems only")
        forces = remove_net_torque(forces, system.positions, system.masses)
    return forces
