"""OAI-PMH 2.0 ``ListRecords`` responses with ``oai_dc`` metadata.

XML is parsed with defusedxml: a DOCTYPE with entity declarations (billion
laughs, external entities) is refused with ``UnsafeXML``, nothing is fetched
from the network. The next page is asked with the resumption token alone,
URL-encoded (``next_page_url``). A record's payload is keyed by its
``GetRecord`` address, never by the list page (with its token) it came on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from xml.etree.ElementTree import Element

from catalog.dates import looks_like_timestamp, parse_date
from crawlers.archive.found import IMAGE_FILE, Found
from crawlers.archive.text import NON_IMAGE_EXT, canonical_url, clean, is_image_url, pick_lang
from crawlers.archive.xmlsafe import UnsafeXML, parse_xml

__all__ = ["OaiPage", "parse_oai", "is_oai", "list_records_url", "next_page_url", "get_record_url", "UnsafeXML"]

NS = {"oai": "http://www.openarchives.org/OAI/2.0/",
      "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
      "dc": "http://purl.org/dc/elements/1.1/"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "{http://purl.org/dc/elements/1.1/}"


@dataclass
class OaiPage:
    records: list[Found] = field(default_factory=list)
    deleted: list[dict[str, str]] = field(default_factory=list)  # identifier, datestamp
    token: str | None = None            # None: the list is complete
    complete_list_size: int | None = None
    cursor: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request: dict[str, str] = field(default_factory=dict)
    verb: str | None = None             # the verb element answered (ListRecords, GetRecord, Identify…)


def is_oai(body: bytes) -> bool:
    head = body[:2048].lstrip()
    return b"<OAI-PMH" in head and b"openarchives.org/OAI/2.0" in head


def list_records_url(base: str, *, metadata_prefix: str = "oai_dc", set_spec: str | None = None,
                     from_date: str | None = None, until: str | None = None) -> str:
    params = [("verb", "ListRecords"), ("metadataPrefix", metadata_prefix)]
    if set_spec:
        params.append(("set", set_spec))
    if from_date:
        params.append(("from", from_date))
    if until:
        params.append(("until", until))
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))


def next_page_url(fetched_url: str, token: str) -> str:
    """The same endpoint with ``verb=ListRecords&resumptionToken=…`` and nothing else (the token encoded)."""
    parts = urlsplit(fetched_url)
    query = f"verb=ListRecords&resumptionToken={quote(token, safe='')}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def parse_oai(body: bytes, fetched_url: str, charset: str | None = None) -> OaiPage:
    root = parse_xml(body, charset)
    page = OaiPage()
    req = root.find("oai:request", NS)
    if req is not None:
        page.request = dict(req.attrib)
    err = root.find("oai:error", NS)
    if err is not None:
        page.error_code = err.get("code")
        page.error_message = clean(err.text)
        return page
    verbs = [el for el in root if el.tag.startswith(f"{{{NS['oai']}}}")
             and el.tag.split("}")[1] not in ("responseDate", "request", "error")]
    page.verb = verbs[0].tag.split("}")[1] if verbs else None
    lr = root.find("oai:ListRecords", NS)
    if lr is None:
        lr = root.find("oai:GetRecord", NS)
    if lr is None:
        return page
    for rec in lr.findall("oai:record", NS):
        header = rec.find("oai:header", NS)
        if header is None:
            continue
        ident = clean(header.findtext("oai:identifier", None, NS))
        stamp = clean(header.findtext("oai:datestamp", None, NS))
        sets = [clean(s.text) for s in header.findall("oai:setSpec", NS) if clean(s.text)]
        if not ident:
            continue
        if header.get("status") == "deleted":
            page.deleted.append({"identifier": ident, "datestamp": stamp or ""})
            continue
        dc = rec.find("oai:metadata/oai_dc:dc", NS)
        if dc is None:
            continue
        page.records.append(_record(dc, ident, stamp, sets, fetched_url))
    tok = lr.find("oai:resumptionToken", NS)
    if tok is not None:
        page.token = (tok.text or "").strip() or None
        for name, attr in (("complete_list_size", "completeListSize"), ("cursor", "cursor")):
            v = tok.get(attr)
            if v and v.isdigit():
                setattr(page, name, int(v))
    return page


def _values(dc: Element, name: str) -> list[tuple[str | None, str]]:
    out = []
    for el in dc.findall(f"dc:{name}", NS):
        text = clean("".join(el.itertext()))
        if text:
            out.append((el.get(XML_LANG), text))
    return out


_BREAK = re.compile(r"<br\s*/?>|\r?\n", re.I)


def _people(dc: Element, name: str) -> list[str]:
    """Names in ``dc:<name>``: one per element, and one per line of an element that lists several
    (``Polk, Lewis<br>Mosley, Richard``); the same name once."""
    out: list[str] = []
    for el in dc.findall(f"dc:{name}", NS):
        for part in _BREAK.split("".join(el.itertext())):
            t = clean(part)
            if t and t not in out:
                out.append(t)
    return out


def get_record_url(fetched_url: str, identifier: str) -> str:
    """Where the repository serves this one record (``GetRecord``): the same for every harvest."""
    parts = urlsplit(fetched_url)
    query = urlencode([("verb", "GetRecord"), ("metadataPrefix", "oai_dc"), ("identifier", identifier)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _is_period(text: str | None) -> bool:
    """A coverage that is a time, not a place: it reads as a date, and holds no more letters than
    a "c." or "ca." or "anii" around its numbers (a street named for a date stays a place)."""
    return bool(text) and parse_date(text) is not None and sum(ch.isalpha() for ch in text) <= 4


def _record(dc: Element, ident: str, stamp: str | None, sets: list[str], fetched_url: str) -> Found:
    raw: dict[str, list] = {}
    for el in dc:
        if el.tag.startswith(DC):
            text = clean("".join(el.itertext()))
            if text:
                entry = {"value": text}
                if el.get(XML_LANG):
                    entry["lang"] = el.get(XML_LANG)
                raw.setdefault(el.tag[len(DC):], []).append(entry)
    view = Found(kind="oai", fetched_url=fetched_url, aliases=[ident], ref_url=get_record_url(fetched_url, ident),
                 oai={"identifier": ident, "datestamp": stamp, "sets": sets})
    view.title, view.alt_titles = pick_lang(_values(dc, "title"))
    view.description, _ = pick_lang(_values(dc, "description"))
    # dates: never the repository's own timestamps (DSpace repeats accession times as dc:date)
    dates = [t for _, t in _values(dc, "date") if not looks_like_timestamp(t)]
    # dc:coverage is a place or a period ("1900-1910"): a period is a date when dc:date gives none
    coverage = _values(dc, "coverage")
    periods = [t for _, t in coverage if _is_period(t)]
    dates += [t for t in periods if not any(parse_date(d) for d in dates)]
    view.date_text = next((t for t in dates if parse_date(t)), dates[0] if dates else None)
    view.place, _ = pick_lang([(lang, t) for lang, t in coverage if t not in periods])
    creators = _people(dc, "creator")
    view.author = "; ".join(creators) if creators else None
    view.licences_raw = [t for _, t in _values(dc, "rights")]
    identifiers = [t for _, t in _values(dc, "identifier")]
    plain_ids = [t for t in identifiers if not t.startswith(("http://", "https://"))]
    for _, text in _values(dc, "identifier") + _values(dc, "relation") + _values(dc, "source"):
        url = canonical_url(text) if text.startswith(("http://", "https://")) else None
        if url is None:
            continue
        if is_image_url(url):
            if view.image_url is None:
                view.offer_image(url, IMAGE_FILE)
            elif url != view.image_url:
                view.more_images.append(url)
        elif "manifest" in url.lower() or "/iiif/" in url.lower():
            view.aliases.append(url)  # the manifest describes the same photograph
            view.follow.append(url)
        elif view.source_url is None and not NON_IMAGE_EXT.search(urlsplit(url).path) \
                and text in identifiers:
            view.source_url = url
    view.identifier = plain_ids[0] if plain_ids else None
    if view.image_url:
        view.follow = []  # the image is known: the manifest adds nothing we need
    view.raw = {"header": {"identifier": ident, "datestamp": stamp, "setSpec": sets}, "dc": raw}
    return view
