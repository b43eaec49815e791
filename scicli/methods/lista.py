"""lista: learned ISTA, a fast trained approximation of sparse coding (Gregor and LeCun, ICML 2010).

Sparse coding finds, for a signal y (n) and a dictionary D (n, m) (the ``dictionary`` operator),

    z* = argmin_z ||y - D z||^2 / 2 + alpha ||z||_1.

ISTA iterates ``z_{k+1} = h_{alpha/L}(z_k - D^T (D z_k - y) / L)`` (L = ||D||^2, h the soft
threshold), which is ``z_{k+1} = h_theta(W_e y + S z_k)`` with

    W_e = D^T / L  (m, n),      S = I - D^T D / L  (m, m),      theta = alpha / L  (one per atom).

LISTA keeps this recurrence and learns W_e, S and theta (shared by all steps, as in the
paper), truncated to a fixed number T of steps after the first layer (the paper's "LISTA T
iterations", its Algorithm 3):

    z_0 = h_theta(W_e y)            (one layer from z = 0: :meth:`LISTA.start`)
    z_k = h_theta(W_e y + S z_{k-1}),   k = 1..T    (:meth:`LISTA.f`, run by ``unroll``)

trained on ``||z_T - z*||^2`` against codes z* from an exact solver (coordinate descent).
Initialised as ISTA (:meth:`LISTA.from_dictionary`), the untrained network is T + 1 ISTA steps
from zero. W_e and S fit one signal length n and one number m of atoms: the weights record the
dictionary's signature {n, m} and refuse another size in one line. The weights depend on the
dictionary they were trained for, not only on its size: ship (and use) the dictionary with them.

``scicli train`` draws image patches as the unknown, which does not fit sparse coding (the unknown
is the code); ``bench/bench_lista.py`` trains this network directly and saves it in the weights
store's checkpoint format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scicli.core.params import param
from scicli.fixedpoint import Info
from scicli.methods.learned import LearnedMap, register_learned
from scicli.methods.runners import unroll
from scicli.physics import LinearOperator
from scicli.priors.sparsity import soft_threshold


class LISTA(LearnedMap):
    """LISTA: ``z_k = h_theta(W_e y + S z_{k-1})`` from ``z_0 = h_theta(W_e y)``, T learned steps."""

    method = "lista"
    operator = "dictionary"
    unrolled = True
    score = "code_error"
    """What a run's validation scores are (the manifest's ``validation_code_error``): code errors, not PSNR."""

    @dataclass
    class Options:
        """LISTA's options (``-p NAME=VALUE``); the step count T is ``-p iters``."""

        alpha: float = param(0.5, "l1 weight alpha of the sparse-coding energy: the thresholds start at alpha / L",
                             positive=True)

    def __init__(self, alpha: float = 0.5, solve: dict[str, Any] | None = None, operator: str | None = "dictionary",
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__({"iters": 1, **(solve or {})}, operator, signature)
        sig = self.config.get("signature", {})
        if "n" not in sig or "m" not in sig:
            raise ValueError("lista needs the dictionary's signature {n, m} (the sizes of W_e and S)")
        n, m = int(sig["n"]), int(sig["m"])
        self.config["alpha"] = float(alpha)
        self.W_e = nn.Parameter(torch.zeros(m, n))
        self.S = nn.Parameter(torch.zeros(m, m))
        self.theta = nn.Parameter(torch.full((m,), float(alpha)))

    @classmethod
    def from_dictionary(cls, op: LinearOperator, *, iters: int = 1, alpha: float = 0.5) -> "LISTA":
        """A LISTA of T = ``iters`` steps for the ``dictionary`` operator ``op``, initialised as
        ISTA: ``W_e = D^T / L``, ``S = I - D^T D / L``, ``theta = alpha / L``, ``L = ||D||^2``."""
        model = cls(alpha=alpha, solve={"iters": int(iters)}, operator=op.name, signature=op.signature())
        model.ista_init(op.D, alpha)
        return model

    @torch.no_grad()
    def ista_init(self, D: Tensor, alpha: float) -> None:
        """Set ``W_e = D^T / L``, ``S = I - D^T D / L``, ``theta = alpha / L`` (L = ||D||^2, in float64)."""
        d = D.detach().to("cpu", torch.float64)
        L = float(torch.linalg.matrix_norm(d, ord=2)) ** 2
        self.W_e.copy_(d.T / L)
        self.S.copy_(torch.eye(d.shape[1], dtype=torch.float64) - d.T @ d / L)
        self.theta.fill_(alpha / L)

    # -- the map ------------------------------------------------------------------------
    def layer(self, z: Tensor | None, y: Tensor) -> Tensor:
        """``h_theta(W_e y + S z)`` (``z = None``: zero): (N, m, 1, 1) and (N, n) -> (N, m, 1, 1)."""
        v = y @ self.W_e.T
        if z is not None:
            v = v + z.flatten(1) @ self.S.T
        return soft_threshold(v, self.theta)[..., None, None]

    def start(self, op: LinearOperator, y: Tensor) -> Tensor:
        """``z_0 = h_theta(W_e y)``: the first layer, from z = 0."""
        return self.layer(None, y)

    def f(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """One LISTA step ``h_theta(W_e y + S z)``."""
        return self.layer(z, y)

    def run(self, f, z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
        return unroll(f, z0, int(settings["iters"]))


register_learned(LISTA, "learned ISTA (Gregor and LeCun 2010): T trained soft-threshold steps, dictionary operator")
