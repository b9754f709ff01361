"""The archive spider end to end against the local fake of the archive sites (tests/archive_server.py)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from crawlers.runner import run_crawl
from crawlers.settings import LOCAL_PROFILE
from tests.archive_server import ALLOW, BASA, OMEKA, START_URLS, ArchiveServer

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

O = f"https://{OMEKA}"
B = f"https://{BASA}"
ANA = "https://arhiva-nationala.example"
COMMONS_URL = "https://commons.wikimedia.org/wiki/File:Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg"

# The fixtures' README "Expected records": key → (title, year_lo, year_hi, approx, image_url, licence, source_url)
EXPECTED = {
    f"{O}/s/fototeca/item/1201": ("Strada Alexandru cel Bun, vedere spre Catedrală", 1930, 1930, True,
                                  f"{O}/files/original/3f9c1e7a0b2d4c6e8f1a2b3c4d5e6f708192a3b4.jpg",
                                  "http://creativecommons.org/licenses/by/4.0/"),
    f"{O}/s/fototeca/item/1187": ("Elevele Liceului de fete din Bălți la serbarea de sfârșit de an", 1935, 1935,
                                  False, f"{O}/files/original/a71b0c5d9e3f42018c6d7e8f9a0b1c2d3e4f5061.jpg", None),
    f"{O}/s/fototeca/item/1176": ("Орхей. Базарная площадь", 1948, 1948, False,
                                  f"{O}/files/original/5c0d2e4f6a8b1c3d5e7f9a0b2c4d6e8f0a1b3c5d.jpg",
                                  "http://rightsstatements.org/vocab/NoC-NC/1.0/"),
    f"{O}/s/fototeca/item/1163": ("Soroca. Pescari pe malul Nistrului", None, None, None,
                                  f"{O}/files/original/e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5.jpg",
                                  "http://creativecommons.org/licenses/by-sa/4.0/"),
    f"{B}/item/cp-0212": ("Chișinău. Strada Alexandrovskaia", 1904, 1904, False, f"{B}/files/cp-0212-r.jpg",
                          "http://creativecommons.org/publicdomain/mark/1.0/"),
    f"{B}/item/cp-0457": ("Chișinău. Grădina Publică, aleea centrală", 1920, 1929, False,
                          f"{B}/iiif/image/3/cp-0457-r/full/max/0/default.jpg",
                          "http://creativecommons.org/publicdomain/mark/1.0/"),
    f"{B}/item/cp-0633": ("Bălți. Gara, vedere dinspre peron", 1941, 1944, False, f"{B}/files/cp-0633-r.jpg", None),
    f"{B}/item/cp-0701": ("Soroca. Vedere generală dinspre Nistru", None, None, None, f"{B}/files/cp-0701-r.jpg",
                          "http://creativecommons.org/licenses/by-nc/4.0/"),
    f"{B}/item/cp-0815": ("Orhei. Biserica Sf. Dumitru", 1910, 1910, True, f"{B}/files/cp-0815-r.jpg",
                          "Domeniu public"),
    COMMONS_URL: ("Soroca, cetatea văzută de pe Nistru, 1936", 1936, 1936, False,
                  "https://upload.wikimedia.org/wikipedia/commons/c/c7/"
                  "Soroca,_cetatea_v%C4%83zut%C4%83_de_pe_Nistru,_1936.jpg", "Public domain"),
    f"{ANA}/wp-content/uploads/2022/12/colindatori-ciutulesti-1972.jpg": (
        "Colindători în satul Ciutulești, raionul Florești", 1972, 1972, False,
        f"{ANA}/wp-content/uploads/2022/12/colindatori-ciutulesti-1972.jpg", None),
    f"{ANA}/wp-content/uploads/2022/12/pomul-de-craciun-piata-victoriei.jpg": (
        "Pomul de iarnă în Piața Victoriei, Chișinău", 1960, 1969, False,
        f"{ANA}/wp-content/uploads/2022/12/pomul-de-craciun-piata-victoriei.jpg", None),
    f"{ANA}/wp-content/uploads/2022/12/serbare-gradinita-5-balti.jpg": (
        "Serbare de Anul Nou la grădinița nr. 5 din Bălți", 1958, 1959, False,
        f"{ANA}/wp-content/uploads/2022/12/serbare-gradinita-5-balti.jpg", None),
}
SOURCE_URL = {k: (f"{ANA}/sarbatori-de-iarna-in-fotografii-de-arhiva/" if k.startswith(ANA) else k) for k in EXPECTED}
AUTHORS = {f"{O}/s/fototeca/item/1201": "Fotograf necunoscut",
           f"{O}/s/fototeca/item/1187": "Atelierul foto «Modern», Bălți",
           f"{O}/s/fototeca/item/1176": "Б. Ковальчук", f"{O}/s/fototeca/item/1163": "Vasile Rusu",
           COMMONS_URL: "Unknown author",
           f"{ANA}/wp-content/uploads/2022/12/colindatori-ciutulesti-1972.jpg": "V. Guzun"}


@pytest.fixture()
def server():
    with ArchiveServer() as srv:
        yield srv


def crawl(srv: ArchiveServer, start_urls, **params: Any) -> dict[str, Any]:
    params = {"start_urls": list(start_urls), "collection": "archives", **params}
    return run_crawl("archive", params, settings_overrides={**LOCAL_PROFILE, "ARHIVA_HOST_MAP": srv.host_map(),
                                                            "LOG_LEVEL": "WARNING"}, timeout=120)


def records(engine) -> dict[str, Any]:
    with engine.connect() as c:
        return {r.source_key: r for r in c.execute(text(
            "SELECT r.*, (SELECT count(*) FROM record_revisions v WHERE v.record_id = r.id) AS revisions, "
            "(SELECT count(*) FROM record_assets a WHERE a.record_id = r.id) AS assets FROM records r"))}


def errors(summary) -> list[dict[str, Any]]:
    return summary["errors"]["examples"]


def test_full_crawl_extracts_every_expected_record(arhiva_env, clean_db, server):
    summary = crawl(server, START_URLS, allow_domains=ALLOW, source="fixtures")
    # the collection lists manifest cp-0458, which the server does not have: not all was harvested
    assert summary["status"] == "partial", summary
    recs = records(clean_db)
    assert set(recs) == set(EXPECTED)  # 13 records: duplicates stored once, cp-0458 and 1215 absent
    for key, (title, lo, hi, approx, image, licence) in EXPECTED.items():
        r = recs[key]
        assert (r.title, r.year_lo, r.year_hi, r.licence, r.url) == (title, lo, hi, licence, SOURCE_URL[key]), key
        assert r.extra["image_url"] == image, key
        assert (r.extra["date"] or {}).get("approx") == approx, key
        if key in AUTHORS:
            assert r.author == AUTHORS[key], key
    assert recs[f"{ANA}/wp-content/uploads/2022/12/colindatori-ciutulesti-1972.jpg"].attribution == \
        "Agenția Națională a Arhivelor"
    # provenance: run, source URL, raw payload as a revision
    run_id = summary["run_id"]
    for r in recs.values():
        assert r.first_seen_run_id == run_id and r.revisions == 1 and r.raw
        assert r.assets == (0 if r.source_key.endswith("/item/1187") else 1)
    assert recs[f"{B}/item/cp-0457"].extra["oai_identifier"] == "oai:basarabica.example:cp-0457"
    with clean_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM collection_members")).scalar() == 13
        assert set(c.execute(text("SELECT DISTINCT run_id FROM record_revisions")).scalars()) == {run_id}
    # the 404s and the broken image are logged on the run; the crawl went on
    logged = {(e["kind"], e.get("url")) for e in errors(summary)}
    assert ("iiif_failed", f"{B}/iiif/3/cp-0458/manifest") in logged
    assert ("image_download", EXPECTED[f"{O}/s/fototeca/item/1187"][4]) in logged
    # OAI paging: the token alone, URL-encoded; stops at the empty token
    oai_queries = [r["query"] for r in server.requests if r["path"] == "/oai/request"]
    assert oai_queries == ["verb=ListRecords&metadataPrefix=oai_dc&set=cartipost",
                           "verb=ListRecords&resumptionToken=oai_dc%2Fcartipost%2F3%2F5%2B2026-11-26T10%3A15%3A02Z"]
    # each page fetched once even when two listings/collections reach it
    fetched = [(r["host"], r["path"], r["query"]) for r in server.requests]
    assert fetched.count((OMEKA, "/s/fototeca/item/1176", "")) == 1
    assert fetched.count((BASA, "/iiif/3/cp-0457/manifest", "")) == 1

    # a second crawl: nothing changed, nothing re-downloaded
    server.requests.clear()
    again = crawl(server, START_URLS, allow_domains=ALLOW, source="fixtures")
    assert again["records"]["new"] == 0 and again["records"]["changed"] == 0
    assert again["records"]["unchanged"] == 13
    images = [r for r in server.requests if r["path"].endswith(".jpg") and "/wiki/" not in r["path"]]
    assert [r["path"] for r in images] == ["/files/original/a71b0c5d9e3f42018c6d7e8f9a0b1c2d3e4f5061.jpg"]

    # an incremental OAI harvest: a deleted record is withdrawn, a changed one gets a revision
    inc = crawl(server, [f"{B}/oai/request"], set="cartipost", from_date="2026-01-01", source="fixtures")
    assert inc["status"] == "succeeded" and inc["records"]["withdrawn"] == 1
    recs = records(clean_db)
    assert recs[f"{B}/item/cp-0633"].status == "withdrawn"
    assert (recs[f"{B}/item/cp-0701"].year_lo, recs[f"{B}/item/cp-0701"].year_hi) == (1910, 1919)
    assert recs[f"{B}/item/cp-0701"].revisions == 2
    assert all(r.status == "active" for k, r in recs.items() if not k.endswith("cp-0633"))


def test_oai_no_records_match_is_an_empty_harvest(arhiva_env, clean_db, server):
    summary = crawl(server, [f"{B}/oai/request?verb=ListRecords&metadataPrefix=oai_dc&set=cartipost"],
                    from_date="2030-01-01")
    assert summary["status"] == "succeeded"
    assert summary["errors"]["count"] == 0 and summary["records"]["new"] == 0
    assert [r["query"] for r in server.requests] == [
        "verb=ListRecords&metadataPrefix=oai_dc&set=cartipost&from=2030-01-01"]


def test_a_bare_oai_endpoint_is_recognised_by_its_answer(arhiva_env, clean_db, server):
    summary = crawl(server, [f"{B}/oai/request"])
    assert summary["status"] == "succeeded" and summary["records"]["new"] == 5
    assert [r["query"] for r in server.requests if r["path"] == "/oai/request"][:2] == [
        "", "verb=ListRecords&metadataPrefix=oai_dc"]


def test_bad_input_is_refused_and_logged(arhiva_env, clean_db, server, monkeypatch):
    monkeypatch.setenv("ARHIVA_MAX_IMAGE_PIXELS", "100000000")  # the bomb is 144 Mpx
    summary = crawl(server, [f"{O}/s/fototeca/page/awkward", f"{B}/oai/bomb?verb=ListRecords&metadataPrefix=oai_dc",
                             f"{B}/oai/xxe?verb=ListRecords&metadataPrefix=oai_dc"],
                    allow_domains=[OMEKA, BASA])
    assert summary["status"] == "partial"  # two feeds could not be read
    # links and redirects outside the allowed domains are never fetched
    assert not [r for r in server.requests if r["host"] == "evil.example"]
    kinds = [e["kind"] for e in errors(summary)]
    offsite = [e for e in errors(summary) if e["kind"] == "offsite"]
    assert {e["url"] for e in offsite} == {"https://evil.example/item/1", "https://evil.example/steal"}
    # XML with entity expansion or external entities is refused
    assert kinds.count("unsafe_xml") == 2
    # the broken image and the decompression bomb are rejected with a reason; their records are kept
    rejected = {e["key"]: e["message"] for e in errors(summary) if e["kind"] == "image_rejected"}
    assert "truncated" in rejected[f"{O}/s/fototeca/item/9001"] or "decoded" in rejected[f"{O}/s/fototeca/item/9001"]
    assert "decompression" in rejected[f"{O}/s/fototeca/item/9002"]
    recs = records(clean_db)
    assert recs[f"{O}/s/fototeca/item/9001"].assets == 0 and recs[f"{O}/s/fototeca/item/9002"].assets == 0
    assert recs[f"{O}/s/fototeca/item/9002"].year_lo == 1930 and recs[f"{O}/s/fototeca/item/9002"].year_hi == 1939
    assert recs[f"{O}/s/fototeca/item/9001"].licence == "http://creativecommons.org/licenses/by-sa/4.0/"
    # an in-domain redirect is followed and keyed by the page it lands on
    assert f"{O}/s/fototeca/item/1163" in recs
    assert not [k for k in recs if "bomb" in k or "xxe" in k]


def test_depth_and_max_pages(arhiva_env, clean_db, server):
    summary = crawl(server, [f"{O}/s/fototeca/item"], depth=0)
    assert summary["status"] == "succeeded" and summary["records"]["new"] == 0
    assert {r["path"] for r in server.requests} == {"/s/fototeca/item"}  # both listing pages, no item
    assert summary["limits"]["links_past_depth"] > 0 and not summary["limits"]["max_pages_reached"]  # said
    server.requests.clear()
    summary = crawl(server, [f"{O}/s/fototeca/item"], max_pages=2)
    pages = [r for r in server.requests if not r["path"].endswith(".jpg")]
    assert len(pages) == 2 and summary["records"]["new"] == 1
    assert summary["limits"]["max_pages_reached"]


def test_bad_parameters_are_refused(arhiva_env, clean_db):
    from crawlers.runner import CrawlError

    with pytest.raises(CrawlError, match="outside the allowed domains"):
        run_crawl("archive", {"start_urls": [f"{O}/x"], "allow_domains": ["other.example"]})
    with pytest.raises(CrawlError, match="START_URL"):
        run_crawl("archive", {"start_urls": []})
    for day in ("last week", "2024-13-45", "2024-02-30T10:00:00Z"):
        with pytest.raises(CrawlError, match="--from"):
            run_crawl("archive", {"start_urls": [f"{B}/oai/request"], "from_date": day})
    for name in (" ", "\u200b", "gara "):  # refused before a run starts, not by the crawl process
        with pytest.raises(CrawlError, match="collection name"):
            run_crawl("archive", {"start_urls": [f"{B}/oai/request"], "collection": name})
    with clean_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM crawl_runs")).scalar() == 0


def test_a_setting_that_does_not_exist_or_cannot_be_its_kind_stops_the_crawl_before_it_starts():
    from crawlers.settings import parse_setting

    assert parse_setting("DOWNLOAD_DELAY=0.5") == ("DOWNLOAD_DELAY", 0.5)
    assert parse_setting("ROBOTSTXT_OBEY=false") == ("ROBOTSTXT_OBEY", False)
    assert parse_setting("DEPTH_PRIORITY=-1") == ("DEPTH_PRIORITY", -1)  # negative where Scrapy means something
    for given, message in (("DOWNLAOD_DELAY=5", "no such setting (did you mean DOWNLOAD_DELAY?)"),
                           ("DOWNLOAD_DELAY=abc", "expected a number, got 'abc'"),
                           ("DOWNLOAD_TIMEOUT=-1", "must not be negative"),
                           ("AUTOTHROTTLE_ENABLED=no", "expected true or false")):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_setting(given)


def test_an_archive_on_a_private_address_is_crawled_when_allowed(arhiva_env, monkeypatch):
    """An intranet archive reached by its IP address: refused, unless ARHIVA_ALLOW_PRIVATE names it
    (the start URLs were checked without that setting, so the message asked for what was set)."""
    from catalog.settings import reset_settings_cache
    from crawlers.runner import CrawlError, checked_params

    intranet = "http://192.168.1.20:8080/iiif/collection/top"
    with pytest.raises(CrawlError, match="refused unless ARHIVA_ALLOW_PRIVATE lists http://192.168.1.20:8080"):
        checked_params("archive", {"start_urls": [intranet]})
    from flows.cli.crawl_common import allow_private_from

    for allow in (lambda: monkeypatch.setenv("ARHIVA_ALLOW_PRIVATE", "http://192.168.1.20:8080"),
                  lambda: allow_private_from({"ARHIVA_ALLOW_PRIVATE": "http://192.168.1.20:8080"})):  # --setting
        monkeypatch.delenv("ARHIVA_ALLOW_PRIVATE", raising=False)
        reset_settings_cache()
        allow()
        reset_settings_cache()
        try:
            assert checked_params("archive", {"start_urls": [intranet]})["start_urls"] == [intranet]
        finally:
            monkeypatch.delenv("ARHIVA_ALLOW_PRIVATE", raising=False)
            reset_settings_cache()


def test_cli_crawl_archive(arhiva_env, clean_db, server):
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    args = ["crawl", "archive", f"{O}/iiif/2/1201/manifest", "--collection", "cli", "--json", *server.cli_settings()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert out["records"]["new"] == 1 and out["images"]["stored"] == 1
    assert set(records(clean_db)) == {f"{O}/s/fototeca/item/1201"}
    # a failed image is listed with its record and the image's own URL (not the record's alone)
    failed = CliRunner().invoke(app, ["crawl", "archive", f"{O}/s/fototeca/item/1187", "--collection", "cli",
                                      "--source", "one", *server.cli_settings()])
    image = EXPECTED[f"{O}/s/fototeca/item/1187"][4]
    assert f"image_download {O}/s/fototeca/item/1187 {image} HTTP 404" in " ".join(failed.stderr.split()), \
        failed.stderr


def test_a_start_url_that_answers_with_nothing_readable_is_not_a_success(arhiva_env, clean_db, server):
    """A feed down for maintenance (an HTML page at the OAI address), a JSON error, an RSS feed: the
    run is partial and says what came back, never a success with nothing in it."""
    server.add(BASA, "/oai/down", "<html><body><h1>Down for maintenance</h1><p>Back soon.</p></body></html>",
               ctype="text/html; charset=UTF-8")
    server.add(BASA, "/api/broken", '{"error": "maintenance"}', ctype="application/json")
    server.add(BASA, "/rss", '<?xml version="1.0"?><rss version="2.0"><channel><title>Noutăți</title></channel></rss>',
               ctype="application/rss+xml")
    for i, path in enumerate(("/oai/down?verb=ListRecords&metadataPrefix=oai_dc", "/api/broken", "/rss")):
        summary = crawl(server, [f"https://{BASA}{path}"], source=f"down-{i}")
        assert summary["status"] == "partial", (path, summary)
        assert summary["errors"]["by_kind"] == {"unsupported_content": 1}, (path, summary)
    assert "no item, listing, manifest or feed" in errors(summary := crawl(
        server, [f"https://{BASA}/oai/down"], source="down-3"))[0]["message"], summary


def test_an_item_page_caught_in_a_redirect_loop_is_a_page_lost_not_a_success(arhiva_env, clean_db, server):
    """Scrapy's duplicate filter drops the request that comes back round a loop without a word:
    the page counts as failed, and the run is partial. A redirect to a page the crawl already read
    is not a loss."""
    page = '<html><head><meta property="og:title" content="{t}"><meta property="og:image" content="{i}"></head></html>'
    items = ["/loop/item/1", "/loop/redirloop", "/loop/old/2", "/loop/item/2"]
    links = "".join(f'<li><a href="{p}">x</a></li>' for p in items)
    server.add(BASA, "/loop/list", f'<html><body><ul class="item-list">{links}</ul></body></html>', "text/html")
    for n in (1, 2):
        server.add(BASA, f"/loop/item/{n}", page.format(t=f"Vedere {n}", i=f"https://{BASA}/files/loop-{n}.jpg"),
                   "text/html")
    server.add(BASA, "/loop/redirloop", b"", "text/html", status=302, headers={"Location": f"https://{BASA}/loop/hop"})
    server.add(BASA, "/loop/hop", b"", "text/html", status=302, headers={"Location": f"https://{BASA}/loop/redirloop"})
    server.add(BASA, "/loop/old/2", b"", "text/html", status=301, headers={"Location": f"https://{BASA}/loop/item/2"})
    summary = crawl(server, [f"https://{BASA}/loop/list"], source="loops")
    assert summary["status"] == "partial", summary
    assert summary["errors"]["by_kind"] == {"item_failed": 1}, summary
    (err,) = errors(summary)
    assert "redirect loop" in err["message"] and err["url"] == f"https://{BASA}/loop/redirloop", err
    assert sorted(r.title for r in records(clean_db).values()) == ["Vedere 1", "Vedere 2"]
    # the requests the source answered, not arhiva's own no-op ones (the merge buffer's flush);
    # twice each here: the tests' host map sends each on to the local server as a request of its own
    assert summary["requests"]["total"] == summary["requests"]["responses"] == 2 * len(server.requests), \
        (summary["requests"], server.requests)


def test_json_ld_pages_with_a_photo_and_its_fonds_or_several_photos_are_stored(arhiva_env, clean_db, server):
    """A photograph beside the fonds it isPartOf is the page's one record; a page whose JSON-LD holds
    two photographs (a @graph, a top-level array) stores one record per photograph, keyed by its image."""
    from tests.archive_server import FIX, WILD

    w = f"https://{WILD}"
    pages = {"/fototeca/hotin-cetatea-40": "jsonld_photo_in_fonds.html",
             "/objects/harbour-two-views": "jsonld_graph_two_photos.html",
             "/album/soroca-doua-vederi": "jsonld_two_photos_array.html"}
    for path, name in pages.items():
        server.add(WILD, path, (FIX / "wild" / name).read_bytes(), ctype="text/html; charset=UTF-8")
    summary = crawl(server, [f"{w}{p}" for p in pages], allow_domains=[WILD], source="jsonld")
    assert summary["status"] == "succeeded", summary
    recs = records(clean_db)
    assert {k: (r.title, r.year_lo, r.url) for k, r in recs.items()} == {
        f"{w}/fototeca/hotin-cetatea-40": ("Hotin. Cetatea", 1917, f"{w}/fototeca/hotin-cetatea-40"),
        f"{w}/media/harbour-a.jpg": ("Harbour from the lighthouse", 1905, f"{w}/objects/harbour-two-views"),
        f"{w}/media/harbour-b.jpg": ("Harbour at low tide", 1907, f"{w}/objects/harbour-two-views"),
        f"{w}/media/album/soroca-cetatea.jpg": ("Soroca. Cetatea dinspre Nistru", 1936,
                                                f"{w}/album/soroca-doua-vederi"),
        f"{w}/media/album/soroca-piata.jpg": ("Soroca. Piața centrală", 1938, f"{w}/album/soroca-doua-vederi")}
    assert all(r.assets == 1 for r in recs.values())
