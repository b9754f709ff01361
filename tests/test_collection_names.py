"""Collection names in Unicode: one collection whichever canonical form a name arrives in (a
macOS folder name is decomposed, NFD; a typed one composed, NFC), and letters that only look
alike (s with cedilla, s with comma below) are different names."""
from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.claims import collection_id_of
from catalog.db import session_scope
from catalog.ingest import RecordIn, add_to_collection, get_or_create_source, upsert_records
from catalog.models import Collection, CrawlRun
from catalog.queries import RecordQuery, list_collections, search_records
from catalog.settings import Settings
from catalog.web import create_app
from flows.cli import app
from importers.folder import import_folder
from importers.jsonl import load_jsonl
from tests.helpers import jpeg_bytes

COMPOSED = "Paşcani, 1930"  # ş: U+015F, s with cedilla, as typed
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # s + U+0327, as macOS spells a folder's name


def _keys(engine, name: str) -> list[str]:
    with session_scope(engine) as s:
        return sorted(r.source_key for r in search_records(s, RecordQuery(collection=name, limit=100)).items)


def test_a_decomposed_name_is_the_collection_of_the_composed_one(arhiva_env, clean_db, tmp_path):
    assert DECOMPOSED != COMPOSED and len(DECOMPOSED) == len(COMPOSED) + 1
    lines = tmp_path / "lines.jsonl"
    lines.write_text("".join(json.dumps({"source_key": f"l{i}", "title": "Gara"}) + "\n" for i in range(3)))
    assert load_jsonl(lines, source="fisier", collection=DECOMPOSED, engine=clean_db).new == 3
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "gara_1930.jpg").write_bytes(jpeg_bytes(1))
    assert import_folder(scans, collection=DECOMPOSED, engine=clean_db).new == 1
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "de-mana", "file").id
        upsert_records(s, sid, [RecordIn("m1", title="Piața")], collection=COMPOSED)
    with session_scope(clean_db) as s:
        names = [c["name"] for c in list_collections(s)]
        assert names == [COMPOSED] and s.scalars(select(Collection.name)).all() == [COMPOSED]
        cid = collection_id_of(s, DECOMPOSED)  # colorize and train look it up so
        assert cid == collection_id_of(s, COMPOSED)
    everything = ["gara_1930.jpg", "l0", "l1", "l2", "m1"]
    assert _keys(clean_db, COMPOSED) == _keys(clean_db, DECOMPOSED) == everything
    runner = CliRunner()
    listed = runner.invoke(app, ["collections", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(c["name"], c["records"]) for c in json.loads(listed.stdout)] == [(COMPOSED, 5)]
    found = runner.invoke(app, ["records", "--collection", DECOMPOSED, "--format", "json"])
    assert found.exit_code == 0, found.output
    assert sorted(r["source_key"] for r in json.loads(found.stdout)) == everything


def test_the_web_api_takes_either_form_of_a_name(clean_db):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "file").id
        ids = sorted(upsert_records(s, sid, [RecordIn("a", title="A"), RecordIn("b", title="B")]).ids.values())
    auth = {"Authorization": "Bearer tok"}
    with TestClient(create_app(clean_db, Settings(web_token="tok"))) as c:
        r = c.post(f"/api/collections/{quote(DECOMPOSED)}/records", json={"record_ids": ids}, headers=auth)
        assert r.status_code == 200 and (r.json()["name"], r.json()["records"]) == (COMPOSED, 2), r.text
        r = c.post(f"/api/collections/{quote(COMPOSED)}/records", json={"record_ids": ids[:1]}, headers=auth)
        assert r.status_code == 200 and r.json()["records"] == 2, r.text
        r = c.get("/api/records", params={"collection": DECOMPOSED})
        assert r.status_code == 200 and r.json()["total"] == 2, r.text
        assert c.delete(f"/api/collections/{quote(DECOMPOSED)}/records/{ids[0]}", headers=auth).status_code == 204
        assert [n["name"] for n in c.get("/api/collections").json()] == [COMPOSED]
    assert _keys(clean_db, COMPOSED) == ["b"]


def test_s_with_cedilla_and_s_with_comma_below_stay_two_names(clean_db):
    comma = COMPOSED.replace("\u015f", "\u0219")  # ș: another letter, not another spelling of ş
    assert unicodedata.normalize("NFC", comma) == comma != COMPOSED
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "file").id
        ids = upsert_records(s, sid, [RecordIn("a", title="A"), RecordIn("b", title="B")]).ids
        add_to_collection(s, COMPOSED, [ids["a"]])
        add_to_collection(s, comma, [ids["b"]])
        assert sorted(c["name"] for c in list_collections(s)) == sorted([COMPOSED, comma])
    assert _keys(clean_db, DECOMPOSED) == ["a"] and _keys(clean_db, comma) == ["b"]


