"""The demo page at `/`: live captions from the browser's microphone over `/v1/stream`, and
file transcription over `/v1/audio/transcriptions`. Static files in `service/demo/`,
no build step, nothing loaded from elsewhere."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from common.static import StrictStaticFiles, mount_shared_assets, strict_headers

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_HEADERS = strict_headers(
    media_src="'self' blob: mediastream:", **{"permissions-policy": "microphone=(self), camera=()"}
)


def install(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/demo/`."""

    @app.get("/", include_in_schema=False)
    def demo_page() -> FileResponse:
        return FileResponse(DEMO_DIR / "index.html", headers=DEMO_HEADERS)

    # The page lives at `/` (its relative links assume so), not at /demo/index.html.
    files = StrictStaticFiles(
        directory=DEMO_DIR, headers=DEMO_HEADERS, hidden=frozenset({"index.html"})
    )
    app.mount("/demo", files, name="demo")
    mount_shared_assets(app)
