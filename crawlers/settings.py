"""Every Scrapy default arhiva uses, in one place.

Polite by default: a descriptive User-Agent with a contact URL, robots.txt,
one request at a time per host, AutoThrottle starting at 1 s, retries with
back-off that honour ``Retry-After``, cookies kept, no telnet console.
Safe by default: every request passes the URL gate (``crawlers.urlgate``),
only http/https handlers exist, pages are at most 16 MB.
Every value can be overridden (``crawler_settings(overrides)``, the CLI's
``--setting NAME=VALUE``, or a spider's ``custom_settings``).
"""
from __future__ import annotations

import sys
from typing import Any

BOT_NAME = "arhiva"
SPIDER_MODULES = ["crawlers"]
SPIDER_LOADER_WARN_ONLY = True

# Politeness
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0         # keep the 1 s floor exact
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = True
DOWNLOAD_TIMEOUT = 60
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False    # Scrapy's code-executing HTTP console: never on

# Retries: our middleware replaces Scrapy's (same settings plus back-off).
RETRY_ENABLED = True
RETRY_TIMES = 4
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 408]
RETRY_BACKOFF_BASE = 2.0          # seconds before the first retry; doubles each time
RETRY_BACKOFF_MAX = 120.0         # longest back-off between two tries
RETRY_AFTER_MAX = 600.0           # longest Retry-After honoured (longer: give up on that request)
DOWNLOADER_MIDDLEWARES = {
    "crawlers.urlgate.UrlGateMiddleware": 45,   # before everything: schemes, origins, private addresses
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # the gate checks hosts and ports
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawlers.middlewares.BackoffRetryMiddleware": 550,
    "crawlers.netwatch.NetworkWatch": 950,  # next to the downloader: sees every failed try
    "crawlers.politeness.SharedPolitenessMiddleware": 990,   # last before the download
}
ARHIVA_SHARED_POLITENESS = True   # a host's delay and concurrency shared by every crawl process (PostgreSQL)
ARHIVA_NETWORK_GIVE_UP = 45.0     # s with requests failing and no answer at all: the crawl fails (0: never)

# Safety (crawlers.urlgate): http and https only; Scrapy's file, s3, ftp and data handlers are off.
DOWNLOAD_HANDLERS = {
    "file": None, "s3": None, "ftp": None, "data": None,
    "arhiva": "crawlers.urlgate.InternalHandler",  # arhiva's own no-op requests, nothing fetched
}
ARHIVA_ALLOW_PRIVATE: list[str] = []  # origins on private/loopback addresses allowed (else ARHIVA_ALLOW_PRIVATE env)
# Pages, feeds and manifests: an archive page is well under 1 MB, an OAI-PMH page or a large IIIF
# collection a few MB. Bigger answers (and compressed ones that inflate past it) are refused;
# images have their own limit (ARHIVA_MAX_IMAGE_BYTES).
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024

# Items: validate, download the image, store in batches.
ITEM_PIPELINES = {
    "crawlers.pipelines.ValidatePipeline": 100,
    "crawlers.pipelines.ImageDownloadPipeline": 200,
    "crawlers.pipelines.CatalogPipeline": 900,
}
EXTENSIONS = {
    "crawlers.progress.ProgressReporter": 500,
}
CONCURRENT_ITEMS = 16
ARHIVA_IMAGE_WORKERS = 0          # processes that decode/measure images (0: threads of the crawl process)
ARHIVA_BATCH_SIZE = 200           # records per catalogue transaction
ARHIVA_BATCH_SECONDS = 5.0        # ... or fewer, when this long passed since the last write
ARHIVA_IMAGES = True              # ImageDownloadPipeline on/off
ARHIVA_IMAGE_ACCEPT = "image/jpeg,*/*;q=0.5"
ARHIVA_PROGRESS_INTERVAL = 1.0    # seconds between progress lines to the parent process
ARHIVA_MAX_ERRORS_KEPT = 200      # error examples stored on the run (all are counted)
ARHIVA_MAX_IMAGE_BYTES = 0        # largest image body downloaded (0: the installation's max_image_bytes)
ARHIVA_MERGE_BUFFER = 2000        # archive spider: photographs held for merging before the complete ones go out

