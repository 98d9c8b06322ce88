"""The two linear systems behind the walk metric, solved with scipy.

A walk from the viewer s moves along positive edges with the sub-stochastic
transition matrix M (restart and walls folded in, see `node.trust.walk`).

* Forward: the expected visits V_s = e_s (I - M)^-1, one vector for every
  identity at once (the "full recompute").
* Reverse: the expected visits *to* one target x from every start u,
  Y_x = (I - M)^-1 e_x. Y_x[s] / Y_x[x] is the probability that a walk from s
  ever reaches x, and the same vector gives the exact split of that
  probability by first step, and an admissible bound for path search.

Both are solved with BiCGSTAB (a Krylov method): at the same accuracy it
needs 3-4 times fewer matrix products than the power iteration
x <- e_s + M^T x, whose convergence rate is only 1 - restart. If BiCGSTAB
breaks down (it may, in theory) the power iteration is the fallback. Results
are clipped at 0, the exact solution being non-negative.

**Our own BiCGSTAB** (`_bicgstab`, van der Vorst's, as scipy's): its inner
products are numpy reductions, not BLAS calls. scipy's calls BLAS `dot` and
`nrm2` some 10 times an iteration, and a multi-threaded OpenBLAS spins its
threads for each one: on a loaded machine (2 cores shared) an explain at a
million arcs took 437 ms of CPU that way and 52 ms with one BLAS thread,
the same arithmetic; with numpy's reductions it needs no setting.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as sla

__all__ = ["DIRECT_LIMIT", "ITERATE_ABOVE", "power_iteration", "solve_system"]

DIRECT_LIMIT = 3000
"""Largest system solved exactly (to rounding, see `solve_system`) rather than to `tolerance`."""

FloatArray = npt.NDArray[np.float64]

_MAX_POWER_ITERATIONS = 100_000


Product = Callable[[FloatArray], FloatArray]


def power_iteration(product: Product, rhs: FloatArray, *, tolerance: float) -> FloatArray:
    """Solve x = rhs + product(x) by iteration, until the L1 step is < `tolerance`.

    Converges for any operator whose rows sum to < 1 (ours: at most 1 - restart).
    """
    x = rhs.copy()
    for _ in range(_MAX_POWER_ITERATIONS):
        following = product(x)
        following += rhs
        step = float(np.abs(following - x).sum())
        x = following
        if step < tolerance:
            break
    return x


_MAX_KRYLOV_ITERATIONS = 1000


def _dot(a: FloatArray, b: FloatArray) -> float:
    """An inner product by numpy's own loop (module doc: not BLAS)."""
    return float(np.multiply(a, b).sum())


def _bicgstab(
    apply: Product, rhs: FloatArray, *, guess: FloatArray | None, tolerance: float
) -> tuple[FloatArray, bool]:
    """Solve A x = rhs (A given by `apply`) until |rhs - A x|_2 <= tolerance |rhs|_2.

    Returns the solution and whether it converged (False: a breakdown, or
    `_MAX_KRYLOV_ITERATIONS`; the caller then iterates plainly).
    """
    x = np.zeros_like(rhs) if guess is None else np.array(guess, dtype=np.float64)
    r = rhs - apply(x) if guess is not None else rhs.copy()
    goal = tolerance * float(np.sqrt(_dot(rhs, rhs)))
    if float(np.sqrt(_dot(r, r))) <= goal:
        return x, True
    shadow = r.copy()
    rho = alpha = omega = 1.0
    v = np.zeros_like(rhs)
    p = np.zeros_like(rhs)
    for _ in range(_MAX_KRYLOV_ITERATIONS):
        rho_next = _dot(shadow, r)
        if rho_next == 0.0 or omega == 0.0:
            return x, False
        beta = (rho_next / rho) * (alpha / omega)
        rho = rho_next
        p = r + beta * (p - omega * v)
        v = apply(p)
        denominator = _dot(shadow, v)
        if denominator == 0.0:
            return x, False
        alpha = rho / denominator
        half = r - alpha * v
        if float(np.sqrt(_dot(half, half))) <= goal:
            return x + alpha * p, True
        t = apply(half)
        tt = _dot(t, t)
        if tt == 0.0:
            return x, False
        omega = _dot(t, half) / tt
        x = x + alpha * p + omega * half
        r = half - omega * t
        if float(np.sqrt(_dot(r, r))) <= goal:
            return x, True
    return x, False


_ROUNDING = 1e-12  # relative: what a direct solve may leave where the answer is 0

ITERATE_ABOVE = 128
"""Smallest system solved "exactly" by iterating to rounding rather than by sparse LU."""

_TO_ROUNDING = 1e-13  # relative residual of that iteration


def solve_system(
    product: Product,
    rhs: FloatArray,
    *,
    tolerance: float,
    matrix: Callable[[], sp.spmatrix] | None = None,
    guess: FloatArray | None = None,
) -> FloatArray:
    """Solve (I - A) x = rhs, given x -> A x (and A itself for small systems).

    `product` is x -> M^T x for the forward system and x -> M x for the reverse
    one. Up to `DIRECT_LIMIT` unknowns the answer is exact to rounding: from
    `ITERATE_ABOVE` unknowns, BiCGSTAB to relative residual `_TO_ROUNDING`
    (1e-13: at 1 000 members 0.8 ms against 90 ms for a sparse LU of a
    community graph, whose factors fill in; the two agree to 2e-15), and
    `matrix()` factorised and solved directly below that or if the iteration
    does not converge. Above `DIRECT_LIMIT`, BiCGSTAB to relative residual
    `tolerance`, from `guess` if given (after a small change of the matrix,
    the old solution is a few iterations away).
    """
    n = rhs.shape[0]
    if n == 0:
        return np.zeros(0)

    def apply(x: FloatArray) -> FloatArray:
        result: FloatArray = x - product(x)
        return result

    if matrix is not None and n <= DIRECT_LIMIT:
        exact: FloatArray | None = None
        if n >= ITERATE_ABOVE:
            solution, converged = _bicgstab(apply, rhs, guess=guess, tolerance=_TO_ROUNDING)
            if converged and bool(np.all(np.isfinite(solution))):
                exact = solution
        if exact is None:
            system = (sp.identity(n, format="csc") - matrix()).tocsc()
            exact = np.asarray(sla.spsolve(system, rhs), dtype=np.float64)
        # Rounding leaves ~1e-16 where the exact answer is 0 (a member the walk
        # cannot reach): counted, it would be a score with no path behind it.
        floor = _ROUNDING * float(np.max(np.abs(exact), initial=1.0))
        exact[np.abs(exact) < floor] = 0.0
        return np.maximum(exact, 0.0)

    solution, converged = _bicgstab(apply, rhs, guess=guess, tolerance=tolerance)
    if not converged or not bool(np.all(np.isfinite(solution))):
        solution = power_iteration(product, rhs, tolerance=tolerance * float(rhs.sum()))
    result: FloatArray = np.maximum(np.asarray(solution, dtype=np.float64), 0.0)
    return result
