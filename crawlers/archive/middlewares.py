"""Downloader middlewares of the archive spider (generic: any spider may use them).

``AllowedDomainsMiddleware`` refuses every request — links, images, redirect
targets, ``dont_filter`` ones included — whose host is outside the spider's
``allowed_domains`` (a domain allows its subdomains), and logs it on the run.

``HostMapMiddleware`` (tests, benchmarks) sends requests for the hosts in
``ARHIVA_HOST_MAP`` (``{"host": "http://127.0.0.1:PORT"}``) to a local server
as ``{target}/{host}{path}?{query}`` and hands back the response under the
original URL, so redirects, links and keys keep the real hosts.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.httpobj import urlparse_cached

from crawlers.runlog import RunLog

INTERNAL = "arhiva_hostmapped"


def host_allowed(host: str | None, allowed: list[str] | tuple[str, ...]) -> bool:
    host = (host or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in (a.lower().lstrip(".") for a in allowed))


class AllowedDomainsMiddleware:
    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request):
        if request.meta.get(INTERNAL) or request.url.startswith("data:"):
            return None
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        if not allowed:
            return None
        host = urlparse_cached(request).hostname
        if host_allowed(host, allowed):
            return None
        what = "redirect target" if request.meta.get("redirect_times") else (
            request.meta.get("arhiva_kind") or "link")
        RunLog.from_crawler(self.crawler).error(
            "offsite", f"{what} on {host} is outside the allowed domains ({', '.join(allowed)}); not fetched "
            "(add --allow-domain to fetch it)", url=request.url, key=request.meta.get("arhiva_key"))
        raise IgnoreRequest(f"offsite: {host}")


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
        if request.meta.get(INTERNAL):
            return None
        parts = urlsplit(request.url)
        target = self.mapping.get((parts.hostname or "").lower())
        if not target:
            return None
        local_url = f"{target}/{parts.hostname}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        meta = {**request.meta, INTERNAL: True, "dont_redirect": True, "dont_retry": True,
                "handle_httpstatus_all": True}
        local = request.replace(url=local_url, meta=meta, dont_filter=True)
        response = await self.crawler.engine.download_async(local)
        return response.replace(url=request.url, request=request)
