"""One oversized record never sinks its batch: per-record limits before COPY, and bisection when
PostgreSQL still refuses a chunk; crawls and loads with a rejected record exit non-zero."""
from __future__ import annotations

import json
import random
import string

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from catalog import records_in
from catalog.db import session_scope
from catalog.ingest import RecordIn, bulk_upsert, get_or_create_source, upsert_records


def _words(n_chars: int, seed: int = 1) -> str:
    """Distinct-looking random words: uncapped, their search vector passes PostgreSQL's 1 MB."""
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n_chars:
        w = "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(3, 9)))
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n_chars]


def _random_key(n: int) -> str:
    rnd = random.Random(n)
    return "https://archive.example/" + "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))


def _stored(engine) -> dict[str, int]:
    with engine.connect() as c:
        return dict(c.execute(text("SELECT source_key, length(description) FROM records")).all())


def test_oversized_records_do_not_poison_their_batch(clean_db):
    big = "Strada Sciusev " + _words(2_700_000)
    good = [RecordIn(f"good-{i}", title=f"Fotografie {i}") for i in range(5)]
    batch = good + [RecordIn("long-description", title="Descriere lungă", description=big),
                    RecordIn(_random_key(300_000), title="cheie prea lungă"),
                    RecordIn("huge-description", description="x " * 2_500_000)]
    with session_scope(clean_db) as s:
        src = get_or_create_source(s, "limits", "file")
        report = upsert_records(s, src.id, batch)
    stored = _stored(clean_db)
    assert set(stored) == {r.source_key for r in good} | {"long-description"}
    assert stored["long-description"] == len(big)  # the full text is kept…
    with clean_db.connect() as c:  # …and its first words are searchable
        hit = c.execute(text("SELECT source_key FROM records WHERE search @@ to_tsquery('arhiva', 'sciusev')"))
        assert hit.scalars().all() == ["long-description"]
    reasons = {r.field: r.message for r in report.rejected}
    assert set(reasons) == {"source_key", "description"}
    assert "over the limit of 2,000" in reasons["source_key"] and "over the limit of 4,000,000" in reasons["description"]


def test_a_chunk_postgresql_refuses_is_bisected_to_the_bad_record(clean_db, monkeypatch):
    monkeypatch.setattr(records_in, "MAX_KEY_BYTES", 10_000_000)  # let a key the index cannot hold through
    bad = _random_key(8_000)
    batch = [RecordIn(f"k{i:04d}", title=f"t{i}") for i in range(40)] + [RecordIn(bad, title="bad")]
    with session_scope(clean_db) as s:
        src = get_or_create_source(s, "bisect", "file")
        report = upsert_records(s, src.id, batch)
        source_id = src.id
    assert report.new == 40 and len(_stored(clean_db)) == 40
    (rej,) = report.rejected
    assert rej.source_key == bad and "refused by PostgreSQL" in rej.message and "index row" in rej.message
    # the same through bulk_upsert (what `arhiva load` uses): only the bad record is missing
    more = [RecordIn(f"m{i:05d}", title=f"t{i}") for i in range(3_000)] + [RecordIn(bad + "x", title="bad")]
    got = bulk_upsert(clean_db, source_id, more, transaction_size=1_000, batch_size=500)
    assert got.new == 3_000 and [r.source_key for r in got.rejected] == [bad + "x"]
    assert len(_stored(clean_db)) == 3_040


def test_a_crawl_that_rejects_a_record_stores_the_rest_and_exits_non_zero(arhiva_env, clean_db):
    from flows.cli import app
    from tests.archive_server import BASA, ArchiveServer
    from tests.test_urlgate import _manifest

    urls = []
    with ArchiveServer() as srv:
        for n in range(1, 7):
            homepage = _random_key(3_000) if n == 6 else f"https://{BASA}/item/{n}"
            doc = json.loads(_manifest(n, f"https://{BASA}/files/p{n}.jpg", homepage=homepage))
            if n == 5:
                doc["summary"] = {"ro": ["Chișinău " + _words(2_700_000)]}
            srv.add(BASA, f"/hostile/{n}/manifest", json.dumps(doc))
            urls.append(f"https://{BASA}/hostile/{n}/manifest")
        result = CliRunner().invoke(app, ["crawl", "archive", *urls, "--collection", "limits", "--json",
                                          "--no-images", *srv.cli_settings()])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["records"]["new"] == 5 and summary["records"]["rejected"] == 1
    stored = _stored(clean_db)
    assert len(stored) == 5 and stored[f"https://{BASA}/item/5"] > 2_700_000


@pytest.mark.parametrize("field, limit", [("title", records_in.MAX_SHORT_TEXT_CHARS),
                                          ("rights", records_in.MAX_TEXT_CHARS["rights"])])
def test_text_limits_name_the_field(field, limit):
    rec = RecordIn("k", **{field: "a" * (limit + 1)})
    problem = records_in.validate(rec)
    assert problem.field == field and f"over the limit of {limit:,}" in problem.message
    assert records_in.validate(RecordIn("k", **{field: "a" * limit})) is None
