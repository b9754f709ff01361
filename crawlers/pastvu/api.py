"""PastVu ``/api2`` calls: building URLs and reading answers (the answers, traps included, are
recorded in ``tests/fixtures/pastvu/README.md``; PastVu's own code: ``controllers/api.js``).

A method error comes back with HTTP **200** as a bare object
``{"type","code","message"}`` (no ``result``); an unknown method is a 400
with a bare JSON string; bad ``params`` JSON is a 400 ``{"error": "Bad
Request"}``; a missing User-Agent a 400 text ``SESSION_NO_HEADERS``; Cloudflare
answers 520/524 with HTML when a polygon is too big. ``parse`` turns all of
these into ``PastvuError`` with a stable ``code``.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

TOO_BIG_STATUSES = frozenset({504, 520, 522, 524})


class PastvuError(Exception):
    def __init__(self, code: str, message: str = "", *, status: int = 200, kind: str | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.kind = kind

    @property
    def too_big(self) -> bool:
        """The server gave up on the size of the question (split the tile and ask again)."""
        return self.status in TOO_BIG_STATUSES


def call_url(api_url: str, method: str, params: dict[str, Any] | None = None) -> str:
    """``GET <api>?method=…&params=<JSON>`` (params always a JSON string, never ``qs`` brackets)."""
    query = {"method": method, "params": json.dumps(params or {}, separators=(",", ":"), ensure_ascii=False)}
    return f"{api_url}?{urlencode(query)}"


def parse(status: int, body: bytes | str) -> Any:
    """The ``result`` of a successful call, else raise ``PastvuError``."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        snippet = " ".join(text.split())[:120]
        if status == 200:
            raise PastvuError("NOT_JSON", f"expected JSON, got: {snippet!r}", status=status) from None
        code = snippet if snippet.isupper() and " " not in snippet and snippet else f"HTTP_{status}"
        raise PastvuError(code, snippet, status=status) from None
    if isinstance(data, str):
        raise PastvuError("NO_SUCH_METHOD", data, status=status)
    if not isinstance(data, dict):
        raise PastvuError("BAD_RESPONSE", f"unexpected JSON {type(data).__name__}", status=status)
    if "code" in data or "type" in data:
        raise PastvuError(str(data.get("code") or data.get("type")), str(data.get("message", "")),
                          status=status, kind=data.get("type"))
    if "error" in data and "result" not in data:
        code = "BAD_REQUEST" if str(data["error"]).lower() == "bad request" else "ERROR"
        raise PastvuError(code, str(data["error"]), status=status)
    if status != 200:
        raise PastvuError(f"HTTP_{status}", "", status=status)
    if "result" not in data:
        raise PastvuError("BAD_RESPONSE", "no result in the answer", status=status)
    return data["result"]


def bounds_params(geometry: dict, *, z: int = 17, years: tuple[int, int] | None = None) -> dict[str, Any]:
    """``photo.getByBounds`` in mode A: every public photo inside the polygon (z ≥ 17, localWork)."""
    params: dict[str, Any] = {"z": int(max(17, z)), "localWork": True, "geometry": geometry}
    if years:
        params["year"], params["year2"] = int(years[0]), int(years[1])
    return params
