"""``arhiva load``: records from JSON Lines in bulk, bad lines named, re-loads idempotent."""
from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import CollectionMember, CrawlRun, Record, RecordRevision, Source
from flows.cli import app

runner = CliRunner()


def _records(engine, slug):
    with session_scope(engine) as s:
        rows = s.execute(select(Record).join(Record.source).where(Source.slug == slug).order_by(Record.source_key)).scalars()
        return {r.source_key: (r.title, r.year_lo, r.year_hi, r.lat, r.lon, r.place, r.extra, r.raw,
                               r.first_seen_run_id) for r in rows}


def test_an_export_loads_into_another_source_and_a_reload_changes_nothing(clean_db, arhiva_env, tmp_path):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu").id
        upsert_records(s, sid, [
            RecordIn("1001", title="Biserica Sf. Teodor Tiron", date_text="1930-е", year_lo=1930, year_hi=1939,
                     lat=47.01, lon=28.85, place="Chișinău", extra={"watermark": "pastvu.com"}),
            RecordIn("1002", title="Strada\tLăpușneanu\n(colț)", year_lo=1944, year_hi=1944),
            RecordIn("1003", title="Кишинёв, вокзал"),
        ])
    dump = tmp_path / "dump.jsonl"
    r = runner.invoke(app, ["export", "--source", "pastvu", "--format", "jsonl", "--out", str(dump)])
    assert r.exit_code == 0, r.output

    r = runner.invoke(app, ["load", str(dump), "--source", "copy", "--collection", "copied", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["lines"], summary["new"], summary["errors"]) == (3, 3, 0)
    original, copy = _records(clean_db, "pastvu"), _records(clean_db, "copy")
    assert sorted(copy) == ["1001", "1002", "1003"]
    for key in copy:
        assert copy[key][:7] == original[key][:7]  # the fields, exactly, tabs and newlines included
        assert copy[key][8] == summary["run_id"]  # first seen by the load's run
    # the raw payload is the line, without what the export said about its own catalogue
    raw = copy["1001"][7]
    assert "id" not in raw and "assets" not in raw and raw["title"].startswith("Biserica")
    with session_scope(clean_db) as s:
        run = s.get(CrawlRun, summary["run_id"])
        assert run.status == "succeeded" and run.stats["summary"]["new"] == 3
        assert s.execute(select(Source.kind).where(Source.slug == "copy")).scalar_one() == "file"
        assert s.execute(select(func.count()).select_from(CollectionMember)).scalar_one() == 3

    again = runner.invoke(app, ["load", str(dump), "--source", "copy", "--json"])
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["new"], json.loads(again.stdout)["unchanged"]) == (0, 3)
    with session_scope(clean_db) as s:
        assert s.execute(select(func.count()).select_from(RecordRevision)).scalar_one() == 6  # 3 + 3, none new


def test_bad_lines_and_records_are_named_and_the_rest_is_stored(clean_db, arhiva_env, tmp_path):
    lines = [
        json.dumps({"source_key": "a", "title": "Gara", "year_lo": 1910, "year_hi": 1915, "raw": {"id": "a"}}),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"title": "no key"}),
        json.dumps({"source_key": "late", "year_lo": 1950, "year_hi": 1940}),
        json.dumps({"source_key": 77, "title": "numeric key", "lat": 47.0, "lon": 28.9}),
        json.dumps({"source_key": "far", "lat": 123.0, "lon": 28.9}),
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["load", str(path), "--source", "dump", "--workers", "3"])
    assert r.exit_code == 1, r.output  # something was not loaded
    out = r.output
    assert "line 2" in out and "not JSON" in out
    assert "line 4" in out and "not a JSON object" in out
    assert "line 5" in out and "no source_key" in out
    assert "'late'" in out and "year_lo" in out
    assert "'far'" in out and "lat 123.0" in out
    stored = _records(clean_db, "dump")
    assert sorted(stored) == ["77", "a"]
    assert stored["a"][7] == {"id": "a"}  # an explicit raw payload is kept as given


