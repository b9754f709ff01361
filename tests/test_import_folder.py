"""arhiva import: a user's folder of scans into the catalogue."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from catalog.settings import reset_settings_cache
from importers.folder import import_folder
from tests.helpers import image, jpeg_bytes


def _jpeg_with_exif(path: Path, orientation: int | None = None, when: str | None = None) -> None:
    im = image(3, (48, 32))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if when:
        exif.get_ifd(0x8769)[0x9003] = when
    im.save(path, "JPEG", exif=exif.tobytes())


@pytest.fixture()
def scans(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    (root / "album" / "pagina2").mkdir(parents=True)
    (root / ".thumbs").mkdir()
    (root / "chisinau_1936.jpg").write_bytes(jpeg_bytes(1))
    _jpeg_with_exif(root / "rotit.jpg", orientation=6, when="1968:07:14 10:00:00")
    a16 = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    Image.fromarray(a16).save(root / "album" / "scan16.tif")
    pages = [image(i, (40, 30), grey=True) for i in range(3)]
    pages[0].save(root / "album" / "multi.tiff", save_all=True, append_images=pages[1:])
    image(5, (40, 30)).save(root / "album" / "pagina2" / "foto.webp", "WEBP")
    image(6, (40, 30)).save(root / "album" / "pagina2" / "piata-anii-1930.png", "PNG")
    (root / "stricat.jpg").write_bytes(jpeg_bytes(2)[:200])
    (root / ".thumbs" / "ascuns.jpg").write_bytes(jpeg_bytes(4))
    (root / "note.txt").write_text("not an image")
    (root / "metadata.csv").write_text(
        "file;title;date;place;lat;lon;author;licence;inventar\n"
        "chisinau_1936.jpg;Strada Pușkin;circa 1936;Chișinău;47.02;28.83;Ion Popescu;CC BY 4.0;F-12\n"
        "album/scan16.tif;Nuntă la Orhei;anii '50;Orhei;nu-i număr;28.8;;;\n"
        "lipsa.jpg;Nu există;1940;;;;;;\n", encoding="utf-8")
    (root / "album" / "pagina2" / "metadata.json").write_text(json.dumps(
        [{"file": "foto.webp", "title": "Familia Rusu", "date": "1960-е годы", "license": "CC0"}, "nonsense"],
        ensure_ascii=False), encoding="utf-8")
    return root


def _records(engine) -> dict:
    with engine.connect() as c:
        return {r.source_key: r for r in c.execute(text(
            "SELECT r.*, (SELECT count(*) FROM record_revisions v WHERE v.record_id = r.id) AS revisions, "
            "(SELECT a.info FROM record_assets ra JOIN assets a ON a.sha256 = ra.asset_sha256 "
            " WHERE ra.record_id = r.id LIMIT 1) AS asset_info FROM records r"))}


def test_import_a_folder_of_scans(arhiva_env, clean_db, scans):
    report = import_folder(scans, collection="familie", engine=clean_db)
    recs = _records(clean_db)
    assert set(recs) == {"chisinau_1936.jpg", "rotit.jpg", "album/scan16.tif", "album/multi.tiff",
                         "album/pagina2/foto.webp", "album/pagina2/piata-anii-1930.png"}  # not stricat.jpg
    assert report.new == 6 and report.images_stored == 6 and report.rejected == 1
    r = recs["chisinau_1936.jpg"]
    assert (r.title, r.date_text, r.year_lo, r.year_hi, r.place, r.author) == (
        "Strada Pușkin", "circa 1936", 1936, 1936, "Chișinău", "Ion Popescu")
    assert (r.lat, r.lon, r.licence) == (47.02, 28.83, "http://creativecommons.org/licenses/by/4.0/")
    assert r.extra["sidecar"] == {"inventar": "F-12"} and r.extra["date_from"] == "sidecar"
    # the bad row names the file and line; its image is imported without the row
    messages = {e["where"]: e["message"] for e in report.errors}
    bad = [w for w in messages if w.endswith("metadata.csv:3")]
    assert bad and "lat" in messages[bad[0]]
    assert [w for w in messages if w.endswith("metadata.csv:4")] and "lipsa.jpg" in messages[
        [w for w in messages if w.endswith("metadata.csv:4")][0]]
    assert [w for w in messages if w.endswith("metadata.json item 2")]
    assert recs["album/scan16.tif"].title == "scan16" and recs["album/scan16.tif"].year_lo is None
    assert recs["album/scan16.tif"].asset_info["mode"].startswith("I;16")
    assert recs["album/multi.tiff"].asset_info["frames"] == 3
    w = recs["album/pagina2/foto.webp"]
    assert (w.title, w.year_lo, w.year_hi, w.licence) == ("Familia Rusu", 1960, 1969,
                                                          "http://creativecommons.org/publicdomain/zero/1.0/")
    p = recs["album/pagina2/piata-anii-1930.png"]
    assert (p.title, p.year_lo, p.year_hi, p.extra["date_from"]) == ("piata anii 1930", 1930, 1939, "file name")
    rot = recs["rotit.jpg"]
    assert rot.extra["exif_orientation"] == 6 and rot.asset_info["exif_orientation"] == 6
    assert (rot.year_lo, rot.extra["date_from"]) == (1968, "exif")
    assert any(e["where"] == "stricat.jpg" and "image rejected" in e["message"] for e in report.errors)
    # provenance: an import run, a revision per record, the collection
    with clean_db.connect() as c:
        run = c.execute(text("SELECT agent, status, stats FROM crawl_runs WHERE id = :i"), {"i": report.run_id}).one()
        assert (run.agent, run.status) == ("import", "partial")  # stricat.jpg was rejected
        assert run.stats["summary"]["records"]["new"] == 6
        assert c.execute(text("SELECT count(*) FROM collection_members")).scalar() == 6
    assert all(r.revisions == 1 and r.first_seen_run_id == report.run_id for r in recs.values())
    # the file is kept as it is
    with clean_db.connect() as c:
        sha = c.execute(text("SELECT ra.asset_sha256 FROM record_assets ra JOIN records r ON r.id = ra.record_id "
                             "WHERE r.source_key = 'rotit.jpg'")).scalar()
    from catalog.assets import get_store
    from catalog.blobs import sha256_bytes

    assert get_store().path(sha).read_bytes() == (scans / "rotit.jpg").read_bytes()
    assert sha == sha256_bytes((scans / "rotit.jpg").read_bytes())


def test_rerun_adds_only_what_is_new_or_changed(arhiva_env, clean_db, scans):
    first = import_folder(scans, collection="familie", engine=clean_db)
    again = import_folder(scans, collection="familie", engine=clean_db)
    assert (again.new, again.changed, again.images_stored) == (0, 0, 0)
    assert again.unchanged == 6 and again.rejected == 1  # the broken file is tried again, and refused again
    (scans / "noua_1972.jpg").write_bytes(jpeg_bytes(9))
    (scans / "album" / "pagina2" / "foto.webp").unlink()
    csv = (scans / "metadata.csv").read_text(encoding="utf-8").replace("Strada Pușkin", "Strada Pușkin, colț")
    (scans / "metadata.csv").write_text(csv, encoding="utf-8")
    third = import_folder(scans, collection="familie", engine=clean_db)
    assert (third.new, third.changed, third.withdrawn) == (1, 1, 1)
    recs = _records(clean_db)
    assert recs["noua_1972.jpg"].year_lo == 1972
    assert recs["chisinau_1936.jpg"].revisions == 2 and recs["chisinau_1936.jpg"].title == "Strada Pușkin, colț"
    assert recs["album/pagina2/foto.webp"].status == "withdrawn"
    assert first.source == third.source


def test_decompression_bomb_is_rejected(arhiva_env, clean_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ARHIVA_MAX_IMAGE_PIXELS", "10000")
    reset_settings_cache()
    folder = tmp_path / "mari"
    folder.mkdir()
    Image.new("L", (200, 200)).save(folder / "mare.png")
    report = import_folder(folder, collection="x", engine=clean_db)
    assert report.new == 0 and report.images_stored == 0 and report.rejected == 1  # no record without its image
    assert "decompression-bomb" in report.errors[0]["message"] and report.errors[0]["where"] == "mare.png"


def test_cli_import(arhiva_env, clean_db, scans):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["import", str(scans), "--collection", "familie", "--json"])
    assert result.exit_code == 1, result.output  # stricat.jpg was rejected
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert out["records"]["new"] == 6 and out["records"]["rejected"] == 1 and out["errors"]["count"] >= 3


def test_provenance_names_each_run_by_its_kind(arhiva_env, clean_db, tmp_path):
    """``records --id N --provenance`` (a tree, or JSON) called a folder import "crawl run 1": a run
    is named as the catalogue records it, an import, a load or a crawl."""
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "chisinau_1936.jpg").write_bytes(jpeg_bytes(1))
    assert runner.invoke(app, ["import", str(folder), "--collection", "familie"]).exit_code == 0
    lines = tmp_path / "fond.jsonl"
    lines.write_text(json.dumps({"source_key": "f-1", "title": "Piața"}) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["load", str(lines), "--source", "fond"]).exit_code == 0
    ids = {d["source_key"]: d["id"] for d in json.loads(runner.invoke(app, ["records", "--format", "json"]).stdout)}
    for key, kind, run in (("chisinau_1936.jpg", "import", 1), ("f-1", "load", 2)):
        r = runner.invoke(app, ["records", "--id", str(ids[key]), "--provenance"])
        assert r.exit_code == 0, r.output
        assert f"first seen by {kind} run {run}, last by {kind} run {run}" in r.stdout, r.stdout
        assert f"revision 1: {kind} run {run} at " in r.stdout and "crawl run" not in r.stdout, r.stdout
        chain = json.loads(runner.invoke(app, ["records", "--id", str(ids[key]), "--provenance",
                                               "--format", "json"]).stdout)
        assert (chain["record"]["first_seen_run_id"], chain["record"]["first_seen_run_kind"],
                chain["record"]["last_seen_run_kind"], chain["revisions"][0]["run_kind"]) == (run, kind, kind, kind)
        assert [o["first_seen_run_kind"] for o in chain["originals"]] == (["import"] if kind == "import" else [])
    r = runner.invoke(app, ["records", "--id", str(ids["chisinau_1936.jpg"]), "--provenance"])
    assert "(import run 1)" in r.stdout  # the original image, brought by the import

    from fastapi.testclient import TestClient

    from catalog.web.app import create_app  # the record page's history and the API's timeline say so too

    with TestClient(create_app(clean_db)) as client:
        for key, label, words in (("chisinau_1936.jpg", "import", "Imported into"), ("f-1", "load", "Loaded into")):
            (first, *_) = client.get(f"/api/records/{ids[key]}").json()["timeline"]
            assert (first["run"]["kind"], first["run"]["label"]) == ("crawl", label)  # the table, and what it was
            assert first["summary"].startswith(words), first
            page = client.get(f"/records/{ids[key]}").text
            assert f"{label} run " in page and "crawl run" not in page


def test_an_import_batch_broken_off_by_a_deadlock_runs_again(arhiva_env, clean_db, tmp_path):
    """A writer holding one record of an import's batch, then asking for another the batch already
    holds (as a load or the web API's membership call may), deadlocks with the import; PostgreSQL
    breaks the batch off, and the batch runs again once the writer is done, instead of the import
    failing: every record stored, counted once."""
    import threading
    import time

    import psycopg

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):
        (folder / f"f{i}.jpg").write_bytes(jpeg_bytes(i))
    assert import_folder(folder, collection="familie", engine=clean_db).new == 2
    for i in range(2):  # both change: the next import's batch locks both records, in key order
        (folder / f"f{i}.jpg").write_bytes(jpeg_bytes(10 + i))
    with clean_db.connect() as c:
        ids = dict(c.execute(text("SELECT source_key, id FROM records")).all())
    url = clean_db.url.render_as_string(hide_password=False).replace("+psycopg", "")
    got: dict = {}

    def again() -> None:
        try:
            got["report"] = import_folder(folder, collection="familie", engine=clean_db)
        except Exception as exc:  # looked at below
            got["error"] = exc

    with psycopg.connect(url) as writer:
        writer.execute("SET deadlock_timeout = '30s'")  # the import is the one PostgreSQL breaks off
        writer.execute("SELECT 1 FROM records WHERE id = %s FOR UPDATE", (ids["f1.jpg"],))
        importer = threading.Thread(target=again)
        importer.start()
        with psycopg.connect(url, autocommit=True) as watch:
            for _ in range(200):  # the import holds f0.jpg and waits for f1.jpg
                if watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()[0]:
                    break
                time.sleep(0.05)
        writer.execute("SELECT 1 FROM records WHERE id = %s FOR UPDATE", (ids["f0.jpg"],))  # the deadlock
        writer.commit()
        importer.join(30)
    assert "error" not in got, got.get("error")
    report = got["report"]
    assert (report.new, report.changed, report.images_stored, report.rejected) == (0, 2, 2, 0)
    with clean_db.connect() as c:
        run = c.execute(text("SELECT status, stats FROM crawl_runs WHERE id = :i"), {"i": report.run_id}).one()
        assert run.status == "succeeded" and run.stats["summary"]["records"]["changed"] == 2
        assert c.execute(text("SELECT count(*) FROM record_assets")).scalar() == 4  # old and new images


def test_an_import_batch_run_again_is_counted_once(arhiva_env, clean_db, tmp_path, monkeypatch):
    """A batch broken off after its records and images were written (before its commit) is one
    rolled-back transaction: run again, what the import reports it stored is counted once."""
    import psycopg

    import importers.folder as folder_import

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.jpg").write_bytes(jpeg_bytes(i))
    real, calls = folder_import.link_assets, []

    def deadlocked_once(*args, **kwargs):
        calls.append(1)
        real(*args, **kwargs)
        if len(calls) == 2:  # the second batch, written, then broken off
            raise psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(folder_import, "BATCH", 2)
    monkeypatch.setattr(folder_import, "link_assets", deadlocked_once)
    report = import_folder(folder, collection="familie", engine=clean_db)
    assert len(calls) == 4  # three batches, the second twice
    assert (report.new, report.images_stored, report.rejected, report.errors) == (5, 5, 0, [])
    with clean_db.connect() as c:
        stats = c.execute(text("SELECT stats FROM crawl_runs WHERE id = :i"), {"i": report.run_id}).scalar()
        assert stats["summary"]["records"]["new"] == 5 and stats["summary"]["images"]["stored"] == 5
        assert [c.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("records", "record_assets", "collection_members")] == [5, 5, 5]
