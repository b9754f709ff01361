"""Item pages of archive platforms that show their fields only as visible label/value markup.

Each reader finds (label, value) pairs where its platform's templates put them and the files
it links, and ``labelled_view`` maps the labels to fields (any language, see ``LABELS``):

* Omeka Classic (``/items/show/{id}``): ``<div id="dublin-core-title" class="element"><h3>…</h3>
  <div class="element-text">…``, files under ``#itemfiles .item-file a`` (``/files/original/…``);
* CONTENTdm 6 (``/cdm/ref/collection/{alias}/id/{ptr}``): ``#details table`` rows of
  ``td.description_col1`` / ``td.description_col2``; CONTENTdm 7 (``/digital/collection/{alias}/id/
  {ptr}``): ``window.__INITIAL_STATE__ = JSON.parse('…')`` holding ``item.item.fields[{key, label,
  value}]``; the image is the IIIF one at ``/digital/iiif/{alias}/{ptr}/full/full/0/default.jpg``;
* AtoM (``/index.php/{slug}``): ``section .field`` = ``<h3>label</h3><div>value</div>``, dates as
  ``<li>1935 (Creation)</li>``, the digital object in ``.digital-object-reference``;
* Islandora 7 (``/islandora/object/{pid}``): ``dl.islandora-inline-metadata`` ``dt``/``dd`` pairs,
  the file at ``/datastream/OBJ/view`` (derivatives ``JPG``, ``MEDIUM_SIZE``);
* DSpace item pages carry ``DC.*`` meta (read by ``pages``); here only their bitstream links.
"""
from __future__ import annotations

import json
import re
from typing import Any

from parsel import Selector

from catalog.dates import looks_like_timestamp, parse_date
from crawlers.archive.found import IMAGE_DERIVATIVE, IMAGE_FILE, IMAGE_IIIF, IMAGE_ORIGINAL, Found
from crawlers.archive.text import canonical_url, clean, is_image_url

__all__ = ["platform_view", "labelled_view", "LABELS"]

LABELS = {
    "title": {"title", "titlu", "название", "заглавие", "titre", "titel"},
    "description": {"description", "descriere", "описание", "scope and content", "abstract", "summary", "caption"},
    "date": {"date", "dates", "date(s)", "data", "дата", "date created", "date of creation", "creation date",
             "date original", "date taken", "date photographed", "date issued", "year", "anul", "datierung"},
    "author": {"creator", "author", "autor", "photographer", "fotograf", "автор", "фотограф", "name of creator",
               "name of creator(s)", "creator(s)", "artist"},
    "place": {"coverage", "place", "location", "spatial coverage", "locul", "localitate", "место", "geographic area",
              "place access points", "city", "spatial"},
    "identifier": {"identifier", "reference code", "call number", "identificator", "cota", "cotă", "шифр",
                   "inventory number", "local identifier", "object id"},
    "rights": {"rights", "drepturi", "права", "license", "licence", "rights statement", "usage rights",
               "conditions governing reproduction", "copyright", "rights management", "standardized rights"},
}
# CONTENTdm field nicknames (site-configurable; these are the defaults)
CDM_KEYS = {"title": "title", "descri": "description", "date": "date", "creato": "author", "covera": "place",
            "identi": "identifier", "rights": "rights", "righta": "rights"}
CDM_SYSTEM = {"dmcreated", "dmmodified", "dmrecord", "dmimage", "dmoclcno", "find", "fullrs"}  # record, not photo
# Omeka Classic element ids
OMEKA_IDS = {"dublin-core-title": "title", "dublin-core-description": "description", "dublin-core-date": "date",
             "dublin-core-creator": "author", "dublin-core-coverage": "place", "dublin-core-identifier": "identifier",
             "dublin-core-rights": "rights"}
_ATOM_EVENT = re.compile(r"\s*\((?:creation|création|creare|создание|production|accumulation|[^)]*)\)\s*$", re.I)


def _field(label: str | None) -> str | None:
    t = (clean(label) or "").rstrip(":").casefold()
    t = re.sub(r"\s*\([^)]*\)\s*$", "", t) if t not in ("date(s)", "creator(s)", "name of creator(s)") else t
    return next((f for f, names in LABELS.items() if t in names), None)


def labelled_view(pairs: list[tuple[str | None, str]], url: str) -> Found | None:
    """A page view from (field, value) pairs, in page order; None without a title."""
    v = Found(kind="page", fetched_url=url)
    dates: list[str] = []
    authors: list[str] = []
    for name, value in pairs:
        value = clean(value)
        if not name or not value:
            continue
        if name == "date":
            dates.append(value)
        elif name == "author":
            if value not in authors:
                authors.append(value)
        elif name == "rights":
            v.licences_raw.append(value)
        elif getattr(v, name) is None:
            setattr(v, name, value)
    if not v.title:
        return None
    dates = [d for d in dates if not looks_like_timestamp(d)]
    v.date_text = next((d for d in dates if parse_date(d)), dates[0] if dates else None)
    v.author = "; ".join(authors) or None
    v.raw = {"fields": [[n, clean(val)] for n, val in pairs if n and clean(val)]}
    return v


def _texts(sel: Selector) -> list[str]:
    """Each value of a field: list items or paragraphs when there are several, else the whole text."""
    items = sel.css("li") or sel.css("p")
    parts = [clean(" ".join(x.css("::text").getall())) for x in items] if len(items) > 1 else []
    return [p for p in parts if p] or [clean(" ".join(sel.css("::text").getall())) or ""]


