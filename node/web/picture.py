"""The explanation of a score as a picture: me → contacts → … → them.

Pure layout (no I/O): columns by hop, one row per member in a column, edge
widths by the share of the score that flows along them, flags and the wall
marked. The template draws it as inline SVG (markup, not script, so the
Content-Security-Policy stays strict); every label goes through the template's
escaping like any other text from peers.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.api.models import ExplanationView

__all__ = ["Edge", "Picture", "Spot", "draw_explanation"]

WIDTH = 640
COLUMN_GAP = 150
ROW_GAP = 56
MARGIN = 40
SIDE = 72  # room beside the first and last column for a centred label
MAX_LABEL = 16


@dataclass(frozen=True, slots=True)
class Spot:
    """One member in the picture."""

    identity: str
    label: str
    x: int
    y: int
    role: str  # "me", "them", "via", "flagger"


@dataclass(frozen=True, slots=True)
class Edge:
    """A vouch (share of the score it carries) or a flag."""

    x1: int
    y1: int
    x2: int
    y2: int
    width: float
    share: float
    flag: bool
    bend: int = 0  # how far the curve bows up: a hop past a column must not hide under others

    @property
    def d(self) -> str:
        """The SVG path: straight between neighbours, bowed when it skips a column."""
        mx, my = (self.x1 + self.x2) // 2, (self.y1 + self.y2) // 2 - self.bend
        return f"M{self.x1} {self.y1} Q{mx} {my} {self.x2} {self.y2}"


@dataclass(frozen=True, slots=True)
class Picture:
    """What the template draws."""

    width: int
    height: int
    spots: list[Spot]
    edges: list[Edge]
    wall: float
    summary: str


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


_WHY_NOT = {
    "unknown": "No one you trust knows them.",
    "no_path": "No chain of vouches reaches them.",
    "walled": "Trust reaching them stops at a wall.",
    "flagged": "Flags outweigh the vouches for them.",
}


def _summary(view: ExplanationView) -> str:
    if view.why_not is not None:
        return _WHY_NOT[view.why_not]
    return f"{len(view.paths)} strongest routes carry {view.path_coverage:.0%} of the score."


def _columns(view: ExplanationView, me: str) -> tuple[int, dict[int, list[str]]]:
    """How many hops the picture spans, and who stands in each column."""
    routes = [p.route for p in view.paths if len(p.route) >= 2]
    depth = max((len(r) for r in routes), default=2) - 1
    column: dict[str, int] = {me: 0, view.subject: depth}
    for route in routes:
        for hop, identity in enumerate(route[1:-1], start=1):
            column[identity] = min(column.get(identity, hop), depth - 1)
    rows: dict[int, list[str]] = {}
    for identity, col in column.items():
        rows.setdefault(col, []).append(identity)
    return depth, rows


def draw_explanation(view: ExplanationView, *, me: str) -> Picture:
    """Lay out `view` (seen from `me`) in columns; labels from `view.names`."""

    def label(identity: str) -> str:
        if identity == me:
            return "me"
        name = view.names.get(identity)
        return _short(name.label if name is not None else identity[:12])

    depth, rows = _columns(view, me)
    placed = {i for members in rows.values() for i in members}
    tallest = max(len(r) for r in rows.values())
    flaggers = [f.flagger for f in view.flags if f.flagger not in placed][:5]
    height = 2 * MARGIN + max(tallest - 1, 0) * ROW_GAP + (ROW_GAP + 20 if flaggers else 0)
    gap = min(COLUMN_GAP, (WIDTH - 2 * SIDE) // max(depth, 1))
    where: dict[str, tuple[int, int]] = {}
    spots: list[Spot] = []
    for col, members in sorted(rows.items()):
        top = MARGIN + (tallest - len(members)) * ROW_GAP // 2
        for row, identity in enumerate(members):
            x, y = SIDE + col * gap, top + row * ROW_GAP
            where[identity] = (x, y)
            role = "me" if identity == me else "them" if identity == view.subject else "via"
            spots.append(Spot(identity, label(identity), x, y, role))
    for n, identity in enumerate(flaggers):
        x, y = SIDE + n * 110, height - MARGIN
        where[identity] = (x, y)
        spots.append(Spot(identity, label(identity), x, y, "flagger"))
    carried: dict[tuple[str, str], float] = {}
    for path in view.paths:
        for a, b in zip(path.route, path.route[1:], strict=False):
            carried[(a, b)] = carried.get((a, b), 0.0) + path.share
    strongest = max(carried.values(), default=0.0) or 1.0
    edges = [
        Edge(
            *where[a],
            *where[b],
            width=1.5 + 8.0 * share / strongest,
            share=share,
            flag=False,
            bend=36 if abs(where[b][0] - where[a][0]) > gap else 0,
        )
        for (a, b), share in carried.items()
        if a in where and b in where
    ]
    edges += [
        Edge(*where[f.flagger], *where[view.subject], width=2.0, share=f.strength, flag=True)
        for f in view.flags
        if f.flagger in where
    ]
    return Picture(WIDTH, height, spots, edges, view.wall, _summary(view))
