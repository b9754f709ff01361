"""IIIF Presentation 2.1 and 3.0: manifests → ``Found``, collections → what to fetch next."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from catalog.dates import parse_date
from catalog.licences import is_licence_uri, normalise_licence
from crawlers.archive.found import IMAGE_IIIF, Found
from crawlers.archive.text import canonical_url, clean, pick_lang

__all__ = ["iiif_version", "is_manifest", "is_collection", "parse_manifest", "parse_collection", "CollectionPage"]

# metadata labels (any language, folded) → field
LABELS = {
    "date": {"date", "dates", "date(s)", "data", "дата", "datare", "datum", "date created", "created", "data creării",
             "year", "anul", "date issued", "date statement", "date of origin", "date of creation", "creation date",
             "date taken", "date photographed", "date of photograph", "датировка", "время создания", "datierung",
             "entstehungszeit", "date de création", "fecha", "data creazione"},
    "author": {"creator", "author", "autor", "fotograf", "photographer", "автор", "фотограф", "creator/author"},
    "place": {"place", "loc", "location", "locul", "coverage", "spatial coverage", "acoperire spațială",
              "acoperire spatiala", "место", "localitate", "depicted place"},
    "identifier": {"identifier", "identificator", "cotă", "cota", "shelfmark", "call number", "шифр",
                   "inventory number", "nr. inventar"},
    "rights": {"rights", "drepturi", "license", "licence", "licență", "licenta", "права", "лицензия"},
    "title": {"title", "titlu", "название", "заглавие"},
}


def iiif_version(doc: Any) -> int | None:
    """2 or 3 from the ``@context``; without one (viewers accept it), from the type's spelling:
    ``@type: sc:Manifest`` is Presentation 2, ``type: Manifest`` with ``items`` is 3."""
    if not isinstance(doc, dict):
        return None
    ctx = doc.get("@context")
    ctxs = ctx if isinstance(ctx, list) else [ctx]
    for c in ctxs:
        if isinstance(c, str) and "iiif.io/api/presentation/" in c:
            if "/presentation/3" in c:
                return 3
            if "/presentation/2" in c:
                return 2
    if ctx is None or not any(isinstance(c, str) and "iiif.io" in c for c in ctxs):
        if doc.get("@type") in ("sc:Manifest", "sc:Collection"):
            return 2
        if doc.get("type") in ("Manifest", "Collection") and isinstance(doc.get("items"), list) and doc.get("id"):
            return 3
    return None


def _type(doc: dict) -> str:
    t = doc.get("type") or doc.get("@type") or ""
    return str(t).split(":")[-1]


def is_manifest(doc: Any) -> bool:
    return iiif_version(doc) is not None and _type(doc) == "Manifest"


def is_collection(doc: Any) -> bool:
    return iiif_version(doc) is not None and _type(doc) == "Collection"


def _id(obj: Any) -> str | None:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return obj.get("id") or obj.get("@id")
    return None


def _texts(value: Any) -> list[tuple[str | None, str]]:
    """(lang, text) pairs of a v2 value (string, {@value,@language}, list) or a v3 language map."""
    out: list[tuple[str | None, str]] = []
    if value is None:
        return out
    if isinstance(value, str):
        if clean(value):
            out.append((None, clean(value)))
    elif isinstance(value, list):
        for v in value:
            out.extend(_texts(v))
    elif isinstance(value, dict):
        if "@value" in value:
            t = clean(value.get("@value"))
            if t:
                out.append((value.get("@language"), t))
        else:  # v3 language map
            for lang, vals in value.items():
                for v in vals if isinstance(vals, list) else [vals]:
                    t = clean(v)
                    if t:
                        out.append((None if lang == "none" else lang, t))
    return out


def _text(value: Any) -> str | None:
    return pick_lang(_texts(value))[0]


def _label_kind(label: Any) -> str | None:
    """The field a metadata label names; a language note is ignored ("Date of Origin (English)")."""
    for _, text in _texts(label):
        t = text.strip().rstrip(":").casefold()
        for candidate in (t, re.sub(r"\s*\([^)]*\)\s*$", "", t)):
            for kind, names in LABELS.items():
                if candidate in names:
                    return kind
    return None


def _image_from_service(service: Any, version: int) -> str | None:
    services = service if isinstance(service, list) else [service] if service else []
    best = None
    for s in services:
        if not isinstance(s, dict):
            continue
        sid = (s.get("id") or s.get("@id") or "").rstrip("/")
        stype = str(s.get("type") or s.get("@type") or "")
        profile = str(s.get("profile") or "")
        ctx = str(s.get("@context") or "")
        if not sid:
            continue
        if stype == "ImageService3" or "image/3" in ctx:
            return f"{sid}/full/max/0/default.jpg"
        if stype == "ImageService2" or "image/2" in ctx or "image/2" in profile or stype == "ImageService1" \
                or "image/1" in ctx:
            best = best or f"{sid}/full/full/0/default.jpg"
    return best


def _http_url(url: Any) -> str | None:
    return canonical_url(url) if isinstance(url, str) else None


def _canvas_image(canvas: dict, version: int) -> str | None:
    """The canvas's image as an absolute http(s) URL (anything else, ``file:`` say, is None)."""
    if version == 2:
        for anno in canvas.get("images") or []:
            res = anno.get("resource") if isinstance(anno, dict) else None
            if isinstance(res, dict):
                if res.get("@type") == "oa:Choice" and res.get("default"):
                    res = res["default"]
                return _http_url(_image_from_service(res.get("service"), 2) or _id(res))
        return None
    for page in canvas.get("items") or []:
        for anno in (page.get("items") or []) if isinstance(page, dict) else []:
            if not isinstance(anno, dict) or anno.get("motivation") not in ("painting", "sc:painting", None):
                continue
            body = anno.get("body")
            if isinstance(body, list):
                body = body[0] if body else None
            if isinstance(body, dict) and body.get("type") == "Choice":
                items = body.get("items") or []
                body = items[0] if items else None
            if isinstance(body, dict) and body.get("type", "Image") == "Image":
                return _http_url(_image_from_service(body.get("service"), 3) or _id(body))
    return None