def _omeka_classic(sel: Selector, url: str) -> Found | None:
    elements = sel.css('div.element[id^="dublin-core-"]')
    if not elements:
        return None
    pairs = []
    for el in elements:
        name = OMEKA_IDS.get(el.attrib.get("id", ""))
        for text in el.css(".element-text"):
            pairs.append((name, " ".join(text.css("::text").getall())))
    v = labelled_view(pairs, url)
    if v is not None:
        for href in sel.css("#itemfiles .item-file a::attr(href), .item-file a::attr(href)").getall():
            u = canonical_url(href, url)
            if is_image_url(u):
                v.offer_image(u, IMAGE_ORIGINAL if "/files/original/" in u else IMAGE_FILE)
                break
    return v


_CDM_PATH = re.compile(r"/(?:digital|cdm/ref|cdm/compoundobject|cdm/singleitem)/collection/([^/]+)/id/(\d+)")
_CDM_STATE = re.compile(r"window\.__INITIAL_STATE__\s*=\s*JSON\.parse\((['\"])(.*)\1\)\s*;?\s*$", re.S)


def _cdm_state(sel: Selector) -> dict[str, Any] | None:
    for code in sel.css("script:not([src])::text").getall():
        m = _CDM_STATE.search(code.strip())
        if not m:
            continue
        literal = m.group(2).replace("\\x", "\\u00").replace("\\'", "'")
        try:
            return json.loads(json.loads('"' + literal + '"'))
        except ValueError:
            return None
    return None


def _contentdm(sel: Selector, url: str) -> Found | None:
    path = _CDM_PATH.search(url)
    pairs: list[tuple[str | None, str]] = []
    state = _cdm_state(sel)
    item = ((state or {}).get("item") or {}).get("item") if isinstance(state, dict) else None
    if isinstance(item, dict):
        for f in item.get("fields") or []:
            if isinstance(f, dict) and isinstance(f.get("value"), str) and f.get("key") not in CDM_SYSTEM:
                pairs.append((CDM_KEYS.get(f.get("key")) or _field(f.get("label")), f["value"]))
    for row in sel.css("#details table tr"):
        label = row.css("td.description_col1")
        value = row.css("td.description_col2")
        if label and value:
            key = (label.attrib.get("id") or "").replace("metadata_nickname_", "")
            if key in CDM_SYSTEM:
                continue
            pairs.append((CDM_KEYS.get(key) or _field(" ".join(label.css("::text").getall())),
                          " ".join(value.css("::text").getall())))
    if not pairs or path is None:
        return None
    v = labelled_view(pairs, url)
    if v is not None:
        alias, ptr = path.groups()
        base = url[:url.index(path.group(0))]
        v.offer_image(f"{base}/digital/iiif/{alias}/{ptr}/full/full/0/default.jpg", IMAGE_IIIF)
        v.aliases.append(f"{base}/iiif/info/{alias}/{ptr}/manifest.json")
    return v


def _atom(sel: Selector, url: str) -> Found | None:
    if not sel.css("section#identityArea"):
        return None
    pairs: list[tuple[str | None, str]] = []
    for field in sel.css("section .field"):
        name = _field(" ".join(field.xpath("./h3//text()").getall()))
        body = field.xpath("./div")
        if not name or not body:
            continue
        if name == "author" and body[0].xpath("./a/text()").get():  # the creator's name links to its authority
            pairs.append((name, body[0].xpath("./a/text()").get()))
            continue
        for text in _texts(body[0]):
            if name == "date":
                if re.search(r"\((?!creation|création|creare|создание)[^)]*\)\s*$", text, re.I):
                    continue  # an event other than the creation (accumulation, publication…)
                text = _ATOM_EVENT.sub("", text)
            pairs.append((name, text))
    v = labelled_view(pairs, url)
    if v is not None:
        ref = sel.css(".digital-object-reference")
        for href in ref.css("a::attr(href)").getall():
            u = canonical_url(href, url)
            if is_image_url(u):
                v.offer_image(u, IMAGE_FILE)
                break
        img = ref.css("img::attr(src)").get()
        if img:
            v.offer_image(canonical_url(img, url), IMAGE_DERIVATIVE)
    return v


def _islandora(sel: Selector, url: str) -> Found | None:
    dl = sel.css("dl.islandora-inline-metadata")
    if not dl:
        return None
    pairs: list[tuple[str | None, str]] = []
    for dt in dl[0].css("dt"):
        dd = dt.xpath("following-sibling::dd[1]")
        if dd:
            pairs.append((_field(" ".join(dt.css("::text").getall())), " ".join(dd[0].css("::text").getall())))
    v = labelled_view(pairs, url)
    if v is not None:
        for href in sel.css("a::attr(href), img::attr(src)").getall():
            u = canonical_url(href, url)
            m = re.search(r"/datastream/([A-Z_]+)/view", u or "")
            if m and m.group(1) == "OBJ":
                v.offer_image(u, IMAGE_FILE)
            elif m and m.group(1) in ("JPG", "MEDIUM_SIZE", "JP2"):
                v.offer_image(u, IMAGE_DERIVATIVE)
    return v


def dspace_files(sel: Selector, url: str) -> list[str]:
    """Image bitstreams linked from a DSpace item page (``/bitstream/handle/…/photo.jpg?sequence=1``)."""
    out = []
    for href in sel.css('a[href*="/bitstream"]::attr(href)').getall():
        u = canonical_url(href, url)
        if is_image_url(u) and u not in out:
            out.append(u)
    return out


def platform_view(sel: Selector, url: str) -> Found | None:
    """The item a platform's visible markup describes, or None."""
    for reader in (_omeka_classic, _contentdm, _atom, _islandora):
        view = reader(sel, url)
        if view is not None:
            return view
    return None
