"""The walk's transition matrix M, editable row by row without an O(arcs) rebuild.

M[u, v] = (1 - restart) (1 - wall(u)) w(u, v) / max(1, W(u)) (see
`node.trust.walk`). A full CSR copy of a million arcs takes tens of
milliseconds, more than an incremental update may cost, so edits go to an
overlay: M = B + D, where B is the CSR built at the last merge and D holds,
for the few rows changed since, the new row minus B's row. Solvers use
`forward` / `reverse` products (B^T x + D^T x, B x + D x), which cost one
sparse product plus a tiny one; D is rebuilt from the overlay only when a
solve needs it. `merge()` folds the overlay into new base arrays.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from node.trust.graph import FloatArray, IndexArray, TrustGraph

__all__ = ["Transitions"]


class Transitions:
    """Positive vouch rows, the viewer's walls, and M built from them."""

    def __init__(self, graph: TrustGraph, *, restart: float, walls: FloatArray) -> None:
        self.restart = restart
        self.size = graph.size
        self._indptr, self._indices, self._weights = graph.indptr, graph.indices, graph.weights
        self._rows_in_base = graph.size
        self._overlay: dict[int, dict[int, float]] = {}
        self.walls = walls.copy()
        # Changed rows: node -> D's row (new row's entries, then B's row negated),
        # computed when the row changes (O(row)), so that building D for the
        # next product is a concatenation, not a Python loop over every row.
        self._dirty: dict[int, tuple[IndexArray, FloatArray]] = {}
        self._base = self._build(self.walls)
        self._base_transposed = self._base.T.tocsr()
        self._delta: sp.csr_matrix | None = None
        # D's nonzero rows alone (|dirty| x n), for the products: D @ x over all
        # n rows walks every empty row of D (~15 % of a product at 1M arcs).
        self._compact: tuple[IndexArray, sp.csr_matrix] | None = None
        self._full: sp.csr_matrix | None = None

    # -- rows -------------------------------------------------------------------------

    def grow(self) -> int:
        """Add a node without edges; returns its number."""
        self.size += 1
        self.walls = np.append(self.walls, 0.0)
        self._delta = self._full = self._compact = None
        return self.size - 1

    def out_edges(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Subjects and weights of `node`'s positive vouches, as they are now."""
        row = self._overlay.get(node)
        if row is not None:
            cols = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            return cols, np.fromiter(row.values(), dtype=np.float64, count=len(row))
        if node < self._rows_in_base:
            start, end = int(self._indptr[node]), int(self._indptr[node + 1])
            return self._indices[start:end], self._weights[start:end]
        return np.zeros(0, dtype=np.int64), np.zeros(0)

    def row(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Row `node` of M: where a walk at `node` goes next, with what probability."""
        cols, weights = self.out_edges(node)
        if cols.size == 0:
            return cols, weights
        scale = (1.0 - self.restart) * (1.0 - self.walls[node])
        return cols, weights * (scale / max(1.0, float(weights.sum())))

    def set_weight(self, u: int, v: int, weight: float) -> None:
        """Set u's positive vouch for v (0 removes it)."""
        row = self._overlay.get(u)
        if row is None:
            cols, weights = self.out_edges(u)
            row = dict(zip(cols.tolist(), weights.tolist(), strict=True))
            self._overlay[u] = row
        if weight > 0.0:
            row[v] = weight
        else:
            row.pop(v, None)
        self._touch(u)

    def set_wall(self, node: int, strength: float) -> None:
        """Set the viewer's wall on `node` (0 removes it)."""
        self.walls[node] = strength
        self._touch(node)

    def _touch(self, node: int) -> None:
        cols, values = self.row(node)
        if node < self._base.shape[0]:
            start, end = self._base.indptr[node], self._base.indptr[node + 1]
            cols = np.concatenate([cols, self._base.indices[start:end]])
            values = np.concatenate([values, -self._base.data[start:end]])
        self._dirty[node] = (np.asarray(cols, dtype=np.int64), values)
        self._delta = self._full = self._compact = None

    @property
    def changed_rows(self) -> int:
        """Rows that differ from the merged base (the overlay's size)."""
        return len(self._dirty)

    # -- products ------------------------------------------------------------------

    def _delta_matrix(self) -> sp.csr_matrix:
        """D as an n x n matrix (for `matrix()`), from its compact rows."""
        if self._delta is None:
            rows, compact = self._compact_delta()
            counts = np.zeros(self.size, dtype=np.int64)
            counts[rows] = np.diff(compact.indptr)
            indptr = np.zeros(self.size + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            self._delta = sp.csr_matrix(
                (compact.data, compact.indices, indptr), shape=(self.size, self.size)
            )
        return self._delta

    def _compact_delta(self) -> tuple[IndexArray, sp.csr_matrix]:
        """D's nonzero rows (sorted) and those rows as a |rows| x n matrix."""
        if self._compact is None:
            rows = np.array(sorted(self._dirty), dtype=np.int64)
            pieces = [self._dirty[node] for node in rows.tolist()]
            indptr = np.zeros(rows.size + 1, dtype=np.int64)
            np.cumsum([cols.size for cols, _ in pieces], out=indptr[1:])
            cols = np.concatenate([c for c, _ in pieces]) if pieces else np.zeros(0, np.int64)
            values = np.concatenate([v for _, v in pieces]) if pieces else np.zeros(0)
            compact = sp.csr_matrix((values, cols, indptr), shape=(rows.size, self.size))
            compact.sum_duplicates()  # a column in both the new row and B's: one entry
            self._compact = (rows, compact)
        return self._compact

    def forward(self, x: FloatArray) -> FloatArray:
        """M^T x (for visits from one start)."""
        n0 = self._base.shape[0]
        if not self._dirty and self.size == n0:
            plain: FloatArray = self._base_transposed @ x
            return plain
        if self.size == n0:
            result: FloatArray = self._base_transposed @ x
        else:
            result = np.zeros(self.size)
            result[:n0] = self._base_transposed @ x[:n0]
        rows, compact = self._compact_delta()
        result += compact.T @ x[rows]
        return result

    def reverse(self, x: FloatArray) -> FloatArray:
        """M x (for visits to one target)."""
        n0 = self._base.shape[0]
        if not self._dirty and self.size == n0:
            plain: FloatArray = self._base @ x
            return plain
        if self.size == n0:
            result: FloatArray = self._base @ x
        else:
            result = np.zeros(self.size)
            result[:n0] = self._base @ x[:n0]
        rows, compact = self._compact_delta()
        result[rows] += compact @ x
        return result

    def matrix(self) -> sp.csr_matrix:
        """M as one CSR matrix (O(arcs) after a change; cached until the next)."""
        if self._full is None:
            n0 = self._base.shape[0]
            tail = np.full(self.size - n0, self._base.indptr[-1])
            padded = sp.csr_matrix(
                (self._base.data, self._base.indices, np.append(self._base.indptr, tail)),
                shape=(self.size, self.size),
            )
            if self._dirty:
                # The sum is a fresh matrix, so dropping its zeros in place is
                # safe. `padded` shares B's data and indices (only its indptr is
                # new): compacting it in place would shift B's rows under B's
                # unchanged indptr. B itself holds no zeros (see `_build`).
                full = (padded + self._delta_matrix()).tocsr()
                full.eliminate_zeros()
                self._full = full
            else:
                self._full = padded
        return self._full

    def weight_matrix(self) -> sp.csr_matrix:
        """The current positive vouch weights (value/100), walls not applied."""
        rows, cols, weights = self.arrays()
        return sp.csr_matrix((weights, (rows, cols)), shape=(self.size, self.size))

    # -- merging --------------------------------------------------------------------

    def arrays(self) -> tuple[IndexArray, IndexArray, FloatArray]:
        """Every current positive edge as (rows, cols, weights) arrays."""
        rows = np.repeat(np.arange(self._rows_in_base, dtype=np.int64), np.diff(self._indptr))
        cols, weights = self._indices, self._weights
        if self._overlay:
            keep = ~np.isin(rows, np.fromiter(self._overlay, dtype=np.int64))
            extra = [(u, v, w) for u, row in self._overlay.items() for v, w in row.items()]
            rows = np.concatenate([rows[keep], np.array([e[0] for e in extra], dtype=np.int64)])
            cols = np.concatenate([cols[keep], np.array([e[1] for e in extra], dtype=np.int64)])
            weights = np.concatenate([weights[keep], np.array([e[2] for e in extra])])
        return rows, cols, weights

    def merge(self) -> None:
        """Fold the overlay into new base arrays and a new B (O(arcs))."""
        rows, cols, weights = self.arrays()
        order = np.lexsort((cols, rows))
        self._indptr = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.size), out=self._indptr[1:])
        self._indices, self._weights = cols[order], weights[order]
        self._rows_in_base = self.size
        self._overlay.clear()
        self._dirty.clear()
        self._base = self._build(self.walls)
        self._base_transposed = self._base.T.tocsr()
        self._delta = self._full = self._compact = None

    def _build(self, walls: FloatArray) -> sp.csr_matrix:
        """B from the base arrays, without stored zeros.

        A row behind a full wall (strength 1) scales to zeros; they are left
        out here, on B's own copies, so that nothing ever needs to compact B
        (or the graph's arrays) in place.
        """
        n = self._rows_in_base
        counts = np.diff(self._indptr)
        rows = np.repeat(np.arange(n, dtype=np.int64), counts)
        sums = np.bincount(rows, weights=self._weights, minlength=n)
        scale = (1.0 - self.restart) * (1.0 - walls[:n]) / np.maximum(sums, 1.0)
        data = self._weights * scale[rows]
        keep = data != 0.0
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
        return sp.csr_matrix((data[keep], self._indices[keep], indptr), shape=(n, n))
