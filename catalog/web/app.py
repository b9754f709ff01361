"""The catalogue browser: ``create_app()`` builds the FastAPI application.

Pages (``/``, ``/records/{id}``), the JSON API (``/api/…``, documented at
``/docs`` and ``/openapi.json``), files (``/assets/…``) and IIIF manifests
(``/iiif/records/{id}/manifest``). Everything reads in read-only
transactions; the only writes are cached thumbnails (derived assets) and,
with ``ARHIVA_WEB_TOKEN`` set, the token-protected collection routes.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.blobs import BlobStoreError, open_store
from catalog.db import open_catalog, session_factory
from catalog.imaging import use_pixel_limit
from catalog.queries import QueryError
from catalog.settings import Settings, get_settings

HERE = Path(__file__).parent
MACHINE_PREFIXES = ("/api/", "/iiif/", "/assets/", "/static/", "/openapi", "/docs", "/redoc")
DESCRIPTION = """Historical photographs harvested into a catalogue with provenance, and their colorizations.

* **Records**: search by collection, source, year range (overlap), bounding box, words and colorization.
* **Files**: every image at a stable, content-addressed URL (`/assets/{sha256}`), thumbnails on demand.
* **IIIF**: a Presentation 3 manifest per record (`/iiif/records/{id}/manifest`), original and colorized
  versions as a `Choice`.
* **Provenance**: crawl, training and colorization runs; model versions.

Read-only unless the server has `ARHIVA_WEB_TOKEN`; writing routes then need `Authorization: Bearer <token>`.
"""


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    from catalog.web import api, files, pages

    settings = settings or get_settings()
    use_pixel_limit(settings.max_image_pixels)
    engine = engine or open_catalog(settings)
    app = FastAPI(title="arhiva catalogue", version="1", description=DESCRIPTION,
                  openapi_tags=[{"name": "records"}, {"name": "assets"}, {"name": "files"}, {"name": "IIIF"},
                                {"name": "provenance"}])
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.store = open_store(settings)
    app.state.templates = pages.make_templates()
    app.include_router(api.router)
    if settings.web_token:
        app.include_router(api.write_router)
    app.include_router(files.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app)
    app.add_middleware(OpenFiles)
    return app


class OpenFiles:
    """Images and IIIF manifests are for viewers on any origin: every answer under ``/iiif/`` and
    ``/assets/`` (errors included) carries ``Access-Control-Allow-Origin: *``, ``OPTIONS`` (a
    preflight) is answered. On every path ``HEAD`` answers like ``GET`` without the body (HTTP asks
    it wherever GET works; link checkers use it)."""

    PREFIXES = ("/iiif/", "/assets/")
    CORS = [(b"access-control-allow-origin", b"*")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, is_open = scope["method"], scope["path"].startswith(self.PREFIXES)
        if not is_open and method != "HEAD":
            return await self.app(scope, receive, send)
        if is_open and method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": self.CORS + [
                (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
                (b"access-control-allow-headers", b"*"), (b"access-control-max-age", b"86400"),
                (b"allow", b"GET, HEAD, OPTIONS")]})
            await send({"type": "http.response.body", "body": b""})
            return None

        async def send_open(message):
            if message["type"] == "http.response.start" and is_open:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"access-control-allow-origin"]
                message = {**message, "headers": headers + self.CORS}
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        return await self.app({**scope, "method": "GET"} if method == "HEAD" else scope, receive, send_open)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(MACHINE_PREFIXES) and "text/html" in request.headers.get("accept", "")


def _errors(app: FastAPI) -> None:
    from catalog.web.pages import render

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError):
        return JSONResponse({"detail": [{"loc": ["query"], "msg": str(exc), "type": "value_error"}]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _wants_html(request):
            return render(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                          status=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BlobStoreError)
    async def store_down(request: Request, exc: BlobStoreError):
        # S3 unreachable or refusing this server: the file is not missing, the store is away for now
        return await http_error(request, StarletteHTTPException(
            503, f"the blob store cannot be read just now: {exc.reason}", headers={"Retry-After": "30"}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        if _wants_html(request):
            message = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors)
            return render(request, "error.html", {"status": 422, "message": message}, status=422)
        return JSONResponse({"detail": errors}, status_code=422)
