"""The catalogue CLI: fast imports, records in every format, exports, clear errors."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from catalog.assets import get_store, link_asset, register_image
from catalog.db import session_scope
from catalog.ingest import RecordIn, get_or_create_source, upsert_records
from catalog.models import CrawlRun
from flows.cli import app
from tests.cli_user import run, shell
from tests.conftest import create_database, database_url, drop_database
from tests.helpers import jpeg_bytes

runner = CliRunner()


@pytest.fixture()
def filled(clean_db, arhiva_env):
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu", "https://pastvu.com").id
        ids = upsert_records(s, sid, [
            RecordIn("1001", title="Biserica Sf. Teodor Tiron", date_text="1930-е", year_lo=1930, year_hi=1939,
                     lat=47.01, lon=28.85, licence="https://creativecommons.org/publicdomain/zero/1.0/",
                     url="https://pastvu.com/p/1001", place="Chișinău"),
            RecordIn("1002", title="Strada <b>Lăpușneanu</b> & Co", year_lo=1944, year_hi=1944, lat=47.02, lon=28.83),
            RecordIn("1003", title="Vedere"),
        ], collection="moldova").ids
        a = register_image(s, get_store(), jpeg_bytes(seed=1, grey=True))
        link_asset(s, ids["1001"], a.sha256, "original", source_url="https://pastvu.com/_p/d/x.jpg")
    return clean_db


def test_records_json_has_the_documented_fields(filled):
    r = runner.invoke(app, ["records", "--years", "1935-1950", "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [d["source_key"] for d in data] == ["1001", "1002"]
    first = data[0]
    for k in ("id", "source", "source_key", "title", "date_text", "year_lo", "year_hi", "lat", "lon", "licence",
              "url", "assets"):
        assert k in first
    assert first["source"] == "pastvu" and first["lat"] == 47.01 and first["lon"] == 28.85
    assert first["assets"][0]["role"] == "original" and len(first["assets"][0]["sha256"]) == 64


def test_records_filters_csv_and_table(filled):
    r = runner.invoke(app, ["records", "--text", "lapusneanu", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["source_key"] for row in rows] == ["1002"]
    r = runner.invoke(app, ["records", "--bbox", "28.84,47.0,28.86,47.02"])
    assert r.exit_code == 0 and "Teodor" in r.stdout and "Lăpușneanu" not in r.stdout
    r = runner.invoke(app, ["search", "teodor", "--format", "json"])
    assert [d["source_key"] for d in json.loads(r.stdout)] == ["1001"]


def test_sources_and_collections_list_their_sizes(filled):
    r = runner.invoke(app, ["collections", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"name": "moldova", "description": None, "records": 3, "records_exact": True,
                                     "records_label": "3"}]
    r = runner.invoke(app, ["sources", "--json"])
    (src,) = json.loads(r.stdout)
    assert (src["slug"], src["records"], src["records_label"], src["last_crawl"]) == ("pastvu", 3, "3", None)
    with session_scope(filled) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu").id
        s.add(CrawlRun(agent="test", code_version="x", source_id=sid, owner_host="h", owner_pid=1))
    (src,) = json.loads(runner.invoke(app, ["sources", "--json"]).stdout)
    assert datetime.fromisoformat(src["last_crawl"]).tzinfo is not None  # the crawl's start, with its zone
    r = runner.invoke(app, ["collections"])
    assert r.exit_code == 0 and "moldova" in r.stdout and "3" in r.stdout


def test_an_unknown_collection_or_source_stops_the_command_naming_what_there_is(filled, tmp_path):
    for args in (["records", "--collection", "Moldova"], ["search", "vedere", "-c", "nope"],
                 ["export", "--out", str(tmp_path / "x.jsonl"), "--source", "pastvu.com"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: no ") and ("(there are: moldova); arhiva collections" in r.stderr
                                                      or "(there are: pastvu); arhiva sources" in r.stderr), r.stderr
    assert not list(tmp_path.glob("*x.jsonl*"))  # neither the file nor a temporary one beside it


def test_bad_filter_gives_a_clear_error(filled):
    r = runner.invoke(app, ["records", "--years", "1950-1940"])
    assert r.exit_code == 2 and "1950 is after 1940" in r.stderr
    r = runner.invoke(app, ["records", "--bbox", "a,b"])
    assert r.exit_code == 2 and "W,S,E,N" in r.stderr
    r = runner.invoke(app, ["search", "strada " * 25])
    assert r.exit_code == 2 and "at most 24 words" in r.stderr
    for bad in ("99999999999999999999", "0"):  # past PostgreSQL's bigint: once a DataError and its SQL
        r = runner.invoke(app, ["records", "--id", bad])
        assert r.exit_code == 2 and "--id" in r.stderr and "DataError" not in r.output, r.output


def test_exports_csv_jsonl_and_dublin_core(filled, tmp_path):
    for fmt in ("csv", "jsonl", "dc"):
        out = tmp_path / f"export.{fmt}"
        r = runner.invoke(app, ["export", "--format", fmt, "--out", str(out), "--collection", "moldova"])
        assert r.exit_code == 0, r.output
        assert "exported 3 record(s)" in r.stderr
    rows = list(csv.DictReader((tmp_path / "export.csv").open(encoding="utf-8")))
    assert len(rows) == 3 and rows[0]["original_sha256"]
    lines = (tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["title"] == "Biserica Sf. Teodor Tiron"
    tree = ElementTree.parse(tmp_path / "export.dc")
    ns = {"dc": "http://purl.org/dc/elements/1.1/", "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/"}
    titles = [e.text for e in tree.getroot().iterfind("oai_dc:dc/dc:title", ns)]
    assert "Strada <b>Lăpușneanu</b> & Co" in titles  # escaped on the way out, intact on the way in
    dates = [e.text for e in tree.getroot().iterfind("oai_dc:dc/dc:date", ns)]
    assert "1930-е" in dates and "1944" in dates
    assert not list(tmp_path.glob(".export*"))  # no temp files left
    # the records' filters, --id among them
    one = json.loads(lines[0])["id"]
    r = runner.invoke(app, ["export", "--format", "jsonl", "--out", str(tmp_path / "one.jsonl"), "--id", str(one)])
    assert r.exit_code == 0 and [json.loads(x)["id"] for x in (tmp_path / "one.jsonl").read_text().splitlines()] == [one]


def test_an_export_that_cannot_be_written_says_where_and_keeps_the_last_one(filled, tmp_path, monkeypatch):
    import errno

    from catalog import exports

    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "is a folder" in r.stderr
    (tmp_path / "blocked").write_text("a file where a folder should be")
    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(tmp_path / "blocked" / "x.csv")])
    assert r.exit_code == 2 and f"--out {tmp_path / 'blocked' / 'x.csv'}: {tmp_path / 'blocked'} is a file, " \
        "not a folder" in r.stderr  # was "cannot write there (File exists)"
    out = tmp_path / "last.csv"
    assert runner.invoke(app, ["export", "--format", "csv", "--out", str(out)]).exit_code == 0
    last = out.read_bytes()

    def disk_full(records, f):
        f.write("id,title\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(exports.WRITERS, "csv", disk_full)
    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(out)])
    assert r.exit_code == 1 and "No space left on device" in r.stderr and "nothing was written" in r.stderr
    assert out.read_bytes() == last and not list(tmp_path.glob(".last.csv*"))  # no temporary file left


def test_an_export_writes_through_links_and_pipes_and_refuses_an_empty_filter(filled, tmp_path):
    """A link stays a link (its file gets the export), a FIFO or device is written through (a
    temporary file renamed over it replaced the pipe with a plain file, and its reader got nothing)."""
    import threading

    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target.name)
    assert runner.invoke(app, ["export", "--format", "csv", "--out", str(link)]).exit_code == 0
    assert link.is_symlink() and len(list(csv.DictReader(target.open(encoding="utf-8")))) == 3

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    r = runner.invoke(app, ["export", "--format", "jsonl", "--out", str(fifo)])
    reader.join(timeout=30)
    assert r.exit_code == 0, r.output
    assert fifo.is_fifo() and len(got[0].splitlines()) == 3

    r = runner.invoke(app, ["export", "--format", "csv", "--out", str(tmp_path / "all.csv"), "--collection", " "])
    assert r.exit_code == 2 and "--collection is empty" in r.stderr and not (tmp_path / "all.csv").exists()
    for args in (["--text", ""], ["--text", "   "], ["--years", ""], ["--bbox", " "]):  # "$UNSET_VARIABLE"
        r = runner.invoke(app, ["export", "--format", "csv", "--out", str(tmp_path / "all.csv"), *args])
        assert r.exit_code == 2 and f"{args[0]} is empty" in r.stderr and not (tmp_path / "all.csv").exists(), args
    r = runner.invoke(app, ["search", ""])
    assert r.exit_code == 2 and "WORDS is empty" in r.stderr, r.output
    if os.geteuid() != 0:  # root may write anywhere
        target.chmod(0o444)
        r = runner.invoke(app, ["export", "--format", "csv", "--out", str(target)])
        assert r.exit_code == 2 and "is not writable" in r.stderr


def test_control_characters_in_harvested_text_never_reach_the_terminal(filled, clean_db):
    """A title with escape sequences (a colour, a cleared screen, a window title) or a carriage
    return is shown with them written out, in tables and in messages alike."""
    with session_scope(clean_db) as s:
        sid = get_or_create_source(s, "pastvu", "pastvu", "https://pastvu.com").id
        upsert_records(s, sid, [RecordIn("1004", title="ESC \x1b]0;pwned\x07 \x1b[31mRED\x1b[0m \x1b[2J end\rX",
                                         year_lo=1950, year_hi=1950)], collection="moldova")
    r = runner.invoke(app, ["records", "--collection", "moldova", "--years", "1950"])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\r" not in r.stdout and "\\x1b]0;pwned" in r.stdout
    r = runner.invoke(app, ["records", "--collection", "mold\x1b[2Jova"])
    assert r.exit_code == 2 and "\x1b" not in r.stderr and "mold\\x1b[2Jova" in r.stderr


def test_an_export_gets_the_permissions_of_a_file_the_user_made(filled, tmp_path):
    """Written under a private temporary name, the export is then readable as the user's umask
    allows (an archive's shared folder), not left 0600."""
    for umask in (0o022, 0o077):
        old = os.umask(umask)
        try:
            out = tmp_path / f"export-{umask:o}.csv"
            assert runner.invoke(app, ["export", "--format", "csv", "--out", str(out)]).exit_code == 0
        finally:
            os.umask(old)
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def _run_cli(args, env_extra, code=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_")} | env_extra
    code = code or ("import sys; from flows.cli import main; sys.argv = ['arhiva', *sys.argv[1:]]\n"
                    "try:\n    main()\nfinally:\n"
                    "    print('HEAVY=' + ','.join(m for m in ('torch', 'prefect', 'scrapy') if m in sys.modules),"
                    " file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_and_catalogue_commands_import_no_torch_prefect_or_scrapy(filled, pg_url, tmp_path):
    env = {"ARHIVA_DATABASE_URL": pg_url, "ARHIVA_HOME": str(tmp_path)}
    for args in (["--help"], ["records", "--format", "json"], ["sources"], ["db", "status"]):
        p = _run_cli(args, env)
        assert p.returncode == 0, p.stderr
        assert "HEAVY=\n" in p.stderr or p.stderr.rstrip().endswith("HEAVY="), (args, p.stderr[-300:])


def test_output_into_a_pipe_closed_early_ends_quietly(filled, pg_url, tmp_path):
    """``arhiva records | head``: when the reader has what it wanted and closes the pipe, arhiva
    stops without an ``error:`` line or a traceback (the reader here closes before the first line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_")} | {
        "ARHIVA_DATABASE_URL": pg_url, "ARHIVA_HOME": str(tmp_path)}
    for command in ("arhiva records --help", "arhiva records --format csv", "arhiva records --format json",
                    "arhiva records", "arhiva --help"):
        r = shell(f"{command} | true; exit ${{PIPESTATUS[0]}}", env)
        assert r.code == 1 and r.err == "", (command, r.code, r.err)
    assert shell("arhiva records --format csv | head -n 1", env).out.startswith("id,source,source_key")


def test_export_to_dev_stdout_goes_through_pipes_and_appends(filled, pg_url, tmp_path):
    """``--out /dev/stdout`` into a pipe (it resolved to /proc/…/pipe:[N] and failed as a folder
    that cannot be written) and into ``>> file`` (a temporary file renamed over it lost what was there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_")} | {
        "ARHIVA_DATABASE_URL": pg_url, "ARHIVA_HOME": str(tmp_path)}
    r = shell("arhiva export --format jsonl --out /dev/stdout --collection moldova | wc -l", env)
    assert r.code == 0 and r.out.strip() == "3", r
    (tmp_path / "all.jsonl").write_text("kept\n")
    r = shell(f"arhiva export --format jsonl --out /dev/stdout --collection moldova >> {tmp_path / 'all.jsonl'}", env)
    assert r.code == 0, r
    assert (tmp_path / "all.jsonl").read_text().splitlines()[0] == "kept"
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 4


def test_web_on_an_address_it_cannot_have_is_one_clear_line(filled, pg_url, tmp_path):
    """A port another program listens on, or a host that is not this machine: one ``error:`` line,
    status 2, before anything says the server is up."""
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_")} | {
        "ARHIVA_DATABASE_URL": pg_url, "ARHIVA_HOME": str(tmp_path)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, says in ((["--port", str(port)], "Address already in use (another program listens there"),
                           (["--host", "192.0.2.1", "--port", str(port)], "not an address of this machine")):
            r = run(["web", *args], env, timeout=60)
            assert r.code == 2 and r.out == "" and r.err.count("\n") == 1 and says in r.err, r


def test_unreachable_database_is_one_clear_line(tmp_path):
    p = _run_cli(["records"], {"ARHIVA_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nope",
                               "ARHIVA_HOME": str(tmp_path)})
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("HEAVY=")]
    assert len(lines) == 1 and "cannot reach the catalogue database" in lines[0] and "Traceback" not in p.stderr


def test_a_setting_that_cannot_be_is_one_line_naming_it(tmp_path):
    p = _run_cli(["records"], {"ARHIVA_HOME": str(tmp_path), "ARHIVA_MAX_IMAGE_PIXELS": "-5",
                               "ARHIVA_PAGE_SIZE_MAX": "many"})
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("HEAVY=")]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "ARHIVA_MAX_IMAGE_PIXELS: Input should be greater than or equal to 1, got '-5'" in lines[0]
    assert "ARHIVA_PAGE_SIZE_MAX: " in lines[0] and "got 'many'" in lines[0] and "pydantic" not in lines[0]


def test_configured_database_behind_the_schema_says_so(tmp_path):
    name = create_database("arhiva_cli")
    try:
        env = {"ARHIVA_DATABASE_URL": database_url(name), "ARHIVA_HOME": str(tmp_path)}
        p = _run_cli(["records"], env)
        assert p.returncode == 2 and "run `arhiva db upgrade`" in p.stderr
        assert _run_cli(["db", "upgrade"], env).returncode == 0
        assert _run_cli(["records"], env).returncode == 0
    finally:
        drop_database(name)


def test_json_and_csv_keep_stdout_for_records_and_say_the_count_and_cursor_on_stderr(filled):
    seen, after = [], None
    for _ in range(4):  # one record a page, following the cursor printed on stderr
        r = runner.invoke(app, ["records", "--limit", "1", "--format", "json", *(["--after", after] if after else [])])
        assert r.exit_code == 0, r.output
        seen += [d["source_key"] for d in json.loads(r.stdout)]  # stdout is the records alone
        assert r.stderr.startswith("3 record(s), "), r.stderr
        if "next page: --after " not in r.stderr:
            break
        after = r.stderr.split("next page: --after ")[1].split()[0]
    assert seen == ["1001", "1002", "1003"] and after is not None
    r = runner.invoke(app, ["records", "--limit", "2", "--format", "csv"])
    assert [row["source_key"] for row in csv.DictReader(io.StringIO(r.stdout))] == ["1001", "1002"]
    assert "3 record(s), page 1; next page: --after " in r.stderr, r.stderr


@pytest.mark.parametrize("interrupt, code", [("KeyboardInterrupt()", 130), ("ui.Terminated()", 143)])
def test_ctrl_c_that_broke_off_a_first_import_is_still_one_line(interrupt, code):
    """Ctrl-C half a second into a command lands inside SQLAlchemy's first import: the handler must
    not import it again (it printed two tracebacks, the second an AttributeError, and exited 1)."""
    script = ("import builtins, sys\n"
              "from flows.cli import ui\n"
              "real = builtins.__import__\n"
              "def broken(name, *args, **kwargs):\n"
              "    if name.split('.')[0] in ('catalog', 'sqlalchemy'):\n"
              "        raise AttributeError(\"module 'sqlalchemy.sql' has no attribute 'base'\")\n"
              "    return real(name, *args, **kwargs)\n"
              "builtins.__import__ = broken\n"
              f"sys.exit(ui._report({interrupt}))\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == code and "interrupted: stopped" in p.stderr and "Traceback" not in p.stderr, p.stderr
