"""The text of a search: words, "phrases", OR, -exclusions and stop words, read alike
by every path a search can take (the search index, the word × place index, rows alone)."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import Record
from catalog.queries import QueryError, RecordQuery, _filters, search_records
from catalog.search_text import Term, TextQuery, TextQueryError, parse_text, text_match

W, P = "word", "phrase"


@pytest.mark.parametrize("text, all_of, none_of", [
    ("strada catedrala", [[(W, "strada")], [(W, "catedrala")]], []),
    ('"strada veche" -biserica', [[(P, "strada veche")]], [(W, "biserica")]),
    ("gara OR podul strada", [[(W, "gara"), (W, "podul")], [(W, "strada")]], []),
    ("strada gara | podul", [[(W, "strada")], [(W, "gara"), (W, "podul")]], []),
    ("Alba-Iulia", [[(W, "Alba")], [(W, "Iulia")]], []),  # a hyphen inside a word separates
    ("-gara OR podul", [[(W, "podul")]], [(W, "gara")]),  # OR after an exclusion joins nothing
    ("OR gara OR", [[(W, "gara")]], []),
    ("gara or podul", [[(W, "gara")], [(W, "or")], [(W, "podul")]], []),  # only OR in capitals
    ("chișin* gara*", [[(W, "chișin")], [(W, "gara")]], []),  # no prefixes: words are stemmed
    ('"unclosed phrase', [[(P, "unclosed phrase")]], []),
    ('"" "one" x', [[(W, "one")], [(W, "x")]], []),
    ('a -b -"c, d!"', [[(W, "a")]], [(W, "b"), (P, "c, d!")]),
    ('"strada"-veche x-y', [[(W, "strada")], [(W, "veche")], [(W, "x")], [(W, "y")]], []),  # "-" only after a space
    ('"strada  Alba-Iulia"', [[(P, "strada Alba-Iulia")]], []),  # a phrase as typed
    ("Chis\u0326ina\u0306u", [[(W, "Chișinău")]], []),  # a base and a combining mark: composed
    ("gara gara", [[(W, "gara")]], []),
    ("", [], []),
    ("  ", [], []),
])
def test_the_syntax_is_read_like_a_web_search_box(text, all_of, none_of):
    q = parse_text(text)
    assert q == TextQuery(tuple(tuple(Term(*t) for t in c) for c in all_of), tuple(Term(*t) for t in none_of))
    assert bool(q) == bool(all_of or none_of)


def test_unreadable_text_is_refused_with_the_reason():
    for nothing in ("!!! & <-> :*", "🏛️", ")", "OR", "-", '""', "\ufffd\ufffd"):  # was no filter: everything
        with pytest.raises(TextQueryError, match="has no words to search for"):
            parse_text(nothing)
    with pytest.raises(TextQueryError, match="at most 24 words \\(a phrase's words count each\\), got 25"):
        parse_text(" ".join(f"w{i}" for i in range(25)))
    with pytest.raises(TextQueryError, match="got 30"):  # one long phrase is tested on every record with its words
        parse_text('"' + "strada " * 30 + '"')
    with pytest.raises(QueryError, match="at most 24"):
        RecordQuery(text="a " * 30).check()
    with pytest.raises(TextQueryError, match="longer than a word the index holds \\(2,047 bytes\\)"):
        parse_text("gara " + "ă" * 1100)


WORDS = ["strada", "biserica", "gara", "podul", "parcul", "liceul"]


def _has(title: str, term: Term) -> bool:
    words = title.split()
    if term.kind == "word":
        return term.text in words
    n = len(term.words)
    return any(words[i:i + n] == term.words for i in range(len(words) - n + 1))


def _matches(title: str, q: TextQuery) -> bool:
    return (all(any(_has(title, t) for t in clause) for clause in q.all_of)
            and not any(_has(title, t) for t in q.none_of))


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        if kind < 0.4:
            part = rng.choice(WORDS)
        elif kind < 0.6:
            part = '"' + " ".join(rng.sample(WORDS, 2)) + '"'
        else:
            part = rng.choice(WORDS) + " OR " + rng.choice(WORDS)
        parts.append(("-" if rng.random() < 0.25 else "") + part)
    return " ".join(parts)


def test_every_search_path_finds_what_the_syntax_asks(clean_db):
    """Random titles of six words whose stems are all different, random queries of words,
    phrases, OR and exclusions, with and without a small box and years (the box
    and years send a search through the word × place index): the records found are those a
    plain reading of the query picks, by the page, by the index path and by rows alone."""
    rng = random.Random(5)
    recs = []
    for i in range(400):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        y = rng.randint(1900, 1919)
        recs.append(RecordIn(f"r{i}", title=title, year_lo=y, year_hi=y, lat=47.02 + rng.uniform(0, 0.02),
                             lon=28.83 + rng.uniform(0, 0.02)))
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "syntax", "folder").id, recs)
    checked = 0
    for _ in range(60):
        text = _random_text(rng)
        q = parse_text(text)
        placed = rng.random() < 0.5
        want = {r.source_key for r in recs if _matches(r.title, q) and (not placed or 1905 <= r.year_lo <= 1909)}
        query = RecordQuery(text=text, limit=1000, **({"bbox": (28.82, 47.01, 28.86, 47.05), "year_from": 1905,
                                                      "year_to": 1909} if placed else {}))
        with session_scope(clean_db) as s:
            got = {r.source_key for r in search_records(s, query).items}
            by_index, walked = _filters(query, s)
            assert got == want == set(s.scalars(by_index.with_only_columns(Record.source_key))) == set(
                s.scalars(walked.with_only_columns(Record.source_key))), text
        checked += len(want)
    assert checked > 500


def test_stop_words_leave_a_search_and_keep_their_place_in_a_phrase(clean_db):
    """The Russian stemmer leaves stop words out of the index: a search that names one (as
    PastVu's titles do: "Вид на …", "Улица в …") used to find nothing."""
    recs = [RecordIn("vid", title="Вид на город Кишинёв с колокольни"),
            RecordIn("ulitsa", title="Улица в Бендерах", description="Старая улица и крепость"),
            RecordIn("gorod", title="Город: вид")]
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "ru", "folder").id, recs)

    def found(text):
        with session_scope(clean_db) as s:
            return {r.source_key for r in search_records(s, RecordQuery(text=text)).items}
    assert found("вид на город") == found("вид город") == {"vid", "gorod"}
    assert found("улица в Бендерах") == found("старая улица и крепость") == {"ulitsa"}
    assert found('"вид на город"') == {"vid"}  # the stop word's place is kept
    assert found('"вид город"') == set()
    assert found('город -"вид на город"') == {"gorod"}
    for only_stop_words in ("на", "в OR и", '"на в" -город'):  # nothing to look for: said so
        with pytest.raises(QueryError, match=f"text: '{only_stop_words}': every word it requires is a stop "
                                             "word"), session_scope(clean_db) as s:
            search_records(s, RecordQuery(text=only_stop_words))
    with pytest.raises(QueryError, match="-на excludes only stop words"), session_scope(clean_db) as s:
        search_records(s, RecordQuery(text="город -на"))
    assert found("кишинев колокольня") == {"vid"}


