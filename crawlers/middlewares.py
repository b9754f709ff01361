"""Retries with exponential back-off that honour ``Retry-After``.

Replaces Scrapy's ``RetryMiddleware`` (same settings: ``RETRY_ENABLED``,
``RETRY_TIMES``, ``RETRY_HTTP_CODES``, ``RETRY_EXCEPTIONS``, the
``dont_retry``/``max_retry_times`` meta keys) and adds:

- ``RETRY_BACKOFF_BASE`` / ``RETRY_BACKOFF_MAX``: the n-th retry waits
  ``base * 2**(n-1)`` seconds (with ±25 % jitter), at most ``max``.
- ``Retry-After`` on a retried response (seconds or an HTTP date) replaces
  the back-off, up to ``RETRY_AFTER_MAX`` (longer: the request gives up).
  The wait pauses *every* request to that host, not only the retried one.
- meta ``retry_skip_codes``: statuses this request must not retry (e.g. a
  tile that is too big to answer is split, not asked again).
- meta ``arhiva_delay``: seconds to wait before sending (a spider's own retry of
  an answer that was an error body gets the same back-off).
"""
from __future__ import annotations

import logging
import random
import time
from email.utils import parsedate_to_datetime

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

logger = logging.getLogger(__name__)


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None when absent/invalid."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float, jitter: float = 0.25) -> float:
    """Exponential back-off for the ``attempt``-th retry (1-based), with jitter."""
    if base <= 0:
        return 0.0
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, settings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX")
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX")
        self._paused_until: dict[str, float] = {}

    def _slot_key(self, request) -> str:
        engine = getattr(self.crawler, "engine", None)
        if engine is not None and getattr(engine, "downloader", None) is not None:
            return engine.downloader.get_slot_key(request)
        return request.url.split("/")[2] if "//" in request.url else request.url

    async def process_request(self, request):
        until = self._paused_until.get(self._slot_key(request), 0.0)
        wait = max(until - time.monotonic(), request.meta.pop("arhiva_delay", 0.0))
        if wait > 0:
            await sleep(wait)
        return None

    async def process_response(self, request, response):
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        if response.status in set(request.meta.get("retry_skip_codes", ())):
            return response
        wait = parse_retry_after(response.headers.get(b"Retry-After"))
        if wait is not None and wait > self.retry_after_max:
            logger.warning("Not retrying %s: Retry-After %.0f s is over RETRY_AFTER_MAX %.0f s",
                           request, wait, self.retry_after_max)
            self.crawler.stats.inc_value("retry/retry_after_too_long")
            return response
        new = self._retry(request, response_status_message(response.status))
        if new is None:
            return response
        if wait is not None:
            self.crawler.stats.inc_value("retry/retry_after_honoured")
            self._pause(request, wait)
        await self._sleep(new)
        return new

    async def process_exception(self, request, exception):
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        new = self._retry(request, exception)
        if new is not None:
            await self._sleep(new)
        return new

    def _pause(self, request, wait: float) -> None:
        key = self._slot_key(request)
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), time.monotonic() + wait)

    async def _sleep(self, new_request) -> None:
        attempt = new_request.meta.get("retry_times", 1)
        delay = backoff_delay(attempt, self.backoff_base, self.backoff_max)
        until = self._paused_until.get(self._slot_key(new_request), 0.0) - time.monotonic()
        delay = max(delay, until)
        if delay > 0:
            await sleep(delay)
