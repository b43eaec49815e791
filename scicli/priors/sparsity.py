"""Sparsity: the proximal map of the l1 norm.

    h_theta(v)_i = sign(v_i) max(|v_i| - theta_i, 0) = argmin_z ||z - v||^2 / 2 + sum_i theta_i |z_i|

(soft thresholding; ISTA / FISTA's prox of ``alpha ||z||_1`` at step 1/L is ``h_{alpha/L}``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def soft_threshold(v: Tensor, theta: float | Tensor) -> Tensor:
    """``sign(v) max(|v| - theta, 0)`` elementwise; ``theta`` a number or a tensor that
    broadcasts against v (one threshold per coefficient). Differentiable in v and theta
    (a sub-gradient at the kinks)."""
    return torch.sign(v) * torch.relu(v.abs() - theta)
