"""The pastvu spider end to end, against the local fake PastVu and the test database."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Asset, CollectionMember, CrawlRun, Record, RecordAsset, RecordRevision
from crawlers.runner import run_crawl
from crawlers.settings import LOCAL_PROFILE
from tests.pastvu_server import CHISINAU, FakePastvu, fixture_photos, generate_photos, make_photo

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

FAST = LOCAL_PROFILE | {"CONCURRENT_REQUESTS_PER_DOMAIN": 4, "ARHIVA_BATCH_SIZE": 10, "LOG_LEVEL": "WARNING",
                        "DOWNLOAD_TIMEOUT": 2}
AREA = ",".join(map(str, CHISINAU))


def crawl(server, engine=None, **params):
    settings = FAST | server.allow | params.pop("settings", {})
    progress = params.pop("progress", None)
    p = {"bbox": AREA, "api_url": server.api_url, "tile_size": 0.02} | params
    return run_crawl("pastvu", p, settings_overrides=settings, progress=progress)


@pytest.fixture()
def photos():
    return fixture_photos() | generate_photos(60, seed=7)


@pytest.fixture()
def server(photos):
    with FakePastvu(photos) as srv:
        yield srv


def records(engine, status=None):
    with Session(engine) as c:
        q = select(Record)
        if status:
            q = q.where(Record.status == status)
        return {r.source_key: r for r in c.execute(q).scalars()}


def count(engine, model, *where):
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_full_crawl_lands_every_public_photo_once(server, env):
    summary = crawl(server)
    assert summary["status"] == "succeeded", summary
    expected = server.public_in(CHISINAU)
    got = records(env)
    assert set(got) == {str(c) for c in expected}
    assert summary["records"]["new"] == len(expected)
    for key, r in got.items():
        p = server.photos[int(key)]
        assert (r.lat, r.lon) == (p["geo"][0], p["geo"][1])
        assert (r.year_lo, r.year_hi) == (p["year"], p["year2"])
        assert r.url == f"{server.base_url}/p/{key}"
        assert r.first_seen_run_id == r.last_seen_run_id == summary["run_id"]
        assert r.raw["listing"]["cid"] == int(key) and r.raw["giveForPage"]["photo"]["cid"] == int(key)
    # not public, or without coordinates: never asked for
    assert all(server.photos[c]["s"] == 5 for c in server.views)
    assert set(server.views) == expected and all(v == 1 for v in server.views.values())
    # one image each, with the strip left out of the crop box
    with Session(env) as c:
        links = c.execute(select(RecordAsset, Asset.width, Asset.height).join(Asset)).all()
    assert len(links) == len(expected)
    for link, w, h in links:
        assert link.role == "original" and link.source_url.startswith(f"{server.base_url}/_p/d/")
        assert link.first_seen_run_id == summary["run_id"]
        p = server.photos[int(next(k for k, r in got.items() if r.id == link.record_id))]
        assert link.crop_box == [0, 0, w, h - p["waterhs"]] and h - p["waterhs"] == p["hs"]
    assert count(env, RecordRevision) == len(expected)
    assert count(env, CollectionMember) == 0  # no collection asked (the CLI gives "pastvu")
    # politeness: our User-Agent, the session cookie kept, JPEG asked for
    api_calls = [r for r in server.log if r["kind"] == "api"]
    assert all("arhiva" in r["ua"] and "+http" in r["ua"] for r in server.log)
    assert all("past.sid=" in (r["cookie"] or "") for r in server.log if r.get("method") == "photo.giveForPage")
    assert len(api_calls) > 10
    assert all("image/jpeg" in r["accept"] for r in server.log if r["kind"] == "image")
    # the run row
    with Session(env) as c:
        run = c.get(CrawlRun, summary["run_id"])
    assert run.status == "succeeded" and run.agent == "scrapy:pastvu" and run.ended_at is not None
    assert run.stats["summary"]["records"]["new"] == len(expected)
    assert run.parameters["params"]["bbox"] == list(CHISINAU)


def test_photos_on_tile_edges_are_not_duplicated(env):
    photos = generate_photos(10, seed=3)
    for i, cid in enumerate(range(9_000_000, 9_000_006)):  # exactly on the 0.02° grid lines
        photos[cid] = make_photo(cid, 47.02, 28.80 + 0.02 * (i % 3 + 1), rng=__import__("random").Random(i))
    with FakePastvu(photos) as srv:
        summary = crawl(srv)
        dupes = summary["records"]
    got = records(env)
    expected = srv.public_in(CHISINAU)
    assert set(got) == {str(c) for c in expected}
    assert dupes["new"] == len(expected)
    assert all(v == 1 for v in srv.views.values())
    assert count(env, RecordAsset) == len(expected)


def test_tile_too_big_is_split(photos, env):
    with FakePastvu(photos, max_tile_area=0.0001) as srv:  # 0.01° × 0.01°
        summary = crawl(srv, tile_size=0.04)
    assert summary["status"] == "succeeded"
    assert srv.counts["photo.getByBounds"] > 6
    assert set(records(env)) == {str(c) for c in srv.public_in(CHISINAU)}


def test_recrawl_is_incremental_and_refreshes_changes(server, env):
    first = crawl(server)
    first_requests = server.counts["total"]
    server.reset_counts()
    second = crawl(server)
    assert second["status"] == "succeeded"
    assert server.counts["photo.giveForPage"] == 0 and server.counts["image"] == 0
    assert server.counts["total"] == server.counts["photo.getByBounds"] < first_requests / 5
    n = len(server.public_in(CHISINAU))
    assert second["records"] == {"new": 0, "changed": 0, "unchanged": n, "withdrawn": 0, "rejected": 0,
                                 "skipped": 0}
    got = records(env)
    assert all(r.first_seen_run_id == first["run_id"] and r.last_seen_run_id == second["run_id"]
               for r in got.values())
    with env.connect() as c:
        assert set(c.execute(select(RecordAsset.last_seen_run_id)).scalars()) == {second["run_id"]}
    assert count(env, RecordRevision) == n

    # change a title, a year range and a file; remove one photo; publish a new one
    cids = sorted(server.public_in(CHISINAU))
    a, b, c_, gone = cids[:4]
    server.photos[a]["title"] = "Titlu nou"
    server.photos[b].update(year=1901, year2=1905, y="1901—1905")
    server.photos[c_]["file"] = "n/e/w/newfile123.jpg?s=abc"
    server.photos[gone]["s"] = 9
    server.photos[9_100_000] = make_photo(9_100_000, 47.01, 28.81, rng=__import__("random").Random(5))
    server.reset_counts()
    third = crawl(server)
    assert third["records"]["changed"] == 3 and third["records"]["new"] == 1
    assert third["records"]["withdrawn"] == 1 and third["records"]["unchanged"] == n - 4
    assert server.counts["photo.giveForPage"] == 4 and server.counts["image"] == 2  # new file + new photo
    got = records(env)
    assert got[str(a)].title == "Titlu nou"
    assert (got[str(b)].year_lo, got[str(b)].year_hi, got[str(b)].date_text) == (1901, 1905, "1901—1905")
    assert got[str(gone)].status == "withdrawn" and got[str(gone)].withdrawn_at is not None
    with env.connect() as c:
        revs = dict(c.execute(select(Record.source_key, func.count()).join(RecordRevision, RecordRevision.record_id == Record.id)
                              .group_by(Record.source_key)).all())
        urls = c.execute(select(RecordAsset.source_url).where(RecordAsset.record_id == got[str(c_)].id)).scalars()
        assert any("newfile123" in u for u in urls)
    assert revs[str(a)] == revs[str(b)] == revs[str(c_)] == 2 and revs[str(cids[5])] == 1

    # the photo comes back: active again, unchanged listing, nothing fetched
    server.photos[gone]["s"] = 5
    server.reset_counts()
    fourth = crawl(server)
    assert records(env)[str(gone)].status == "active"
    assert server.counts["photo.giveForPage"] == 0 and fourth["records"]["withdrawn"] == 0


def test_years_filter_and_images_none(server, env):
    summary = crawl(server, years="1900-1930", images="none")
    expected = server.public_in(CHISINAU, years=(1900, 1930))
    assert set(records(env)) == {str(c) for c in expected}
    assert server.counts["image"] == 0 and count(env, RecordAsset) == 0
    assert summary["records"]["new"] == len(expected)
    # asking for images later fetches only the images
    server.reset_counts()
    crawl(server, years="1900-1930")
    assert server.counts["photo.giveForPage"] == 0 and server.counts["image"] == len(expected)
    with env.connect() as c:
        assert all(box is not None for box in c.execute(select(RecordAsset.crop_box)).scalars())


def test_limit_stops_early_and_withdraws_nothing(server, env):
    summary = crawl(server, limit=5, settings={"ARHIVA_IMAGE_WORKERS": 1})  # images measured in a process
    assert summary["status"] == "succeeded" and summary["images"]["stored"] == 5
    assert server.counts["photo.giveForPage"] == 5 and len(records(env)) == 5
    assert count(env, RecordAsset) == 5 and summary["log_file"].endswith(f"crawl-{summary['run_id']}.log")
