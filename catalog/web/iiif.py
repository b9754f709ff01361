"""IIIF Presentation 3 manifests: one record → one Manifest with one Canvas.

The Canvas is painted by a single annotation whose body is a ``Choice``
of the original and each colorized version (a viewer shows a layer
switcher), or the original alone when there is no colorization. Images
are the catalogue's own files at stable, content-addressed URLs; a format a
browser cannot show (TIFF, JPEG 2000) is given as its largest JPEG
derivative. ``rights`` is set only for a Creative Commons or
RightsStatements.org URI, as the specification requires; attribution goes
in ``requiredStatement``. Harvested text is always plain text (``plain_text``), never HTML.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from catalog.licences import is_licence_uri
from catalog.models import Record, RecordAsset
from catalog.web.thumbs import BROWSER_TYPES, THUMB_SIZES

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
URI_SAFE = ":/?#[]@!$&'()*+,;=%~"  # RFC 3986's reserved characters and '%' (kept: already escaped)
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'


def plain_text(value: str) -> str:
    """Harvested text as IIIF plain text. The specification has viewers render a value as HTML
    when its first character is '<' and its last '>'; such a value gets a trailing space (the
    specification's own rule for plain text), so no viewer turns harvested text into markup."""
    value = str(value).strip()
    return value + " " if value.startswith("<") and value.endswith(">") else value


def _lang(value: str) -> dict[str, list[str]]:
    return {"none": [plain_text(value)]}


def _en(value: str) -> dict[str, list[str]]:
    return {"en": [value]}


def image_url(base: str, ra: RecordAsset) -> tuple[str, str, int | None, int | None]:
    """(URL, format, width, height) of an image a browser can show."""
    a = ra.asset
    if a.media_type in BROWSER_TYPES:
        return f"{base}assets/{a.sha256}", a.media_type, a.width, a.height
    big = THUMB_SIZES[-1]
    w, h = a.width, a.height
    if w and h and max(w, h) > big:
        scale = big / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return f"{base}assets/{a.sha256}/thumb/{big}", "image/jpeg", w, h


def _image(base: str, ra: RecordAsset, label: str) -> dict[str, Any]:
    url, fmt, w, h = image_url(base, ra)
    body: dict[str, Any] = {"id": url, "type": "Image", "format": fmt, "label": _en(label)}
    if w and h:
        body["width"], body["height"] = w, h
    return body


def _date(rec: Record) -> str | None:
    if rec.year_lo is None and rec.year_hi is None:
        return None
    if rec.year_lo == rec.year_hi:
        return str(rec.year_lo)
    return f"{rec.year_lo if rec.year_lo is not None else '…'}–{rec.year_hi if rec.year_hi is not None else '…'}"


def _metadata(rec: Record) -> list[dict[str, Any]]:
    rows = [("Date", rec.date_text), ("Years", _date(rec)), ("Place", rec.place), ("Author", rec.author),
            ("Licence", rec.licence), ("Rights", rec.rights), ("Source", rec.source.slug),
            ("Source identifier", rec.source_key)]
    if rec.lat is not None and rec.lon is not None:
        rows.append(("Coordinates", f"{rec.lat:.5f}, {rec.lon:.5f}"))
    return [{"label": _en(k), "value": _lang(str(v))} for k, v in rows if v not in (None, "")]


def build_manifest(rec: Record, base: str, models: dict[str, str] | None = None) -> dict[str, Any]:
    """The manifest of ``rec``; ``base`` is the server's root URL ending in '/'.

    ``models`` maps a colorized asset's sha256 to the model version that made it
    (used in the choice's label). Raises LookupError when the record has no image.
    """
    models = models or {}
    originals = [ra for ra in rec.assets if ra.role == "original" and ra.asset.media_type.startswith("image/")]
    colorized = [ra for ra in rec.assets if ra.role == "colorized" and ra.asset.media_type.startswith("image/")]
    if not originals:
        raise LookupError(f"record {rec.id} has no original image")
    original = originals[0]
    mid = f"{base}iiif/records/{rec.id}/manifest"
    canvas_id = f"{base}iiif/records/{rec.id}/canvas/1"
    w, h = original.asset.width or 1, original.asset.height or 1
    items = [_image(base, original, "Original")]
    for ra in colorized:
        model = models.get(ra.asset_sha256)
        items.append(_image(base, ra, f"Colorized ({model})" if model else "Colorized"))
    body = items[0] if len(items) == 1 else {"type": "Choice", "items": items}
    title = rec.title or f"{rec.source.slug} {rec.source_key}"
    manifest: dict[str, Any] = {
        "@context": CONTEXT,
        "id": mid,
        "type": "Manifest",
        "label": _lang(title),
        "metadata": _metadata(rec),
        "thumbnail": [{"id": f"{base}assets/{original.asset_sha256}/thumb/{THUMB_SIZES[1]}", "type": "Image",
                       "format": "image/jpeg"}],
        "homepage": [{"id": f"{base}records/{rec.id}", "type": "Text", "label": _lang(title), "format": "text/html"}],
        "items": [{
            "id": canvas_id, "type": "Canvas", "label": _lang(title), "width": w, "height": h,
            "items": [{
                "id": f"{canvas_id}/page", "type": "AnnotationPage",
                "items": [{"id": f"{canvas_id}/page/painting", "type": "Annotation", "motivation": "painting",
                           "body": body, "target": canvas_id}],
            }],
        }],
    }
    if rec.description:
        manifest["summary"] = _lang(rec.description)
    licence = next((v for v in (rec.licence, rec.rights) if is_licence_uri(v)), None)
    if licence:
        manifest["rights"] = licence
    if rec.attribution:
        manifest["requiredStatement"] = {"label": _en("Attribution"), "value": _lang(rec.attribution)}
    if rec.url and rec.url.startswith(("http://", "https://")):
        # a harvested address as a valid URI: what a URI may not hold (spaces, <, >, quotes) escaped
        manifest["homepage"].append({"id": quote(rec.url, safe=URI_SAFE), "type": "Text", "format": "text/html",
                                     "label": _en(f"The record at its source ({rec.source.slug})")})
    return manifest
