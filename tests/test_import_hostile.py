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
