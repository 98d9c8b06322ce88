"""How a CLI command reaches its node: the running daemon's API, or the store itself.

Commands are clients of the local HTTP API. When the daemon answers on the
configured address, the request goes there (so what we sign is pushed to the
peers at once). When nothing listens, the same request is served in-process
by the same API code over the node opened without networking (so queries,
attestations, export and import work while the daemon is down; the daemon
picks up what was stored at its next start and offers it to the peers).
Either way the command sees the same JSON, and the same errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import trio

from node.api.access import ADDRESS_FILE, api_url, read_token
from node.cli.common import EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_USAGE, Place, fail
from node.errors import ConfigError, StoreError
from node.home.config import NodeConfig, load_config

__all__ = ["Answer", "call", "load"]

T = TypeVar("T")
_CONNECT_TIMEOUT_S = 2.0
_REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Answer:
    """An API response: status, JSON (or text) body, and which path served it."""

    status: int
    body: Any
    via_daemon: bool


def load(place: Place, overrides: dict[str, object] | None = None) -> NodeConfig:
    """The community's configuration, or a one-line exit."""
    try:
        return load_config(place.data_dir, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def _daemon_address(config: NodeConfig) -> str:
    """Where the daemon said its API listens (it may have had port 0), else the config."""
    try:
        written = (config.data_dir / ADDRESS_FILE).read_text("ascii")[:300].strip()
    except (OSError, UnicodeDecodeError):
        return config.api_listen
    return written or config.api_listen


def _client(config: NodeConfig, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(_REQUEST_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)
    listen = _daemon_address(config)
    if listen.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=listen.removeprefix("unix:"))
        return httpx.Client(
            transport=transport, base_url="http://trustnode", headers=headers, timeout=timeout
        )
    return httpx.Client(base_url=api_url(listen), headers=headers, timeout=timeout)


def _decode(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def _via_daemon(config: NodeConfig, token: str, method: str, path: str, **kw: Any) -> Answer:
    with _client(config, token) as client:
        response = client.request(method, path, **kw)
    return Answer(response.status_code, _decode(response), via_daemon=True)


def _in_process(config: NodeConfig, token: str, method: str, path: str, **kw: Any) -> Answer:
    # The web framework and the trust engine load only when no daemon answers.
    from node.api.app import create_app
    from node.service import open_node

    async def serve() -> Answer:
        async with open_node(config, network=False, create_key=False) as node:
            app = create_app(node, token=token)
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://local", headers=headers
            ) as client:
                response = await client.request(method, path, **kw)
        return Answer(response.status_code, _decode(response), via_daemon=False)

    return trio.run(serve)


def _guarded(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except (StoreError, ConfigError) as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def call(place: Place, method: str, path: str, *, offline: bool = False, **kw: Any) -> Answer:
    """Send one API request to the daemon, or serve it in-process if none runs.

    Errors become one line and an exit code (see node.cli.common); success
    returns the answer.
    """
    config = load(place)
    _guarded(functools.partial(_check_key, place))
    token = _guarded(functools.partial(read_token, place.data_dir))
    answer = None
    if not offline:
        try:
            answer = _via_daemon(config, token, method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, FileNotFoundError):
            answer = None  # no daemon: serve it here
        except httpx.HTTPError as exc:
            fail(f"the daemon at {config.api_listen} did not answer: {exc}", EXIT_UNAVAILABLE)
    if answer is None:
        answer = _guarded(functools.partial(_in_process, config, token, method, path, **kw))
    if answer.status >= 400:
        _refuse(answer, config)
    return answer


def _check_key(place: Place) -> None:
    """Refuse to go on without the key file, even while a daemon still holds the key
    in memory: a member whose identity file is gone must hear it now, not at the
    next restart. (Only `trustnode init` makes a key.)"""
    from node.home.datadir import DataDir  # the store's modules load only here

    data = DataDir(place.data_dir)
    if not data.key_path.exists():
        data.load_key()  # raises the one line that says what to do


def _refuse(answer: Answer, config: NodeConfig) -> None:
    error = answer.body.get("error", {}) if isinstance(answer.body, dict) else {}
    code, message = error.get("code", "error"), error.get("message", str(answer.body)[:200])
    if answer.status == 401:
        fail(
            f"the daemon at {config.api_listen} refused our token (is it another "
            "community's daemon?)",
            EXIT_UNAVAILABLE,
        )
    if answer.status >= 500:
        fail(f"{code}: {message}", EXIT_UNAVAILABLE)
    # 404 `not_found` (e.g. revoking an empty slot) is a refusal (1), not a usage error.
    usage = answer.status == 422 or code.startswith("bad_") or code == "ambiguous_identity"
    exit_code = EXIT_USAGE if usage else EXIT_INVALID
    fail(f"{code}: {message}", exit_code)


def token_of(place: Place) -> str:
    """The API token (for `trustnode status --show-token`-like uses and tests)."""
    return _guarded(functools.partial(read_token, place.data_dir))