def test_a_phrase_is_read_as_the_index_read_its_words(clean_db):
    """PostgreSQL indexes "Alba-Iulia" as the whole and its parts, three positions: a phrase
    with such a word must be read the same way, or it finds nothing (and excludes nothing)."""
    recs = [RecordIn("alba", title="Strada Alba-Iulia veche", year_lo=1930, year_hi=1930, lat=47.02, lon=28.83),
            RecordIn("rostov", title="Вид на Ростов-на-Дону"), RecordIn("other", title="Strada Alba veche")]
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "hy", "folder").id, recs)

    def found(**kw):
        with session_scope(clean_db) as s:
            return {r.source_key for r in search_records(s, RecordQuery(**kw)).items}
    assert found(text='"strada Alba-Iulia"') == {"alba"}
    assert found(text='"strada Alba-Iulia"', year_from=1930, year_to=1939, bbox=(28.82, 47.01, 28.84, 47.03)) == {"alba"}
    assert found(text='"Вид на Ростов-на-Дону"') == {"rostov"}
    assert found(text='strada -"strada Alba-Iulia"') == {"other"}
    assert found(text="Alba-Iulia") == {"alba"}  # unquoted: the words, anywhere


def test_any_word_a_title_shows_finds_it_whatever_punctuation_joins_it(clean_db):
    """PostgreSQL's parser keeps hosts, addresses, file paths and signed numbers whole and drops
    what looks like a tag; the search reads words as a person does. Both sides now split at
    punctuation (migration 0016): each word seen in these titles finds its record."""
    recs = [RecordIn("cat", title="Catedrala (1836–1840) vedere"), RecordIn("piata", title="Piața 1989-08-27"),
            RecordIn("foto", title="foto: O.Popescu"), RecordIn("dot", title="vedere.gara"),
            RecordIn("url", title="sursa http://example.org/foto/gara"), RecordIn("tag", title="Strada <Lenin> nr 5"),
            RecordIn("casa", title="Casa nr.5/7 strada"), RecordIn("mail", description="scrieți la arhiva@mail.md")]
    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "punct", "folder").id, recs,
                       collection="punct")

    def found(text, **kw):
        with session_scope(clean_db) as s:
            return {r.source_key for r in search_records(s, RecordQuery(text=text, collection="punct", **kw)).items}
    assert found("1840") == found("1836") == {"cat"}
    assert found("27") == {"piata"} and found('"1989-08-27"') == {"piata"}
    assert found("popescu") == found("O.Popescu") == found('"O.Popescu"') == {"foto"}
    assert found("gara") == {"dot", "url"} and found("example") == {"url"}
    assert found("lenin") == {"tag"}
    assert found("Casa nr.5/7 strada") == found("casa 7") == {"casa"}  # the title pasted whole
    assert found("mail") == {"mail"}
    assert found("lenin", year_from=None) == found("Lenin", include_undated=True) == {"tag"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from([*"ab ășщё-*\"'|!&:()<>\\_0ʼ\u0301", "OR", " OR ", "на"]),
                     max_size=30).map("".join))
def test_any_text_is_searched_or_refused_never_a_database_error(clean_db, text):
    """Quotes, backslashes, tsquery operators, combining marks, modifier apostrophes (which
    unaccent may turn into quotes), stop words: PostgreSQL never refuses the query built from them."""
    try:
        q = parse_text(text)
    except TextQueryError:
        return
    with session_scope(clean_db) as s:  # a row to test: on an empty table nothing is evaluated
        upsert_records(s, get_or_create_source(s, "any", "folder").id, [RecordIn("1", title="ab ășщё на ʼ")])
        for unindexed in (False, True):
            cond = text_match(Record.search, q, unindexed)
            s.scalar(select(func.count()).select_from(Record).where(cond if cond is not None else True))
