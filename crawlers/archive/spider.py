"""The ``archive`` spider: archive sites, IIIF and OAI-PMH, decided by what comes back.

Every response is sniffed (``crawlers.archive.sniff``): OAI-PMH XML, IIIF
manifests and collections, Omeka S API JSON, the Commons API, or HTML item
and listing pages. Each yields *views* of photographs; views of the same
photograph (an item page, its manifest, its API document, an OAI record
pointing to a manifest) are grouped by identity and merged into one record
when the crawl goes idle (or when ``ARHIVA_MERGE_BUFFER`` groups are held).

Limits: requests stay inside ``allowed_domains`` (``--allow-domain``, default
the start URLs' hosts and ports; redirects and images included; ``crawlers.urlgate``); ``--max-pages`` counts
every page/feed/manifest request; ``--depth`` counts link hops (listing →
item, collection → member), not pagination, OAI tokens or the documents
that complete a record (manifest, media). Deleted OAI records withdraw the
catalogue record holding that OAI identifier at the end of a finished crawl.

A list whose resumption token is refused (``badResumptionToken``) is started
again once, its pages asked again even when the server hands back the same
tokens; a second refusal, a token that comes round again, an OAI error other
than ``noRecordsMatch``, a page, feed or manifest that fails or cannot be read
count as ``arhiva/incomplete``: the run ends as ``partial``, never succeeded.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider

from crawlers.archive import commons, iiif, oai, omeka, sniff
from crawlers.archive.found import Found, Grouper, merge
from crawlers.archive.pages import parse_page
from crawlers.archive.params import check_params
from crawlers.archive.text import canonical_url
from crawlers.archive.xmlsafe import BadXML, UnsafeXML, charset_of
from crawlers.base import ArhivaSpider
from crawlers.items import RecordItem, SeenItem
from crawlers.netwatch import is_robots_refusal
from crawlers.urlgate import INTERNAL_SCHEME, GateRefused, gate_for


class ArchiveSpider(ArhivaSpider):
    name = "archive"
    source_kind = "archive"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return check_params(params)

    @classmethod
    def source_for(cls, params, app_settings=None):
        first = params["start_urls"][0]
        parts = urlsplit(first)
        return {"slug": params.get("source") or f"archive:{parts.hostname}", "kind": "archive",
                "base_url": f"{parts.scheme}://{parts.netloc}/",
                "config": {"start_urls": params["start_urls"], "allow_domains": params["allow_domains"]}}

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        mws = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        mws.setdefault("crawlers.archive.middlewares.HostMapMiddleware", 960)
        settings.set("DOWNLOADER_MIDDLEWARES", mws, priority="spider")

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._dropped, signal=signals.request_dropped)
        return spider

    def __init__(self, *args, **kwargs):
        params = self.check_params(kwargs)
        super().__init__(*args)
        self.start_urls = params["start_urls"]
        self.allowed_domains = params["allow_domains"]
        self.max_pages = params["max_pages"]
        self.max_depth = params["depth"]
        self.oai_set = params.get("set")
        self.oai_from = params.get("from_date")
        self.grouper = Grouper()
        self.pending: Counter[str] = Counter()   # identity → outstanding requests that complete it
        self.flushed: set[str] = set()           # identities already emitted
        self.scheduled: set[str] = set()         # page URLs requested
        self.oai_deleted: dict[str, str] = {}    # OAI identifier → datestamp
        self.oai_restarted: set[str] = set()
        self.oai_tokens: dict[str, set[str]] = {}  # list start → tokens asked in its current run
        self._limit_logged = False
        self.views_added = 0                     # views of photographs found (to tell a page with none)
        self.past_depth: set[str] = set()        # links left beyond --depth

    # -- requests ------------------------------------------------------------------------------
    async def start(self):
        for url in self.start_urls:
            req = self._page(self._oai_start(url), depth=0, kind="start")
            if req is not None:
                yield req

    def _oai_start(self, url: str) -> str:
        """A start URL with --oai-set/--from applied when it is (or must be) an OAI ListRecords request."""
        query = dict(parse_qsl(urlsplit(url).query))
        if query.get("verb") == "ListRecords" or (not query and (self.oai_set or self.oai_from)):
            return oai.list_records_url(url, metadata_prefix=query.get("metadataPrefix", "oai_dc"),
                                        set_spec=self.oai_set or query.get("set"),
                                        from_date=self.oai_from or query.get("from"), until=query.get("until"))
        return url

    def _page(self, url: str | None, *, depth: int, kind: str, completes: str | None = None,
              meta: dict[str, Any] | None = None, dont_filter: bool = False) -> Request | None:
        """A request for a page/feed/manifest, within the depth and page limits (None when refused)."""
        url = canonical_url(url)
        if url is None:
            return None
        if depth > self.max_depth:
            if url not in self.scheduled and url not in self.past_depth:  # each link once in the summary
                self.past_depth.add(url)
                self.runlog.count("limits/past_depth")
            return None
        if url in self.scheduled and not dont_filter:
            return None
        if len(self.scheduled) >= self.max_pages:
            if not self._limit_logged:
                self._limit_logged = True
                self.logger.info("--max-pages %d reached: no more pages are fetched", self.max_pages)
                self.runlog.count("limits/max_pages")
            return None
        self.scheduled.add(url)
        if completes:
            self.pending[completes] += 1
        m = {"arhiva_depth": depth, "arhiva_kind": kind, "arhiva_completes": completes, **(meta or {})}
        return Request(url, callback=self.parse, errback=self.page_failed, meta=m, dont_filter=dont_filter)

    def page_failed(self, failure):
        request = getattr(failure, "request", None)
        if request is not None:
            self._done(request)
        if is_robots_refusal(failure.value):
            # the site's robots.txt disallows it: its wish, no failure; said on the run, never partial
            kind = (request.meta.get("arhiva_kind") if request is not None else None) or "page"
            self.runlog.error("robots_disallowed", f"{kind} disallowed by the site's robots.txt; not fetched",
                              url=request.url[:2000] if request is not None else None,
                              key=request.meta.get("arhiva_key") if request is not None else None)
            return self._maybe_flush()
        self._lost()  # a page, feed or manifest the source did not give: the harvest is incomplete
        if not isinstance(failure.value, GateRefused):  # the URL gate logged its refusal, with the reason, once
            self.request_failed(failure)
        return self._maybe_flush()

    def _dropped(self, request, spider=None) -> None:
        """A redirected request the scheduler refused as one already asked for: a redirect to a page
        this crawl has (nothing lost), or a loop back to a URL of its own chain, which is a page the
        source did not give (dropped silently, it left a crawl 'succeeded' with the page unread)."""
        chain = request.meta.get("redirect_urls")
        if not chain or request.meta.get("arhiva_internal"):
            return
        self._done(request)
        if canonical_url(request.url) in {canonical_url(u) for u in chain}:
            self._lost()
            kind = request.meta.get("arhiva_kind") or "page"
            self.runlog.error(f"{kind}_failed", f"redirect loop: {' -> '.join([*chain, request.url])}", url=chain[0])

    def _done(self, request) -> None:
        ident = request.meta.get("arhiva_completes")
        if ident and self.pending[ident] > 0:
            self.pending[ident] -= 1

    # -- responses -----------------------------------------------------------------------------
    def parse(self, response):
        self._done(response.request)
        kind = sniff.sniff(response.headers.get(b"Content-Type"), response.body)
        self.runlog.count(f"requests/{kind}")
        depth = response.meta.get("arhiva_depth", 0)
        handler = {"oai": self._parse_oai, "xml": self._parse_xml, "json": self._parse_json,
                   "html": self._parse_html}.get(kind)
        if handler is None:
            self._unreadable(response, f"cannot read {kind} content")
            return
        before = (self.views_added, len(self.scheduled))
        yield from handler(response, depth)
        if response.meta.get("arhiva_kind") == "start" and kind == "html" \
                and before == (self.views_added, len(self.scheduled)):
            # an HTML page where a feed, a manifest or an item was expected ("down for maintenance")
            self._unreadable(response, "an HTML page with no item, listing, manifest or feed in it")
        yield from self._maybe_flush()

    def _unreadable(self, response, what: str) -> None:
        """A page, feed or manifest whose content is not one arhiva reads: reported, and (unless it
        was an image's media document) the harvest is incomplete: a start URL that answers with a
        maintenance page, an RSS feed or a PDF must not pass for a source with nothing in it."""
        self.runlog.error("unsupported_content", what, url=response.url)
        if response.meta.get("arhiva_kind") != "media":
            self._lost()

    def _lost(self) -> None:
        """Count a part of the source this crawl could not read; the run ends as partial."""
        self.runlog.count("incomplete")

    def _add(self, views: list[Found]):
        self.views_added += len(views)
        for v in views:
            ids = v.identities() or [v.fetched_url]
            if any(i in self.flushed for i in ids):
                self.runlog.count("views/late")  # its record was already stored in this crawl
                continue
            self.grouper.add(v)

    def _parse_oai(self, response, depth: int):
        try:
            page = oai.parse_oai(response.body, response.url, charset_of(response.headers.get("Content-Type")))
        except (UnsafeXML, BadXML) as exc:
            self.runlog.error("unsafe_xml" if isinstance(exc, UnsafeXML) else "bad_xml", str(exc), url=response.url)
            self._lost()
            return
        start = response.meta.get("oai_list_start") or response.url
        if page.error_code:
            yield from self._oai_error(page, response, depth, start)
            return
        if page.verb not in ("ListRecords", "GetRecord"):
            if "verb=ListRecords" not in response.url:  # Identify or another answer: ask for the records
                req = self._page(oai.list_records_url(response.url, set_spec=self.oai_set, from_date=self.oai_from),
                                 depth=depth, kind="oai_page")
                if req is not None:
                    yield req
            return
        self.runlog.count("oai/records", len(page.records))
        for d in page.deleted:
            self.oai_deleted[d["identifier"]] = d["datestamp"]
        self.runlog.count("oai/deleted", len(page.deleted))
        self._add(page.records)
        for v in page.records:
            for url in v.follow:
                req = self._page(url, depth=depth, kind="manifest", completes=v.identities()[0])
                if req is not None:
                    yield req
        if page.token:
            yield from self._next_oai_page(response, page.token, depth, start)

    def _next_oai_page(self, response, token: str, depth: int, start: str):
        """The next page of a list. After a restart the server may hand back a token already asked
        (Scrapy would drop the repeat): it is asked again. A token that comes round again within
        one run of a list is no progress: an error, and the harvest is incomplete."""
        tokens = self.oai_tokens.setdefault(start, set())
        if token in tokens:
            self._oai_failed(f"the list handed out resumption token {token!r} again: no progress", response.url)
            return
        tokens.add(token)
        req = self._page(oai.next_page_url(response.url, token), depth=depth, kind="oai_page",
                         meta={"oai_list_start": start}, dont_filter=start in self.oai_restarted)
        if req is not None:
            yield req

    def _oai_failed(self, message: str, url: str) -> None:
        self.runlog.error("oai_error", message, url=url)
        self._lost()

    def _parse_xml(self, response, depth: int):
        """XML that did not look like OAI-PMH at first sight: parsed safely, OAI if its root says so."""
        from crawlers.archive.xmlsafe import parse_xml

        try:
            root = parse_xml(response.body, charset_of(response.headers.get("Content-Type")))
        except (UnsafeXML, BadXML) as exc:
            self.runlog.error("unsafe_xml" if isinstance(exc, UnsafeXML) else "bad_xml", str(exc), url=response.url)
            self._lost()
            return
        if root.tag == "{http://www.openarchives.org/OAI/2.0/}OAI-PMH":
            yield from self._parse_oai(response, depth)
        else:
            self._unreadable(response, f"XML with root {root.tag} is not OAI-PMH")

    def _oai_error(self, page, response, depth: int, start: str):
        code = page.error_code
        if code == "noRecordsMatch":
            self.runlog.count("oai/no_records_match")
            return
        if code == "badResumptionToken" and start not in self.oai_restarted:
            self.oai_restarted.add(start)
            self.oai_tokens[start] = set()
            self.logger.warning("OAI resumption token refused at %s: restarting the list from %s", response.url, start)
            self.runlog.count("oai/restarted")
            req = self._page(start, depth=depth, kind="oai_restart", meta={"oai_list_start": start}, dont_filter=True)
            if req is not None:
                yield req
            return
        if code in ("badVerb", "badArgument") and "verb=ListRecords" not in response.url:
            # a bare OAI endpoint: ask for the records
            req = self._page(oai.list_records_url(response.url, set_spec=self.oai_set, from_date=self.oai_from),
                             depth=depth, kind="oai_page")
            if req is not None:
                yield req
            return
        hint = " (gave up after one restart)" if code == "badResumptionToken" else ""
        self._oai_failed(f"{code}: {page.error_message or ''}{hint}", response.url)

    def _parse_json(self, response, depth: int):
        try:
            doc = json.loads(response.body)
        except ValueError as exc:
            self.runlog.error("bad_json", f"not JSON: {exc}", url=response.url)
            self._lost()
            return
        url = response.url
        if iiif.is_manifest(doc):
            self._add([iiif.parse_manifest(doc, url)])
        elif iiif.is_collection(doc):
            col = iiif.parse_collection(doc)
            for m in col.embedded_manifests:
                self._add([iiif.parse_manifest(m, canonical_url(m.get("id") or m.get("@id")) or url)])
            for target in col.manifests + col.collections:
                req = self._page(target, depth=depth + 1, kind="iiif")
                if req is not None:
                    yield req
        elif omeka.is_omeka_item(doc) or (isinstance(doc, list) and any(omeka.is_omeka_item(d) for d in doc)):
            for item in doc if isinstance(doc, list) else [doc]:
                if omeka.is_omeka_item(item):
                    view = omeka.parse_item(item, url)
                    yield from self._follow(view, depth)
                    self._add([view])
            nxt = omeka.link_header_next(response.headers.get(b"Link"))
            if nxt:
                req = self._page(canonical_url(nxt, url), depth=depth, kind="api_page")
                if req is not None:
                    yield req
        elif omeka.is_omeka_media(doc):
            view = omeka.parse_media(doc, url)
            if view is not None:
                self._add([view])
        elif commons.is_commons_api(doc):
            self._add(commons.parse_api(doc, url))
        else:
            self._unreadable(response, "JSON that is neither IIIF, Omeka S nor Commons")

    def _follow(self, view: Found, depth: int):
        for target in view.follow:
            req = self._page(target, depth=depth, kind="media", completes=(view.identities() or [None])[0])
            if req is not None:
                yield req
        view.follow = []

    def _parse_html(self, response, depth: int):
        try:
            text = response.text
        except AttributeError:
            text = response.body.decode("utf-8", "replace")
        result = parse_page(text, response.url)
        for view in result.views:
            view.follow = []
        self._add(result.views)
        first = result.views[0].identities()[0] if result.views and result.views[0].identities() else None
        for target in result.follow:
            req = self._page(target, depth=depth, kind="media", completes=first)
            if req is not None:
                yield req
        for target in result.iiif_links:
            req = self._page(target, depth=depth, kind="iiif", completes=first)
            if req is not None:
                yield req
        for target in result.item_links:  # items before the next listing page: records come early
            req = self._page(target, depth=depth + 1, kind="item")
            if req is not None:
                yield req
        for target in result.next_pages:
            req = self._page(target, depth=depth, kind="listing")
            if req is not None:
                yield req

    # -- merging and emitting ------------------------------------------------------------------
    def _maybe_flush(self):
        limit = self.crawler.settings.getint("ARHIVA_MERGE_BUFFER")
        if len(self.grouper) < limit:
            return []
        return self._emit(ready_only=True)

    def _idle(self):
        if len(self.grouper):
            self.runlog.count("internal_requests")  # not one the source answered (crawlers.runlog.summarize)
            self.crawler.engine.crawl(Request(f"{INTERNAL_SCHEME}://flush", callback=self._flush_cb, dont_filter=True,
                                              meta={"arhiva_kind": "flush", "arhiva_internal": True,
                                                    "dont_obey_robotstxt": True}))
            raise DontCloseSpider

    def _flush_cb(self, response):
        yield from self._emit(ready_only=False)

    def _save_held(self) -> None:
        """A crawl stopped early (Ctrl-C, SIGTERM, a source that went silent): the photographs still
        held for merging are stored as they are, checked as the pipeline checks them, without the
        documents and images still awaited (the next crawl completes them: a record without its
        image is asked for again). The item pipelines have closed by now: written here directly."""
        if not len(self.grouper):
            return
        from scrapy.exceptions import DropItem

        from crawlers.pipelines import ValidatePipeline

        check = ValidatePipeline.from_crawler(self.crawler)
        items = []
        for item in self._emit(ready_only=False):
            try:
                items.append(check.process_item(item))
            except DropItem:
                pass
        counts = self.store.write(items)
        self.logger.info("crawl stopped early: %d held record(s) stored as they were (%s)", len(items), counts)

    def _emit(self, *, ready_only: bool):
        groups = self.grouper.pop_all()
        keep, merged = [], []
        for views in groups:
            ids = {i for v in views for i in (v.identities() or [v.fetched_url])}
            if ready_only and any(self.pending[i] for i in ids):
                keep.append(views)
                continue
            self.flushed |= ids
            m = merge(views, gate_for(self.crawler))
            for url, why in m.refused:  # left out of the record: said, with the item and the reason
                self.runlog.error("url_refused", why, url=url, key=m.key)
            merged.append(m)
        for views in keep:
            for v in views:
                self.grouper.add(v)
        if not merged:
            return
        known = self.store.known([m.key for m in merged])
        known |= self._found_by_oai_identifier(merged, known)
        seen: list[SeenItem] = []
        for m in merged:
            k = known.get(m.key)
            if k is not None and k.payload_hash == m.record.payload_hash() and k.status == "active" \
                    and (m.image_url is None or m.image_url in k.asset_urls):
                seen.append(SeenItem(m.key, k.id, [m.image_url] if m.image_url else []))
                continue
            # new, changed, or its image is still missing (the upsert counts it unchanged then)
            yield RecordItem(m.key, m.record, fetched_url=m.fetched_urls[0], image_url=m.image_url)
        self.store.touch(seen)

    def _found_by_oai_identifier(self, merged: list, known: dict) -> dict:
        """Records not found by key whose OAI identifier the catalogue knows: the repository moved
        their item pages. Each takes the key of the record it had (the new page stays its ``url``
        and joins its aliases), so the harvest updates that record instead of adding another."""
        lost = {m.oai_identifiers[0]: m for m in merged if m.key not in known and m.oai_identifiers}
        if not lost:
            return {}
        rekeyed = []
        for ident, keys in self.store.keys_of_oai_identifiers(list(lost)).items():
            m = lost[ident]
            if m.key in keys:
                continue
            moved_from, m.key = m.key, keys[0]  # the oldest, if the move already made a second one
            m.record.source_key = m.key
            aliases = set(m.record.extra.get("aliases", [])) | {moved_from}
            m.record.extra["aliases"] = sorted(aliases - {m.key})
            rekeyed.append(m.key)
            self.logger.info("%s moved to %s: kept as the record it was (OAI identifier %s)", m.key, moved_from, ident)
        return self.store.known(rekeyed) if rekeyed else {}

    # -- the end -------------------------------------------------------------------------------
    def closed(self, reason):
        if reason != "finished":
            self._save_held()
            return
        if not self.oai_deleted:
            return
        ids = sorted(self.oai_deleted)  # a deleted record, by its key or (its page's key) its OAI identifier
        keys = set(self.store.known(ids)) | {k for found in self.store.keys_of_oai_identifiers(ids).values()
                                             for k in found}
        self.store.withdraw(keys)