# Set by crawlers.run for each catalogue crawl (left as they are, the crawl refuses to start).
ARHIVA_RUN_ID = 0
ARHIVA_SOURCE_ID = 0
ARHIVA_COLLECTION: str | None = None
ARHIVA_PROGRESS_STREAM = ""       # "stdout" or "stderr": progress lines for the parent process ("": none)
# Tests and benchmarks: {"host": "http://127.0.0.1:PORT"} sends a host's requests to a local server
# (crawlers.archive.middlewares.HostMapMiddleware; the URL gate lets mapped hosts through unresolved).
ARHIVA_HOST_MAP: dict[str, str] = {}

LOG_LEVEL = "INFO"
LOG_FORMATTER = "scrapy.logformatter.LogFormatter"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"

# Fast, impolite profile for tests and benchmarks against a local server.
LOCAL_PROFILE: dict[str, Any] = {
    "ROBOTSTXT_OBEY": False,
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "RETRY_BACKOFF_BASE": 0.05,
    "RETRY_BACKOFF_MAX": 0.2,
    "RETRY_AFTER_MAX": 2.0,
    "RETRY_TIMES": 2,
    "DOWNLOAD_TIMEOUT": 5,
    "ARHIVA_PROGRESS_INTERVAL": 0.2,
}

_NAMES = [n for n in list(globals()) if n.isupper() and n != "LOCAL_PROFILE"]


def user_agent(app_settings: Any = None) -> str:
    """arhiva's User-Agent: the configured one, with the contact URL in it."""
    if app_settings is None:
        from catalog.settings import get_settings

        app_settings = get_settings()
    ua, contact = app_settings.user_agent.strip(), (app_settings.contact_url or "").strip()
    if contact and contact not in ua:
        ua = f"{ua} (+{contact})"
    return ua


def defaults() -> dict[str, Any]:
    """The module's settings as a dict (copies, so callers may change them)."""
    import copy

    return {n: copy.deepcopy(globals()[n]) for n in _NAMES}


def crawler_settings(overrides: dict[str, Any] | None = None, app_settings: Any = None):
    """A ``scrapy.settings.Settings`` with arhiva's defaults, the installation's
    ``crawl_settings`` (config file or ``ARHIVA_CRAWL_SETTINGS``), then ``overrides``."""
    from scrapy.settings import Settings

    if app_settings is None:
        from catalog.settings import get_settings

        app_settings = get_settings()
    s = Settings()
    s.setmodule(__name__, priority="project")
    s.set("USER_AGENT", user_agent(app_settings), priority="project")
    for name, value in (getattr(app_settings, "crawl_settings", None) or {}).items():  # the installation's choices
        s.set(name, value, priority="project")
    for name, value in (overrides or {}).items():
        s.set(name, value, priority="cmdline")
    return s


def parse_setting(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; VALUE read as JSON when it parses. The name must be a
    setting Scrapy or arhiva has, and a number's or a switch's value one too: a typo would
    otherwise leave the politeness the user meant unapplied, or fail the run once it started."""
    import json

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    _check_setting(name, parsed)
    return name, parsed


_NON_NEGATIVE = ("DELAY", "TIMEOUT", "TIMES", "SIZE", "GIVE_UP", "BACKOFF", "CONCURRENT", "MAX", "INTERVAL")


def _check_setting(name: str, value: Any) -> None:
    import difflib

    from scrapy.settings import default_settings

    known = {k: getattr(mod, k) for mod in (default_settings, sys.modules[__name__])
             for k in dir(mod) if k.isupper() and not k.startswith("_")}
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1)
        raise ValueError(f"--setting {name}: no such setting" + (f" (did you mean {near[0]}?)" if near else ""))
    default = known[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"--setting {name}: expected true or false, got {value!r}")
    elif isinstance(default, (int, float)) and default is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--setting {name}: expected a number, got {value!r}")
        if value < 0 and any(part in name for part in _NON_NEGATIVE):
            raise ValueError(f"--setting {name}: must not be negative, got {value}")
