"""Faults: error bodies, 503 + Retry-After, timeouts, bad images, a killed crawl. The crawl goes on."""
from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, CrawlRun, Record, RecordAsset, RecordRevision
from tests.pastvu_server import (
    CHISINAU,
    FakePastvu,
    Fault,
    fixture_photos,
    generate_photos,
    is_call,
    is_image,
)
from tests.test_pastvu_crawl import count, crawl, records

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"


def tile_at(west, south):
    def match(req):
        try:
            return req.get("method") == "photo.getByBounds" and \
                req["params"]["geometry"]["coordinates"][0][0] == [west, south]
        except (KeyError, TypeError, IndexError):
            return False
    return match


def test_errors_are_logged_and_the_crawl_goes_on(env, arhiva_env):
    server = FakePastvu(fixture_photos() | generate_photos(40, seed=11)).start()
    try:
        first = crawl(server)
        assert first["status"] == "succeeded" and first["errors"]["count"] == 0
        n = len(server.public_in(CHISINAU))
        assets_before = count(env, Asset)
        cids = sorted(server.public_in(CHISINAU))[:7]
        a, b, c, d, e, f, g = cids
        old = {k: v.title for k, v in records(env).items()}
        for cid in cids:
            server.photos[cid]["title"] += " (revizuit)"
        for cid in (e, f, g):
            server.photos[cid]["file"] = f"z/z/z/zz{cid}.jpg?s=fresh"
        server.faults += [
            Fault(is_call("photo.giveForPage", a), ("fixture", "error_bad_params.json", 200), None),
            Fault(is_call("photo.giveForPage", b), ("fixture", "error_no_such_photo.json", 200), None),
            Fault(is_call("photo.giveForPage", c), ("fixture", "error_no_such_method.json", 400), None),
            Fault(is_call("photo.giveForPage", d), ("fixture", "error_bad_json.json", 400), None),
            Fault(tile_at(28.82, 47.0), ("status", 503, b"Service Unavailable: session store timeout",
                                         {"Retry-After": "1"}), 1),
            Fault(tile_at(28.8, 47.0), ("sleep", 2.5), 2),       # times out twice: the tile is split
            Fault(is_image(e), ("sleep", 2.5), None),            # every try times out
            Fault(is_image(f), ("truncate",), None),
            Fault(is_image(g), ("html_image",), None),
        ]
        server.reset_counts()
        second = crawl(server, settings={"DOWNLOAD_TIMEOUT": 1, "RETRY_TIMES": 1})
        assert second["status"] == "succeeded", second
        kinds = second["errors"]["by_kind"]
        assert kinds["giveForPage"] == 4, second["errors"]
        assert kinds["image_download"] == 1 and kinds["image_rejected"] == 2
        assert second["records"]["changed"] == 3 and second["records"]["unchanged"] == n - 7, (second, [(r["path"], r.get("params")) for r in server.log if tile_at(28.8, 47.0)(r)])
        assert second["records"]["withdrawn"] == 1  # NO_SUCH_PHOTO: no longer visible
        reasons = {x["key"]: x["message"] for x in second["errors"]["examples"] if x.get("key")}
        assert "BAD_PARAMS" in reasons[str(a)] and "NO_SUCH_METHOD" in reasons[str(c)]
        assert "BAD_REQUEST" in reasons[str(d)]
        assert "truncated" in reasons[str(f)] and "HTML" in reasons[str(g)]
        # the 503 was retried after its Retry-After, the slow tile was split
        t503 = [r["t"] for r in server.log if tile_at(28.82, 47.0)(r)]
        assert len(t503) == 2 and t503[1] - t503[0] >= 0.9
        assert len([r for r in server.log if tile_at(28.8, 47.0)(r)]) >= 3
        assert second["requests"]["retries"] >= 2
        # nothing stored was damaged
        got = records(env)
        for cid in (a, c, d):
            assert got[str(cid)].title == old[str(cid)] and got[str(cid)].status == "active"
        assert got[str(b)].status == "withdrawn" and got[str(b)].title == old[str(b)]
        for cid in (e, f, g):
            assert got[str(cid)].title.endswith("(revizuit)")
        assert count(env, Asset) == assets_before  # no broken image stored
        assert count(env, RecordAsset) == n
        blobs = arhiva_env / "blobs"
        assert not [p for p in blobs.rglob("*") if p.name.startswith((".tmp-", ".incoming-"))]
        with Session(env) as s:
            run = s.get(CrawlRun, second["run_id"])
            assert run.stats["summary"]["errors"]["count"] == second["errors"]["count"] >= 7
        # the next crawl, without faults, repairs what failed (and only that)
        server.faults.clear()
        server.reset_counts()
        third = crawl(server)
        assert third["errors"]["count"] == 0
        assert server.counts["photo.giveForPage"] == 4 and server.counts["image"] == 3
        got = records(env)
        assert all(got[str(cid)].title.endswith("(revizuit)") and got[str(cid)].status == "active" for cid in cids)
        with Session(env) as s:
            for cid in (e, f, g):
                urls = s.execute(select(RecordAsset.source_url).where(
                    RecordAsset.record_id == got[str(cid)].id)).scalars().all()
                assert any("fresh" in u for u in urls)
    finally:
        server.stop()


