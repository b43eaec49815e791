"""Iteration steps written once, on an operator and a state: used alike by the classical loops
(:mod:`scicli.methods`), the unrolled networks and the deep-equilibrium maps.

    gap_step     (accelerated) generalized alternating projection
    admm_step    scaled ADMM (x-update by prox_l2, prior step, multiplier update)
    pgd_step     proximal gradient (ISTA)
    nesterov     the momentum extrapolation of accelerated gradient methods (FISTA)
"""

from scicli.algorithms.admm import admm_step
from scicli.algorithms.gap import gap_step
from scicli.algorithms.gradient import nesterov, pgd_step

__all__ = ["admm_step", "gap_step", "nesterov", "pgd_step"]
