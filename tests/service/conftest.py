"""Fixtures of the service tests: a node and its API client (tests/service/api_app.py)."""

from tests.service.api_app import client, node

__all__ = ["client", "node"]
