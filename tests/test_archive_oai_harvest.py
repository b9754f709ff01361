"""OAI-PMH harvests end to end against wild.example (tests/archive_server.py): restarts, errors, re-harvests."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.archive_server import WILD, ArchiveServer
from tests.test_archive_crawl import crawl as archive_crawl
from tests.test_archive_crawl import records as stored

W = f"https://{WILD}"
LIST = f"{W}/oai?verb=ListRecords&metadataPrefix=oai_dc"
KEYS = {f"{W}/handle/10.7/101", f"{W}/islandora/object/photos:12", f"{W}/record/rec-3"}


@pytest.fixture()
def server():
    with ArchiveServer() as srv:
        yield srv


def crawl(srv: ArchiveServer, start_urls, **params):
    return archive_crawl(srv, start_urls, source="wild", **params)


def token_requests(srv: ArchiveServer) -> list[str]:
    return [r["query"] for r in srv.requests if r["path"] == "/oai" and "resumptionToken" in r["query"]]


def test_a_restart_that_gets_the_same_token_back_completes_the_list(arhiva_env, clean_db, server):
    server.wild["refuse"] = 1  # the first time the token is asked, the server has forgotten it
    summary = crawl(server, [LIST])
    assert summary["status"] == "succeeded", summary
    assert set(stored(clean_db)) == KEYS  # page 2 was harvested after the restart
    assert token_requests(server) == ["verb=ListRecords&resumptionToken=page2"] * 2
    # page 1, read twice, is one view of each of its records, not two: the next harvest, which
    # reads it once, finds them unchanged (it stored a revision reverting a false one)
    for r in stored(clean_db).values():
        urls = [v["url"] for v in r.extra["views"]]
        assert len(urls) == len(set(urls)) and len(r.extra["oai"]) == 1, r.extra
    again = crawl(server, [LIST])
    assert again["records"]["unchanged"] == 3 and again["records"]["changed"] == 0, again
    assert all(r.revisions == 1 for r in stored(clean_db).values())


def test_a_list_cut_short_is_a_partial_harvest(arhiva_env, clean_db, server):
    server.wild["refuse"] = 2  # refused again after the restart
    summary = crawl(server, [LIST])
    assert summary["status"] == "partial", summary
    assert summary["errors"]["by_kind"] == {"oai_error": 1}
    assert "badResumptionToken" in summary["errors"]["examples"][0]["message"]
    assert set(stored(clean_db)) == KEYS - {f"{W}/record/rec-3"}  # what came is kept
    with clean_db.connect() as c:
        assert c.execute(text("SELECT status FROM crawl_runs WHERE id = :i"), {"i": summary["run_id"]}).scalar() \
            == "partial"


def test_a_list_that_hands_back_its_token_makes_no_progress(arhiva_env, clean_db, server):
    server.wild["loop"] = True
    summary = crawl(server, [LIST])
    assert summary["status"] == "partial"
    assert "no progress" in summary["errors"]["examples"][0]["message"]
    assert len(token_requests(server)) == 1


def test_oai_errors_other_than_no_records_match_are_not_success(arhiva_env, clean_db, server):
    summary = crawl(server, [f"{W}/oai/mods-only?verb=ListRecords&metadataPrefix=oai_dc"])
    assert summary["status"] == "partial"
    assert "cannotDisseminateFormat" in summary["errors"]["examples"][0]["message"]


def test_reharvest_with_new_tokens_stores_no_new_revision(arhiva_env, clean_db, server):
    server.wild["rotate"] = True  # every run of the list hands out other tokens
    first = crawl(server, [LIST])
    second = crawl(server, [LIST])
    assert first["status"] == second["status"] == "succeeded"
    assert token_requests(server) == ["verb=ListRecords&resumptionToken=page2-1",
                                      "verb=ListRecords&resumptionToken=page2-2"]
    assert second["records"]["unchanged"] == 3 and second["records"]["changed"] == 0
    assert all(r.revisions == 1 for r in stored(clean_db).values())


def test_a_record_whose_item_page_moved_stays_one_record(arhiva_env, clean_db, server):
    """A repository that moves its item pages (a DSpace upgrade: handles to new URLs) keeps its OAI
    identifiers: the re-harvest updates the record it had, with a revision, not a second record."""
    first = crawl(server, [LIST])
    before = stored(clean_db)[f"{W}/handle/10.7/101"]
    server.wild["moved"] = True
    second = crawl(server, [LIST])
    assert first["status"] == second["status"] == "succeeded", second
    recs = stored(clean_db)
    assert set(recs) == KEYS  # was four: the moved page became a record of its own
    after = recs[f"{W}/handle/10.7/101"]
    assert after.id == before.id and after.status == "active"
    assert after.url == f"{W}/items/10.7-101" and after.revisions == 2
    assert second["records"]["changed"] == 1 and second["records"]["new"] == 0
    with clean_db.connect() as c:  # the image at its new address is the record's
        urls = c.execute(text("SELECT ra.source_url FROM record_assets ra "
                              "WHERE ra.record_id = :r"), {"r": after.id}).scalars().all()
    assert f"{W}/files/10.7-101/levee_1946.jpg" in urls
    third = crawl(server, [LIST])  # and from then on it is the same record, unchanged
    assert third["records"]["unchanged"] == 3 and third["records"]["changed"] == third["records"]["new"] == 0
    assert stored(clean_db)[f"{W}/handle/10.7/101"].revisions == 2


def test_a_list_in_the_code_page_its_server_names_is_read_in_it(arhiva_env, clean_db, server):
    server.wild["cp1251"] = True  # declared UTF-8, written in windows-1251: not well-formed as declared
    summary = crawl(server, [LIST])
    assert summary["status"] == "succeeded", summary
    recs = stored(clean_db)
    assert set(recs) == KEYS
    assert recs[f"{W}/islandora/object/photos:12"].title == "Базарный день, Кишинёв"


def test_item_pages_of_other_platforms_give_records(arhiva_env, clean_db, server):
    summary = crawl(server, [f"{W}/items/show/42", f"{W}/photo/8841", f"{W}/digital/collection/photos/id/117"],
                    depth=0)
    assert summary["status"] == "succeeded", summary
    recs = stored(clean_db)
    omeka = recs[f"{W}/items/show/42"]
    assert (omeka.title, omeka.year_lo, omeka.year_hi) == ("Ferry crossing at the river mill", 1925, 1925)
    og = recs[f"{W}/photo/8841"]
    assert (og.title, og.year_lo) == ("Tram depot yard, looking north", None)
    cdm = recs[f"{W}/digital/collection/photos/id/117"]
    assert (cdm.year_lo, cdm.licence) == (1938, "http://rightsstatements.org/vocab/NoC-US/1.0/")
    assert summary["images"]["stored"] == 3


def test_a_crawl_stopped_early_keeps_the_records_it_held_for_merging(arhiva_env, clean_db, server):
    """Records wait to be merged with their other views until the crawl goes idle; a crawl that stops
    before (Ctrl-C, SIGTERM, a source gone silent: here a page limit closes it after the first
    page) stores what it holds, as it is, instead of dropping it."""
    from crawlers.runner import run_crawl
    from crawlers.settings import LOCAL_PROFILE

    summary = run_crawl("archive", {"start_urls": [LIST], "collection": "archives", "source": "wild"},
                        settings_overrides={**LOCAL_PROFILE, "ARHIVA_HOST_MAP": server.host_map(),
                                            "LOG_LEVEL": "WARNING", "CLOSESPIDER_PAGECOUNT": 1}, timeout=120)
    assert summary["records"]["new"] >= 2, summary
    assert set(stored(clean_db)) == KEYS - {f"{W}/record/rec-3"}  # the first page's, whole; the rest never came
