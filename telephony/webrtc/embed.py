"""Cross-origin embedding: pages of the listed web apps load the captions module and post
offers from their own origin (CORS on those two paths only); everything else stays
same-origin."""

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

EMBED_PATHS = frozenset({"/v1/webrtc/offer", "/demo/callscribe-webrtc.js"})


class EmbedCors:
    """ASGI middleware: CORS for `EMBED_PATHS` from `origins`, nothing for other paths."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        embedded = scope["type"] == "http" and scope["path"] in EMBED_PATHS
        await (self.cors if embedded else self.app)(scope, receive, send)
