"""``arhiva load`` with hostile lines: each bad line is rejected by its number, the rest is stored."""
from __future__ import annotations

import io
import json
import sys

from sqlalchemy import select
from typer.testing import CliRunner

from catalog.db import session_scope
from catalog.models import CrawlRun, Record
from flows.cli import app
from importers.jsonl import NotUTF8, load_jsonl

runner = CliRunner()


def _keys(engine) -> list[str]:
    with session_scope(engine) as s:
        return sorted(s.execute(select(Record.source_key)).scalars())


def _load(path, *args):
    r = runner.invoke(app, ["load", str(path), "--source", "dump", "--json", *args])
    return r, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None)


def _errors(summary) -> dict[str, str]:
    return {e["where"]: e["message"] for e in summary["error_samples"]}


def test_deep_nesting_non_finite_numbers_and_odd_keys_reject_their_line_only(clean_db, arhiva_env, tmp_path):
    deep = '{"source_key": "deep", "raw": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = [
        json.dumps({"source_key": "a", "title": "Gara"}),                   # 1
        deep,                                                                # 2
        '{"source_key": NaN, "title": "nan key"}',                          # 3
        '{"source_key": 1e400, "title": "inf key"}',                        # 4
        '{"source_key": "lat", "lat": -Infinity, "lon": 28.8}',             # 5
        json.dumps({"source_key": ["a", "list"], "title": "list key"}),     # 6
        json.dumps({"source_key": {"id": 1}}),                              # 7
        json.dumps({"source_key": True}),                                   # 8
        json.dumps({"source_key": "late", "year_lo": 1950, "year_hi": 1940}),  # 9
        json.dumps({"source_key": 12.5, "title": "numeric key"}),           # 10
        json.dumps({"source_key": "z", "title": "Piața"}),                  # 11
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r, summary = _load(path)
    assert r.exit_code == 1, r.output
    assert _keys(clean_db) == ["12.5", "a", "z"]
    errors = _errors(summary)
    assert errors["line 2"] == "nested too deeply to read"
    assert "NaN is not a JSON number" in errors["line 3"]
    assert "1e400 is out of range" in errors["line 4"]
    assert "-Infinity is not a JSON number" in errors["line 5"]
    assert "source_key must be text or a number, not list" in errors["line 6"]
    assert "not dict" in errors["line 7"] and "not bool" in errors["line 8"]
    assert errors["line 9 (record 'late')"].startswith("year_lo")  # a record refused later keeps its line
    assert summary["lines"] == 11 and summary["new"] == 3
    with session_scope(clean_db) as s:  # lines refused: the run is no success either
        run = s.get(CrawlRun, summary["run_id"])
        assert (run.status, run.error) == ("partial", "8 line(s) refused (each is named in the run's errors)")


def test_a_file_whose_every_line_is_refused_is_a_failed_load(clean_db, arhiva_env, tmp_path):
    path = tmp_path / "wrong.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}\n', encoding="utf-8")  # source_key misspelt
    r, summary = _load(path)
    assert r.exit_code == 1 and summary["new"] == 0
    with session_scope(clean_db) as s:
        run = s.get(CrawlRun, summary["run_id"])
        assert (run.status, run.error) == ("failed", "2 line(s) refused, none loaded (each is named in the run's errors)")


def test_a_file_that_turns_out_not_to_be_utf8_stores_nothing(clean_db, arhiva_env, tmp_path):
    path = tmp_path / "late-latin1.jsonl"
    good = "".join(json.dumps({"source_key": f"k{i}", "title": "Bălți"}) + "\n" for i in range(60))
    path.write_bytes(good.encode("utf-8") + '{"source_key": "y", "title": "Bãlþi"}\n'.encode("latin-1"))
    r, _ = _load(path)
    assert r.exit_code == 2 and "line 61 is not UTF-8" in r.output and "nothing was stored" in r.output
    assert _keys(clean_db) == []
    with session_scope(clean_db) as s:
        run = s.execute(select(CrawlRun)).scalar_one()
        assert run.status == "failed" and "line 61" in run.error


def test_standard_input_that_is_not_utf8_says_what_was_stored(clean_db, arhiva_env, monkeypatch):
    data = "".join(json.dumps({"source_key": f"k{i:02d}"}) + "\n" for i in range(25)).encode() + b'{"source_key": "\xff"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    try:
        load_jsonl("-", source="stdin", block=10)
    except NotUTF8 as exc:
        message = str(exc)
    else:
        raise AssertionError("not refused")
    assert "line 26 is not UTF-8" in message and "20 new or changed records" in message
    assert len(_keys(clean_db)) == 20  # the two blocks read before the bad line, as the message says