def parse_manifest(doc: dict, fetched_url: str) -> Found:
    version = iiif_version(doc) or 3
    mid = canonical_url(_id(doc)) or canonical_url(fetched_url)
    view = Found(kind="iiif", fetched_url=fetched_url, aliases=[a for a in {mid, canonical_url(fetched_url)} if a])
    titles = _texts(doc.get("label"))
    view.title, view.alt_titles = pick_lang(titles)
    view.description = _text(doc.get("summary") if version == 3 else doc.get("description"))
    meta_titles: list[tuple[str | None, str]] = []
    dates: list[str] = []
    for entry in doc.get("metadata") or []:
        if not isinstance(entry, dict):
            continue
        kind = _label_kind(entry.get("label"))
        values = _texts(entry.get("value"))
        if not kind or not values:
            continue
        best = pick_lang(values)[0]
        if kind == "date":
            dates.append(best)
        elif kind == "author" and view.author is None:
            view.author = best
        elif kind == "place" and view.place is None:
            view.place = best
        elif kind == "identifier" and view.identifier is None:
            view.identifier = best
        elif kind == "rights":
            view.licences_raw.extend(t for _, t in values)
        elif kind == "title":
            meta_titles.extend(values)
    if view.title is None and meta_titles:  # no label (or an empty one): the metadata's title is the title
        view.title = pick_lang(meta_titles)[0]
    for _, t in meta_titles:
        if t != view.title and t not in view.alt_titles:
            view.alt_titles.append(t)
    # the first date field that reads as a date, else the first as written, else navDate
    view.date_text = next((d for d in dates if parse_date(d)), dates[0] if dates else None)
    if view.date_text is None and doc.get("navDate"):
        view.date_text = clean(doc.get("navDate"))
    licences: list[str] = []  # the manifest's own licence fields first, in their order
    if version == 3:
        rights = doc.get("rights")
        if isinstance(rights, str):
            licences.append(rights)
        req = doc.get("requiredStatement")
        if isinstance(req, dict):
            view.attribution = _text(req.get("value"))
        homepage = doc.get("homepage") or []
        homepage = homepage if isinstance(homepage, list) else [homepage]
        if homepage:
            view.source_url = canonical_url(_id(homepage[0]))
        canvases = doc.get("items") or []
        start = _id(doc.get("start"))
    else:
        lic = doc.get("license")
        for value in lic if isinstance(lic, list) else [lic] if lic else []:
            value = _id(value)
            if value:
                licences.append(value)
        view.attribution = _text(doc.get("attribution"))
        related = doc.get("related")
        related = related[0] if isinstance(related, list) and related else related
        if related:
            view.source_url = canonical_url(_id(related))
        seqs = doc.get("sequences") or []
        canvases = (seqs[0].get("canvases") or []) if seqs and isinstance(seqs[0], dict) else []
        start = _id(seqs[0].get("startCanvas")) if seqs and isinstance(seqs[0], dict) else None
        start = start or _id(doc.get("startCanvas"))
    if view.attribution and is_licence_uri(normalise_licence(view.attribution)):
        licences.append(view.attribution)  # "attribution": "https://creativecommons.org/…": a licence
        view.attribution = None
    view.licences_raw = licences + view.licences_raw
    canvases = [c for c in canvases if isinstance(c, dict)]
    if start:
        canvases.sort(key=lambda c: 0 if _id(c) == start else 1)
    images = [img for img in (_canvas_image(c, version) for c in canvases) if img]
    if images:
        view.offer_image(images[0], IMAGE_IIIF)
        view.more_images = [i for i in images[1:] if i != images[0]]
    view.raw = {k: doc.get(k) for k in ("id", "@id", "label", "summary", "description", "metadata", "rights",
                                         "license", "requiredStatement", "attribution", "homepage", "related",
                                         "navDate", "provider") if doc.get(k) is not None}
    view.raw["images"] = images
    return view


