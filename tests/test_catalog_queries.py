"""Queries: year overlap, open ranges, undated records, bounding box, text, colorization, pages."""
from __future__ import annotations

import pytest

from catalog.assets import get_store, link_asset, register_image
from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Record
from catalog.queries import QueryError, RecordQuery, _filters, parse_bbox, parse_years, search_records
from tests.helpers import jpeg_bytes

RECORDS = [
    RecordIn("exact-1935", title="Catedrala Mitropolitană", year_lo=1935, year_hi=1935, lat=47.0245, lon=28.8323),
    RecordIn("range-20s", title="Strada Alexandrovskaia", year_lo=1920, year_hi=1929, lat=47.02, lon=28.83),
    RecordIn("before-1900", title="Gara din Chișinău", year_lo=None, year_hi=1899, lat=47.0, lon=28.86),
    RecordIn("after-1950", title="Piața Centrală", year_lo=1951, year_hi=None, lat=47.01, lon=28.84),
    RecordIn("undated", title="Вид на город Кишинёв", lat=47.03, lon=28.8),
    RecordIn("soroca", title="Cetatea Soroca", year_lo=1936, year_hi=1940, lat=48.157, lon=28.301,
             description="Fortăreața de pe Nistru"),
    RecordIn("bender", title="Улица в Бендерах", description="Старая улица, вид на крепость. Фото: Ӂеорӂе Ботезату", year_lo=1960,
             year_hi=1969, lat=46.83, lon=29.47),
    RecordIn("iasi", title="Iași, Palatul Culturii", year_lo=1930, year_hi=1934, lat=47.157, lon=27.587),
    RecordIn("fiji", title="Antimeridian test", year_lo=1930, year_hi=1930, lat=-17.0, lon=179.5),
]


@pytest.fixture()
def catalogue(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "q", "folder").id
        report = upsert_records(s, sid, RECORDS, collection="moldova")
        upsert_records(s, get_or_create_source(s, "other", "page").id,
                       [RecordIn("x", title="Chișinău elsewhere", year_lo=1935, year_hi=1935)])
        store = get_store()
        orig = register_image(s, store, jpeg_bytes(seed=1, grey=True))
        col = register_image(s, store, jpeg_bytes(seed=2))
        link_asset(s, report.ids["exact-1935"], orig.sha256, "original")
        link_asset(s, report.ids["exact-1935"], col.sha256, "colorized")
        link_asset(s, report.ids["range-20s"], orig.sha256, "original")
    return clean_db


def keys(engine, **kw):
    with session_scope(engine) as s:
        page = search_records(s, RecordQuery(**kw, limit=100))
        return {r.source_key for r in page.items}


def test_year_ranges_overlap(catalogue):
    assert keys(catalogue, source="q", year_from=1925, year_to=1935) == {"exact-1935", "range-20s", "iasi", "fiji"}
    assert keys(catalogue, source="q", year_from=1935, year_to=1935) == {"exact-1935"}
    assert keys(catalogue, source="q", year_from=1929, year_to=1929) == {"range-20s"}
    assert keys(catalogue, source="q", year_from=1941, year_to=1950) == set()


def test_open_ranges_on_records_and_on_the_question(catalogue):
    assert "before-1900" in keys(catalogue, year_from=1850, year_to=1890)
    assert "before-1900" not in keys(catalogue, year_from=1900, year_to=1910)
    assert "after-1950" in keys(catalogue, year_from=1990, year_to=2000)
    assert keys(catalogue, source="q", year_from=1955) == {"after-1950", "bender"}
    assert keys(catalogue, source="q", year_to=1925) == {"range-20s", "before-1900"}


def test_undated_records_only_when_asked(catalogue):
    assert "undated" not in keys(catalogue, year_from=1800, year_to=2100)
    assert "undated" in keys(catalogue, year_from=1800, year_to=2100, include_undated=True)
    assert "undated" in keys(catalogue)


