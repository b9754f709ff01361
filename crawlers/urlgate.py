"""One gate for every URL a crawler fetches or keeps.

Every request (pages, feeds, manifests, images, robots.txt, redirect targets) passes
``UrlGateMiddleware`` before anything else; every URL harvested into a record (its ``url``, its
image URLs) passes ``safe_url``. The rules (``UrlGate``):

* only ``http`` and ``https`` (Scrapy's ``file``, ``s3``, ``ftp`` and ``data`` download handlers
  are switched off in ``crawlers.settings``); no user name or password in the URL;
* the host **and port** must belong to an allowed origin: a spider's ``allowed_domains`` (a
  domain allows its subdomains on the scheme's default port; ``host:port`` or
  ``scheme://host:port`` allows that port);
* a host that is, or resolves to, a loopback, link-local, private or otherwise non-public
  address (127.0.0.0/8, 10/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10, ::1, fc00::/7,
  fe80::/10…) is refused unless its origin is listed in ``ARHIVA_ALLOW_PRIVATE`` (the
  setting, or the environment variable; tests allow their local servers that way). The name
  is resolved through the crawl's own DNS cache, so the connection uses the address checked.

Hosts in ``ARHIVA_HOST_MAP`` (tests, benchmarks) are never resolved: their requests go to the
mapped local server, which the map itself names.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from scrapy.exceptions import IgnoreRequest

from crawlers.archive.middlewares import HOST_MAPPED  # a request HostMapMiddleware sends to its local server
from crawlers.runlog import RunLog

logger = logging.getLogger(__name__)

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
INTERNAL_SCHEME = "arhiva"  # arhiva's own no-op requests (``InternalHandler``), never fetched


class GateRefused(IgnoreRequest):
    """The request the gate refused (already logged on the run, with the reason, by the gate)."""


class UnsafeURL(ValueError):
    """A URL the gate refuses; ``kind`` names the rule (unsafe_url, offsite, private_address)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Origin:
    host: str
    port: int | None = None      # None: the scheme's default port
    scheme: str | None = None    # None: http or https

    def matches(self, scheme: str, host: str, port: int, *, subdomains: bool = True) -> bool:
        if self.scheme is not None and self.scheme != scheme:
            return False
        if port != (self.port if self.port is not None else DEFAULT_PORTS[scheme]):
            return False
        return host == self.host or (subdomains and host.endswith("." + self.host))


def parse_origin(spec: str) -> Origin:
    """``archive.example``, ``archive.example:8080``, ``http://127.0.0.1:8765`` or ``[::1]:80``."""
    text = str(spec).strip()
    if not text:
        raise ValueError("empty origin")
    parts = urlsplit(text if "://" in text else f"//{text}")
    scheme = parts.scheme.lower() or None
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"origin {spec!r}: only http and https")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"origin {spec!r}: bad port") from None
    host = (parts.hostname or "").lower().rstrip(".").lstrip(".")
    if not host:
        raise ValueError(f"origin {spec!r}: no host")
    return Origin(host, port, scheme)