@dataclass
class CollectionPage:
    manifests: list[str] = field(default_factory=list)     # to fetch
    collections: list[str] = field(default_factory=list)   # to fetch (referenced, or v2 paging)
    embedded_manifests: list[dict] = field(default_factory=list)


def parse_collection(doc: dict) -> CollectionPage:
    """Walk a collection depth-first: embedded sub-collections are read in place, not fetched."""
    out = CollectionPage()

    def walk(node: dict) -> None:
        version = iiif_version(node) or iiif_version(doc) or 3
        if version == 2:
            members = list(node.get("members") or []) + list(node.get("collections") or []) + \
                      list(node.get("manifests") or [])
            for key in ("first", "next"):
                if node.get(key) and _id(node.get(key)):
                    out.collections.append(_id(node[key]))
        else:
            members = list(node.get("items") or [])
        for m in members:
            if isinstance(m, str):
                out.manifests.append(m)
                continue
            if not isinstance(m, dict):
                continue
            kind = _type(m)
            if kind == "Collection":
                embedded = m.get("items") or m.get("manifests") or m.get("members") or m.get("collections")
                if embedded:
                    walk(m)
                elif _id(m):
                    out.collections.append(_id(m))
            elif kind == "Manifest":
                if m.get("items") or m.get("sequences"):
                    out.embedded_manifests.append(m)
                elif _id(m):
                    out.manifests.append(_id(m))

    walk(doc)
    out.manifests = list(dict.fromkeys(out.manifests))
    out.collections = list(dict.fromkeys(out.collections))
    return out
