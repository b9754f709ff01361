"""The crawl's link to the catalogue, shared by the spider and the pipelines.

One ``CrawlStore`` per crawler (``CrawlStore.from_crawler``). It knows the
source, the run and the collection from the settings the runner sets
(``ARHIVA_SOURCE_ID``, ``ARHIVA_RUN_ID``, ``ARHIVA_COLLECTION``), and does
every catalogue write of the crawl in short transactions.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

from catalog import harvest
from catalog.assets import get_store, link_asset
from catalog.db import open_catalog, run_retrying, session_scope
from catalog.ingest import add_to_collection, upsert_records, withdraw_records
from catalog.settings import get_settings
from crawlers.items import RecordItem, SeenItem
from crawlers.runlog import RunLog

logger = logging.getLogger(__name__)


class CrawlStore:
    def __init__(self, engine, source_id: int, run_id: int, *, collection: str | None, runlog: RunLog,
                 app_settings=None):
        self.engine = engine
        self.source_id = source_id
        self.run_id = run_id
        self.collection = collection or None
        self.runlog = runlog
        self.app_settings = app_settings or get_settings()
        self.blobs = get_store(self.app_settings)
        self._lock = threading.Lock()  # one catalogue write at a time (they may run in a thread)

    @classmethod
    def from_crawler(cls, crawler) -> CrawlStore:
        store = getattr(crawler, "_arhiva_store", None)
        if store is None:
            s = crawler.settings
            run_id, source_id = s.getint("ARHIVA_RUN_ID"), s.getint("ARHIVA_SOURCE_ID")
            if not run_id or not source_id:
                # not NotConfigured: Scrapy would quietly switch off the pipeline that stores everything
                raise RuntimeError("ARHIVA_RUN_ID and ARHIVA_SOURCE_ID are not set (start crawls with crawlers.runner)")
            store = cls(open_catalog(), source_id, run_id, collection=s.get("ARHIVA_COLLECTION"),
                        runlog=RunLog.from_crawler(crawler))
            crawler._arhiva_store = store
        return store

    # -- reading ---------------------------------------------------------------------------
    def known(self, keys: Iterable[str], markers: dict[str, Sequence[str]] | None = None
              ) -> dict[str, harvest.KnownRecord]:
        with session_scope(self.engine) as s:
            return harvest.known_records(s, self.source_id, keys, markers=markers)

    def keys_of_oai_identifiers(self, identifiers: Iterable[str]) -> dict[str, list[str]]:
        with session_scope(self.engine) as s:
            return harvest.keys_of_oai_identifiers(s, self.source_id, identifiers)

    def active_in_bbox(self, west, south, east, north, **years) -> dict[str, tuple[float, float]]:
        with session_scope(self.engine) as s:
            return harvest.active_in_bbox(s, self.source_id, west, south, east, north, **years)

    # -- writing ---------------------------------------------------------------------------
    def touch(self, seen: Sequence[SeenItem]) -> int:
        if not seen:
            return 0
        with self._lock, session_scope(self.engine) as s:
            n = harvest.touch_records(s, [x.record_id for x in seen], run_id=self.run_id,
                                      asset_urls=[u for x in seen for u in x.asset_urls])
            if self.collection:  # a crawl into a collection gathers what it saw, changed or not
                add_to_collection(s, self.collection, [x.record_id for x in seen])
        self.runlog.count("records/unchanged", len(seen))
        return n

    def withdraw(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        if not keys:
            return 0
        with self._lock, session_scope(self.engine) as s:
            n = withdraw_records(s, self.source_id, keys, run_id=self.run_id)
        self.runlog.count("records/withdrawn", n)
        return n

    def write(self, items: Sequence[RecordItem]) -> dict[str, int]:
        """Upsert a batch of records and their images in one transaction; errors are logged, not raised."""
        if not items:
            return {}

        def attempt() -> tuple[dict[str, int], list]:
            with self._lock, session_scope(self.engine) as s:
                return self._write(s, items)

        try:  # broken off to end a deadlock (the web API adding the same records to a collection): again
            counts, rejected = run_retrying(attempt)
        except Exception as exc:  # the whole batch is lost; the next crawl fetches it again
            logger.exception("catalogue write failed")
            self.runlog.error("catalogue_write", f"{len(items)} records not stored: {exc}")
            return {}
        for rej in rejected:
            self.runlog.error("record_rejected", str(rej), key=rej.source_key)
        for name, n in counts.items():
            self.runlog.count(name, n)
        return counts

    def _write(self, s, items: Sequence[RecordItem]) -> tuple[dict[str, int], list]:
        """Store a batch in the session's transaction: its counts, and the records refused."""
        records = [it.record for it in items if it.record is not None]
        report = upsert_records(s, self.source_id, records, run_id=self.run_id, collection=self.collection)
        ids = dict(report.ids)
        missing = [it.source_key for it in items if it.source_key not in ids and it.record is None]
        ids.update(harvest.record_ids(s, self.source_id, missing))
        if self.collection and missing:  # records seen again only for their image join the collection too
            add_to_collection(s, self.collection, [ids[k] for k in missing if k in ids])
        current = [it for it in items if it.image_current and it.image_url and it.source_key in ids]
        if current:
            harvest.touch_records(s, [ids[it.source_key] for it in current], run_id=self.run_id,
                                  asset_urls=[it.image_url for it in current])
        stored = 0
        for it in items:
            rid = ids.get(it.source_key)
            if it.image is None or rid is None:  # no new image, or its record was rejected
                continue
            harvest.register_prepared(s, it.image)
            link_asset(s, rid, it.image.sha256, it.image_role, source_url=it.image_url, run_id=self.run_id,
                       etag=it.image_etag, last_modified=it.image_last_modified,
                       crop_box=it.crop_box_for(it.image.info.width, it.image.info.height))
            stored += 1
        return {"records/new": report.new, "records/changed": report.changed,
                "records/unchanged": report.unchanged, "records/rejected": len(report.rejected),
                "images/stored": stored}, report.rejected

    def prepare_image(self, data: bytes) -> harvest.PreparedImage:
        """Measure and store an image's bytes (no transaction; runs in worker threads)."""
        return harvest.prepare_image(self.blobs, data, settings=self.app_settings)
