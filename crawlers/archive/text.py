"""Small text and URL helpers shared by the extractors."""
from __future__ import annotations

import html
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

RO = ("ro", "ro-md", "ro-ro", "rum", "ron", "mo", "mol")
RU = ("ru", "ru-ru", "rus")
EN = ("en", "en-us", "en-gb", "eng")
UNTAGGED = ("", "none", "und", "zxx")

IMAGE_EXT = re.compile(r"\.(jpe?g|png|tiff?|webp|gif|jp2|bmp)$", re.I)
NON_IMAGE_EXT = re.compile(r"\.(pdf|djvu|mp3|mp4|zip|docx?|xml|json|html?)$", re.I)
# HTML's elements that descriptions carry (IIIF's a, b, br, i, img, p, small, span, sub, sup and the
# like): only these are tags. Anything else between < and > is text: "a < b and c > d",
# "Height<5cm, width>3cm" and "Portret <necunoscut>" lost their words to a pattern of any <…>.
_TAG_NAMES = ("a|abbr|address|article|aside|b|bdi|bdo|big|blockquote|body|br|caption|center|cite|code|col"
              "|colgroup|dd|del|details|dfn|div|dl|dt|em|figcaption|figure|font|footer|h[1-6]|head|header|hr"
              "|html|i|iframe|img|ins|kbd|label|li|link|main|mark|meta|nav|nobr|noscript|ol|p|picture|pre|q"
              "|s|samp|script|section|small|source|span|strike|strong|style|sub|summary|sup|table|tbody|td"
              "|tfoot|th|thead|time|title|tr|tt|u|ul|var|video|wbr"
              r"|[a-z][a-z0-9]*:[a-z][\w.-]*")  # and namespaced ones pasted from Word: <o:p>, <st1:place>
_TAG = re.compile(rf"<!--.*?-->|<!\[CDATA\[|\]\]>|<![a-z][^<>]*>|<\?[a-z][^<>]*\?>"
                  rf"|</?(?:{_TAG_NAMES})(?:\s[^<>]*)?/?>", re.I | re.S)


def clean(text: object) -> str | None:
    """Tags stripped, entities decoded, whitespace collapsed; None when empty."""
    if text is None:
        return None
    s = str(text)
    if "<" in s and ">" in s:
        s = _TAG.sub(" ", s)
    s = re.sub(r"\s+", " ", html.unescape(s)).strip()
    return s or None


def lang_rank(lang: str | None) -> int:
    """Title language preference: ro, then untagged, then ru, then en, then the rest."""
    code = (lang or "").strip().lower().replace("_", "-")
    if code in RO or code.startswith("ro-"):
        return 0
    if code in UNTAGGED:
        return 1
    if code in RU or code.startswith("ru-"):
        return 2
    if code in EN or code.startswith("en-"):
        return 3
    return 4


def pick_lang(values: Iterable[tuple[str | None, str | None]]) -> tuple[str | None, list[str]]:
    """(lang, text) pairs → (preferred text, the other texts in order)."""
    seen: list[tuple[int, int, str]] = []
    for i, (lang, text) in enumerate(values):
        t = clean(text)
        if t and all(t != s[2] for s in seen):
            seen.append((lang_rank(lang), i, t))
    if not seen:
        return None, []
    best = min(seen)
    return best[2], [s[2] for s in seen if s is not best]


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """Absolute URL for comparisons and keys: lower-case scheme and host, no default port, no fragment,
    percent-escapes upper-case, non-ASCII percent-encoded as UTF-8 (as MediaWiki writes them)."""
    if not url:
        return None
    url = url.strip()
    if base:
        url = urljoin(base, url)
    elif url.startswith("//"):
        url = "https:" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    port, scheme = parts.port, parts.scheme.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username is not None or parts.password is not None:  # kept: the URL gate refuses it, and says so
        host = f"{parts.netloc.rsplit('@', 1)[0]}@{host}"
    path = _requote(parts.path or "/", safe="/:@!$&'()*+,;=~-._")
    query = _requote(parts.query, safe="/:@!$&'()*+,;=~-._?")
    return urlunsplit((parts.scheme.lower(), host, path, query, ""))


def _requote(s: str, safe: str) -> str:
    return quote(unquote(s), safe=safe + "%") if "%" not in s else re.sub(
        r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), quote(s, safe=safe + "%"))



def is_image_url(url: str | None) -> bool:
    if not url:
        return False
    path = urlsplit(url).path
    return bool(IMAGE_EXT.search(path)) or bool(re.search(r"/bitstreams?/", path)) and not NON_IMAGE_EXT.search(path)
