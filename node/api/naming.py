"""The API's naming routes and the `name` objects that go beside identities.

Petnames (`/v1/petnames`), our profile (`/v1/profile`), one identity's name
(`/v1/names/{subject}`) and search by name (`/v1/find`). Names are data: the API
returns them as JSON strings and never interprets them; views escape them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query

from node.api.models import (
    IDENTITY_OR_PETNAME_PATTERN,
    AttestationView,
    FoundView,
    NameView,
    PeerView,
    PetnameRequest,
    PetnameView,
    ProfileRequest,
)
from node.api.views import attestation_view
from node.names import ResolvedName
from node.service import Node
from protocol.identity import IdentityId, decode_identity_text, encode_identity_text

__all__ = ["add_naming_routes", "name_view", "named_attestations", "named_peers", "names_of"]

NamePath = Annotated[
    str, Path(pattern=IDENTITY_OR_PETNAME_PATTERN, description="a tn_… identity or a petname")
]


def name_view(resolved: ResolvedName) -> NameView:
    """The JSON form of a resolved name."""
    return NameView(
        label=resolved.label,
        source=resolved.source.value,
        name=resolved.name,
        given_by=list(resolved.givers),
        warnings=[i.warning for i in resolved.impostors],
        resembles=[encode_identity_text(i.other) for i in resolved.impostors],
    )


async def names_of(node: Node, identities: Iterable[str]) -> dict[str, NameView]:
    """`name` objects for identities given as `tn_…` texts (others are skipped)."""
    wanted = {t: decode_identity_text(t) for t in set(identities) if t.startswith("tn_")}
    resolved = await node.names(sorted(wanted.values()))
    return {t: name_view(resolved[i]) for t, i in wanted.items()}


async def named_attestations(node: Node, views: list[AttestationView]) -> list[AttestationView]:
    """`views` with the `name` objects of their issuers and (identity) subjects."""
    names = await names_of(node, [t for v in views for t in (v.issuer, v.subject)])
    return [
        v.model_copy(
            update={"issuer_name": names.get(v.issuer), "subject_name": names.get(v.subject)}
        )
        for v in views
    ]


async def named_peers(node: Node, views: list[PeerView]) -> list[PeerView]:
    """`views` with the `name` object of each peer."""
    names = await names_of(node, [v.identity for v in views])
    return [v.model_copy(update={"name": names.get(v.identity)}) for v in views]


def add_naming_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    """Install the naming routes on `app`."""

    @app.get("/v1/petnames", dependencies=guarded, tags=["names"])
    async def petnames() -> list[PetnameView]:
        """Your petnames: names only this node knows (never sent)."""
        return [
            PetnameView(identity=encode_identity_text(i), petname=n)
            for i, n in sorted(node.petnames().items(), key=lambda item: item[1])
        ]

    @app.post("/v1/petnames", dependencies=guarded, tags=["names"], status_code=201)
    async def set_petname(request: PetnameRequest) -> PetnameView:
        """Give an identity your petname (unique: one that reads alike is refused)."""
        who = await node.resolve_identity(request.subject)
        await node.set_petname(who, request.name)
        return PetnameView(identity=encode_identity_text(who), petname=request.name)

    @app.delete("/v1/petnames/{subject}", dependencies=guarded, tags=["names"])
    async def remove_petname(subject: NamePath) -> PetnameView:
        """Forget your petname for an identity."""
        who = await node.resolve_identity(subject)
        removed = await node.remove_petname(who)
        return PetnameView(identity=encode_identity_text(who), petname=removed)

    @app.post("/v1/profile", dependencies=guarded, tags=["names"], status_code=201)
    async def profile(request: ProfileRequest) -> AttestationView:
        """Publish your self-chosen name (others see it marked as self-claimed)."""
        made = attestation_view(await node.set_profile(request.name, about=request.about))
        return (await named_attestations(node, [made]))[0]

    @app.get("/v1/names/{subject}", dependencies=guarded, tags=["names"])
    async def name(subject: NamePath) -> NameView:
        """How this node names an identity, with impostor warnings."""
        who: IdentityId = await node.resolve_identity(subject)
        return name_view((await node.names([who]))[who])

    @app.get("/v1/find", dependencies=guarded, tags=["names"])
    async def find(
        text: Annotated[str, Query(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[FoundView]:
        """Members any of whose names reads like `text`, most trusted first."""
        found = await node.find(text, limit=limit)
        return [
            FoundView(identity=encode_identity_text(r.identity), name=name_view(r), score=s)
            for r, s in found
        ]
