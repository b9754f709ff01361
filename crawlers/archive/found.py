"""What one response says about one photograph, and how several such views merge.

A ``Found`` is one view (an item page, an OAI record, a IIIF manifest, an
Omeka API item…). Views of the same photograph share an identity: the
canonical landing page (``source_url``) or an alias (manifest id, Omeka API
id, OAI identifier). ``merge`` joins them field by field:

* descriptive fields (title, date, place, author…) come from the view with
  the best ``rank`` (item page > Omeka API > OAI > IIIF > caption);
* the image is the best one offered (original file > IIIF image > derivative);
* licences: recognised licence URIs (Creative Commons, RightsStatements.org)
  beat other URLs, which beat a public-domain statement ("Domeniu public");
  free text that is not a licence stays in ``rights`` only;
* the raw payloads of every view are kept, by kind and the view's stable URL
  (``Found.ref``: never a resumption token or a list page).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.dates import parse_date, year_from_title
from catalog.licences import pick_licences
from catalog.records_in import RecordIn
from crawlers.urlgate import UrlGate, safe_url

# Descriptive precedence of a view (higher wins).
RANK = {"page": 50, "omeka-api": 45, "commons": 45, "oai": 40, "iiif": 30, "caption": 20}
# Image quality of a URL's origin (higher wins).
IMAGE_ORIGINAL, IMAGE_FILE, IMAGE_IIIF, IMAGE_DERIVATIVE = 40, 35, 30, 10


@dataclass
class Found:
    kind: str                          # page | omeka-api | oai | iiif | commons | caption
    fetched_url: str
    key: str | None = None             # explicit record key (multi-photo pages: the image URL)
    source_url: str | None = None      # canonical landing page
    aliases: list[str] = field(default_factory=list)  # manifest ids, API ids, OAI identifiers
    title: str | None = None
    alt_titles: list[str] = field(default_factory=list)
    description: str | None = None
    date_text: str | None = None       # as written, from a field describing the photograph
    date_from_title: bool = False
    place: str | None = None
    lat: float | None = None
    lon: float | None = None
    author: str | None = None
    licences_raw: list[str] = field(default_factory=list)  # as written
    attribution: str | None = None
    identifier: str | None = None      # the archive's own shelfmark / inventory number
    image_url: str | None = None
    image_rank: int = 0
    more_images: list[str] = field(default_factory=list)
    follow: list[str] = field(default_factory=list)  # URLs that complete this view (manifest, media)
    oai: dict[str, Any] = field(default_factory=dict)  # identifier, datestamp, sets
    raw: dict[str, Any] = field(default_factory=dict)
    # Where the source keeps this view, when the fetched URL says how we asked (an OAI list page with
    # its resumption token, an API page): payload keys use it, so a re-harvest that asks differently
    # stores no new revision.
    ref_url: str | None = None

    @property
    def ref(self) -> str:
        return self.ref_url or self.fetched_url

    def identities(self) -> list[str]:
        """Identities shared with other views; a multi-photo page's photos share only their key."""
        ids = [self.key] if self.key else ([self.source_url] if self.source_url else [])
        return ids + [a for a in self.aliases if a and a not in ids]

    def offer_image(self, url: str | None, rank: int) -> None:
        """Keep the best rendition offered (a lesser rendition is not another image)."""
        if url and rank > self.image_rank:
            self.image_url, self.image_rank = url, rank


@dataclass
class Merged:
    """One photograph: the catalogue record plus its image and provenance."""

    key: str
    record: RecordIn
    image_url: str | None
    more_images: list[str]
    fetched_urls: list[str]
    oai_identifiers: list[str]
    refused: list[tuple[str, str]] = field(default_factory=list)  # (URL, why) left out by the URL gate


