"""Iteration steps written once, on an operator and a state: used alike by the classical loops
(:mod:`scicli.methods`), the unrolled networks and the deep-equilibrium maps.

    gap_step         (accelerated) generalized alternating projection
    admm_step        scaled ADMM (x-update by prox_l2, prior step, multiplier update)
    hqs_step         half-quadratic splitting (prox_l2, then the prior)
    pgd_step         proximal gradient (ISTA)
    nesterov         the momentum extrapolation of accelerated gradient methods (FISTA)
    red_gradient     the gradient of the RED objective
    red_fixed_point  the RED minimiser with the denoiser frozen
"""

from scicli.algorithms.admm import admm_step
from scicli.algorithms.gap import gap_step
from scicli.algorithms.gradient import nesterov, pgd_step
from scicli.algorithms.hqs import hqs_step
from scicli.algorithms.red import red_fixed_point, red_gradient

__all__ = ["admm_step", "gap_step", "hqs_step", "nesterov", "pgd_step", "red_fixed_point", "red_gradient"]
