"""Item pipelines: validate → download the image → store in batches.

Items are ``crawlers.items.RecordItem``. A problem with one item is logged
on the run (``RunLog``) and the crawl goes on; nothing already stored is
touched by a failed item.
"""
from __future__ import annotations

import logging
import time

from scrapy import Request
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.asyncio import run_in_thread

from catalog.assets import ImageRejected
from catalog.harvest import prepare_image
from catalog.records_in import validate
from catalog.settings import get_settings
from crawlers.items import RecordItem
from crawlers.runlog import RunLog
from crawlers.store import CrawlStore
from crawlers.urlgate import UnsafeURL, UrlGate, gate_for

logger = logging.getLogger(__name__)


class ValidatePipeline:
    """Reject records the catalogue would refuse, before any image is fetched; drop harvested
    URLs (the record's link, its image) that the URL gate refuses (``crawlers.urlgate``)."""

    def __init__(self, runlog: RunLog, crawler=None):
        self.runlog = runlog
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(RunLog.from_crawler(crawler), crawler)

    def _gated(self, item: RecordItem, url: str | None, what: str) -> str | None:
        if not url:
            return url
        try:
            (gate_for(self.crawler) if self.crawler is not None else UrlGate()).check(url, origins=False)
        except UnsafeURL as exc:
            self.runlog.error(exc.kind, f"{what} refused: {exc}", key=item.source_key, url=str(url)[:2000])
            return None
        return url

    def process_item(self, item):
        if not isinstance(item, RecordItem):
            return item
        item.image_url = self._gated(item, item.image_url, "image URL")
        if item.record is None:
            return item
        item.record.url = self._gated(item, item.record.url, "record URL")
        problem = validate(item.record)
        if problem:
            self.runlog.error("record_rejected", str(problem), key=item.source_key, url=item.fetched_url)
            self.runlog.count("records/rejected")
            raise DropItem(str(problem))
        return item


class ImageDownloadPipeline:
    """Fetch ``item.image_url`` through the downloader (politeness, retries, size limit).

    The body is kept untouched; decoding checks (truncated files, HTML pages,
    decompression bombs) happen when the catalogue registers it.
    """

    def __init__(self, crawler):
        s = crawler.settings
        if not s.getbool("ARHIVA_IMAGES"):
            raise NotConfigured
        self.crawler = crawler
        self.runlog = RunLog.from_crawler(crawler)
        self.accept = s.get("ARHIVA_IMAGE_ACCEPT")
        self.max_bytes = s.getint("ARHIVA_MAX_IMAGE_BYTES") or get_settings().max_image_bytes

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if (not isinstance(item, RecordItem) or not item.image_url or item.image_body is not None
                or item.image_current):
            return item
        headers = {"Accept": self.accept, **item.image_headers}
        request = Request(item.image_url, headers=headers, priority=10,
                          meta={"download_maxsize": self.max_bytes, "download_warnsize": 0, "arhiva_kind": "image"})
        self.runlog.count("requests/image")
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # timeouts, refused connections, over-size bodies, data loss
            self._fail(item, f"download failed: {type(exc).__name__}: {exc}")
            return item
        if response.status != 200:
            self._fail(item, f"HTTP {response.status}")
            return item
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").split(";")[0].strip().lower()
        if ctype.startswith("text/"):
            self._fail(item, f"served as {ctype}, not an image")
            return item
        item.image_body = response.body
        item.image_etag = _header(response, b"ETag")
        item.image_last_modified = _header(response, b"Last-Modified")
        self.runlog.count("images/downloaded")
        return item

    def _fail(self, item: RecordItem, message: str) -> None:
        self.runlog.count("images/failed")
        self.runlog.error("image_download", message, url=item.image_url, key=item.source_key)


def _header(response, name: bytes) -> str | None:
    v = response.headers.get(name)
    return v.decode("latin-1") if v else None


class CatalogPipeline:
    """Measure images (in threads), buffer items and write them to the catalogue in batches.

    Decoding an image (the truncated/HTML/bomb checks and its measurements)
    runs in worker threads, several at a time, outside any transaction; the
    batch write then only inserts rows.
    """

    def __init__(self, crawler):
        self.store = CrawlStore.from_crawler(crawler)
        self.runlog = RunLog.from_crawler(crawler)
        self.workers = crawler.settings.getint("ARHIVA_IMAGE_WORKERS")
        self.pool = None
        self.batch_size = max(1, crawler.settings.getint("ARHIVA_BATCH_SIZE"))
        self.batch_seconds = crawler.settings.getfloat("ARHIVA_BATCH_SECONDS")
        self.buffer: list[RecordItem] = []
        self._flushed = time.monotonic()
        self._pending = None  # the flush in progress (an awaitable)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        if not isinstance(item, RecordItem):
            return item
        if item.image_body is not None:
            try:
                item.image = await self._prepare(item.image_body)
            except ImageRejected as exc:
                self.runlog.count("images/failed")
                self.runlog.error("image_rejected", str(exc), url=item.image_url, key=item.source_key)
            item.image_body = None
        if item.record is None and item.image is None and not item.image_current:
            return item  # an image-only item whose image failed: nothing to store
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size or time.monotonic() - self._flushed >= self.batch_seconds:
            await self._flush()
        return item

    async def _prepare(self, data: bytes):
        """Decode and measure off the reactor: in a thread, or in worker processes (no GIL contention)."""
        if self.workers <= 0:
            return await run_in_thread(self.store.prepare_image, data)
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        future = self.pool.submit(prepare_image, self.store.blobs, data, settings=self.store.app_settings)
        return await run_in_thread(future.result)

    async def _flush(self) -> None:
        batch, self.buffer = self.buffer, []
        self._flushed = time.monotonic()
        if not batch:
            return
        await run_in_thread(self.store.write, batch)

    async def close_spider(self):
        await self._flush()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
