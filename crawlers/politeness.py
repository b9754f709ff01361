"""Politeness across processes and machines: a host's delay and concurrency shared through PostgreSQL.

Scrapy keeps a host's delay (``DOWNLOAD_DELAY``, AutoThrottle's current delay) and
concurrency (``CONCURRENT_REQUESTS_PER_DOMAIN``) per process; two crawls of one host
would each keep them and together hit it twice as hard. This downloader middleware,
last before the download, makes every request of every arhiva crawl process take one
of the host's slots and a start time from the catalogue (``catalog.hostslots``) before
it goes out, and give the slot back when its response (or error) comes.

On by default for catalogue crawls (``ARHIVA_SHARED_POLITENESS = True``); a database
error switches it off for the rest of the crawl with a warning (Scrapy's own per-process
politeness still holds). Requests with ``meta["dont_share_politeness"]`` skip it.

A stopping crawl (``stop_waiting``: the first Ctrl-C or SIGTERM, see crawlers.run) drops the
requests still waiting here for their turn or their start time: at the default delay a host's
queue of 16 kept the crawl busy for 16 s, past the grace period after which it is killed, before
it could store the records it held.
"""
from __future__ import annotations

import contextlib
import logging

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import CancelledError, Deferred, DeferredSemaphore
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)
META = "_arhiva_host_slot"


class SharedPolitenessMiddleware:
    def __init__(self, crawler, gate):
        self.crawler = crawler
        self.gate = gate
        self.concurrency = max(1, crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        self.default_delay = crawler.settings.getfloat("DOWNLOAD_DELAY")
        self.local: dict[str, DeferredSemaphore] = {}  # this process's turn at a host: only they ask the database
        # the gate's own threads: in the reactor's pool its calls would queue behind image decoding and writes
        self.threads = ThreadPool(1, max(2, min(32, crawler.settings.getint("CONCURRENT_REQUESTS") * 2)),
                                  "arhiva-politeness")
        self.threads.start()
        self.enabled = True
        self.stopping = False
        self.waiting: set[Deferred] = set()  # turns and start times waited for, cancelled when stopping

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        if not s.getbool("ARHIVA_SHARED_POLITENESS"):
            raise NotConfigured("ARHIVA_SHARED_POLITENESS is off")
        if not s.getint("ARHIVA_RUN_ID"):
            raise NotConfigured("not a catalogue crawl (no ARHIVA_RUN_ID)")
        from scrapy import signals
        from twisted.internet import reactor

        from catalog.db import get_engine
        from catalog.hostslots import HostGate

        mw = cls(crawler, HostGate(get_engine()))
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        reactor.addSystemEventTrigger("during", "shutdown", mw.stop_threads)  # even if the spider never closed
        return mw

    def _delay(self, request) -> float:
        """The host's current delay in this process: its download slot's (AutoThrottle moves it)."""
        downloader = getattr(getattr(self.crawler, "engine", None), "downloader", None)
        if downloader is not None:
            slot = downloader.slots.get(downloader.get_slot_key(request))
            if slot is not None:
                return slot.delay
        spider = getattr(getattr(self.crawler, "engine", None), "spider", None)
        return float(getattr(spider, "download_delay", self.default_delay))

    async def process_request(self, request):
        if not self.enabled or request.meta.get("dont_share_politeness") or META in request.meta \
                or request.meta.get("arhiva_internal"):  # arhiva's own no-op requests never reach a host
            return None
        host = urlparse_cached(request).hostname
        if not host:
            return None
        if self.stopping:
            self._drop(request)
        turn = self.local.setdefault(host, DeferredSemaphore(self.concurrency))
        try:
            await self._until(turn.acquire())
        except CancelledError:  # stop_waiting: never got its turn
            self._drop(request)
        if self.stopping:
            turn.release()
            self._drop(request)
        try:
            got = await self._call(self.gate.enter, host, self._delay(request), self.concurrency)
        except Exception as exc:  # noqa: BLE001 - politeness must not stop a crawl: fall back to Scrapy's own
            got = None
            self._give_up(exc)
        if got is None:  # closed, or off
            turn.release()
            return None
        slot, wait = got
        request.meta[META] = (host, slot)
        self.crawler.stats.inc_value("politeness/shared_slots")
        if wait > 0 and not self.stopping:  # (stopping while the database was asked: no sleep at all)
            self.crawler.stats.inc_value("politeness/waited_seconds", round(wait, 3))
            with contextlib.suppress(CancelledError):
                await self._sleep(wait)
        if self.stopping:
            await self._release(request)
            self._drop(request)
        return None

    async def _until(self, waiting: Deferred):
        """``waiting``'s result, or CancelledError should the crawl start stopping first."""
        self.waiting.add(waiting)
        try:
            return await maybe_deferred_to_future(waiting)
        finally:
            self.waiting.discard(waiting)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less should the crawl start stopping meanwhile (CancelledError)."""
        from twisted.internet import reactor

        waiting = Deferred()
        call = reactor.callLater(seconds, lambda: waiting.called or waiting.callback(None))
        try:
            await self._until(waiting)
        finally:
            if call.active():
                call.cancel()

    def stop_waiting(self) -> None:
        """The crawl is stopping: the requests waiting here, for their turn at a host or for their
        start time, are dropped, and those to come."""
        self.stopping = True
        for waiting in list(self.waiting):
            if not waiting.called:
                waiting.cancel()

    @staticmethod
    def _drop(request) -> None:
        request.meta["arhiva_stopping"] = True  # not the source's fault (crawlers.base.request_failed)
        raise IgnoreRequest("the crawl is stopping")

    async def process_response(self, request, response):
        await self._release(request)
        return response

    async def process_exception(self, request, exception):
        await self._release(request)
        return None

    async def _release(self, request) -> None:
        held = request.meta.pop(META, None)
        if held is None:
            return
        host, slot = held
        try:
            await self._call(self.gate.leave, host, slot)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)
        finally:
            self.local[host].release()

    async def _call(self, fn, *args):
        from twisted.internet import reactor

        return await maybe_deferred_to_future(deferToThreadPool(reactor, self.threads, fn, *args))

    def _give_up(self, exc: Exception) -> None:
        if self.enabled:
            logger.warning("shared per-host politeness off for this crawl (database error: %s); "
                           "this process's own delay and concurrency still hold", exc)
            self.enabled = False
            self.gate.close()

    def spider_closed(self, spider) -> None:
        self.gate.close()
        self.stop_threads()

    def stop_threads(self) -> None:
        if self.threads.started:
            self.threads.stop()
