"""PastVu payloads → catalogue records (pure functions, no network).

- API outputs give ``geo`` as ``[lat, lng]`` (getByBounds localWork,
  giveForPage); ``clusters[].p.geo`` is ``[lng, lat]`` and is not used here.
- ``desc``, ``source`` and ``author`` are HTML; the record gets plain text and
  the raw payload keeps the HTML.
- Served ``a``/``d`` images carry a watermark *strip* spliced below the photo; its height is
  ``waterh``/``waterhs`` or, failing those, the strip rule: ``STRIP_BASE_PX`` (14) px up to
  ``STRIP_BASE_PHOTO_HEIGHT`` (600) px of photo height, else ``round(14·H/600)`` (PastVu's
  ``controllers/photoConverter.js``, ``waterMarkGen``). The record–asset link keeps the
  *crop box*: the served image without the strip (``crop_box_rule``).
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from catalog.dates import year_range
from catalog.records_in import RecordIn
from crawlers.items import CropBoxRule

PUBLIC = 5  # PastVu's photo status (``s``) of a public photo
SIZES = {"standard": "d", "original": "a"}
STRIP_HEIGHT_KEY = {"d": "waterhs", "a": "waterh"}  # the photo's field with the strip height of a served size
# The strip rule: a band STRIP_BASE_PX high below a photo up to STRIP_BASE_PHOTO_HEIGHT px tall, scaled
# with taller photos; so a served file up to STRIP_FIXED_FILE_HEIGHT (614) px tall has a 14 px strip.
STRIP_BASE_PX = 14
STRIP_BASE_PHOTO_HEIGHT = 600
STRIP_FIXED_FILE_HEIGHT = STRIP_BASE_PHOTO_HEIGHT + STRIP_BASE_PX
LISTING_KEYS = ("cid", "geo", "file", "dir", "title", "year", "year2")
# Counters PastVu bumps on every view or comment (``giveForPage`` itself counts a view): kept in
# the raw payload, left out of the change test so a re-harvest writes no empty revision.
VOLATILE = ("giveForPage.photo.vcount", "giveForPage.photo.vdcount", "giveForPage.photo.vwcount",
            "giveForPage.photo.ccount", "giveForPage.photo.cdcount", "giveForPage.photo.regions.*.phc",
            "giveForPage.photo.regions.*.pac", "giveForPage.photo.regions.*.cc", "listing.ccount")
LICENCE = "CC0-1.0 (metadata); images: personal non-commercial use"
RIGHTS = (
    "Metadata (coordinates, image numbers, dates and labels): Creative Commons CC0, per PastVu. "
    "Descriptions, author, source and address are user content. Images: free to view and save for "
    "personal, non-commercial use (PastVu rules §1.15, §1.20); commercial use needs the copyright "
    "holder's permission (§1.16). Keep the attribution: author, source, uploader and the PastVu link."
)


class _Text(HTMLParser):
    BREAKS = {"br", "p", "div", "li"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.parts.append(data)


def strip_html(value: Any) -> str | None:
    """Plain text of a PastVu HTML field: tags dropped, ``<br>`` → newline, entities decoded."""
    if value is None:
        return None
    p = _Text()
    p.feed(str(value))
    p.close()
    text = html.unescape("".join(p.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out or None


def latlon(geo: Any) -> tuple[float, float] | None:
    """``(lat, lon)`` from an API ``geo`` in ``[lat, lng]`` order; None when absent or invalid."""
    if not isinstance(geo, (list, tuple)) or len(geo) != 2:
        return None
    try:
        lat, lon = float(geo[0]), float(geo[1])
    except (TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def listing_entry(photo: dict[str, Any]) -> dict[str, Any] | None:
    """A getByBounds photo as we compare it between crawls (unknown keys such as ``__v`` left out)."""
    try:
        cid = int(photo["cid"])
    except (KeyError, TypeError, ValueError):
        return None
    if cid <= 0:
        return None
    out = {k: photo[k] for k in LISTING_KEYS if k in photo}
    out["cid"] = cid
    return out


def same_listing(stored: Any, entry: dict[str, Any]) -> bool:
    """True when the stored listing entry equals the new one on the keys that matter."""
    if not isinstance(stored, dict):
        return False
    return all(stored.get(k) == entry.get(k) for k in LISTING_KEYS)


def image_url(base_url: str, size: str, file: str) -> str:
    """``<site>/_p/<size>/<file>``; the ``?s=`` cache-buster is kept."""
    return f"{base_url.rstrip('/')}/_p/{size}/{file.lstrip('/')}"



def strip_height_by_rule(file_height: int) -> int:
    """The height of the strip PastVu spliced below a photo, from the served file's height alone."""
    if file_height <= STRIP_FIXED_FILE_HEIGHT:
        return STRIP_BASE_PX
    guess = int(file_height * STRIP_BASE_PHOTO_HEIGHT / STRIP_FIXED_FILE_HEIGHT)
    for photo_h in range(guess - 2, guess + 3):
        strip_height = round(STRIP_BASE_PX * photo_h / STRIP_BASE_PHOTO_HEIGHT)
        if photo_h + strip_height == file_height:
            return strip_height
    return round(STRIP_BASE_PX * file_height / STRIP_FIXED_FILE_HEIGHT)


