"""Connection failures, visible and bounded.

A downloader middleware next to the downloader (it sees every failed try, before retries) that
counts failures by kind — DNS lookup, connection refused, TLS, timeout, connection lost — and by
host, and keeps one line for the screen::

    cannot reach pastvu.com: DNS lookup failed — 12 requests failed

(the crawl's progress carries it as ``network``). When requests keep failing and no response at
all arrived for ``ARHIVA_NETWORK_GIVE_UP`` seconds, the crawl is closed with reason
``network_unreachable`` and fails with that line as its error. Any response (even an HTTP error)
proves the host is reachable and restarts the clock.

A request refused before it left — Scrapy's ``IgnoreRequest``: robots.txt disallows it, the URL
gate refused it (``crawlers.urlgate``, which logs it), the crawl is stopping — reached no host and
is no network failure: it is neither counted here nor toward ``ARHIVA_NETWORK_GIVE_UP``.
"""
from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured

ROBOTS_REFUSAL = "Forbidden by robots.txt"  # scrapy.downloadermiddlewares.robotstxt's IgnoreRequest

KINDS = (  # (name, what the screen says, exception class names)
    ("dns", "DNS lookup failed", ("DNSLookupError", "CannotResolveHostError")),
    ("refused", "connection refused", ("ConnectionRefusedError", "DownloadConnectionRefusedError")),
    ("tls", "TLS handshake failed", ("SSLError", "TLSError")),
    ("timeout", "no answer in time", ("TimeoutError", "DownloadTimeoutError", "TCPTimedOutError",
                                      "UserTimeoutError")),
    ("lost", "connection lost", ("ConnectionLost", "ResponseNeverReceived", "ConnectionDone",
                                 "ConnectionAborted", "PotentialDataLoss", "ResponseFailed",
                                 "ResponseDataLossError", "DownloadFailedError")),
)


def is_robots_refusal(exc: BaseException | None) -> bool:
    """A request Scrapy's RobotsTxtMiddleware refused: the site's wish, not a failure."""
    return isinstance(exc, IgnoreRequest) and str(exc) == ROBOTS_REFUSAL


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, words for the screen) of a download exception."""
    names = {c.__name__ for c in type(exc).__mro__}
    module = type(exc).__module__
    for kind, words, classes in KINDS:
        if kind == "tls":
            if "ssl" in module.lower() or "tls" in module.lower() or names & {"SSLError", "TLSError"}:
                return kind, words
            continue
        if names & set(classes):
            return kind, words
    return "connection", f"{type(exc).__name__}"


class NetworkWatch:
    def __init__(self, crawler, give_up: float):
        self.crawler = crawler
        self.give_up = give_up
        self.failed: Counter = Counter()
        self.by_host: Counter = Counter()
        self.last: tuple[str, str] | None = None  # (host, words)
        self.last_answer = time.monotonic()
        self._task = None

    @classmethod
    def from_crawler(cls, crawler):
        give_up = crawler.settings.getfloat("ARHIVA_NETWORK_GIVE_UP")
        if give_up < 0:
            raise NotConfigured
        watch = cls(crawler, give_up)
        crawler.signals.connect(watch.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(watch.spider_closed, signal=signals.spider_closed)
        crawler._arhiva_netwatch = watch
        return watch

    # -- downloader middleware ------------------------------------------------------------
    def process_response(self, request, response):
        self.last_answer = time.monotonic()
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, IgnoreRequest):  # refused before it left (robots.txt, the URL gate…)
            return None
        kind, words = classify(exception)
        host = urlsplit(request.url).netloc or request.url
        self.failed[kind] += 1
        self.by_host[host] += 1
        self.last = (host, words)
        stats = self.crawler.stats
        stats.inc_value("arhiva/network/failed")
        stats.inc_value(f"arhiva/network/{kind}")
        stats.set_value("arhiva/network/message", self.message())
        return None

    def message(self) -> str:
        if self.last is None:
            return ""
        host, words = self.last
        n = sum(self.failed.values())
        return f"cannot reach {host}: {words} — {n} request{'s' if n != 1 else ''} failed"

    # -- the clock ------------------------------------------------------------------------------
    def spider_opened(self, spider):
        from scrapy.utils.asyncio import create_looping_call

        self.last_answer = time.monotonic()
        self._task = create_looping_call(self.check)
        self._task.start(1.0, now=False)

    def spider_closed(self, spider, reason):
        if self._task is not None and self._task.running:
            self._task.stop()

    def check(self) -> None:
        if not self.failed or self.give_up <= 0:
            return
        quiet = time.monotonic() - self.last_answer
        if quiet < self.give_up:
            return
        reason = f"{self.message()}; no answer for {quiet:.0f} s, gave up (ARHIVA_NETWORK_GIVE_UP)"
        self.crawler.stats.set_value("arhiva/failed", reason)
        if self._task is not None and self._task.running:
            self._task.stop()
        from scrapy.utils.defer import deferred_from_coro

        self._closing = deferred_from_coro(self.crawler.engine.close_spider_async(reason="network_unreachable"))
