"""``arhiva web``: the catalogue browser and API (FastAPI + uvicorn, imported when run)."""
from __future__ import annotations

import errno
import socket

import typer

from flows.cli.ui import console, fail

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
    _check_listen(host, port)  # and when the address cannot be had (before saying where it listens)
    mode = "token-protected writing enabled" if settings.web_token else "read-only"
    console.print(f"arhiva web on http://{host}:{port}/ ({mode}); API docs at /docs", markup=False, highlight=False,
                  soft_wrap=True)
    if workers > 1:
        uvicorn.run("catalog.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="info")
    else:
        from catalog.web.app import create_app

        uvicorn.run(create_app(settings=settings), host=host, port=port, log_level="info")


_LISTEN_HINTS = {
    errno.EADDRINUSE: "another program listens there; --port to choose another",
    errno.EADDRNOTAVAIL: "not an address of this machine; --host 127.0.0.1 or 0.0.0.0",
    errno.EACCES: "ports below 1024 need privileges; --port 8000",
}


def _check_listen(host: str, port: int) -> None:
    """Bind the address as uvicorn will (SO_REUSEADDR), then let it go: an address in use, not
    this machine's or not allowed is one ``error:`` line and status 2, instead of uvicorn's log
    lines after a line that said the server was up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror} (--host takes this machine's address or name)")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            hint = _LISTEN_HINTS.get(exc.errno)
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}" + (f" ({hint})" if hint else ""))
