"""Polite defaults, in one place, every one overridable; back-off and Retry-After."""
import time
from email.utils import formatdate

import pytest

from crawlers.middlewares import backoff_delay, parse_retry_after
from crawlers.settings import crawler_settings, parse_setting, user_agent


class App:
    user_agent = "arhiva/0.1 (historical photo catalogue)"
    contact_url = "https://example.org/contact"


def test_polite_defaults():
    s = crawler_settings(app_settings=App())
    assert s["USER_AGENT"] == "arhiva/0.1 (historical photo catalogue) (+https://example.org/contact)"
    assert s.getbool("ROBOTSTXT_OBEY") is True
    assert s.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert s.getbool("AUTOTHROTTLE_ENABLED") and s.getfloat("AUTOTHROTTLE_START_DELAY") == 1.0
    assert s.getfloat("DOWNLOAD_DELAY") >= 1.0
    assert s.getbool("COOKIES_ENABLED") is True
    assert s.getbool("TELNETCONSOLE_ENABLED") is False
    assert s.getbool("REMOTE_CONTROL_ENABLED") is False
    codes = {int(c) for c in s.getlist("RETRY_HTTP_CODES")}
    assert {429, 503, 520, 522, 524} <= codes
    mws = s.getdict("DOWNLOADER_MIDDLEWARES")
    assert mws["crawlers.middlewares.BackoffRetryMiddleware"] and \
        mws["scrapy.downloadermiddlewares.retry.RetryMiddleware"] is None


def test_every_setting_overridable():
    s = crawler_settings({"ROBOTSTXT_OBEY": False, "CONCURRENT_REQUESTS_PER_DOMAIN": 4, "USER_AGENT": "x"},
                         app_settings=App())
    assert s.getbool("ROBOTSTXT_OBEY") is False and s.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 4
    assert s["USER_AGENT"] == "x"


def test_user_agent_does_not_repeat_contact():
    class A:
        user_agent = "bot (+https://x.org)"
        contact_url = "https://x.org"
    assert user_agent(A()) == "bot (+https://x.org)"


def test_parse_setting():
    assert parse_setting("DOWNLOAD_DELAY=2.5") == ("DOWNLOAD_DELAY", 2.5)
    assert parse_setting("ROBOTSTXT_OBEY=false") == ("ROBOTSTXT_OBEY", False)
    assert parse_setting("LOG_LEVEL=INFO") == ("LOG_LEVEL", "INFO")
    with pytest.raises(ValueError):
        parse_setting("nothing")


def test_retry_after_seconds_and_date():
    assert parse_retry_after(b"60") == 60.0
    assert parse_retry_after(None) is None and parse_retry_after(b"soon") is None
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_grows_and_is_capped():
    assert backoff_delay(1, 2.0, 100, jitter=0) == 2.0
    assert backoff_delay(3, 2.0, 100, jitter=0) == 8.0
    assert backoff_delay(10, 2.0, 100, jitter=0) == 100
    assert 1.5 <= backoff_delay(1, 2.0, 100) <= 2.5
    assert backoff_delay(1, 0, 100) == 0


def test_network_failures_are_named_for_the_screen():
    from scrapy.exceptions import CannotResolveHostError, DownloadConnectionRefusedError, DownloadTimeoutError
    from twisted.internet.error import ConnectionRefusedError, DNSLookupError

    from crawlers.netwatch import classify

    assert classify(CannotResolveHostError("x"))[1] == classify(DNSLookupError())[1] == "DNS lookup failed"
    assert classify(DownloadConnectionRefusedError())[0] == classify(ConnectionRefusedError())[0] == "refused"
    assert classify(DownloadTimeoutError())[0] == "timeout"
    assert classify(RuntimeError("odd"))[0] == "connection"


def test_a_request_refused_before_it_left_is_no_network_failure():
    """robots.txt's Disallow, the URL gate's refusal, the crawl stopping: Scrapy's IgnoreRequest
    reached no host; never a 'cannot reach' line nor a step toward ARHIVA_NETWORK_GIVE_UP."""
    from types import SimpleNamespace

    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector
    from twisted.internet.error import DNSLookupError

    from crawlers.netwatch import NetworkWatch, is_robots_refusal

    crawler = SimpleNamespace(stats=MemoryStatsCollector(SimpleNamespace(settings=Settings())))
    watch = NetworkWatch(crawler, give_up=45)
    req = Request("http://127.0.0.1:8080/private/x.html")
    for exc in (IgnoreRequest("Forbidden by robots.txt"), IgnoreRequest("offsite: evil.example is outside"),
                IgnoreRequest("the crawl is stopping")):
        assert watch.process_exception(req, exc) is None
    assert not watch.failed and watch.message() == "" and not crawler.stats.get_stats()
    watch.process_exception(req, DNSLookupError())
    assert watch.message() == "cannot reach 127.0.0.1:8080: DNS lookup failed — 1 request failed"
    assert is_robots_refusal(IgnoreRequest("Forbidden by robots.txt"))
    assert not is_robots_refusal(IgnoreRequest("offsite: x")) and not is_robots_refusal(RuntimeError("x"))


def test_installation_crawl_settings_sit_between_defaults_and_the_command_line(monkeypatch, tmp_path):
    import json

    from catalog.settings import Settings

    monkeypatch.setenv("ARHIVA_CRAWL_SETTINGS", json.dumps({"DOWNLOAD_DELAY": 0, "RETRY_TIMES": 9}))
    monkeypatch.setenv("ARHIVA_HOME", str(tmp_path))
    s = crawler_settings({"RETRY_TIMES": 2}, app_settings=Settings())
    assert s.getfloat("DOWNLOAD_DELAY") == 0 and s.getint("RETRY_TIMES") == 2
    assert crawler_settings(app_settings=Settings()).getint("RETRY_TIMES") == 9


def _setting_reads():
    """``(file:line, NAME, has_inline_default)`` for every Scrapy setting read in crawlers/."""
    import ast
    from pathlib import Path

    getters = {"get", "getint", "getfloat", "getbool", "getlist", "getdict", "getdictorlist", "getwithbase"}
    root = Path(__file__).resolve().parent.parent / "crawlers"
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in getters and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str) and node.args[0].value.isupper()):
                continue
            if ast.unparse(node.func.value) == "os.environ":  # environment variables are not settings
                continue
            yield (f"{path.relative_to(root.parent)}:{node.lineno}", node.args[0].value,
                   len(node.args) > 1 or any(k.arg == "default" for k in node.keywords))


def test_every_setting_the_crawlers_read_is_declared_once_without_inline_defaults():
    from scrapy.settings import default_settings

    from crawlers.settings import defaults

    ours = defaults()
    reads = list(_setting_reads())
    names = {name for _, name, _ in reads}
    assert {"ARHIVA_MERGE_BUFFER", "ARHIVA_HOST_MAP", "ARHIVA_PROGRESS_STREAM", "RETRY_BACKOFF_BASE"} <= names
    undeclared = [(where, name) for where, name, _ in reads
                  if name not in ours and (name.startswith("ARHIVA_") or not hasattr(default_settings, name))]
    assert not undeclared, f"declare these in crawlers/settings.py: {undeclared}"
    inline = [(where, name) for where, name, has_default in reads if has_default]
    assert not inline, f"read these without an inline default (it lives in crawlers/settings.py): {inline}"
