"""`GET /v1/scores`: every member's score in one request (one solve on the node).

A community app that shows a member list asks once for everyone instead of
one `GET /v1/score/{subject}` per member: the node computes every score in
one batched solve (`TrustEngine.scores`) and caches it until the next
attestation arrives. Kept in its own module so that it is one focused hunk
in `node.api.app`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from node.api.models import NAME_PATTERN, RankingView
from node.api.views import ranking_view
from node.service import Node
from protocol.statement import GENERAL_CONTEXT

__all__ = ["add_scores_route"]

MAX_MEMBERS = 100_000


def add_scores_route(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    """Register `GET /v1/scores` on `app`."""

    @app.get("/v1/scores", dependencies=guarded, tags=["trust"])
    async def scores(
        context: Annotated[str, Query(pattern=NAME_PATTERN)] = GENERAL_CONTEXT,
        min_score: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
        limit: Annotated[int, Query(ge=1, le=MAX_MEMBERS)] = 10_000,
    ) -> RankingView:
        """Every member with a score above `min_score` in `context`, highest first
        (ties by identity), at most `limit`; the viewer itself is left out."""
        table = await node.scores(context)
        members = sorted(
            ((identity, value) for identity, value in table.items()
             if value > min_score and identity != node.identity),
            key=lambda item: (-item[1], item[0]),
        )  # fmt: skip
        return ranking_view(context, members[:limit])
