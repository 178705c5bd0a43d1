"""Static pages served by the app itself (the demo page, the admin UI): their files with a
strict content security policy, so only their own scripts and styles ever run."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope


def strict_headers(media_src: str = "'self' blob:", **extra: str) -> dict[str, str]:
    """Nothing loaded from elsewhere, no other site may frame the page; `connect-src 'self'`
    also covers same-origin ws:/wss: in CSP Level 3."""
    return {
        "content-security-policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src {media_src}; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'"
        ),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-cache",
        **extra,
    }


class StrictStaticFiles(StaticFiles):
    """A folder of static files, each answered with `headers`; names in `hidden` are 404."""

    def __init__(
        self, *, headers: dict[str, str], hidden: frozenset[str] = frozenset(), **options
    ) -> None:
        super().__init__(**options)
        self.headers = headers
        self.hidden = hidden

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path in self.hidden:
            raise HTTPException(404)
        response = await super().get_response(path, scope)
        response.headers.update(self.headers)
        return response


SHARED_DIR = Path(__file__).parent / "ui"
"""What the demo page and the admin UI share (base.css), served at `/ui/`."""


def mount_shared_assets(app: FastAPI) -> None:
    """Serve `/ui/` once, whichever page installs first."""
    if any(getattr(route, "name", None) == "ui" for route in app.routes):
        return
    files = StrictStaticFiles(directory=SHARED_DIR, headers=strict_headers())
    app.mount("/ui", files, name="ui")
