"""The ``archive`` spider's parameters, checked and normalised before a crawl starts (a bad one is
a ``ValueError`` naming it)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from crawlers.archive.text import canonical_url
from crawlers.urlgate import UnsafeURL, UrlGate, private_setting

DEFAULT_DEPTH = 3
DEFAULT_MAX_PAGES = 10_000


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace(",", " ").split() if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    p = dict(params)
    urls = []
    for u in _as_list(p.get("start_urls")):
        cu = canonical_url(u)
        if cu is None:
            raise ValueError(f"not an http(s) URL: {u!r}")
        urls.append(cu)
    if not urls:
        raise ValueError("give at least one START_URL")
    p["start_urls"] = urls
    p["allow_domains"] = [d.lower().lstrip(".") for d in _as_list(p.get("allow_domains"))] or \
        sorted({urlsplit(u).netloc for u in urls})  # host, and port when not the default
    # a bad --allow-domain raises ValueError; loopback and private addresses pass where
    # ARHIVA_ALLOW_PRIVATE lists them, as for every request of the crawl (crawlers.urlgate)
    gate = UrlGate(p["allow_domains"], private_setting({}))
    for u in urls:
        try:
            gate.check(u)
        except UnsafeURL as exc:
            raise ValueError(f"start URL {u} refused: {exc}") from None
    for name, default in (("max_pages", DEFAULT_MAX_PAGES), ("depth", DEFAULT_DEPTH)):
        value = p.get(name)
        p[name] = default if value in (None, "") else int(value)
        if p[name] < (1 if name == "max_pages" else 0):
            raise ValueError(f"{name.replace('_', '-')} must be at least {1 if name == 'max_pages' else 0}")
    if p.get("from_date"):
        text = str(p["from_date"])
        try:
            if not re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?", text):
                raise ValueError
            datetime.fromisoformat(text.removesuffix("Z"))  # a real day and time (not 2024-13-45)
        except ValueError:
            raise ValueError(f"--from must be YYYY-MM-DD (or YYYY-MM-DDThh:mm:ssZ), got {text!r}") from None
    return {k: v for k, v in p.items() if v not in (None, "", [])}
