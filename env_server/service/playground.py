"""The playground: one static page (HTML, JS, CSS, SVG; no build step, no CDN) served by the service.

A person picks a served problem or pastes one, sees its events on a day timeline, writes a completion
or clicks events to build one, and sees what the service makes of it. The page only calls the public
API (`/v1/info`, `/v1/problems`, `/v1/solve`, `/v1/score`), with an optional bearer key the user
pastes, so it shows exactly what any other client gets. See docs/playground.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from starlette.responses import FileResponse, RedirectResponse, Response

STATIC = Path(__file__).parent / "static"
PAGE = "/playground"
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def install(app: FastAPI) -> None:
    """`GET /` redirects to `/playground` (`static/index.html`); its files under `/playground/assets/`."""
    assets = {p.name: p for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES}  # a fixed set: no path tricks

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(PAGE, status_code=307)

    @app.get(PAGE, include_in_schema=False)
    async def page() -> Response:
        return FileResponse(
            assets["index.html"], media_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    @app.get(PAGE + "/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        path = assets.get(name)
        if path is None:
            raise HTTPException(404, f"no playground asset {name!r}")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
