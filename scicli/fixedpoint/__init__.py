"""Deep-equilibrium machinery: fixed-point solvers and constant-memory gradients."""

from scicli.fixedpoint.solvers import FIXED_POINT, Info, make_options, make_solver, relative_residual, settings_options
from scicli.fixedpoint.implicit import Backward, attach_gradient, solve_fixed_point
from scicli.fixedpoint.lipschitz import iterate_ratios, jacobian_norm_and_radius, jacobian_norm_estimate, jacobian_penalty, ratio_summary, secant_ratios

__all__ = ["FIXED_POINT", "Backward", "Info", "attach_gradient", "iterate_ratios", "jacobian_norm_and_radius", "jacobian_norm_estimate", "jacobian_penalty", "make_options", "make_solver", "ratio_summary", "relative_residual", "secant_ratios",
           "settings_options", "solve_fixed_point"]
