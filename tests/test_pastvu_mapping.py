"""giveForPage payloads → catalogue records; the watermark strip."""
import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog.db import session_scope
from catalog.ingest import get_or_create_source, upsert_records, validate
from catalog.models import RecordRevision
from crawlers.pastvu.mapping import (
    LICENCE,
    STRIP_BASE_PHOTO_HEIGHT,
    STRIP_BASE_PX,
    crop_box_rule,
    image_url,
    latlon,
    listing_entry,
    same_listing,
    strip_height_by_rule,
    strip_html,
    to_record,
)

FIX = Path(__file__).parent / "fixtures" / "pastvu"
BASE = "https://pastvu.com"


def load(name):
    return json.loads((FIX / name).read_text(encoding="utf-8"))["result"]


def listing(cid):
    return next(p for p in load("getbybounds_photos.json")["photos"] if p["cid"] == cid)


def test_year_range_diacritics_and_html():
    res = load("giveforpage_1345288.json")
    rec = to_record(res, listing(1345288), base_url=BASE)
    assert validate(rec) is None
    assert rec.source_key == "1345288"
    assert (rec.year_lo, rec.year_hi, rec.date_text) == (1900, 1910, "1900—1910")
    assert (rec.lat, rec.lon) == (47.026312, 28.835113)  # [lat, lng] in the payload
    assert rec.direction == "e"
    assert rec.title == "Strada Alexandru cel Bun, colț cu strada Mitropolit Varlaam"
    assert "<" not in rec.description and "\n" in rec.description and "#1345201" in rec.description
    assert rec.author == "Fotograf necunoscut"
    assert rec.extra["source_text"] == "Colecția personală a autorului încărcării"
    assert rec.place == "str. Alexandru cel Bun / str. Mitropolit Varlaam, Chișinău"
    assert rec.url == "https://pastvu.com/p/1345288"
    assert "Vasile Bîrcă" in rec.attribution and rec.url in rec.attribution
    assert rec.licence == LICENCE and "non-commercial" in rec.rights and "CC0" in rec.rights
    assert rec.extra["uploader"] == {"login": "vasile_b", "disp": "Vasile Bîrcă"}
    assert [r["cid"] for r in rec.extra["regions"]] == [21, 3588, 3590]
    assert rec.extra["image"]["strip_height"] == 16  # waterhs for the standard size
    assert rec.raw["giveForPage"] == res and rec.raw["listing"]["cid"] == 1345288  # raw kept, HTML included
    assert "<a" in rec.raw["giveForPage"]["photo"]["desc"]


def test_optional_fields_missing():
    rec = to_record(load("giveforpage_1438804.json"), listing(1438804), base_url=BASE)
    assert validate(rec) is None
    assert rec.direction is None and rec.author is None and rec.description is None
    assert (rec.year_lo, rec.year_hi, rec.date_text) == (1912, 1912, "1912")
    assert rec.place == "Centru, Chișinău, Молдова"  # regions, from the smallest up
    assert (rec.lat, rec.lon) == (47.025834, 28.830771)
    assert rec.extra["image"]["strip_height"] == 16
    assert to_record(load("giveforpage_1438804.json"), None, base_url=BASE, size="a").extra["image"][
        "strip_height"] == 18


def test_russian_text_and_links():
    rec = to_record(load("giveforpage_1402117.json"), listing(1402117), base_url=BASE)
    assert rec.author == "Неизвестный фотограф"
    assert "https://example.org/catalogue/1889" in rec.description and "<br>" not in rec.description
    assert "\n\n" in rec.description


def test_strip_html():
    assert strip_html(None) is None
    assert strip_html("") is None
    assert strip_html("a &lt;b&gt; &amp; c<br>d") == "a <b> & c\nd"
    assert strip_html('<a href="/p/1" class="sharpPhoto">#1</a> x') == "#1 x"