def test_crawl_killed_midway_then_restarted(env):
    photos = fixture_photos() | generate_photos(80, seed=5)
    with FakePastvu(photos, latency=0.01) as server:
        n = len(server.public_in(CHISINAU))
        killed = {}

        def kill_after_some(p):
            if p.get("records/new", 0) >= 10 and not killed:
                killed["at"] = p["records/new"]
                os.kill(p["pid"], signal.SIGKILL)

        first = crawl(server, progress=kill_after_some, settings={"ARHIVA_BATCH_SIZE": 5,
                                                                  "CONCURRENT_REQUESTS_PER_DOMAIN": 2})
        assert killed and first["status"] == "failed" and "exited" in first["error"]
        stored = len(records(env))
        assert 10 <= stored < n
        with Session(env) as s:
            assert s.get(CrawlRun, first["run_id"]).status == "failed"
        views_before = sum(server.views.values())
        second = crawl(server)
        assert second["status"] == "succeeded"
        got = records(env)
        assert set(got) == {str(c) for c in server.public_in(CHISINAU)}
        assert second["records"]["new"] == n - stored and second["records"]["unchanged"] == stored
        assert sum(server.views.values()) - views_before == n - stored  # stored ones not asked again
        assert count(env, RecordAsset) == n and count(env, RecordRevision) == n
        with Session(env) as s:
            dupes = s.execute(select(Record.source_key).group_by(Record.source_key)
                              .having(func.count() > 1)).all()
        assert not dupes


def test_a_transient_error_body_for_every_photo_is_retried_within_the_crawl(env):
    """PastVu once answered UNHANDLED_ERROR for a photo: the first crawl must still store every photo."""
    photos = fixture_photos() | generate_photos(25, seed=13)
    with FakePastvu(photos) as server:
        public = server.public_in(CHISINAU)
        server.faults += [Fault(is_call("photo.giveForPage", cid), ("fixture", "error_unhandled.json", 200), 1)
                          for cid in photos]
        server.faults.append(Fault(is_call("photo.getByBounds"), ("status", 502, b"Bad Gateway", {}), 2))
        first = crawl(server)
        assert first["status"] == "succeeded", first
        assert set(records(env)) == {str(c) for c in public}
        assert first["errors"]["count"] == 0, first["errors"]
        assert first["requests"]["retries"] >= len(public)
        asked = [r for r in server.log if r.get("method") == "photo.giveForPage"]
        assert len(asked) == 2 * len(public)  # each once more, no more


def test_permanent_answers_are_not_asked_again(env):
    photos = fixture_photos()
    with FakePastvu(photos) as server:
        cid = sorted(server.public_in(CHISINAU))[0]
        server.faults.append(Fault(is_call("photo.giveForPage", cid), ("fixture", "error_no_such_photo.json", 200),
                                   None))
        first = crawl(server)
        asked = [r for r in server.log if r.get("method") == "photo.giveForPage" and r.get("cid") == cid]
        assert len(asked) == 1 and first["errors"]["by_kind"] == {"giveForPage": 1}


def test_what_the_source_never_gave_makes_the_crawl_partial(env):
    """A tile that answers 503 every time, a photo whose page is an error every time: partial, not succeeded."""
    photos = fixture_photos()
    with FakePastvu(photos) as server:
        cid = sorted(server.public_in(CHISINAU))[0]
        server.faults += [Fault(is_call("photo.giveForPage", cid), ("fixture", "error_unhandled.json", 200), None),
                          Fault(tile_at(28.82, 47.0), ("status", 503, b"Service Unavailable", {}), None)]
        summary = crawl(server)
        assert summary["status"] == "partial", summary
        assert str(cid) not in records(env)
        assert summary["records"]["withdrawn"] == 0  # nothing is withdrawn on the word of a partial listing
    with FakePastvu(photos) as server:
        again = crawl(server)  # the next crawl, the source answering again, gets the rest
        assert again["status"] == "succeeded" and str(cid) in records(env)
