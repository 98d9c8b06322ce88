"""The browser's own guards around the web app: login, sessions, CSRF, headers, Host.

A browser is not a script holding a bearer token: any page it has open may
send it requests (CSRF), a hostile name may try to run (XSS), and a hostile
site may rebind its DNS name to 127.0.0.1 to read the app (DNS rebinding).
So:

- **Login** is a one-time secret (32 random bytes, five minutes) that
  `trustnode open` asks the daemon for with the bearer token; `/app/login`
  trades it, once, for a session cookie (`HttpOnly; SameSite=Strict;
  Path=/app`). Secrets and sessions live in the daemon's memory only: a
  restart logs every browser out, which is the safe direction.
- **CSRF**: each session has a synchronizer token, put in every form; a POST
  without it, or from another `Origin`, is refused (403) before anything runs.
- **Headers** on every `/app` answer: a strict Content-Security-Policy (no
  inline script, nothing from elsewhere, `frame-ancestors 'none'`),
  `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (so that
  forms carry our `Origin`), `Cache-Control: no-store`.
- **Host**: `/app` answers only when the `Host` header names the address the
  server is bound to (or 127.0.0.1 / localhost / [::1] with its port); a
  rebound name gets 421.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SESSION_COOKIE",
    "LoggedOut",
    "Logins",
    "PostedForm",
    "Refused",
    "Session",
    "WebGuard",
    "allowed_hosts",
]

SESSION_COOKIE = "tn_session"
LOGIN_TTL_S = 300.0
SESSION_TTL_S = 12 * 3600.0
MAX_PENDING = 64  # login secrets and sessions each: a leak of them is bounded
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(slots=True)
class Session:
    """One logged-in browser: its CSRF token and when it ends."""

    csrf: str
    expires_at: float
    notices: list[tuple[str, str]] = field(default_factory=list)  # (kind, text), shown once


class LoggedOut(Exception):  # noqa: N818  # not an error: the browser is simply not logged in
    """A request for a page or an action without a live session."""


class Refused(Exception):  # noqa: N818  # an answer (a 403 page), not an error of ours
    """An action refused before it runs: `why`, in words, on the refused page."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class PostedForm:
    """An action's form, checked: its session, and its fields (first value of each)."""

    session: Session
    fields: dict[str, str]


class Logins:
    """One-time login secrets and the sessions they became (in memory, bounded)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._secrets: dict[str, float] = {}
        self._sessions: dict[str, Session] = {}

    def _expire(self) -> None:
        now = self._clock()
        self._secrets = {s: t for s, t in self._secrets.items() if t > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v.expires_at > now}

    def new_secret(self) -> str:
        """A login secret good for one use within `LOGIN_TTL_S` (the oldest is
        dropped past `MAX_PENDING`)."""
        self._expire()
        while len(self._secrets) >= MAX_PENDING:
            del self._secrets[next(iter(self._secrets))]
        secret = secrets.token_urlsafe(32)
        self._secrets[secret] = self._clock() + LOGIN_TTL_S
        return secret

    def redeem(self, secret: str) -> str | None:
        """A new session id for a valid secret (which is then spent), else None."""
        self._expire()
        found = next((s for s in self._secrets if hmac.compare_digest(s, secret)), None)
        if found is None:
            return None
        del self._secrets[found]
        while len(self._sessions) >= MAX_PENDING:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(
            csrf=secrets.token_urlsafe(32), expires_at=self._clock() + SESSION_TTL_S
        )
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        """The live session `session_id` names, if any."""
        if not session_id:
            return None
        self._expire()
        found = next((k for k in self._sessions if hmac.compare_digest(k, session_id)), None)
        return None if found is None else self._sessions[found]

    def end(self, session_id: str | None) -> None:
        """Log a browser out."""
        if session_id:
            self._sessions.pop(session_id, None)


def allowed_hosts(server: tuple[str, int] | None) -> frozenset[str]:
    """The `Host` values the app answers to when bound to `server` (host, port)."""
    if server is None or server[1] is None:
        return frozenset()
    host, port = server
    bound = f"[{host}]" if ":" in host else host
    return frozenset(f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]", bound))


class WebGuard:
    """ASGI middleware for the paths under `prefix`: the Host check and the
    security headers. Other paths (the bearer-token API) pass untouched."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/app") -> None:
        self.app = app
        self.prefix = prefix

    def _ours(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._ours(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        server = scope.get("server")
        if host not in allowed_hosts(tuple(server) if server else None):
            await _refuse(send, 421, b"This address is not this node's (Host refused).\n")
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, guarded_send)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