def crop_box_rule(strip_height: Any = None) -> CropBoxRule:
    """The crop box of a served image, ``(width, height) -> [0, 0, width, height - strip height]``: the
    strip height PastVu gave (``waterhs``/``waterh``), or the strip rule when it is missing or implausible."""
    known = strip_height if isinstance(strip_height, int) and not isinstance(strip_height, bool) else None

    def crop_box(width: int, height: int) -> list[int] | None:
        strip = known if known is not None and 0 < known < height else strip_height_by_rule(height)
        if not 0 < strip < height:
            return None
        return [0, 0, int(width), int(height - strip)]
    return crop_box


def photo_url(base_url: str, cid: int | str) -> str:
    return f"{base_url.rstrip('/')}/p/{cid}"


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def to_record(result: dict[str, Any], listing: dict[str, Any] | None, *, base_url: str,
              size: str | None = "d") -> RecordIn:
    """A catalogue record from a ``photo.giveForPage`` result (and the listing entry that led to it)."""
    photo = result.get("photo") or {}
    cid = int(photo.get("cid") or (listing or {}).get("cid"))
    years = year_range(_int(photo.get("year")), _int(photo.get("year2")))  # ordered, clipped to the era
    year_lo, year_hi = (years.year_lo, years.year_hi) if years else (None, None)
    point = latlon(photo.get("geo")) or (latlon(listing.get("geo")) if listing else None)
    user = photo.get("user") or {}
    regions = [{k: r.get(k) for k in ("cid", "title_en", "title_local") if k in r}
               for r in photo.get("regions") or [] if isinstance(r, dict)]
    region_names = [r.get("title_local") or r.get("title_en") for r in regions]
    address = _text(photo.get("address"))
    place = address or (", ".join(n for n in reversed(region_names) if n) or None)
    author, source = strip_html(photo.get("author")), strip_html(photo.get("source"))
    uploader = _text(user.get("disp")) or _text(user.get("login"))
    url = photo_url(base_url, cid)
    credit = [f"Author: {author}" if author else None, f"Source: {source}" if source else None,
              f"Uploaded to PastVu by {uploader}" + (f" ({user['login']})" if user.get("login") and
                                                     user.get("login") != uploader else "") if uploader else None,
              url]
    strip_key = STRIP_HEIGHT_KEY.get(size or "", "waterhs")
    extra = {
        "cid": cid,
        "type": photo.get("type"),
        "status": photo.get("s"),
        "source_text": source,
        "address": address,
        "uploader": {"login": user.get("login"), "disp": user.get("disp")},
        "regions": regions,
        "image": {"file": photo.get("file"), "size": size, "mime": photo.get("mime"),
                  "w": photo.get("w"), "h": photo.get("h"), "ws": photo.get("ws"), "hs": photo.get("hs"),
                  "waterh": photo.get("waterh"), "waterhs": photo.get("waterhs"),
                  "strip_height": photo.get(strip_key), "watersign_text": photo.get("watersignText")},
        "changed_at": photo.get("ucdate") or photo.get("cdate"),
    }
    return RecordIn(
        source_key=str(cid),
        title=_text(photo.get("title")),
        description=strip_html(photo.get("desc")),
        date_text=_text(photo.get("y")) or (str(year_lo) if year_lo is not None and year_lo == year_hi else
                                            f"{year_lo}—{year_hi}" if year_lo is not None else None),
        year_lo=year_lo,
        year_hi=year_hi,
        place=place,
        lat=point[0] if point else None,
        lon=point[1] if point else None,
        direction=_text(photo.get("dir")),
        author=author,
        licence=LICENCE,
        rights=RIGHTS,
        attribution="; ".join(c for c in credit if c),
        url=url,
        extra=extra,
        raw={"listing": listing, "giveForPage": result},
        volatile=VOLATILE,
    )
