"""The local HTTP API (DESIGN §8): token-protected, loopback by default, OpenAPI-described.

`node.api.app.create_app` builds the ASGI app over a `Node`; `node.api.server.serve_api`
serves it; `node.api.access` holds what clients need (token, address). This package
imports nothing heavy itself, so a CLI client that only needs `access` or `models`
does not load the web framework.
"""
