"""Wikimedia Commons file pages and the ``prop=imageinfo&iiprop=extmetadata`` API.

Traps avoided: ``<link rel="license">`` is the licence of the page text; the
file history and ``DateTime`` are upload times; hidden duplicate spans
(``display:none``) are not read twice.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from parsel import Selector

from crawlers.archive.found import IMAGE_ORIGINAL, Found
from crawlers.archive.text import canonical_url, clean, pick_lang

__all__ = ["is_commons_page", "parse_file_page", "is_commons_api", "parse_api", "title_from_file"]

_VISIBLE = (".//text()[not(ancestor::*[contains(translate(@style,' ',''),'display:none')])]"
            "[not(ancestor::*[contains(concat(' ',@class,' '),' language ')])]")


def _visible(sel: Selector | None) -> str | None:
    return clean(" ".join(sel.xpath(_VISIBLE).getall())) if sel is not None else None


def title_from_file(name: str) -> str | None:
    """``File:Soroca,_cetatea_1936.jpg`` → ``Soroca, cetatea 1936``."""
    name = unquote(name).split("/")[-1]
    name = re.sub(r"^(File|Fișier|Файл|Image):", "", name)
    name = re.sub(r"\.[A-Za-z0-9]{2,5}$", "", name)
    return clean(name.replace("_", " "))


def is_commons_page(sel: Selector) -> bool:
    return bool(sel.css("#file.fullImageLink, div.fullMedia") and sel.css("#fileinfotpl_desc, #fileinfotpl_date, "
                                                                            ".licensetpl, #mw-imagepage-content"))


def _cell(sel: Selector, ident: str) -> Selector | None:
    cells = sel.xpath(f'//td[@id="{ident}"]/following-sibling::td[1]')
    return cells[0] if cells else None


def _descriptions(sel: Selector | None) -> str | None:
    if sel is None:
        return None
    divs = sel.css("div.description")
    if divs:
        return pick_lang([(d.attrib.get("lang"), _visible(d)) for d in divs])[0]
    return _visible(sel)


def parse_file_page(sel: Selector, url: str) -> Found | None:
    page_url = canonical_url(sel.css('link[rel~=canonical]::attr(href)').get(), url) or canonical_url(url)
    original = sel.css(".fullMedia a::attr(href)").get() or sel.css("#file.fullImageLink a::attr(href)").get()
    if not original:
        return None
    view = Found(kind="commons", fetched_url=url, source_url=page_url)
    view.title = title_from_file(urlsplit(page_url).path)
    view.description = _descriptions(_cell(sel, "fileinfotpl_desc"))
    view.date_text = _visible(_cell(sel, "fileinfotpl_date"))  # the whole cell: "circa" sits beside <time>
    view.author = _visible(_cell(sel, "fileinfotpl_aut"))
    view.attribution = _visible(_cell(sel, "fileinfotpl_src"))
    for box in sel.css(".licensetpl"):
        link = clean(box.css(".licensetpl_link::text").get())
        short = clean(box.css(".licensetpl_short::text").get())
        if link or short:
            view.licences_raw.append(link or short)
    geo = clean(sel.css("span.geo::text").get())
    if geo:
        m = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*[;,]\s*(-?\d+(?:\.\d+)?)\s*$", geo)
        if m:
            view.lat, view.lon = float(m.group(1)), float(m.group(2))
    view.offer_image(canonical_url(original, url), IMAGE_ORIGINAL)
    entity = re.search(r'"wbEntityId"\s*:\s*"(M\d+)"', sel.get())
    view.raw = {"url": page_url, "date": view.date_text, "author": view.author, "source": view.attribution,
                "licences": view.licences_raw, "description": view.description, "geo": geo,
                "entity": entity.group(1) if entity else None, "original": original}
    return view


def is_commons_api(doc: Any) -> bool:
    pages = doc.get("query", {}).get("pages") if isinstance(doc, dict) else None
    if isinstance(pages, dict):
        pages = list(pages.values())
    return isinstance(pages, list) and any(isinstance(p, dict) and p.get("imageinfo") for p in pages)


def _ext_value(ext: dict, name: str) -> str | None:
    """The ``value`` of one ``extmetadata`` field (``{"value": …, "source": …}``), or None."""
    v = ext.get(name)
    return v.get("value") if isinstance(v, dict) else None


def parse_api(doc: dict, fetched_url: str) -> list[Found]:
    pages = doc["query"]["pages"]
    pages = list(pages.values()) if isinstance(pages, dict) else pages
    out = []
    for page in pages:
        info = (page.get("imageinfo") or [None])[0] if isinstance(page, dict) else None
        if not info or not info.get("url"):
            continue
        ext = info.get("extmetadata") or {}
        view = Found(kind="commons", fetched_url=fetched_url,
                     source_url=canonical_url(info.get("descriptionurl")))
        view.title = title_from_file(page.get("title") or "")
        desc = _ext_value(ext, "ImageDescription")
        view.description = _descriptions(Selector(text=f"<div>{desc}</div>")) if desc else None
        for name, attr in (("DateTimeOriginal", "date_text"), ("Artist", "author"), ("Credit", "attribution")):
            value = _ext_value(ext, name)
            if value:
                setattr(view, attr, _visible(Selector(text=f"<div>{value}</div>")))
        lic = _ext_value(ext, "LicenseUrl") or _ext_value(ext, "LicenseShortName") or _ext_value(ext, "UsageTerms")
        if lic:
            view.licences_raw.append(clean(lic))
        try:
            lat, lon = _ext_value(ext, "GPSLatitude"), _ext_value(ext, "GPSLongitude")
            if lat and lon:
                view.lat, view.lon = float(lat), float(lon)
        except ValueError:
            pass
        view.offer_image(canonical_url(info["url"]), IMAGE_ORIGINAL)
        view.raw = {"title": page.get("title"), "url": info.get("url"),
                    "extmetadata": {k: (v.get("value") if isinstance(v, dict) else v) for k, v in ext.items()
                                    if k != "DateTime"}}
        out.append(view)
    return out