def test_bounding_box(catalogue):
    chisinau = (28.7, 46.95, 28.95, 47.1)
    assert keys(catalogue, bbox=chisinau) == {"exact-1935", "range-20s", "before-1900", "after-1950", "undated"}
    assert keys(catalogue, bbox=(28.0, 48.0, 28.5, 48.3)) == {"soroca"}
    assert keys(catalogue, bbox=(179.0, -20.0, -179.0, -10.0)) == {"fiji"}  # across the antimeridian


def test_text_with_and_without_diacritics(catalogue):
    assert keys(catalogue, text="Chișinău", source="q") == {"before-1900"}
    assert keys(catalogue, text="chisinau", source="q") == {"before-1900"}
    assert keys(catalogue, text="CHIŞINĂU", source="q") == {"before-1900"}  # cedilla variant
    assert keys(catalogue, text="mitropolitana") == {"exact-1935"}
    assert keys(catalogue, text="fortareata") == {"soroca"}
    assert keys(catalogue, text="iasi palatul") == {"iasi"}
    assert keys(catalogue, text="palat") == {"iasi"}  # stemmed: Palatul → palat


def test_text_in_cyrillic_with_inflections_and_yo(catalogue):
    assert keys(catalogue, text="Кишинев") == {"undated"}
    assert keys(catalogue, text="кишинёв") == {"undated"}
    assert keys(catalogue, text="улицы") == {"bender"}
    assert keys(catalogue, text="крепости") == {"bender"}
    assert keys(catalogue, text="улица крепость") == {"bender"}
    assert keys(catalogue, text="улица Кишинёв") == set()  # every word must match
    # "й" is a letter of its own, not "и" with a mark: adjectives stem like their other forms
    assert keys(catalogue, text="старый") == keys(catalogue, text="старой крепости") == {"bender"}
    # Moldovan Cyrillic "ӂ" matches "ж" either way
    assert keys(catalogue, text="жеорже") == keys(catalogue, text="Ӂеорӂе") == {"bender"}


def test_combined_filters_and_collection(catalogue):
    assert keys(catalogue, collection="moldova", text="chisinau") == {"before-1900"}
    assert keys(catalogue, text="chisinau") == {"before-1900", "x"}
    assert keys(catalogue, collection="moldova", year_from=1930, year_to=1940, bbox=(26.6, 45.4, 30.2, 48.5)) == {
        "exact-1935", "soroca", "iasi"}
    with pytest.raises(QueryError, match=r"no collection named 'nope' \(there are: moldova"):
        keys(catalogue, collection="nope")  # a typo: an error naming what there is, not an empty page


def test_with_and_without_colorization(catalogue):
    assert keys(catalogue, colorized=True) == {"exact-1935"}
    assert "exact-1935" not in keys(catalogue, colorized=False)
    assert "range-20s" in keys(catalogue, colorized=False)


def test_pagination_is_stable_and_counts(catalogue):
    with session_scope(catalogue) as s:
        p1 = search_records(s, RecordQuery(limit=4, offset=0))
        p2 = search_records(s, RecordQuery(limit=4, offset=4))
        p3 = search_records(s, RecordQuery(limit=4, offset=8))
    assert p1.total == p2.total == 10
    ids = [r.id for r in p1.items + p2.items + p3.items]
    assert ids == sorted(ids) and len(set(ids)) == 10


def test_bad_filters_name_the_problem():
    with pytest.raises(QueryError, match="years"):
        parse_years("1940-1920")
    with pytest.raises(QueryError, match="years"):
        parse_years("nineteen")
    assert parse_years("1920-1940") == (1920, 1940)
    assert parse_years("1935") == (1935, 1935)
    assert parse_years("1920-") == (1920, None)
    with pytest.raises(QueryError, match="bbox"):
        parse_bbox("1,2,3")
    with pytest.raises(QueryError, match="bbox"):
        RecordQuery(bbox=(28, 50, 29, 40)).check()
    with pytest.raises(QueryError, match="limit"):
        RecordQuery(limit=5000).check(max_limit=1000)
    with pytest.raises(QueryError, match="id: 99999999999999999999 is not a record id"):
        RecordQuery(ids=[5, 99999999999999999999]).check()
    RecordQuery(ids=[1, 2**63 - 1]).check()


