"""The local web app: server-rendered pages over one `Node`, under `/app/` on the
API listener (see `node.web.app` for the stack, `node.web.security` for the guards)."""

from node.web.app import add_web_app
from node.web.security import Logins

__all__ = ["Logins", "add_web_app"]
