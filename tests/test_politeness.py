"""Two crawl processes of one host keep that host's delay and concurrency together (through PostgreSQL)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine

from catalog.hostslots import HostGate

HOST = "photos.example"
DELAY, ANSWER = 0.3, 0.45   # the host's delay; each answer takes longer than it (concurrency shows)
PAGES = 10  # each crawl lasts seconds, so the two overlap even when one starts late


class SlowSite(ThreadingHTTPServer):
    """Item pages that take ANSWER seconds; keeps when each request came and how many were in flight."""

    daemon_threads = True

    def __init__(self):
        self.hits: list[tuple[float, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        site: SlowSite = self.server
        with site.lock:
            site.hits.append((time.monotonic(), self.path))
            site.in_flight += 1
            site.most_in_flight = max(site.most_in_flight, site.in_flight)
        time.sleep(ANSWER)
        key = self.path.rsplit("/", 1)[-1]
        body = (f'<html><head><meta property="og:title" content="Photo {key}"><title>Photo {key}</title>'
                f'<meta property="og:image" content="https://{HOST}/img/{key}.jpg">'  # (images not fetched)
                f"</head><body><h1>Photo {key}</h1></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with site.lock:
            site.in_flight -= 1

    def log_message(self, *args):
        pass


@pytest.fixture()
def site():
    server = SlowSite()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def crawl_twice_at_once(site: SlowSite, shared: bool) -> list[float]:
    """Two crawl processes (``run_crawl`` starts each in a child process), PAGES pages each, one host;
    returns when the requests came."""
    from crawlers.runner import run_crawl

    settings = {"ARHIVA_HOST_MAP": {HOST: f"http://127.0.0.1:{site.server_port}"}, "DOWNLOAD_DELAY": DELAY,
                "AUTOTHROTTLE_ENABLED": False, "ROBOTSTXT_OBEY": False, "ARHIVA_SHARED_POLITENESS": shared,
                "ARHIVA_IMAGES": False, "LOG_LEVEL": "WARNING"}
    results: dict[str, dict] = {}

    def crawl(who: str) -> None:
        results[who] = run_crawl("archive", {"start_urls": [f"https://{HOST}/{who}/item/{i}" for i in range(PAGES)],
                                             "allow_domains": [HOST], "source": f"polite-{who}",
                                             "collection": "polite"}, settings_overrides=settings, timeout=180)

    threads = [threading.Thread(target=crawl, args=(who,)) for who in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert {who: r["status"] for who, r in results.items()} == {"a": "succeeded", "b": "succeeded"}, results
    times = [t for t, _ in site.hits]
    assert len(times) == 2 * PAGES and {path.split("/")[2] for _, path in site.hits} == {"a", "b"}
    firsts = {who: min(t for t, path in site.hits if path.split("/")[2] == who) for who in "ab"}
    lasts = {who: max(t for t, path in site.hits if path.split("/")[2] == who) for who in "ab"}
    assert firsts["a"] < lasts["b"] and firsts["b"] < lasts["a"], "the two crawls did not overlap in time"
    return sorted(times)


def test_two_crawl_processes_share_a_hosts_delay_and_concurrency(arhiva_env, site):
    times = crawl_twice_at_once(site, shared=True)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= DELAY - 0.02, gaps
    assert site.most_in_flight == 1


def test_without_sharing_two_processes_hit_the_host_twice_as_hard(arhiva_env, site):
    """The control: the same crawls with the shared limit switched off break both limits."""
    times = crawl_twice_at_once(site, shared=False)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert site.most_in_flight == 2 and min(gaps) < DELAY, gaps


def test_waiting_in_line_and_a_dead_process_holds_nothing(pg_url):
    """A request that finds the host's slot taken waits in line; slots are advisory locks of a connection,
    so a process that dies (its connection gone) holds nothing."""
    one, two = HostGate(create_engine(pg_url)), HostGate(create_engine(pg_url))
    try:
        assert one.enter("gone.example", 0.0, 1) == (0, 0.0)
        waiter: list = []
        t = threading.Thread(target=lambda: waiter.append(two.enter("gone.example", 0.0, 1)))
        t.start()
        t.join(1.5)
        assert t.is_alive() and not waiter  # in line
        one.close()  # the process's connections are gone
        t.join(10)
        assert waiter and waiter[0][0] == 0
        two.leave("gone.example", 0)
        first, second = two.enter("other.example", 5.0, 2), two.enter("other.example", 5.0, 2)
        assert {first[0], second[0]} == {0, 1} and first[1] == 0 and 4.9 < second[1] <= 5.0  # a delay apart
    finally:
        one.close()
        two.close()


def test_the_gate_never_takes_the_crawls_own_connections(pg_url):
    """Sixteen slots held at once leave the crawl's pool (here one connection) free for its catalogue writes."""
    crawl_pool = create_engine(pg_url, pool_size=1, max_overflow=0, pool_timeout=2)
    gate = HostGate(crawl_pool)
    try:
        slots = [gate.enter("busy.example", 0.0, 16) for _ in range(16)]
        assert sorted(s[0] for s in slots) == list(range(16))
        with crawl_pool.connect() as conn:  # would time out if the gate held the pool's connection
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        for slot, _ in slots:
            gate.leave("busy.example", slot)
    finally:
        gate.close()
        crawl_pool.dispose()