def parse_origins(value: str | Iterable[str] | None) -> list[Origin]:
    """Origins from a list or from text separated by commas or spaces."""
    if value is None:
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    return [parse_origin(v) for v in items if str(v).strip()]


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally (any spelling the C library accepts: 2130706433,
    0x7f.1, ::ffff:127.0.0.1), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def is_public(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_global and not (mapped or ip).is_multicast


class UrlGate:
    """The rules above; ``allowed=None`` allows any public host on the default ports."""

    def __init__(self, allowed: Iterable[str] | None = None, private: Iterable[str] | str | None = None):
        self.allowed = None if allowed is None else parse_origins(list(allowed))
        self.private = parse_origins(private)

    def split(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL the static rules accept; raises UnsafeURL."""
        try:
            parts = urlsplit(str(url).strip())
            port = parts.port
        except ValueError as exc:
            raise UnsafeURL("unsafe_url", f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise UnsafeURL("unsafe_url", f"scheme {scheme or '(none)'!r} is refused: only http and https")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UnsafeURL("unsafe_url", "no host")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURL("unsafe_url", "a user name or password in a URL is refused")
        return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]

    def private_allowed(self, scheme: str, host: str, port: int) -> bool:
        return any(o.matches(scheme, host, port, subdomains=False) for o in self.private)

    def check(self, url: str, *, origins: bool = True) -> tuple[str, str, int]:
        """Everything but DNS: scheme, credentials, allowed origin (host and port) when
        ``origins``, and a literal non-public address. Returns (scheme, host, port)."""
        scheme, host, port = self.split(url)
        private_ok = self.private_allowed(scheme, host, port)
        if origins:
            if self.allowed is None:
                if port != DEFAULT_PORTS[scheme]:
                    raise UnsafeURL("offsite", f"port {port} is refused: only {DEFAULT_PORTS[scheme]} for {scheme}")
            elif not any(o.matches(scheme, host, port) for o in self.allowed):
                where = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
                raise UnsafeURL("offsite", f"{where} is outside the allowed domains "
                                           f"({', '.join(self.describe())})")
        ip = ip_literal(host.strip("[]"))
        if ip is not None and not private_ok and not is_public(ip):
            raise UnsafeURL("private_address", self._private_message(host, str(ip), scheme, port))
        return scheme, host, port

    def check_address(self, scheme: str, host: str, port: int, address: str) -> None:
        """Refuse a resolved address that is not public, unless the origin is allowed."""
        if not is_public(address) and not self.private_allowed(scheme, host, port):
            raise UnsafeURL("private_address", self._private_message(host, address, scheme, port))

    def describe(self) -> list[str]:
        return [o.host if o.port is None else f"{o.host}:{o.port}" for o in (self.allowed or [])]

    @staticmethod
    def _private_message(host: str, address: str, scheme: str, port: int) -> str:
        at = host if host == address else f"{host} ({address})"
        return (f"{at} is a loopback, private or link-local address: refused unless ARHIVA_ALLOW_PRIVATE "
                f"lists {scheme}://{host}:{port}")


def without_credentials(url: str) -> str:
    """``url`` with any user name and password taken out (to be logged or shown)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def safe_url(url: str | None, gate: UrlGate | None = None, refused: list[tuple[str, str]] | None = None) -> str | None:
    """``url`` when the static rules keep it (http/https, no credentials, no literal non-public
    address unless allowed), else None (and the URL with the reason appended to ``refused``):
    for URLs stored in records, not fetched."""
    if not url:
        return None
    try:
        (gate or UrlGate()).check(url, origins=False)
    except UnsafeURL as exc:
        if refused is not None:  # to be logged: never with the password it was refused for
            refused.append((without_credentials(url), str(exc)))
        return None
    return url


def gate_for(crawler) -> UrlGate:
    """The gate of a crawl: the spider's ``allowed_domains`` and ``ARHIVA_ALLOW_PRIVATE``."""
    cached = getattr(crawler, "_arhiva_url_gate", None)
    if cached is None:
        spider = getattr(crawler, "spider", None)
        allowed = getattr(spider, "allowed_domains", None)
        cached = UrlGate(list(allowed) if allowed else None, private_setting(crawler.settings))
        crawler._arhiva_url_gate = cached
    return cached


def private_setting(settings) -> list[str]:
    value = settings.get("ARHIVA_ALLOW_PRIVATE")
    if value in (None, "", []):
        from catalog.settings import get_settings

        value = get_settings().allow_private
    return [o for o in (value.replace(",", " ").split() if isinstance(value, str) else value or [])]


class UrlGateMiddleware:
    """The downloader middleware that applies the gate to every request (see the module docstring)."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.mapped = {h.lower() for h in crawler.settings.getdict("ARHIVA_HOST_MAP")}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request):
        if request.meta.get(HOST_MAPPED):  # HostMapMiddleware's request to the mapped local server
            return None
        if request.url.startswith(f"{INTERNAL_SCHEME}:") and request.meta.get("arhiva_internal"):
            return None
        gate = gate_for(self.crawler)
        try:
            scheme, host, port = gate.check(request.url)
            if host not in self.mapped and ip_literal(host.strip("[]")) is None:
                address = await _resolve(host)  # DNSLookupError propagates: the request fails as before
                gate.check_address(scheme, host, port, address)
        except UnsafeURL as exc:
            what = "redirect target" if request.meta.get("redirect_times") else (
                request.meta.get("arhiva_kind") or "link")
            hint = " (add --allow-domain to fetch it)" if exc.kind == "offsite" else ""
            RunLog.from_crawler(self.crawler).error(exc.kind, f"{what} refused: {exc}; not fetched{hint}",
                                                    url=request.url[:2000], key=request.meta.get("arhiva_key"))
            raise GateRefused(f"{exc.kind}: {exc}") from None
        return None


async def _resolve(host: str) -> str:
    """The address the crawl will connect to: the installed resolver (Scrapy's DNS cache)."""
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor

    return await maybe_deferred_to_future(reactor.resolve(host))


class InternalHandler:
    """Download handler of ``arhiva:`` URLs: an empty answer, nothing read or fetched (the
    archive spider's end-of-crawl flush needs a request to yield its last records from)."""

    lazy = False

    def __init__(self, crawler=None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def download_request(self, request):
        from scrapy.http import Response

        return Response(url=request.url, status=200, body=b"", request=request)

    async def close(self) -> None:
        pass


__all__ = ["UrlGate", "UnsafeURL", "Origin", "parse_origin", "parse_origins", "safe_url", "is_public",
           "ip_literal", "gate_for", "UrlGateMiddleware", "InternalHandler", "SCHEMES"]
