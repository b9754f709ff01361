"""``arhiva export`` where the user points it: a folder that is not there, a pipe closed early."""
from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from flows.cli import app
from tests.cli_user import shell

runner = CliRunner()


@pytest.fixture()
def filled(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu", "https://pastvu.com").id
        upsert_records(s, sid, [RecordIn(str(1000 + i), title=f"Vedere {i}") for i in range(3)], collection="moldova")
    return clean_db


def test_an_export_into_a_folder_that_is_not_there_is_refused_and_makes_none(filled, tmp_path):
    """A mistyped mount point (``/mnt/archvie/x.csv``): the folders were made on the system disk
    and the export said it had written there, status 0."""
    out = tmp_path / "nonexistent" / "dir" / "x.csv"
    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"error: --out {out}: the folder {out.parent.resolve()} does not exist (nothing was written; "
                        "create it first)\n")
    assert not (tmp_path / "nonexistent").exists()
    (tmp_path / "nonexistent" / "dir").mkdir(parents=True)  # there once made
    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(out)])
    assert r.exit_code == 0 and len(out.read_text(encoding="utf-8").splitlines()) == 4, r.output


def test_an_export_into_a_pipe_closed_early_ends_quietly(filled, pg_url, tmp_path):
    """``--out /dev/stdout | head``: when the reader has what it wanted, the export stops as
    ``records`` does, without ``error: … (Broken pipe)`` (the reader here closes before the first line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_")} | {
        "ARHIVA_DATABASE_URL": pg_url, "ARHIVA_HOME": str(tmp_path)}
    for fmt in ("jsonl", "csv"):
        r = shell(f"arhiva export --format {fmt} --out /dev/stdout | true; exit ${{PIPESTATUS[0]}}", env)
        assert r.code == 1 and r.err == "", (fmt, r.code, r.err)
    r = shell("arhiva export --format jsonl --out /dev/stdout | head -n 1", env)
    assert r.code == 0 and r.out.startswith('{"id": ') and r.out.count("\n") == 1, r
