"""The base every arhiva spider builds on.

A spider names its source (``source_slug``/``source_kind``, or overrides
``source_for``), yields ``RecordItem``s, and uses ``self.store`` (the
catalogue: what is known, touch what is unchanged, withdraw what is gone)
and ``self.runlog.error`` (problems kept on the run; the crawl goes on).
``crawlers.runner.run_crawl(name, params)`` creates the source and the run
row, then starts the spider in a child process with ``params`` as its
keyword arguments.
"""
from __future__ import annotations

from typing import Any

import scrapy
from twisted.python.failure import Failure

from crawlers.runlog import RunLog
from crawlers.store import CrawlStore

# what a failure means, for those that come without a message
FAILURE_WORDS = {"ResponseDataLossError": "the connection closed before the whole answer came",
                 "ResponseFailed": "the answer broke off", "ConnectionLost": "the connection was lost",
                 "TimeoutError": "no answer in time"}


class ArhivaSpider(scrapy.Spider):
    source_slug: str = ""
    source_kind: str = ""           # pastvu | page | iiif | oai | folder | archive
    source_base_url: str | None = None

    @classmethod
    def source_for(cls, params: dict[str, Any], app_settings: Any = None) -> dict[str, Any]:
        """The catalogue source these parameters harvest into: slug, kind, base_url, config."""
        return {"slug": params.get("source") or cls.source_slug or cls.name, "kind": cls.source_kind,
                "base_url": cls.source_base_url, "config": {}}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise parameters before a run starts; raise ValueError with a message.

        Idempotent: the runner checks them, then the spider is built from the checked ones."""
        return dict(params)

    @classmethod
    def scope_of(cls, params: dict[str, Any]) -> str:
        """What two crawls of one source must not harvest at the same time (e.g. an area)."""
        return ""

    @property
    def store(self) -> CrawlStore:
        return CrawlStore.from_crawler(self.crawler)

    @property
    def runlog(self) -> RunLog:
        return RunLog.from_crawler(self.crawler)

    def request_failed(self, failure: Failure):
        """Errback for every request: the failure is logged on the run, the crawl goes on."""
        request = getattr(failure, "request", None)
        if request is not None and request.meta.get("arhiva_stopping"):
            return  # dropped because the crawl is stopping: not the source's fault
        response = getattr(failure.value, "response", None)
        if response is not None:
            message = f"HTTP {response.status}"
        else:
            name = failure.type.__name__
            message = f"{name}: {failure.getErrorMessage() or FAILURE_WORDS.get(name, 'no detail given')}"
        kind = (request.meta.get("arhiva_kind") if request is not None else None) or "request"
        self.runlog.error(f"{kind}_failed", message, url=request.url if request is not None else None,
                          key=request.meta.get("arhiva_key") if request is not None else None)