def test_latlon_order_and_invalid():
    assert latlon([47.1, 28.2]) == (47.1, 28.2)
    assert latlon(None) is None and latlon([1]) is None and latlon(["x", 1]) is None
    assert latlon([128.0, 47.0]) is None  # a [lng, lat] beyond ±90 is refused


def test_listing_entry_ignores_unknown_keys():
    e = listing_entry({"cid": 5, "geo": [47.0, 28.0], "file": "a/b/c/abc.jpg", "title": "", "year": 1900,
                       "year2": 1900, "__v": 0})
    assert "__v" not in e and e["title"] == ""
    assert listing_entry({"cid": 0}) is None and listing_entry({"title": "x"}) is None
    assert same_listing(dict(e), e)
    assert not same_listing(dict(e, title="other"), e)
    assert not same_listing(dict(e, file="a/b/c/abc.jpg?s=1"), e)
    assert not same_listing(None, e)


def test_image_url_keeps_cache_buster():
    assert image_url(BASE, "d", "r/c/b/rcbrdc3nfr.jpg?s=6b04d3bdff") == \
        "https://pastvu.com/_p/d/r/c/b/rcbrdc3nfr.jpg?s=6b04d3bdff"


@pytest.mark.parametrize("photo_h,strip", [(100, 14), (600, 14), (668, 16), (666, 16), (780, 18), (1290, 30),
                                           (2011, 47)])
def test_strip_rule_matches_the_spec_and_fixtures(photo_h, strip):
    expected = 14 if photo_h <= 600 else round(14 * photo_h / 600)
    assert expected == strip and (STRIP_BASE_PX, STRIP_BASE_PHOTO_HEIGHT) == (14, 600)
    assert strip_height_by_rule(photo_h + strip) == strip


def test_crop_box_uses_the_known_strip_height_then_the_rule():
    assert crop_box_rule(16)(1050, 684) == [0, 0, 1050, 668]
    assert crop_box_rule(None)(1050, 684) == [0, 0, 1050, 668]
    assert crop_box_rule(999)(200, 114) == [0, 0, 200, 100]  # implausible: the rule


def test_years_go_through_the_date_rules():
    res = copy.deepcopy(load("giveforpage_1345288.json"))
    res["photo"].update(year=1850, year2=1790)  # reversed, and starting before photography
    rec = to_record(res, None, base_url=BASE)
    assert (rec.year_lo, rec.year_hi) == (1826, 1850)
    res["photo"].update(year=1700, year2=1790)  # wholly before photography: no years
    assert (to_record(res, None, base_url=BASE).year_lo, to_record(res, None, base_url=BASE).year_hi) == (None, None)


def test_view_counters_are_no_change(clean_db):
    """giveForPage counts a view: a second fetch (another crawl, --limit) differs only in counters."""
    res = load("giveforpage_1345288.json")
    first = to_record(res, listing(1345288), base_url=BASE)
    bumped = copy.deepcopy(res)
    photo = bumped["photo"]
    photo.update(vcount=photo["vcount"] + 1, vdcount=photo["vdcount"] + 1, vwcount=photo["vwcount"] + 1,
                 ccount=photo["ccount"] + 2)
    for region in photo["regions"]:
        region["phc"] += 5
    second = to_record(bumped, listing(1345288), base_url=BASE)
    assert first.payload_hash() == second.payload_hash()
    assert second.raw["giveForPage"]["photo"]["vcount"] == photo["vcount"]  # what PastVu said is kept
    renamed = copy.deepcopy(bumped)
    renamed["photo"]["title"] = "Alt titlu"
    assert to_record(renamed, listing(1345288), base_url=BASE).payload_hash() != first.payload_hash()
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu").id
    with session_scope(clean_db) as s:
        upsert_records(s, sid, [first])
    with session_scope(clean_db) as s:
        again = upsert_records(s, sid, [second])
    assert (again.new, again.changed, again.unchanged) == (0, 0, 1)
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(RecordRevision)) == 1
