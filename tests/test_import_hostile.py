"""``arhiva import`` with hostile folders: odd names, huge and special files, links out of the tree,
files that are no images."""
from __future__ import annotations

import os
import tracemalloc

from sqlalchemy import text

from importers.folder import import_folder
from tests.helpers import jpeg_bytes


def _records(engine) -> dict:
    with engine.connect() as c:
        return {r.source_key: r for r in c.execute(text(
            "SELECT r.source_key, r.status, r.extra, (SELECT count(*) FROM record_assets ra "
            "WHERE ra.record_id = r.id) AS images FROM records r"))}


def _run(engine, run_id: int):
    with engine.connect() as c:
        return c.execute(text("SELECT status, error FROM crawl_runs WHERE id = :i"), {"i": run_id}).one()


def test_an_import_that_rejects_files_is_no_success(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a_1936.jpg").write_bytes(b"not a jpeg")
    (folder / "b_1937.jpg").write_bytes(b"")
    report = import_folder(folder, engine=clean_db)  # nothing in it could be read
    assert (report.new, report.rejected) == (0, 2)
    assert tuple(_run(clean_db, report.run_id)) == ("failed", "2 file(s) rejected, none imported "
                                                              "(each is named in the run's errors)")
    (folder / "c_1938.jpg").write_bytes(jpeg_bytes(3))
    report = import_folder(folder, engine=clean_db)
    assert (report.new, report.rejected) == (1, 2)
    assert tuple(_run(clean_db, report.run_id)) == ("partial", "2 file(s) rejected (each is named in the run's errors)")


def test_a_file_name_that_is_not_utf8_is_imported_and_the_run_ends(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "bun_1936.jpg").write_bytes(jpeg_bytes(1))
    odd = os.path.join(os.fsencode(folder), b"Chi\xfein\xe3u_1936.jpg")  # a Latin-1 name on a UTF-8 system
    with open(odd, "wb") as f:
        f.write(jpeg_bytes(2))
    report = import_folder(folder, collection="c", engine=clean_db)
    assert _run(clean_db, report.run_id).status == "succeeded"
    recs = _records(clean_db)
    assert set(recs) == {"bun_1936.jpg", "Chi\\xfein\\xe3u_1936.jpg"}
    assert recs["Chi\\xfein\\xe3u_1936.jpg"].extra["file_name_not_utf8"] is True
    assert recs["Chi\\xfein\\xe3u_1936.jpg"].images == 1
    again = import_folder(folder, collection="c", engine=clean_db)
    assert (again.new, again.unchanged, again.rejected) == (0, 2, 0)


def test_size_is_checked_before_reading_and_special_files_are_never_opened(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    with open(folder / "uriaș.tif", "wb") as f:
        f.truncate(1 << 30)  # 1 GB, sparse: costs no disk, would cost 1 GB of memory if read
    os.mkfifo(folder / "pipe.jpg")  # reading it would block forever
    (folder / "bun.jpg").write_bytes(jpeg_bytes(1))
    tracemalloc.start()
    try:
        report = import_folder(folder, collection="c", engine=clean_db)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
    errors = {e["where"]: e["message"] for e in report.errors}
    assert "1,073,741,824 bytes, over the limit of 60,000,000" in errors["uriaș.tif"]
    assert "not a regular file" in errors["pipe.jpg"]
    assert set(_records(clean_db)) == {"bun.jpg"} and report.rejected == 2


def test_symbolic_links_are_never_followed_and_links_out_of_the_tree_are_reported(arhiva_env, clean_db, tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(jpeg_bytes(7))
    (outside / "sub" / "also.jpg").write_bytes(jpeg_bytes(8))
    folder = tmp_path / "scans"
    (folder / "album").mkdir(parents=True)
    (folder / "album" / "foto.jpg").write_bytes(jpeg_bytes(1))
    (folder / "secret.jpg").symlink_to(outside / "secret.jpg")       # a file out of the tree
    (folder / "passwd.jpg").symlink_to("/etc/passwd")                 # a system file
    (folder / "extern").symlink_to(outside / "sub", target_is_directory=True)  # a folder out of the tree
    (folder / "alias.jpg").symlink_to(folder / "album" / "foto.jpg")  # a file inside: nothing new
    (folder / "album2").symlink_to(folder / "album", target_is_directory=True)  # a folder inside: nothing new
    (folder / "album" / "loop").symlink_to(folder, target_is_directory=True)   # a loop: never entered
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")          # broken
    report = import_folder(folder, collection="c", engine=clean_db)
    assert set(_records(clean_db)) == {"album/foto.jpg"}  # each photo once, under its own path
    errors = {e["where"]: e["message"] for e in report.errors}
    for name in ("secret.jpg", "passwd.jpg", "extern"):
        assert "outside the folder: not followed" in errors[name]
    assert "broken" in errors["gone.jpg"]
    with clean_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM assets")).scalar() == 1  # the one photo, stored once


def test_files_refused_as_images_become_no_records(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "bun.jpg").write_bytes(jpeg_bytes(1))
    (folder / "gol.jpg").write_bytes(b"")
    (folder / "pagina.jpg").write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    (folder / "taiat.png").write_bytes(jpeg_bytes(3)[:300])
    report = import_folder(folder, collection="c", engine=clean_db)
    recs = _records(clean_db)
    assert set(recs) == {"bun.jpg"} and recs["bun.jpg"].images == 1
    assert report.rejected == 3 and report.new == 1
    errors = {e["where"]: e["message"] for e in report.errors}
    assert "empty" in errors["gol.jpg"] and "HTML" in errors["pagina.jpg"]
    assert "image rejected" in errors["taiat.png"]


def test_a_source_that_is_not_this_folders_is_refused_and_a_moved_folder_keeps_its_own(arhiva_env, clean_db, tmp_path):
    """--source naming a crawl's source, or the source of another folder still there, would withdraw
    its records as files gone: refused before any work. A folder that moved takes its source along."""
    import pytest

    from catalog.db import session_scope
    from catalog.ingest import RecordIn, get_or_create_source, upsert_records

    with session_scope(clean_db) as s:
        upsert_records(s, get_or_create_source(s, "pastvu", "pastvu").id, [RecordIn(source_key="1", title="Gara")])
    first, other = tmp_path / "first", tmp_path / "other"
    for folder, seed in ((first, 1), (other, 2)):
        folder.mkdir()
        (folder / f"foto{seed}.jpg").write_bytes(jpeg_bytes(seed))
    with pytest.raises(ValueError, match="a pastvu source, not a folder's"):
        import_folder(first, collection="c", source="pastvu", engine=clean_db)
    import_folder(first, collection="c", source="mine", engine=clean_db)
    with pytest.raises(ValueError, match=f"holds the scans of {first}"):
        import_folder(other, collection="c", source="mine", engine=clean_db)
    assert {k: r.status for k, r in _records(clean_db).items()} == {"1": "active", "foto1.jpg": "active"}
    moved = first.rename(tmp_path / "moved")
    again = import_folder(moved, collection="c", source="mine", engine=clean_db)
    assert (again.new, again.unchanged, again.withdrawn) == (0, 1, 0)
    for bad, message in ((dict(collection=" "), "--collection ' ': a collection name needs a visible character"),
                         (dict(collection="c", source=""), "--source: the slug must not be empty"),
                         (dict(collection="c", source="x" * 101), "--source: at most 100 characters")):
        with pytest.raises(ValueError, match=message):
            import_folder(other, engine=clean_db, **bad)
    with clean_db.connect() as c:  # nothing made for the refused imports
        assert c.execute(text("SELECT count(*) FROM crawl_runs")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM sources")).scalar() == 2


def test_a_folder_that_cannot_be_read_leaves_its_records_and_loops_and_bad_sidecars_are_reported(
        arhiva_env, clean_db, tmp_path, monkeypatch):
    import os as os_

    folder = tmp_path / "scans"
    (folder / "album").mkdir(parents=True)
    (folder / "album" / "foto.jpg").write_bytes(jpeg_bytes(1))
    (folder / "bun.jpg").write_bytes(jpeg_bytes(2))
    assert import_folder(folder, collection="c", engine=clean_db).new == 2
    real_scandir = os_.scandir

    def scandir(path):  # the folder is there, but cannot be read now (permissions, a failing disk)
        if str(path).endswith("album"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os_, "scandir", scandir)
    (folder / "loop1").symlink_to(folder / "loop2")
    (folder / "loop2").symlink_to(folder / "loop1")
    (folder / "sub").mkdir()
    (folder / "sub" / "metadata.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "metadata.csv").write_text("file,title,description\nbun.jpg,Bun,\"" + "a" * 5_000_000 + "\"\n")
    report = import_folder(folder, collection="c", engine=clean_db)
    assert {k: r.status for k, r in _records(clean_db).items()} == {"album/foto.jpg": "active", "bun.jpg": "active"}
    assert report.withdrawn == 0 and report.changed == 1  # bun.jpg has its sidecar title now
    errors = {e["where"]: e["message"] for e in report.errors}
    assert "folder cannot be read" in errors["album"] and "left as they were" in errors["album"]
    assert "loop" in errors["loop1"] and "loop" in errors["loop2"]
    assert any("sidecar is not valid JSON" in m for m in errors.values())
    assert "over the limit" in errors[f"{folder / 'metadata.csv'}:2: description"]
    with clean_db.connect() as c:
        assert c.execute(text("SELECT title, description FROM records WHERE source_key = 'bun.jpg'")).one() == ("Bun", None)


def test_a_replaced_scan_is_shown_and_unchanged_files_join_a_new_collection(arhiva_env, clean_db, tmp_path):
    from catalog.db import session_scope
    from catalog.models import Record

    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "foto.jpg").write_bytes(jpeg_bytes(1))
    (folder / "alta.jpg").write_bytes(jpeg_bytes(2))
    import_folder(folder, collection="c", engine=clean_db)
    (folder / "foto.jpg").write_bytes(jpeg_bytes(3))  # a better scan of the same photo
    again = import_folder(folder, collection="moldova", engine=clean_db)
    assert (again.changed, again.unchanged) == (1, 1)
    with session_scope(clean_db) as s:
        rec = s.query(Record).filter_by(source_key="foto.jpg").one()
        originals = [ra for ra in rec.assets if ra.role == "original"]
        assert len(originals) == 2 and originals[0].last_seen_run_id == again.run_id  # the new one first
        assert originals[0].asset.sha256 == rec.extra["sha256"]
    with clean_db.connect() as c:
        members = c.execute(text("SELECT r.source_key FROM collection_members m JOIN collections k ON k.id = "
                                 "m.collection_id JOIN records r ON r.id = m.record_id WHERE k.name = 'moldova'"))
        assert sorted(members.scalars()) == ["alta.jpg", "foto.jpg"]


def test_two_names_that_read_the_same_are_one_record_and_the_other_reported(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a\\xff.jpg").write_bytes(jpeg_bytes(1))  # a backslash written out in the name
    with open(os.path.join(os.fsencode(folder), b"a\xff.jpg"), "wb") as f:  # a byte that is not UTF-8
        f.write(jpeg_bytes(2))
    first = import_folder(folder, collection="c", engine=clean_db)
    assert (first.new, first.rejected) == (1, 1) and "reads the same" in first.errors[0]["message"]
    again = import_folder(folder, collection="c", engine=clean_db)
    assert (again.new, again.changed, again.unchanged, again.rejected) == (0, 0, 1, 1)  # stable


def test_a_sidecar_value_that_is_a_structure_is_left_out_and_a_number_is_read_as_text(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "foto.jpg").write_bytes(jpeg_bytes(1))
    (folder / "metadata.json").write_text('[{"file": "foto.jpg", "title": {"ro": "Gara"}, "author": ["A", "B"], '
                                          '"date": 1936, "place": "Chișinău", "tags": ["gara"]}]')
    report = import_folder(folder, collection="c", engine=clean_db)
    messages = sorted(e["message"] for e in report.errors)
    assert messages == ["author: a JSON list, not one value; left out",
                        "title: a JSON object, not one value; left out"], messages
    with clean_db.connect() as c:
        rec = c.execute(text("SELECT title, author, year_lo, place, extra FROM records")).one()
    assert (rec.title, rec.author, rec.year_lo, rec.place) == ("foto", None, 1936, "Chișinău")  # not "{'ro': ...}"
    assert rec.extra["sidecar"] == {"tags": ["gara"]}


def test_a_sidecar_saved_in_a_windows_code_page_says_how_to_save_it(arhiva_env, clean_db, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "foto.jpg").write_bytes(jpeg_bytes(1))
    (folder / "metadata.csv").write_bytes("file,title\nfoto.jpg,Piaţa Mare\n".encode("cp1250"))  # Excel's "CSV"
    report = import_folder(folder, collection="c", engine=clean_db)
    assert report.new == 1 and len(report.errors) == 1
    assert "not UTF-8 text (byte 0xfe" in report.errors[0]["message"] and "CSV UTF-8" in report.errors[0]["message"]
