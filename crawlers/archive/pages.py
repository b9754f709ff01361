"""HTML item and listing pages: schema.org JSON-LD, Dublin Core and ``citation_*`` meta, Omeka S
markup and embedded API JSON-LD, platform markup (Omeka Classic, CONTENTdm, AtoM, Islandora,
DSpace files: ``platforms``), Open Graph alone (a title and an image make a record), figure
captions; listing links, pagination, IIIF links.

Layers are read in order of trust — Omeka's own JSON-LD, schema.org, DC meta, Open Graph
— and a later layer only fills what an earlier one left empty. Web-page dates
(``article:published_time``, ``o:created``, ``datePublished``) are never read.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from parsel import Selector

from catalog.dates import looks_like_timestamp, parse_date
from crawlers.archive import commons, omeka, platforms
from crawlers.archive.found import IMAGE_DERIVATIVE, IMAGE_FILE, IMAGE_ORIGINAL, Found
from crawlers.archive.text import canonical_url, clean, is_image_url, pick_lang

__all__ = ["PageResult", "parse_page", "parse_caption", "jsonld_blocks"]

PHOTO_TYPES = {"Photograph", "ImageObject", "VisualArtwork", "CreativeWork", "Painting", "Poster", "Drawing",
               "ArchiveComponent", "Sculpture"}
# links that look like item pages on common platforms
ITEM_LINK = re.compile(
    r"/item/\d+/?$|/items/show/\d+|/digital/collection/[^/]+/id/\d+|/cdm/ref/collection/|/islandora/object/"
    r"|/handle/\d+/\d+/?$|/items/[0-9a-f-]{36}|/wiki/File:|/s/[^/]+/media/\d+|/record/[^/?#]+|/item/[\w.-]+/?$",
    re.I)
NOT_ITEM = re.compile(r"/(search|advanced-search|browse|login|logout|register|add|edit|new|feed|rss|sort|print|"
                      r"share|download)(/|$)", re.I)
LISTING_CONTAINERS = ("ul.resource-list", ".resource-list", ".item-list", ".items-list", ".search-results",
                      ".results", "#results", ".view-content", ".gallery", ".item-browse", "#item-browse")
NEXT_LINKS = ("link[rel~=next]::attr(href)", "a[rel~=next]::attr(href)", "a.next::attr(href)",
              ".pagination a.next::attr(href)", "li.next a::attr(href)", "li.pager-next a::attr(href)",
              "a.pager__link--next::attr(href)", "a.next.page-numbers::attr(href)")
DC_DATE = ("dc.date", "dcterms.created", "dc.date.created", "dcterms.date", "dcterms.temporal", "dc.coverage.temporal",
           "dcterms.issued", "citation_date", "citation_publication_date")  # never dateAccepted/available
DC_PLACE = ("dcterms.spatial", "dc.coverage.spatial", "dc.coverage")
DC_LICENCE = ("dcterms.license", "dc.rights.uri", "dc.rights", "dcterms.rights")


@dataclass
class PageResult:
    views: list[Found] = field(default_factory=list)
    item_links: list[str] = field(default_factory=list)   # listing → items (and sub-listings)
    next_pages: list[str] = field(default_factory=list)   # pagination
    iiif_links: list[str] = field(default_factory=list)   # manifests / collections linked from the page
    follow: list[str] = field(default_factory=list)       # media documents that complete a view
    is_listing: bool = False


def jsonld_blocks(sel: Selector) -> list[Any]:
    """Every parseable ``application/ld+json`` object, arrays and ``@graph`` flattened."""
    out: list[Any] = []
    for text in sel.css('script[type="application/ld+json"]::text, script[type^="application/ld+json"]::text').getall():
        try:
            data = json.loads(text)
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        for obj in stack:
            if isinstance(obj, dict) and isinstance(obj.get("@graph"), list):
                out.extend(o for o in obj["@graph"] if isinstance(o, dict))
            elif isinstance(obj, dict):
                out.append(obj)
    seen, unique = set(), []
    for o in out:
        k = json.dumps(o, sort_keys=True)
        if k not in seen:
            seen.add(k)
            unique.append(o)
    return unique


def _types(obj: dict) -> set[str]:
    t = obj.get("@type")
    return {str(x).split(":")[-1].split("/")[-1] for x in (t if isinstance(t, list) else [t] if t else [])}


def _schema_text(value: Any) -> list[tuple[str | None, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [(None, clean(value))] if clean(value) else []
    if isinstance(value, list):
        return [x for v in value for x in _schema_text(v)]
    if isinstance(value, dict):
        if "@value" in value:
            return [(value.get("@language"), clean(value["@value"]))] if clean(value.get("@value")) else []
        if value.get("name"):
            return _schema_text(value["name"])
    return []


def _schema_url(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("contentUrl") or value.get("url") or value.get("@id")
    return None


def _meta(sel: Selector) -> tuple[dict[str, list[tuple[str | None, str]]], dict[str, list[str]]]:
    dc: dict[str, list[tuple[str | None, str]]] = {}
    og: dict[str, list[str]] = {}
    for m in sel.css("meta"):
        name = (m.attrib.get("name") or "").strip().lower()
        prop = (m.attrib.get("property") or "").strip().lower()
        content = clean(m.attrib.get("content"))
        if not content:
            continue
        if name.startswith(("dc.", "dcterms.", "citation_")):
            dc.setdefault(name, []).append((m.attrib.get("lang") or m.attrib.get("xml:lang"), content))
        if prop.startswith(("og:", "article:")) or name.startswith("twitter:"):
            og.setdefault(prop or name, []).append(content)
    return dc, og


def _fill(view: Found, other: Found) -> None:
    """Fill what ``view`` lacks from ``other`` (a less trusted layer of the same page)."""
    for name in ("title", "description", "date_text", "place", "author", "attribution", "identifier"):
        if getattr(view, name) in (None, "") and getattr(other, name):
            setattr(view, name, getattr(other, name))
    if view.lat is None and other.lat is not None:
        view.lat, view.lon = other.lat, other.lon
    for t in other.alt_titles + ([other.title] if other.title else []):
        if t and t != view.title and t not in view.alt_titles:
            view.alt_titles.append(t)
    for lic in other.licences_raw:
        if lic not in view.licences_raw:
            view.licences_raw.append(lic)
    view.offer_image(other.image_url, other.image_rank)
    for a in other.aliases:
        if a not in view.aliases:
            view.aliases.append(a)


def _schema_view(obj: dict, url: str) -> Found:
    v = Found(kind="page", fetched_url=url)
    v.title, v.alt_titles = pick_lang(_schema_text(obj.get("name")) + _schema_text(obj.get("headline")))
    v.alt_titles += [t for _, t in _schema_text(obj.get("alternateName")) if t not in v.alt_titles]
    v.description = pick_lang(_schema_text(obj.get("description")))[0]
    for key in ("dateCreated", "temporalCoverage", "temporal"):
        texts = [t for _, t in _schema_text(obj.get(key))]
        if texts:
            v.date_text = texts[0]
            break
    creators = [t for _, t in _schema_text(obj.get("creator") or obj.get("author"))]
    v.author = "; ".join(creators) if creators else None
    place = obj.get("contentLocation") or obj.get("locationCreated") or obj.get("spatialCoverage")
    place = place[0] if isinstance(place, list) and place else place
    v.place = pick_lang(_schema_text(place))[0]
    geo = place.get("geo") if isinstance(place, dict) else None
    if isinstance(geo, dict):
        try:
            v.lat, v.lon = float(geo["latitude"]), float(geo["longitude"])
        except (KeyError, TypeError, ValueError):
            pass
    lic = obj.get("license")
    for value in lic if isinstance(lic, list) else [lic] if lic else []:
        u = _schema_url(value) if not isinstance(value, str) else value
        if u:
            v.licences_raw.append(u)
    credit = _schema_text(obj.get("creditText")) or _schema_text(obj.get("copyrightHolder"))
    v.attribution = credit[0][1] if credit else None
    ident = _schema_text(obj.get("identifier"))
    v.identifier = ident[0][1] if ident else None
    image = obj.get("image")
    if "ImageObject" in _types(obj) and not image:
        image = obj
    img_url = _schema_url(image)
    if img_url:
        v.offer_image(canonical_url(img_url, url), IMAGE_FILE)
    elif obj.get("thumbnailUrl"):
        v.offer_image(canonical_url(_schema_url(obj["thumbnailUrl"]), url), IMAGE_DERIVATIVE)
    if obj.get("url") and isinstance(obj["url"], str):
        v.aliases.append(canonical_url(obj["url"], url))
    return v


def _ids(value: Any) -> list[str]:
    """The ``@id`` references in a JSON-LD value (a string, a node, or a list of them)."""
    out = []
    for v in value if isinstance(value, list) else [value]:
        ref = v.get("@id") if isinstance(v, dict) else v
        if isinstance(ref, str) and ref:
            out.append(ref)
    return out


def _own_image(obj: dict) -> bool:
    return bool(obj.get("image") or obj.get("contentUrl") or obj.get("thumbnailUrl"))


def _photo_nodes(blocks: list[dict], context: bool = True) -> list[dict]:
    """The schema.org nodes that describe a photograph. With ``context``: a node that a photograph
    points to as its ``isPartOf`` (a collection, a fonds) or as its ``image`` (the photograph's
    file), and a node with no image of its own beside one that has one, are the photograph's
    context, not photographs; an ``image`` given as a reference to another node is read from it."""
    candidates = [b for b in blocks if _types(b) & PHOTO_TYPES and (b.get("name") or b.get("headline"))
                  and "iiif.io" not in str(b.get("@context"))]
    if not context:
        return candidates
    by_id = {b["@id"]: b for b in blocks if isinstance(b.get("@id"), str)}
    files = {i for b in candidates for i in _ids(b.get("image")) if i != b.get("@id") and i in by_id}
    around = set(files)
    for b in candidates:  # what a photograph (not its file) is part of
        if b.get("@id") not in files:
            around.update(i for i in _ids(b.get("isPartOf")) if i != b.get("@id"))
    nodes = []
    for b in candidates:
        if b.get("@id") in around:
            continue
        image = b.get("image")
        refs = _ids(image)
        if refs and refs[0] in by_id and refs[0] != b.get("@id") and not (isinstance(image, dict) and _schema_url(
                {k: v for k, v in image.items() if k != "@id"})):
            b = {**b, "image": by_id[refs[0]]}  # {"@id": "#primaryimage"} → that ImageObject node
        nodes.append(b)
    if any(_own_image(b) for b in nodes):
        nodes = [b for b in nodes if _own_image(b)]
    return nodes


def _dc_view(dc: dict[str, list[tuple[str | None, str]]], url: str) -> Found:
    v = Found(kind="page", fetched_url=url)
    v.title, v.alt_titles = pick_lang(dc.get("dc.title", []) + dc.get("dcterms.title", []) +
                                      dc.get("citation_title", []))
    v.alt_titles += [t for _, t in dc.get("dcterms.alternative", []) if t not in v.alt_titles]
    v.description = pick_lang(dc.get("dc.description", []) + dc.get("dcterms.abstract", []))[0]
    dates = [t for name in DC_DATE for _, t in dc.get(name, []) if not looks_like_timestamp(t)]
    v.date_text = next((t for t in dates if parse_date(t)), dates[0] if dates else None)
    creators = [t for _, t in dc.get("dc.creator", []) + dc.get("dcterms.creator", []) + dc.get("citation_author", [])]
    v.author = "; ".join(dict.fromkeys(creators)) if creators else None
    v.place = next((pick_lang(dc[n])[0] for n in DC_PLACE if dc.get(n)), None)
    v.licences_raw = [t for name in DC_LICENCE for _, t in dc.get(name, [])]
    holder = dc.get("dcterms.rightsholder", [])
    v.attribution = holder[0][1] if holder else None
    ids = [t for _, t in dc.get("dc.identifier", []) + dc.get("dcterms.identifier", [])]
    plain = [i for i in ids if not i.startswith(("http://", "https://"))]
    v.identifier = plain[0] if plain else None
    return v


def _og_view(og: dict[str, list[str]], url: str) -> Found | None:
    """A page that says what it shows only in Open Graph: a title and a real image (not a logo or
    an icon) make a record; its date, if any, is the page's, never read."""
    title, image = (og.get("og:title") or [None])[0], (og.get("og:image") or [None])[0]
    image_url = canonical_url(image, url) if image else None
    if not title or not image_url or re.search(r"logo|icon|favicon|placeholder|default", image_url, re.I):
        return None
    v = Found(kind="page", fetched_url=url, title=title, description=(og.get("og:description") or [None])[0])
    v.offer_image(image_url, IMAGE_DERIVATIVE)
    return v


