"""The linear algebra behind the consensus's seed vectors (`node.trust.consensus`).

Each seed's visit vector is a row of F = (I - M)^-1. These are the pieces
that solve them (a block power iteration, or a dense inverse) and correct
them after M changed in a few rows (Sherman-Morrison-Woodbury), kept apart
from what the consensus *means* (seeds, ranks, the score table).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from node.trust.graph import FloatArray, IndexArray

__all__ = ["changed_rows", "grown", "inverted", "padded", "solve_block", "woodbury"]

_MAX_STEPS = 100_000

_ROUNDING = 1e-16
"""Entries of a fresh dense inverse below this are rounding where the exact
entry is 0 (no path): cleared."""


def solve_block(matrix: sp.csr_matrix, rhs: FloatArray, tolerance: float) -> FloatArray:
    """X = rhs + M^T X for a block of columns, until every column's L1 step is < tolerance.

    Right-hand sides may be signed (a correction's D): the iteration only
    needs M's rows to sum to at most 1 - restart.
    """
    transposed = matrix.T.tocsr()
    solution = rhs.copy()
    for _ in range(_MAX_STEPS):
        following = rhs + transposed @ solution
        step = float(np.abs(following - solution).sum(axis=0).max(initial=0.0))
        solution = following
        if step < tolerance:
            break
    return solution


def inverted(matrix: sp.csr_matrix) -> FloatArray:
    """F = (I - M)^-1, densely; rounding where the exact entry is 0 (no path) cleared."""
    n = matrix.shape[0]
    inverse: FloatArray = np.linalg.inv(np.eye(n) - matrix.toarray())
    inverse[np.abs(inverse) < _ROUNDING] = 0.0  # (ranks would tie it with 0 anyway)
    return inverse


def padded(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """`matrix` with empty rows and columns appended up to n x n (members added since)."""
    if matrix.shape[0] == n:
        return matrix
    tail = np.full(n - matrix.shape[0], matrix.indptr[-1])
    return sp.csr_matrix(
        (matrix.data, matrix.indices, np.append(matrix.indptr, tail)), shape=(n, n)
    )


def changed_rows(
    matrix: sp.csr_matrix, before: sp.csr_matrix, visits: FloatArray | None, limit: int
) -> tuple[IndexArray, sp.csr_matrix] | None:
    """Rows U of M that changed (where a seed's walk goes, if `visits` is
    given), and D = M'[U] - M[U]; None if more than `limit`, or, with
    `visits`, if an arc is gone (someone may then no longer be reachable
    from a seed, where a correction would leave rounding instead of an
    exact 0: a full solve is due; the dense inverse clears it instead)."""
    change = (matrix - before).tocsr()
    change.eliminate_zeros()
    rows = np.flatnonzero(np.diff(change.indptr))
    if visits is not None:
        # A row no seed's walk visits changes nobody's vectors (V[:, u] = 0).
        rows = rows[np.abs(visits[:, rows]).max(axis=0, initial=0.0) > 0.0]
    if rows.size > limit:
        return None
    if visits is not None:
        for u in rows.tolist():
            old = before.indices[before.indptr[u] : before.indptr[u + 1]]
            if not np.isin(old, matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]]).all():
                return None
    return rows, change[rows]


def grown(inverse: FloatArray, n: int) -> FloatArray:
    """F for members added since (no arcs yet): their block is the identity."""
    if inverse.shape[0] == n:
        return inverse
    result = np.eye(n)
    result[: inverse.shape[0], : inverse.shape[0]] = inverse
    return result


def woodbury(inverse: FloatArray, rows: IndexArray, delta: sp.csr_matrix) -> FloatArray:
    """(I - M')^-1 from F = (I - M)^-1 when M' = M + D on rows U only (D = delta):

        F' = F + F[:, U] K^-1 (D F),   K = I - (D F)[:, U]

    (one pass over F per changed row). Where a removed arc left no path,
    rounding may leave ~1e-17 for an exact 0: the consensus's ranks tie it
    with 0 and clip the viewer's own part.
    """
    moved = np.asarray(delta @ inverse)  # D F, |U| x n
    kernel = np.eye(rows.size) - moved[:, rows]
    coefficients = np.linalg.solve(kernel, moved)
    if rows.size == 1:  # an outer product: broadcast (no BLAS call, ~40 % less CPU)
        updated: FloatArray = inverse + inverse[:, rows] * coefficients
    else:
        updated = inverse + inverse[:, rows] @ coefficients
    return updated