def test_small_boxes_find_exactly_the_records_inside(clean_db, arhiva_env):
    """Boxes of a few hundred metres to a few km are looked up by 0.01° cells (with the decades):
    the cells must never lose a record that lies in the box, on either side of 0° and of a cell's
    edge (points exactly on a cell boundary included)."""
    import random

    from catalog.search_tokens import cell_tokens

    rng = random.Random(7)
    points = []
    for i in range(400):
        lat0, lon0 = rng.choice([(47.02, 28.83), (-0.005, -0.005), (-33.87, 151.21)])
        lat = round(lat0 + rng.uniform(-0.06, 0.06), rng.choice([2, 3, 6]))  # some exactly on cell edges
        lon = round(lon0 + rng.uniform(-0.06, 0.06), rng.choice([2, 3, 6]))
        year = rng.choice([None, rng.randint(1880, 1990)])
        points.append(RecordIn(f"p{i}", title="Strada", year_lo=year, year_hi=year, lat=lat, lon=lon))
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "grid", "folder").id, points)
    assert cell_tokens(28.80, 47.00, 28.86, 47.06)[0].startswith("~g001_")  # 7 × 7 fine cells
    assert cell_tokens(28.6, 47.0, 28.9, 47.3)[0].startswith("~g01_")  # too many fine cells
    checked = 0
    for _ in range(60):
        p = rng.choice(points)
        size = rng.choice([0.0, 0.004, 0.01, 0.03, 0.07])
        w, s_, e, n = p.lon - rng.uniform(0, size), p.lat - rng.uniform(0, size), p.lon + size, p.lat + size
        years = rng.choice([(None, None), (1900, 1909), (1935, 1944), (1880, 1990)])
        want = {r.source_key for r in points if w <= r.lon <= e and s_ <= r.lat <= n
                and (years[0] is None or (r.year_lo is not None and years[0] <= r.year_lo <= years[1]))}
        q = dict(bbox=(w, s_, e, n), year_from=years[0], year_to=years[1])
        with session_scope(clean_db) as s:
            got = {r.source_key for r in search_records(s, RecordQuery(limit=1000, **q)).items}
            # the search index's way (cell and decade tokens) and the way records are walked and
            # sampled (the exact conditions only) find the same records
            by_index, walked = (set(s.scalars(f.with_only_columns(Record.source_key))) for f in _filters(RecordQuery(**q), s))
        assert got == want == by_index == walked, q
        checked += len(want)
    assert checked > 60  # the boxes held records


@pytest.mark.parametrize("years", [(1925, 1935), (None, 1899), (1990, None), (1700, 1790), (2050, 2100), (1799, 1800),
                                   (2039, 2040), (1930, 1930), (None, None)])
def test_index_tokens_and_exact_conditions_find_the_same_records(catalogue, years):
    """Searches walk records in id order and sample them with the exact year and box conditions
    only, and go through the search index with its decade and cell tokens besides: both must
    select the same records, open ends and years outside the tokens' 1800-2039 included."""
    for box in (None, (28.7, 46.9, 29.6, 48.2), (179.0, -18.0, -179.0, -16.0), (28.83, 47.02, 28.8323, 47.0245)):
        for undated in (False, True):
            q = RecordQuery(year_from=years[0], year_to=years[1], bbox=box, include_undated=undated)
            with session_scope(catalogue) as s:
                by_index, walked = (set(s.scalars(f.with_only_columns(Record.source_key))) for f in _filters(q, s))
                every = {r.source_key for r in search_records(s, RecordQuery(**{**q.__dict__, "limit": 100})).items}
            assert by_index == walked == every, q


def _uses_word_place_tokens(stmt) -> bool:
    return "arhiva_word_place_keys" in str(stmt.compile())