def _iiif_links(sel: Selector, url: str) -> list[str]:
    found = []
    for link in sel.css("link[rel~=alternate]"):
        t = (link.attrib.get("type") or "").lower()
        if "iiif.io/api/presentation" in t or ("ld+json" in t and "manifest" in (link.attrib.get("href") or "")):
            found.append(link.attrib.get("href"))
    for href in sel.css("a::attr(href)").getall():
        if "manifest=" in href:
            q = parse_qs(urlsplit(href).query)
            found.extend(q.get("manifest", []))
        elif re.search(r"/iiif/.*manifest|manifest\.json$|/manifest/?$", href):
            found.append(href)
    return list(dict.fromkeys(u for u in (canonical_url(h, url) for h in found if h) if u))


def _listing_links(sel: Selector, url: str) -> tuple[list[str], list[str], bool]:
    nexts = []
    for css in NEXT_LINKS:
        nexts.extend(sel.css(css).getall())
    item_nav = set(sel.css(".item-pagination a::attr(href)").getall())  # Omeka Classic's previous/next item
    nexts = list(dict.fromkeys(u for u in (canonical_url(h, url) for h in nexts if h not in item_nav) if u))
    items: list[str] = []
    containers = [c for css in LISTING_CONTAINERS for c in sel.css(css)]
    for c in containers:
        items.extend(c.css("a::attr(href)").getall())
    for href in sel.css("a::attr(href)").getall():
        if ITEM_LINK.search(urlsplit(href).path):
            items.append(href)
    items = [u for u in dict.fromkeys(canonical_url(h, url) for h in items) if u and not is_image_url(u)
             and u not in nexts and u != canonical_url(url) and not NOT_ITEM.search(urlsplit(u).path)]
    listing = bool(containers or nexts or sel.css("nav.pagination, .pagination"))
    return items, nexts, listing