def test_a_file_that_is_not_utf8_is_refused_in_one_line(clean_db, arhiva_env, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps({"source_key": "x", "title": "Bălți"}).encode("utf-8") + b"\n"
                     + '{"source_key": "y", "title": "Bãlþi"}\n'.encode("latin-1"))
    r = runner.invoke(app, ["load", str(path), "--source", "dump"])
    assert r.exit_code == 2
    assert "not UTF-8" in r.output and "Traceback" not in r.output
    with session_scope(clean_db) as s:
        assert s.execute(select(CrawlRun.status)).scalar_one() == "failed"
    missing = runner.invoke(app, ["load", str(tmp_path / "nope.jsonl"), "--source", "dump"])
    assert missing.exit_code == 2 and "is not a file" in missing.output


def test_ctrl_c_during_a_load_into_a_collection_keeps_a_true_summary_and_a_rerun_stores_the_rest(
        clean_db, arhiva_env, tmp_path):
    """Ctrl-C while `arhiva load` stores a file into a collection: the slices in hand finish, the
    run is cancelled with a summary that counts every record stored (the slices committed of the
    block being stored were left out: 50,000 new said against 75,000 stored), and loading the
    file again stores the rest, every record once and in the collection."""
    import os
    import signal

    from tests.cli_user import Background, run

    n = 120_000
    path = tmp_path / "many.jsonl"
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"source_key": f"k{i:06d}", "title": f"Vedere {i}", "year_lo": 1900 + i % 90}) + "\n")
    env = dict(os.environ)
    bg = Background(["load", str(path), "--source", "mult", "--collection", "multe", "--json"], env, tmp_path)

    def stored() -> int:
        with session_scope(clean_db) as s:
            return s.scalar(select(func.count()).select_from(Record))

    bg.wait_for(lambda: stored() >= 10_000, timeout=240)
    bg.signal(signal.SIGINT, group=True)
    result = bg.finish(timeout=120)
    assert result.code == 130, result
    with session_scope(clean_db) as s:
        kept = s.scalar(select(func.count()).select_from(Record))
        members = s.scalar(select(func.count()).select_from(CollectionMember))
        run_stats = s.execute(select(CrawlRun.status, CrawlRun.stats).order_by(CrawlRun.id.desc())).first()
    assert 0 < kept < n and members == kept
    status, stats = run_stats
    assert status == "cancelled" and stats["summary"]["new"] == stats["summary"]["stored"] == kept, stats
    again = run(["load", str(path), "--source", "mult", "--collection", "multe", "--json"], env, timeout=600)
    assert again.code == 0, again
    got = json.loads(again.out)
    assert (got["new"], got["unchanged"]) == (n - kept, kept), got
    with session_scope(clean_db) as s:
        assert s.scalar(select(func.count()).select_from(CollectionMember)) == n
        assert s.scalar(select(func.count()).select_from(Record).where(Record.collections == [])) == 0


def test_a_load_into_a_folders_source_is_refused_before_anything_is_stored(clean_db, arhiva_env, tmp_path):
    """A folder's source holds what its folder holds: its next `arhiva import` withdraws every
    record that is not a file there. A load into it is refused, naming why, and stores nothing."""
    from importers.folder import import_folder
    from tests.helpers import jpeg_bytes

    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "a.jpg").write_bytes(jpeg_bytes(1))
    slug = import_folder(scans, engine=clean_db).source
    lines = tmp_path / "more.jsonl"
    lines.write_text(json.dumps({"source_key": "extra-1", "title": "Gara"}) + "\n")
    r = runner.invoke(app, ["load", str(lines), "--source", slug])
    assert r.exit_code == 2 and "a folder's source" in r.output and "withdraw" in r.output
    with session_scope(clean_db) as s:
        assert s.scalars(select(Record.source_key)).all() == ["a.jpg"]
    assert import_folder(scans, engine=clean_db).withdrawn == 0
