"""Downloader middlewares of the archive spider (generic: any spider may use them).

Requests outside the spider's ``allowed_domains`` (links, images, redirect targets,
``dont_filter`` ones included) are refused by ``crawlers.urlgate.UrlGateMiddleware``, which
every spider has.

``HostMapMiddleware`` (tests, benchmarks) sends requests for the hosts in
``ARHIVA_HOST_MAP`` (``{"host": "http://127.0.0.1:PORT"}``) to a local server
as ``{target}/{host}{path}?{query}`` and hands back the response under the
original URL, so redirects, links and keys keep the real hosts.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured

HOST_MAPPED = "arhiva_hostmapped"  # meta key of the request sent on to the local server


class HostMapMiddleware:
    def __init__(self, crawler, mapping: dict[str, str]):
        self.crawler = crawler
        self.mapping = {k.lower(): v.rstrip("/") for k, v in mapping.items()}

    @classmethod
    def from_crawler(cls, crawler):
        mapping = crawler.settings.getdict("ARHIVA_HOST_MAP")
        if not mapping:
            raise NotConfigured
        return cls(crawler, mapping)

    async def process_request(self, request):
        if request.meta.get(HOST_MAPPED):
            return None
        parts = urlsplit(request.url)
        target = self.mapping.get((parts.hostname or "").lower())
        if not target:
            return None
        local_url = f"{target}/{parts.hostname}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        meta = {**request.meta, HOST_MAPPED: True, "dont_redirect": True, "dont_retry": True,
                "handle_httpstatus_all": True}
        local = request.replace(url=local_url, meta=meta, dont_filter=True)
        response = await self.crawler.engine.download_async(local)
        return response.replace(url=request.url, request=request)