def merge(views: list[Found], gate: UrlGate | None = None) -> Merged:
    """Join the views of one photograph (see the module docstring). Harvested URLs that the
    URL gate refuses (not http/https, credentials, a literal private address) are left out, and
    listed in ``refused`` with the reason."""
    refused: list[tuple[str, str]] = []
    for v in views:
        v.image_url = safe_url(v.image_url, gate, refused)
        v.more_images = [u for u in v.more_images if safe_url(u, gate, refused)]
        v.source_url = safe_url(v.source_url, gate, refused)
    ordered = sorted(views, key=lambda v: (-RANK.get(v.kind, 0), v.kind, v.fetched_url))

    def first(name: str) -> Any:
        for v in ordered:
            value = getattr(v, name)
            if value not in (None, "", []):
                return value
        return None

    title = first("title")
    alt: list[str] = []
    for v in ordered:
        for t in ([v.title] if v.title else []) + v.alt_titles:
            if t and t != title and t not in alt:
                alt.append(t)
    # date: the best-ranked view whose date field parses; else the best raw text; else the title
    date_text, rng = None, None
    for v in ordered:
        if v.date_text and not v.date_from_title:
            r = parse_date(v.date_text)
            if r is not None:
                date_text, rng = v.date_text, r
                break
            date_text = date_text or v.date_text
    inferred = False
    if date_text is None:
        for v in ordered:
            r = year_from_title(v.title) if v.title else None
            if r is not None:
                rng, inferred = r, True
                break
    raw_licences: list[str] = []
    for v in ordered:
        for lic in v.licences_raw:
            if lic not in raw_licences:
                raw_licences.append(lic)
    licences = pick_licences(raw_licences)  # licence URIs, then other URLs, then public-domain words
    image_url, image_rank = None, 0
    more: list[str] = []
    for v in ordered:
        if v.image_url and v.image_rank > image_rank:
            image_url, image_rank = v.image_url, v.image_rank
    for v in ordered:
        for u in v.more_images:
            if u != image_url and u not in more:
                more.append(u)
    source_url = first("source_url")
    oai_ids = [v.oai["identifier"] for v in ordered if v.oai.get("identifier")]
    key = next((v.key for v in ordered if v.key), None) or source_url or next(
        (a for v in ordered for a in v.aliases if a), ordered[0].fetched_url)
    lat = next((v.lat for v in ordered if v.lat is not None and v.lon is not None), None)
    lon = next((v.lon for v in ordered if v.lat is not None and v.lon is not None), None)
    extra: dict[str, Any] = {
        "image_url": image_url,
        "date": ({**rng.as_dict(), "inferred_from_title": inferred} if rng else None),
        "views": [{"kind": v.kind, "url": v.ref} for v in ordered],
    }
    if alt:
        extra["alt_titles"] = alt
    if more:
        extra["more_images"] = more
    if len(licences) > 1:
        extra["licences"] = licences
    if oai_ids:
        extra["oai_identifier"] = oai_ids[0]
        extra["oai"] = [v.oai for v in ordered if v.oai]
    ident = first("identifier")
    if ident:
        extra["identifier"] = ident
    aliases = sorted({a for v in ordered for a in v.aliases if a and a != key})
    if aliases:
        extra["aliases"] = aliases
    rights = " | ".join(raw_licences) or None
    record = RecordIn(
        source_key=key, title=title, description=first("description"), date_text=date_text,
        year_lo=rng.year_lo if rng else None, year_hi=rng.year_hi if rng else None,
        place=first("place"), lat=lat, lon=lon, author=first("author"),
        licence=licences[0] if licences else None, rights=rights, attribution=first("attribution"),
        url=source_url, extra=extra,
        raw={f"{v.kind}:{v.ref}": v.raw for v in ordered},
    )
    return Merged(key=key, record=record, image_url=image_url, more_images=more,
                  fetched_urls=[v.fetched_url for v in ordered], oai_identifiers=oai_ids, refused=refused)


class Grouper:
    """Collects views and groups them by shared identity (union–find over identities)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._views: dict[str, list[Found]] = {}

    def _find(self, x: str) -> str:
        self._parent.setdefault(x, x)
        while self._parent[x] != x:
            self._parent[x] = self._parent[self._parent[x]]
            x = self._parent[x]
        return x

    def add(self, view: Found) -> None:
        """Group ``view`` with the views it shares an identity with. The same document read twice
        (an OAI list that repeats a record at a page boundary, or read again from its start after
        a refused token) is one view, the later read: merged twice, it listed its view twice and
        stored a revision that the next harvest reverted."""
        ids = view.identities() or [view.fetched_url]
        root = self._find(ids[0])
        for other in ids[1:]:
            r = self._find(other)
            if r != root:
                self._parent[r] = root
                self._views.setdefault(root, []).extend(self._views.pop(r, []))
        one: dict[tuple[str, str], Found] = {}  # by document, in first-read order, the latest read kept
        for v in [*self._views.get(root, []), view]:
            one[(v.kind, v.ref)] = v
        self._views[root] = list(one.values())

    def knows(self, identity: str) -> bool:
        return identity in self._parent

    def __len__(self) -> int:
        return len(self._views)

    def groups(self) -> list[list[Found]]:
        out: dict[str, list[Found]] = {}
        for root, views in self._views.items():
            out.setdefault(self._find(root), []).extend(views)
        return list(out.values())

    def pop_all(self) -> list[list[Found]]:
        groups = self.groups()
        self._views.clear()
        return groups