def parse_page(html: str, url: str) -> PageResult:
    sel = Selector(text=html)
    result = PageResult()
    if commons.is_commons_page(sel):
        view = commons.parse_file_page(sel, url)
        if view:
            result.views.append(view)
        return result
    canonical = canonical_url(sel.css('link[rel~=canonical]::attr(href)').get(), url)
    dc, og = _meta(sel)
    page_url = canonical or canonical_url((og.get("og:url") or [None])[0], url) or canonical_url(url)
    blocks = jsonld_blocks(sel)
    omeka_items = [b for b in blocks if omeka.is_omeka_item(b)]
    items, nexts, listing = _listing_links(sel, url)
    # on a listing, a collection node beside one photo node is no item page: nodes read as they are
    schema_items = _photo_nodes(blocks, context=not listing)
    result.next_pages = nexts
    result.iiif_links = _iiif_links(sel, url)
    has_dc_title = bool(dc.get("dc.title") or dc.get("dcterms.title") or dc.get("citation_title"))
    platform = platforms.platform_view(sel, url)
    og_only = None
    if not (has_dc_title or schema_items or omeka_items or platform or items or sel.css("figure figcaption")):
        og_only = _og_view(og, url)  # captioned figures are records of their own (below)
    multi = _multi_photo_views(schema_items, url, page_url) \
        if len(schema_items) > 1 and not (omeka_items or listing) and platform is None else []
    item_level = not multi and (has_dc_title or len(schema_items) == 1 or (len(omeka_items) == 1 and not listing)
                                or platform is not None or og_only is not None)
    if item_level and not (listing and len(omeka_items) > 1):
        layers: list[Found] = []
        if len(omeka_items) == 1:
            layers.append(omeka.parse_item(omeka_items[0], url, page_url=page_url))
        if len(schema_items) == 1:
            layers.append(_schema_view(schema_items[0], url))
        if has_dc_title or dc:
            layers.append(_dc_view(dc, url))
        if platform is not None:
            layers.append(platform)
        if og_only is not None:
            layers.append(og_only)
        view = layers[0]
        for other in layers[1:]:
            _fill(view, other)
        view.kind, view.source_url = "page", page_url
        if not view.title and og.get("og:title"):
            view.title = og["og:title"][0]
        # the original file: Omeka embedded media, Omeka Classic files, else og:image
        for href in sel.css(".media-render a::attr(href), .item-file a::attr(href), #item-images a::attr(href)"
                            ).getall():
            u = canonical_url(href, url)
            if is_image_url(u):  # the first file linked from the media block is the original
                view.offer_image(u, IMAGE_ORIGINAL)
                break
        for u in platforms.dspace_files(sel, url)[:1]:
            view.offer_image(u, IMAGE_FILE)
        if og.get("og:image"):
            view.offer_image(canonical_url(og["og:image"][0], url), IMAGE_DERIVATIVE - 5)
        if view.image_rank >= IMAGE_ORIGINAL:
            view.follow = []  # no need for the media document
        result.follow = list(view.follow)
        view.follow = []
        view.aliases = [a for a in dict.fromkeys(view.aliases + result.iiif_links) if a and a != page_url]
        view.raw = {"url": page_url, "jsonld": blocks, "dc": {k: [t for _, t in v] for k, v in dc.items()},
                    "og": {k: v for k, v in og.items() if k.startswith("og:")},
                    **({"fields": platform.raw["fields"]} if platform is not None else {})}
        result.views.append(view)
        return result
    # not one item: a listing, or a page with captioned photos (one record per figure)
    result.is_listing = listing or bool(items)
    result.item_links = items
    result.views.extend(multi)
    for fig in sel.css("figure"):
        view = _figure_view(fig, url, page_url)
        if view and view.key not in {v.key for v in multi}:  # a photo told twice is one record
            result.views.append(view)
    return result


