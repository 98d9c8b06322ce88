"""Logging for the daemon: readable lines by default, one JSON object per line on request.

Standard `logging` (every module logs to `trustnode.<part>`), so an app that
embeds a node keeps its own logging setup; only `trustnode run` calls
`configure_logging`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal

__all__ = ["configure_logging"]


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "message": ...}` per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(
    log_format: Literal["text", "json"] = "text",
    level: Literal["debug", "info", "warning", "error"] = "info",
) -> None:
    """Send `trustnode.*` records to stderr in `log_format` at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger("trustnode")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
