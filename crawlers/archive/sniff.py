"""Decide what a response is by what came back, not by the site: oai | json | html | xml | image | other."""
from __future__ import annotations

from crawlers.archive.oai import is_oai


def sniff(content_type: bytes | str | None, body: bytes) -> str:
    ctype = (content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type or "")
    ctype = ctype.split(";")[0].strip().lower()
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if is_oai(body):
        return "oai"
    if head[:1] in (b"{", b"[") or ctype.endswith("json"):
        return "json"
    if ctype.startswith("image/"):
        return "image"
    low = head[:512].lower()
    if ctype in ("text/html", "application/xhtml+xml") or low.startswith((b"<!doctype html", b"<html")) \
            or b"<html" in low:
        return "html"
    if ctype.endswith("xml") or low.startswith(b"<?xml"):
        return "xml"
    return "other"
