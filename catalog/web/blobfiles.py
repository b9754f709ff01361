"""Serving a blob that is not a local file (S3): streamed through the server, or a redirect.

Same answer as a local file: the headers of an immutable, content-addressed file
(``ETag`` = the sha256, ``Cache-Control: immutable``), ``Accept-Ranges: bytes`` and a
206 for one byte range (several ranges get the whole file, as RFC 9110 allows),
``304`` to a matching ``If-None-Match``. With ``ARHIVA_WEB_BLOB_REDIRECT_SECONDS=N``
the browser is sent to a presigned URL of the object store valid N seconds instead
(the redirect itself is cached privately for at most half that).
"""
from __future__ import annotations

import re

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from catalog.blobs import BlobStore

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def blob_response(request: Request, store: BlobStore, sha256: str, media_type: str, headers: dict[str, str],
                  filename: str) -> Response:
    etag = f'"{sha256}"'
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers | {"ETag": etag})
    redirect = request.app.state.settings.web_blob_redirect_seconds
    if redirect and hasattr(store, "presign"):
        return RedirectResponse(store.presign(sha256, redirect), status_code=307,
                                headers={"Cache-Control": f"private, max-age={redirect // 2}"})
    size = store.size(sha256)
    if size is None:
        raise HTTPException(404, f"the file of {sha256} is missing from the blob store")
    out = headers | {"ETag": etag, "Accept-Ranges": "bytes", "Content-Disposition": f'inline; filename="{filename}"'}
    wanted = _byte_range(request.headers.get("range"), size)
    if wanted is None:
        start, end, status = 0, size, 200
    elif wanted == "unsatisfiable":
        return Response(status_code=416, headers=out | {"Content-Range": f"bytes */{size}"})
    else:
        (start, end), status = wanted, 206
        out["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    out["Content-Length"] = str(end - start)
    return StreamingResponse(store.iter_range(sha256, start, end), status_code=status, media_type=media_type,
                             headers=out)


def _byte_range(header: str | None, size: int):
    """(start, end) of one satisfiable range, "unsatisfiable", or None (no range, or one we answer with 200)."""
    if not header or "," in header:
        return None
    m = _RANGE.match(header.strip())
    if not m or m.groups() == ("", ""):
        return None
    first, last = m.groups()
    if first == "":  # the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n else "unsatisfiable"
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end