def _multi_photo_views(nodes: list[dict], url: str, page_url: str) -> list[Found]:
    """A page whose JSON-LD describes several photographs, each with its own image: one record per
    photograph, keyed by its image URL (as a page of captioned figures). Nodes without an image of
    their own, or sharing one, do not make such a page."""
    views = [_schema_view(n, url) for n in nodes]
    keys = [v.image_url for v in views]
    if not all(keys) or len(set(keys)) != len(keys):
        return []
    for node, v in zip(nodes, views):
        v.kind, v.key, v.source_url = "page", v.image_url, page_url
        v.aliases = [a for a in dict.fromkeys(v.aliases) if a and a not in (page_url, canonical_url(url), v.key)]
        v.raw = {"url": page_url, "image": v.key, "jsonld": node}
    return views


def _widest(img: Selector, base: str) -> str | None:
    best, width = None, -1
    for cand in (img.attrib.get("srcset") or "").split(","):
        bits = cand.strip().split()
        if not bits:
            continue
        w = int(bits[1][:-1]) if len(bits) > 1 and bits[1].endswith("w") and bits[1][:-1].isdigit() else 0
        if w > width:
            best, width = bits[0], w
    src = best or img.attrib.get("data-orig-file") or img.attrib.get("data-src") or img.attrib.get("src")
    return canonical_url(src, base) if src else None