def test_a_word_in_a_few_streets_over_a_decade_is_looked_up_by_word_place_decade_tokens(clean_db):
    """A word + a small box + years goes through the word × 0.01° cell × decade index
    (migration 0010). It must never lose a record: one dated a single year or across two
    decades, one spanning five decades or open-ended (its ``w`` tokens), one with more than
    1,000 distinct words (its ``all`` token), any inflection and diacritics of the word, points
    on cell edges; a number is searched the other way (numbers are not in that index). And the
    same search with the word tested on the rows alone agrees."""
    import random

    from sqlalchemy import text

    from catalog.models import WORD_PLACES_EXPR
    from catalog.search_tokens import ALL_SLOT, HASH_BITS, cell_tokens, decade_tokens
    from catalog.seek import BITMAP_ONLY

    rng = random.Random(11)
    words = ["strada", "biserica", "gara", "Кишинёв", "piața"]
    long_text = " ".join(f"cuvânt{i}" for i in range(1_100))
    points = []
    for i in range(500):
        lat0, lon0 = rng.choice([(47.02, 28.83), (-0.005, -0.005)])
        lat = round(lat0 + rng.uniform(-0.04, 0.04), rng.choice([2, 3, 6]))
        lon = round(lon0 + rng.uniform(-0.04, 0.04), rng.choice([2, 3, 6]))
        lo = rng.randint(1880, 1990)
        lo, hi = rng.choice([(lo, lo), (lo, lo + 9), (lo, lo + 45), (None, lo), (lo, None), (None, None)])
        points.append(RecordIn(f"p{i}", title=" ".join(rng.sample(words, 2)) + f" nr. {i % 7}", year_lo=lo, year_hi=hi, lat=lat, lon=lon,
                               description=long_text if i % 25 == 7 else None))
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "grid", "folder").id, points)
        # the records of over 1,000 words carry only their cell's "all" key
        marked = s.scalar(text(f"SELECT count(*) FROM records WHERE cardinality({WORD_PLACES_EXPR}) = 1 "
                               f"AND ((({WORD_PLACES_EXPR})[1] >> {HASH_BITS}) & 31) = {ALL_SLOT}"))
        assert marked > 5 and marked == sum(1 for r in points if r.description and r.lat is not None
                             and (r.year_lo is not None or r.year_hi is not None))
    checked = used = 0
    for _ in range(80):
        p = rng.choice(points)
        size = rng.choice([0.0, 0.01, 0.03])
        box = (p.lon - rng.uniform(0, size), p.lat - rng.uniform(0, size), p.lon + size, p.lat + size)
        years = rng.choice([(1900, 1909), (1935, 1944), (1880, 1990), (1950, None)])
        word, asked = rng.choice([("strada", "Strada"), ("piața", "piata"), ("Кишинёв", "кишинев"), ("gara", "gări"),
                                  ("nr. 3", "3")])
        q = RecordQuery(bbox=box, year_from=years[0], year_to=years[1], text=f"{asked} biserica", limit=1000)
        w, s_, e, n = box

        def overlaps(r, years=years):
            if r.year_lo is None and r.year_hi is None:
                return False
            lo, hi = r.year_lo or -10**6, r.year_hi or 10**6
            return lo <= (years[1] or 10**6) and hi >= years[0]
        want = {r.source_key for r in points if w <= r.lon <= e and s_ <= r.lat <= n and overlaps(r)
                and word.lower() in r.title.lower() and "biserica" in r.title}
        with session_scope(clean_db) as s:
            by_index, walked = _filters(q, s)
            # up to 512 tokens: 7 × 7 cells over 9 decades (1950-) is one box too many
            tokens = len(cell_tokens(*box)) * (len(decade_tokens(*years)) + 2)
            assert _uses_word_place_tokens(by_index) == (tokens <= 512), q
            # its index path is read through the bitmap, never by walking the primary key
            assert by_index.get_execution_options().get(BITMAP_ONLY, False) == (tokens <= 512)
            used += tokens <= 512
            got = {r.source_key for r in search_records(s, q).items}
            idx = set(s.scalars(by_index.with_only_columns(Record.source_key)))
            assert got == want == idx == set(
                s.scalars(walked.with_only_columns(Record.source_key))), q
        checked += len(want)
    assert checked > 30 and used > 60


