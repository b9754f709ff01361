"""``arhiva web``: the catalogue browser and API (FastAPI + uvicorn, imported when run)."""
from __future__ import annotations

import typer

from flows.cli.ui import console

app = typer.Typer()


@app.command("web")
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
) -> None:
    """Browse the catalogue: search page, record pages, JSON API (/docs), IIIF manifests.

    Read-only; writing routes exist only when ARHIVA_WEB_TOKEN is set, and then need
    'Authorization: Bearer <token>'.
    """
    import uvicorn

    from catalog.db import open_catalog
    from catalog.settings import get_settings

    settings = get_settings()
    open_catalog(settings)  # fail here, in one line, when the catalogue cannot be reached
    mode = "token-protected writing enabled" if settings.web_token else "read-only"
    console.print(f"arhiva web on http://{host}:{port}/ ({mode}); API docs at /docs", markup=False, highlight=False,
                  soft_wrap=True)
    if workers > 1:
        uvicorn.run("catalog.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="info")
    else:
        from catalog.web.app import create_app

        uvicorn.run(create_app(settings=settings), host=host, port=port, log_level="info")