def test_a_name_that_grows_past_the_limit_in_nfc_is_refused_with_the_reason(clean_db):
    """A few characters grow in NFC (U+FB2C, a Hebrew letter, becomes three): a name within 200
    characters as sent but not as stored is refused by name, never a database error."""
    grown = "\ufb2c" * 100
    assert len(unicodedata.normalize("NFC", grown)) == 300
    with TestClient(create_app(clean_db, Settings(web_token="tok"))) as c:
        r = c.post(f"/api/collections/{quote(grown)}/records", json={"record_ids": [1]},
                   headers={"Authorization": "Bearer tok"})
        assert r.status_code == 422 and "at most 200 characters (this one has 300" in r.text, r.text
    with pytest.raises(ValueError, match="at most 200 characters"), session_scope(clean_db) as s:
        add_to_collection(s, grown, [1])


LONG = "\u015f" * 150  # a name within 200 characters as stored, 300 code points decomposed
LONG_NFD = unicodedata.normalize("NFD", LONG)


def test_a_long_name_sent_decomposed_is_measured_as_stored(clean_db):
    """The API bounds what it is sent generously and measures the name in NFC: a 150-character
    name sent decomposed (300 code points) reaches its collection in a search and in the
    membership routes, rather than a 422 for the length of a spelling."""
    assert len(LONG_NFD) == 300
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "file").id
        ids = sorted(upsert_records(s, sid, [RecordIn("a", title="A"), RecordIn("b", title="B")]).ids.values())
        add_to_collection(s, LONG, ids[:1])
    auth = {"Authorization": "Bearer tok"}
    with TestClient(create_app(clean_db, Settings(web_token="tok"))) as c:
        r = c.get("/api/records", params={"collection": LONG_NFD})
        assert r.status_code == 200 and r.json()["total"] == 1, r.text
        r = c.post(f"/api/collections/{quote(LONG_NFD)}/records", json={"record_ids": ids}, headers=auth)
        assert r.status_code == 200 and (r.json()["name"], r.json()["records"]) == (LONG, 2), r.text
        assert c.delete(f"/api/collections/{quote(LONG_NFD)}/records/{ids[0]}", headers=auth).status_code == 204
        assert [n["name"] for n in c.get("/api/collections").json()] == [LONG]
    assert _keys(clean_db, LONG) == ["b"]


def test_the_search_page_selects_the_collection_sent_decomposed(clean_db):
    """The form's collection is the one its list shows (NFC, from the catalogue): sent decomposed,
    the option is still the selected one, so the next search keeps the filter."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "c", "file").id
        add_to_collection(s, COMPOSED, list(upsert_records(s, sid, [RecordIn("a", title="A")]).ids.values()))
    with TestClient(create_app(clean_db, Settings())) as c:
        r = c.get("/", params={"collection": DECOMPOSED})
    assert r.status_code == 200, r.text
    assert f'<option value="{COMPOSED}" selected>' in r.text


def test_a_load_and_an_import_record_the_name_as_stored(arhiva_env, clean_db, tmp_path):
    """A run's parameters name its collection as the catalogue does (NFC), whichever form it was
    given in: a run is found by the name its collection lists."""
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"source_key": "l0", "title": "Gara"}) + "\n")
    loaded = load_jsonl(lines, source="fisier", collection=DECOMPOSED, engine=clean_db)
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "gara_1930.jpg").write_bytes(jpeg_bytes(1))
    imported = import_folder(scans, collection=DECOMPOSED, engine=clean_db)
    with session_scope(clean_db) as s:
        for run_id in (loaded.run_id, imported.run_id):
            assert s.get(CrawlRun, run_id).parameters["collection"] == COMPOSED


def test_a_folder_named_decomposed_makes_a_source_found_by_its_typed_slug(arhiva_env, clean_db, tmp_path):
    """A folder's source is named after the folder: from a macOS folder (NFD) the slug is kept in
    NFC too, so the slug `arhiva sources` shows, typed, finds it, and a load naming it in the other
    spelling finds that same source (and is refused, as a load into any folder's source is), not a
    look-alike second one."""
    scans = tmp_path / DECOMPOSED
    scans.mkdir()
    (scans / "gara.jpg").write_bytes(jpeg_bytes(2))
    report = import_folder(scans, engine=clean_db)
    assert report.new == 1 and unicodedata.is_normalized("NFC", report.source) and "Paşcani" in report.source
    typed = report.source  # as `arhiva sources` prints it and a user types it
    runner = CliRunner()
    found = runner.invoke(app, ["records", "--source", unicodedata.normalize("NFD", typed), "--format", "json"])
    assert found.exit_code == 0, found.output
    assert [r["source"] for r in json.loads(found.stdout)] == [typed]
    lines = tmp_path / "more.jsonl"
    lines.write_text(json.dumps({"source_key": "l1", "title": "Gara"}) + "\n")
    with pytest.raises(ValueError, match="a folder's source") as refused:
        load_jsonl(lines, source=unicodedata.normalize("NFD", typed), engine=clean_db)
    assert typed in str(refused.value)
    listed = runner.invoke(app, ["sources", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(s_["slug"], s_["records"]) for s_ in json.loads(listed.stdout)] == [(typed, 1)]
