"""The web app: server-rendered pages for people and a JSON API under /api/v1 (see docs/web.md).

`create_app(store, settings)` builds the app; `serve(settings, host, port)` is what
`vigie serve` calls. Importing this package builds nothing.
"""

from vigie.web.app import create_app
from vigie.web.server import serve

__all__ = ["create_app", "serve"]
