"""The local HTTP API: an ASGI app (FastAPI, on trio through anyio) over one `Node`.

Every route but `GET /health` needs `Authorization: Bearer <token>` (the token
is made at `trustnode init`, mode 0600, in the data directory), compared in
constant time; a missing or wrong token gets 401 and does nothing. Errors are
JSON `{"error": {"code": ..., "message": ...}}` with a stable `code`. Request
bodies are validated by the models (`node.api.models`): unknown fields, wrong
types and out-of-range values get 422 `invalid_request` before any handler
runs. CORS is off unless origins are configured. Every request is bounded (body,
query, headers, requests in flight) by `node.api.limits` before routing. The
web app (`node.web`) lives under `/app/` with its own guards (session cookie,
CSRF, CSP, Host check); `POST /v1/login-links` makes its one-time login links.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from node.api import metrics
from node.api.identity import add_identity_routes
from node.api.limits import RequestLimits
from node.api.models import (
    IDENTITY_OR_PETNAME_PATTERN,
    NAME_PATTERN,
    PATTERN_WORDS,
    SUBJECT_PATTERN,
    AttestationView,
    CertificateView,
    CertifyRequest,
    ClaimView,
    ConnectRequest,
    DistrustRequest,
    ErrorView,
    ExplanationView,
    ImportReportView,
    ImportRequest,
    InviteRequest,
    InviteView,
    PeerView,
    RankingView,
    RateRequest,
    RatingView,
    RevokeRequest,
    ScoreView,
    StatusView,
    TrustRequest,
)
from node.api.naming import add_naming_routes, named_attestations, named_peers, names_of
from node.api.recovery import add_recovery_routes
from node.api.rotation import add_rotation_routes
from node.api.scores import add_scores_route
from node.api.views import (
    attestation_view,
    claim_view,
    explanation_view,
    import_report_view,
    peer_view,
    ranking_view,
    rating_view,
    status_view,
    subject_text,
)
from node.errors import ConfigError, RequestError, StoreError
from node.net.addresses import invite_warnings
from node.service import Node
from node.web import add_web_app
from protocol.errors import TrustnodeError
from protocol.export import encode_export
from protocol.identity import encode_identity_text
from protocol.statement import GENERAL_CONTEXT, Kind

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "1.0.0"
log = logging.getLogger("trustnode.api")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorView, "description": text}
    for status, text in (
        (400, "refused (see error.code)"),
        (401, "missing or wrong bearer token"),
        (404, "not found (e.g. revoking a slot that holds nothing; the message names those held)"),
        (409, "the node cannot do this (no network; code conflict: a petname already taken)"),
        (413, "the body is over its limit (node.api.limits; SECURITY.md)"),
        (414, "the query is over its limit"),
        (422, "invalid request"),
        (431, "too many or too large headers"),
        (500, "internal error (logged by the node)"),
        (503, "the store is unavailable, or the node is busy (code busy: retry)"),
    )
}
# Text answers: declared here so that their errors stay documented as JSON.
_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}}
}
ContextQuery = Annotated[str, Query(pattern=NAME_PATTERN)]
SubjectPath = Annotated[
    str, Path(pattern=IDENTITY_OR_PETNAME_PATTERN, description="a tn_… identity or a petname")
]
_BEARER = HTTPBearer(auto_error=False, description="the token in <data dir>/api.token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body = ErrorView.model_validate({"error": {"code": code, "message": message}})
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


def _in_words(error: Mapping[str, Any]) -> str:
    """A validation error for people: a pattern is named by what it means, never shown."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if pattern is not None:
        return "expected " + PATTERN_WORDS.get(str(pattern), "another form")
    # Our own validators' messages are already for people: not "Value error, ...".
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _install_error_handlers(app: FastAPI) -> None:
    async def on_request_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestError)
        # A petname another identity holds is a conflict with the node's state (409).
        status = {"not_found": 404, "conflict": 409}.get(exc.code, 400)
        return _error(status, exc.code, str(exc))

    async def on_protocol_error(_: Request, exc: Exception) -> JSONResponse:
        reason = getattr(exc, "reason", None)
        code = reason.value if reason is not None else "refused"
        if isinstance(exc, StoreError):
            return _error(503, "store_unavailable", str(exc))
        if isinstance(exc, ConfigError):
            return _error(409, "not_configured", str(exc))
        return _error(400, code, str(exc))

    async def on_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {_in_words(first)}")

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just the first route's
            path = request.url.path
            methods = {
                m for r in app.routes
                if isinstance(r, APIRoute) and r.path_regex.match(path) for m in r.methods or ()
            }  # fmt: skip
            headers["Allow"] = ", ".join(sorted(methods))
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                      **headers)  # fmt: skip

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=exc)
        return _error(500, "internal", "internal error (logged by the node)")

    app.add_exception_handler(RequestError, on_request_error)
    app.add_exception_handler(TrustnodeError, on_protocol_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _bearer_check(token: str) -> Any:
    expected = token.encode()

    async def check(credentials: Credentials) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise StarletteHTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    return check


def create_app(node: Node, *, token: str, cors_origins: tuple[str, ...] = ()) -> FastAPI:
    """The API of `node`, guarded by `token`."""
    if len(token) < 16:
        raise ConfigError("the API token must have at least 16 characters")
    app = FastAPI(
        title="trustnode local API",
        version=API_VERSION,
        description="One member's trust node: attest, ask how far to trust someone and why.",
        responses=_ERRORS,
    )
    _install_error_handlers(app)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )  # fmt: skip
    app.add_middleware(RequestLimits)  # added last: it runs first, before CORS and routing

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness, without a token (it reveals nothing)."""
        return {"status": "ok"}

    guarded = [Depends(_bearer_check(token))]
    _add_query_routes(app, node, guarded)
    _add_attest_routes(app, node, guarded)
    _add_admin_routes(app, node, guarded)
    add_scores_route(app, node, guarded)
    add_naming_routes(app, node, guarded)
    add_web_app(app, node, guarded)  # the browser's pages under /app/ (node.web)
    add_identity_routes(app, node, guarded)
    add_recovery_routes(app, node, guarded)  # custodians (SPEC §18)
    add_rotation_routes(app, node, guarded)  # the node's own key (SPEC §17)
    return app


def _add_query_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    @app.get("/v1/score/{subject:path}", dependencies=guarded, tags=["trust"])
    async def score(subject: SubjectPath, context: ContextQuery = GENERAL_CONTEXT) -> ScoreView:
        """How far this node trusts `subject` in `context` (0..1)."""
        who = await node.resolve_identity(subject)
        value = await node.score(who, context)
        text = encode_identity_text(who)
        names = await names_of(node, [text])
        return ScoreView(subject=text, context=context, score=value, name=names[text])

    @app.get("/v1/explain/{subject:path}", dependencies=guarded, tags=["trust"])
    async def explain(
        subject: SubjectPath,
        context: ContextQuery = GENERAL_CONTEXT,
        paths: Annotated[int, Query(ge=0, le=50)] = 5,
    ) -> ExplanationView:
        """The score and everything behind it: first hops, strongest routes, flags, walls."""
        answer = await node.explain(await node.resolve_identity(subject), context, top_paths=paths)
        view = explanation_view(answer)
        named = [view.subject, *(h.via for h in view.first_hops), *(f.flagger for f in view.flags)]
        named += [n for p in view.paths for n in p.route]
        named += [c for r in view.keys.recoveries for c in r.custodians]
        named += [c for step in view.keys.chain for c in step.custodians]
        return view.model_copy(update={"names": await names_of(node, named)})

    @app.get("/v1/ranking", dependencies=guarded, tags=["trust"])
    async def ranking(
        context: ContextQuery = GENERAL_CONTEXT, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> RankingView:
        """The members this node trusts most in `context`."""
        view = ranking_view(context, await node.ranking(context, limit=limit))
        names = await names_of(node, [m.identity for m in view.members])
        members = [m.model_copy(update={"name": names[m.identity]}) for m in view.members]
        return view.model_copy(update={"members": members})

    @app.get("/v1/claims/{subject:path}", dependencies=guarded, tags=["trust"])
    async def claims(
        subject: SubjectPath,
        claim: Annotated[str, Query(pattern=NAME_PATTERN)],
        independent: Annotated[int, Query(ge=1, le=10)] = 2,
    ) -> ClaimView:
        """Whether enough independent trusted members certified `claim` about `subject`."""
        who = await node.resolve_identity(subject)
        decision = await node.claim(who, claim, independent=independent)
        view = claim_view(decision)
        named = [view.subject, *view.certifiers, *(n for p in view.paths for n in p)]
        return view.model_copy(update={"names": await names_of(node, named)})

    @app.get("/v1/rating", dependencies=guarded, tags=["trust"])
    async def rating(
        subject: Annotated[str, Query(max_length=512, pattern=SUBJECT_PATTERN)],
        context: ContextQuery = GENERAL_CONTEXT,
    ) -> RatingView:
        """Trust-weighted rating of an identity or a thing (`subject` may be a URI)."""
        what = await node.resolve_subject(subject)
        summary, raters = await node.rating(what, context)
        view = rating_view(subject_text(what), context, summary, raters)
        named = [view.subject, *(r.rater for r in view.counted)]
        return view.model_copy(update={"names": await names_of(node, named)})

    @app.get("/v1/ratings", dependencies=guarded, tags=["trust"])
    async def ratings(
        subject: Annotated[str, Query(max_length=512, pattern=SUBJECT_PATTERN)],
    ) -> list[RatingView]:
        """`/v1/rating` in every context the subject was rated in (none: an empty list)."""
        what = await node.resolve_subject(subject)
        answers = await node.ratings(what)
        views = [rating_view(subject_text(what), c, s, raters) for c, s, raters in answers]
        named = [subject_text(what), *(r.rater for v in views for r in v.counted)]
        names = await names_of(node, named)
        return [v.model_copy(update={"names": names}) for v in views]

    @app.get("/v1/attestations", dependencies=guarded, tags=["attestations"])
    async def attestations(
        issuer: Annotated[str | None, Query(pattern=IDENTITY_OR_PETNAME_PATTERN)] = None,
        subject: Annotated[str | None, Query(max_length=512, pattern=SUBJECT_PATTERN)] = None,
    ) -> list[AttestationView]:
        """Current attestations by `issuer` or about `subject` (give one)."""
        found = await node.attestations(
            issuer=None if issuer is None else await node.resolve_identity(issuer),
            subject=None if subject is None else await node.resolve_subject(subject),
        )
        return await named_attestations(node, [attestation_view(a) for a in found])


def _add_attest_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    @app.post("/v1/trust", dependencies=guarded, tags=["attestations"], status_code=201)
    async def trust(request: TrustRequest) -> AttestationView:
        """Vouch for someone. 201 means committed to disk (acknowledged), then pushed."""
        made = await node.trust(
            await node.resolve_identity(request.subject), request.value, context=request.context,
            expires_in_s=request.expires_in_s, name=request.name,
        )  # fmt: skip
        return (await named_attestations(node, [attestation_view(made)]))[0]

    @app.post("/v1/distrust", dependencies=guarded, tags=["attestations"], status_code=201)
    async def distrust(request: DistrustRequest) -> AttestationView:
        """Flag someone (a negative trust attestation)."""
        made = await node.distrust(
            await node.resolve_identity(request.subject), request.value, context=request.context,
            expires_in_s=request.expires_in_s,
        )  # fmt: skip
        return (await named_attestations(node, [attestation_view(made)]))[0]

    @app.post("/v1/certify", dependencies=guarded, tags=["attestations"], status_code=201)
    async def certify(request: CertifyRequest) -> CertificateView:
        """Certify a claim about someone; a private value travels only as a commitment."""
        made = await node.certify(
            await node.resolve_identity(request.subject), request.claim,
            private_value=request.private_value, expires_in_s=request.expires_in_s,
        )  # fmt: skip
        salt = None if made.salt is None else made.salt.hex()
        view = (await named_attestations(node, [attestation_view(made.attestation)]))[0]
        return CertificateView(attestation=view, salt=salt)

    @app.post("/v1/rate", dependencies=guarded, tags=["attestations"], status_code=201)
    async def rate(request: RateRequest) -> AttestationView:
        """Rate an exchange with an identity or a thing."""
        made = await node.rate(
            await node.resolve_subject(request.subject), request.value, context=request.context,
            reference=request.reference, expires_in_s=request.expires_in_s,
        )  # fmt: skip
        return (await named_attestations(node, [attestation_view(made)]))[0]

    @app.post("/v1/revoke", dependencies=guarded, tags=["attestations"], status_code=201)
    async def revoke(request: RevokeRequest) -> AttestationView:
        """Withdraw what this node said of a kind, about a subject, in a scope."""
        kind = Kind[request.kind.upper()]
        made = await node.revoke(kind, await node.resolve_subject(request.subject), request.scope)
        return (await named_attestations(node, [attestation_view(made)]))[0]


def _add_admin_routes(app: FastAPI, node: Node, guarded: list[Any]) -> None:
    @app.get("/v1/status", dependencies=guarded, tags=["node"])
    async def status() -> StatusView:
        """Peers, store size, sync lag."""
        return status_view(await node.status())

    @app.get("/v1/peers", dependencies=guarded, tags=["node"])
    async def peers() -> list[PeerView]:
        """The connected peers."""
        return await named_peers(node, [peer_view(p) for p in node.peers()])

    @app.post("/v1/peers", dependencies=guarded, tags=["node"], status_code=202)
    async def connect(request: ConnectRequest) -> dict[str, str]:
        """Keep a connection to another node (host:port) from now on."""
        node.connect(request.address)
        return {"address": request.address}

    @app.post("/v1/import", dependencies=guarded, tags=["attestations"])
    async def import_(request: ImportRequest) -> ImportReportView:
        """Verify and store envelopes (hex); the report says what became of each."""
        try:
            envelopes = [bytes.fromhex(e) for e in request.envelopes]
        except ValueError:
            raise RequestError("bad_value", "envelopes are hex strings") from None
        return import_report_view(await node.import_envelopes(envelopes))

    @app.get("/v1/export", dependencies=guarded, tags=["attestations"], responses=_TEXT)
    async def export() -> Response:
        """Every stored envelope as an export file (text, one hex envelope per line)."""
        data = encode_export(node.config.community_id, await node.export())
        return Response(data, media_type="text/plain; charset=us-ascii")

    @app.post("/v1/invites", dependencies=guarded, tags=["node"], status_code=201)
    async def invite(request: InviteRequest) -> InviteView:
        """A signed invite code that bootstraps from this node."""
        addresses = node.own_addresses(request.advertise)
        code = node.invite(
            expires_in_s=request.expires_in_s, single_use=request.single_use, advertise=addresses
        )
        listen = node.listen_address or node.config.listen
        warnings = invite_warnings(addresses, listen=listen)
        return InviteView(code=code, addresses=list(addresses), warnings=warnings)

    @app.get("/metrics", dependencies=guarded, tags=["node"], responses=_TEXT)
    async def metrics_() -> Response:
        """Prometheus text format (scrape with the bearer token)."""
        body, content_type = metrics.render(await node.status())
        return Response(body, media_type=content_type)
