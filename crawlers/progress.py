"""Progress lines from a crawl process to whoever started it.

Every ``ARHIVA_PROGRESS_INTERVAL`` seconds (and once at the end) a line
``@@arhiva {json}`` with the crawl's counts goes to the stream named by
``ARHIVA_PROGRESS_STREAM`` (``stdout``; empty = off). ``crawlers.runner``
reads these lines and calls its ``progress`` callback.
"""
from __future__ import annotations

import json
import os
import sys
import time

from scrapy import signals
from scrapy.exceptions import NotConfigured

MARK = "@@arhiva "


def emit(event: str, stream=None, **data) -> None:
    stream = stream or sys.stdout
    stream.write(MARK + json.dumps({"event": event, **data}, default=str) + "\n")
    stream.flush()


def parse_line(line: str) -> dict | None:
    if not line.startswith(MARK):
        return None
    try:
        return json.loads(line[len(MARK):])
    except ValueError:
        return None


class ProgressReporter:
    def __init__(self, crawler, stream, interval: float):
        self.crawler = crawler
        self.stream = stream
        self.interval = interval
        self._task = None
        self._t0 = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler):
        name = crawler.settings.get("ARHIVA_PROGRESS_STREAM")
        if not name:
            raise NotConfigured
        stream = sys.stdout if name == "stdout" else sys.stderr if name == "stderr" else None
        if stream is None:
            raise NotConfigured(f"unknown ARHIVA_PROGRESS_STREAM {name!r}")
        ext = cls(crawler, stream, crawler.settings.getfloat("ARHIVA_PROGRESS_INTERVAL"))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def snapshot(self) -> dict:
        stats = self.crawler.stats.get_stats()
        out = {k[len("arhiva/"):]: v for k, v in stats.items()
               if k.startswith("arhiva/") and isinstance(v, (int, float))}
        out["requests"] = stats.get("downloader/request_count", 0)
        if stats.get("arhiva/network/message"):
            out["network"] = stats["arhiva/network/message"]
        out["elapsed_s"] = round(time.monotonic() - self._t0, 2)
        out["pid"] = os.getpid()
        return out

    def spider_opened(self, spider):
        from scrapy.utils.asyncio import create_looping_call

        self._task = create_looping_call(self.tick)
        self._task.start(self.interval, now=True)

    def tick(self):
        emit("progress", self.stream, stats=self.snapshot())

    def spider_closed(self, spider, reason):
        if self._task is not None and self._task.running:
            self._task.stop()
        emit("progress", self.stream, stats=self.snapshot(), reason=reason)