def _figure_view(fig: Selector, url: str, page_url: str) -> Found | None:
    caption = clean(" ".join(fig.css("figcaption ::text").getall()))
    img = fig.css("img")
    if not caption or not img:
        return None
    image = None
    link = fig.css("a::attr(href)").get()
    if link and is_image_url(canonical_url(link, url)):
        image = canonical_url(link, url)
    image = image or _widest(img[0], url)
    if not image or not is_image_url(image):
        return None
    parts = parse_caption(caption)
    view = Found(kind="caption", fetched_url=url, key=image, source_url=page_url, **parts)
    view.offer_image(image, IMAGE_FILE)
    view.raw = {"caption": caption, "img": dict(img[0].attrib)}
    return view


_CREDIT = re.compile(r"^(foto|fotograf|photo|photographer|autor|author|фото|автор)\s*:\s*(.+)$", re.I)
_SOURCE = re.compile(r"^(sursa|source|sursă|источник|credit)\s*:\s*(.+)$", re.I)
_SENTENCE = re.compile(r"(?<=[^\s.]{2})\.\s+(?=[A-ZĂÂÎȘȚŞŢА-ЯЁ\"«„(\[])")


def parse_caption(caption: str) -> dict[str, Any]:
    """A figure caption → title, date_text, author, attribution.

    "Colindători în satul X, raionul Y. Anul 1972. Foto: V. Guzun. Sursa: ANA" and
    "Serbare … din Bălți, iarna 1958–1959." are both understood; the title is the text
    before the first date or credit sentence (or before a trailing ", <date phrase>").
    """
    text = clean(caption) or ""
    sentences = [s.strip().rstrip(".").strip() for s in _SENTENCE.split(text) if s.strip()]
    title_parts: list[str] = []
    out: dict[str, Any] = {"title": None, "date_text": None, "author": None, "attribution": None}
    stop = False
    for s in sentences:
        m = _CREDIT.match(s)
        if m:
            out["author"] = out["author"] or m.group(2).strip()
            stop = True
            continue
        m = _SOURCE.match(s)
        if m:
            out["attribution"] = out["attribution"] or m.group(2).strip()
            stop = True
            continue
        if out["date_text"] is None and parse_date(s):
            out["date_text"] = s
            stop = True
            continue
        if not stop:
            title_parts.append(s)
    title = ". ".join(title_parts) or None
    if title and out["date_text"] is None and "," in title:
        head, tail = title.rsplit(",", 1)
        if parse_date(tail.strip()):
            title, out["date_text"] = head.strip(), tail.strip()
    out["title"] = title
    return out
