"""Omeka S API JSON (``/api/items/{id}``, embedded in item pages, REST lists) and media JSON."""
from __future__ import annotations

from typing import Any

from catalog.dates import parse_date
from crawlers.archive.found import IMAGE_DERIVATIVE, IMAGE_ORIGINAL, Found
from crawlers.archive.text import canonical_url, clean, pick_lang

__all__ = ["is_omeka_item", "is_omeka_media", "parse_item", "parse_media", "link_header_next"]

DATE_TERMS = ("dcterms:date", "dcterms:created", "dcterms:temporal")


def _types(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return []
    t = doc.get("@type")
    return [str(x) for x in (t if isinstance(t, list) else [t] if t else [])]


def is_omeka_item(doc: Any) -> bool:
    return "o:Item" in _types(doc)


def is_omeka_media(doc: Any) -> bool:
    return "o:Media" in _types(doc)


def _vals(doc: dict, term: str) -> list[tuple[str | None, str, str | None]]:
    """(lang, text, uri) of a property's public values."""
    out = []
    for v in doc.get(term) or []:
        if not isinstance(v, dict) or v.get("is_public") is False:
            continue
        uri = v.get("@id") if v.get("type", "").startswith("uri") else None
        text = clean(v.get("@value")) or clean(v.get("o:label")) or clean(v.get("display_title")) or uri
        if text:
            out.append((v.get("@language"), text, uri))
    return out


def parse_item(doc: dict, fetched_url: str, *, page_url: str | None = None) -> Found:
    """An Omeka S item; ``page_url`` is the site item page when known (the record's landing page)."""
    api_id = canonical_url(doc.get("@id"))
    view = Found(kind="page" if page_url else "omeka-api", fetched_url=fetched_url,
                 source_url=canonical_url(page_url) if page_url else None,
                 aliases=[api_id] if api_id else [],
                 ref_url=api_id if not page_url else None)  # an item of a list page: keyed by its own URL
    titles = [(lang, text) for lang, text, _ in _vals(doc, "dcterms:title")]
    if not titles and doc.get("o:title"):
        titles = [(None, doc["o:title"])]
    view.title, others = pick_lang(titles)
    view.alt_titles = others + [t for _, t, _ in _vals(doc, "dcterms:alternative") if t not in others]
    view.description = pick_lang([(lang, t) for lang, t, _ in _vals(doc, "dcterms:description")])[0]
    dates = [t for term in DATE_TERMS for _, t, _ in _vals(doc, term)]
    view.date_text = next((t for t in dates if parse_date(t)), dates[0] if dates else None)
    creators = [t for _, t, _ in _vals(doc, "dcterms:creator")]
    view.author = "; ".join(creators) if creators else None
    view.place = pick_lang([(lang, t) for lang, t, _ in _vals(doc, "dcterms:spatial")])[0]
    for term in ("dcterms:license", "dcterms:rights"):
        for _, text, uri in _vals(doc, term):
            view.licences_raw.append(uri or text)
    ids = [t for _, t, _ in _vals(doc, "dcterms:identifier")]
    view.identifier = ids[0] if ids else None
    holders = [t for _, t, _ in _vals(doc, "dcterms:rightsHolder")]
    view.attribution = holders[0] if holders else None
    thumbs = doc.get("thumbnail_display_urls") or {}
    if isinstance(thumbs, dict) and thumbs.get("large"):
        view.offer_image(canonical_url(thumbs["large"]), IMAGE_DERIVATIVE)
    primary = doc.get("o:primary_media") or next(iter(doc.get("o:media") or []), None)
    if isinstance(primary, dict) and primary.get("@id"):
        view.follow.append(canonical_url(primary["@id"]))
    view.raw = {k: v for k, v in doc.items() if k.startswith("dcterms:") or k in (
        "@id", "o:id", "o:title", "o:primary_media", "o:media", "thumbnail_display_urls")}
    return view


def parse_media(doc: dict, fetched_url: str) -> Found | None:
    """A media document completes its item: the original file becomes the item's image."""
    item = doc.get("o:item") or {}
    item_id = canonical_url(item.get("@id")) if isinstance(item, dict) else None
    media_type = str(doc.get("o:media_type") or "")
    original = canonical_url(doc.get("o:original_url"))
    if not item_id or not original or (media_type and not media_type.startswith("image/")):
        return None
    view = Found(kind="omeka-api", fetched_url=fetched_url, aliases=[item_id])
    view.offer_image(original, IMAGE_ORIGINAL)
    view.raw = {k: doc.get(k) for k in ("@id", "o:id", "o:item", "o:source", "o:media_type", "o:sha256",
                                        "o:original_url", "o:thumbnail_urls") if doc.get(k) is not None}
    return view


def link_header_next(value: str | bytes | None) -> str | None:
    """The ``rel="next"`` target of an HTTP ``Link`` header."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    for part in value.split(","):
        segs = part.split(";")
        if len(segs) < 2:
            continue
        url = segs[0].strip().strip("<>")
        if any(s.strip().replace(" ", "") in ('rel="next"', "rel=next") for s in segs[1:]):
            return url
    return None