def test_an_overlong_word_is_stored_and_found_in_a_few_streets(clean_db):
    """A word of 2,040 letters is a lexeme of its own (PostgreSQL keeps up to 2,047 bytes), too
    long to carry a place and a decade: the record is stored all the same, and a search for that
    word in its streets and decade finds it the other way."""
    word = "b" * 2040
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "long", "folder").id, [
            RecordIn("long", title=f"Gara {word}", year_lo=1946, year_hi=1946, lat=47.0201, lon=28.8399),
            RecordIn("short", title="Gara", year_lo=1946, year_hi=1946, lat=47.0201, lon=28.8399)])
    box = (28.83, 47.01, 28.85, 47.03)
    with session_scope(clean_db) as s:
        assert [r.source_key for r in search_records(s, RecordQuery(text=word, year_from=1940, year_to=1949,
                                                                    bbox=box)).items] == ["long"]
        assert [r.source_key for r in search_records(s, RecordQuery(text="gara", year_from=1940, year_to=1949,
                                                                    bbox=box)).items] == ["long", "short"]


def test_years_spanning_decades_find_exactly_the_records_whose_years_overlap(clean_db):
    """A question spanning decades is looked up by start-year, end-year and crossing tokens
    (migration 0011): they bring exactly the records whose years overlap it (open-ended years,
    spans of many decades, a single year), so no record is read only to be dropped, and the
    search with them finds what the exact year condition finds. Years outside 1800-2039 are
    clamped like the decades: there the tokens bring a few more, which the exact test drops."""
    import random

    from sqlalchemy import select

    from catalog.search_tokens import token_query, year_tokens

    rng = random.Random(5)
    records = []
    for i in range(700):
        y = rng.randint(1780, 2060)
        lo, hi = rng.choice([(None, y), (y, None), (y, y), (y, y + 1), (y, y + 4), (y, y + 9), (y, y + 10),
                             (y, y + 19), (y, y + 45), (y, y + 130)])
        records.append(RecordIn(f"r{i}", title="Fotografie", year_lo=lo, year_hi=hi))
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "years", "folder").id, records)

    def overlaps(r, a, b):
        if r.year_lo is None and r.year_hi is None:
            return False
        lo = r.year_lo if r.year_lo is not None else -10**6
        hi = r.year_hi if r.year_hi is not None else 10**6
        return lo <= (b if b is not None else 10**6) and hi >= (a if a is not None else -10**6)

    def inside(r):
        return all(y is None or 1800 <= y <= 2039 for y in (r.year_lo, r.year_hi))

    tokened = 0
    for _ in range(120):
        a = rng.choice([None, rng.randint(1790, 2050)])
        b = rng.choice([None, (a or 1800) + rng.choice([0, 3, 9, 10, 11, 25, 80])])
        want = {r.source_key for r in records if overlaps(r, a, b)}
        q = RecordQuery(year_from=a, year_to=b, limit=1000)
        with session_scope(clean_db) as s:
            by_index, walked = _filters(q, s)
            assert set(s.scalars(by_index.with_only_columns(Record.source_key))) == want, (a, b)
            assert set(s.scalars(walked.with_only_columns(Record.source_key))) == want, (a, b)
            tokens = year_tokens(a, b)
            if tokens is None:
                continue
            tokened += 1
            found = set(s.scalars(select(Record.source_key).where(token_query(tokens))))
        assert want <= found, (a, b)
        if all(y is None or 1800 <= y <= 2039 for y in (a, b)):
            assert {k for k in found - want if inside(records[int(k[1:])])} == set(), (a, b)
    assert tokened > 60
