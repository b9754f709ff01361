"""One run life cycle for every activity: started, owned, beating, ended exactly once."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from catalog.models import CrawlRun, TrainingRun
from catalog.runs import activity, reap_vanished


def _row(engine, model, rid):
    with Session(engine) as s:
        return s.get(model, rid)


def test_a_run_ends_once_as_what_happened(clean_db):
    with activity("training", "test", {"p": 1}, engine=clean_db) as ok:
        ok.stats = {"loss": 0.5}
        assert _row(clean_db, TrainingRun, ok.id).status == "running"  # visible at once
    row = _row(clean_db, TrainingRun, ok.id)
    assert row.status == "succeeded" and row.stats == {"loss": 0.5} and row.ended_at and row.error is None
    assert row.owner_pid and row.owner_host and row.owner_start

    with pytest.raises(ZeroDivisionError), activity("training", "test", engine=clean_db) as bad:
        _ = 1 / 0
    row = _row(clean_db, TrainingRun, bad.id)
    assert row.status == "failed" and row.error == "ZeroDivisionError: division by zero"

    with pytest.raises(KeyboardInterrupt), activity("training", "test", engine=clean_db) as stopped:
        raise KeyboardInterrupt
    assert _row(clean_db, TrainingRun, stopped.id).status == "cancelled"

    with activity("training", "test", engine=clean_db) as idle:
        idle.end("skipped", "3 new colour photo(s), fewer than 4")
    row = _row(clean_db, TrainingRun, idle.id)
    assert row.status == "skipped" and row.stats["note"].startswith("3 new") and row.error is None


def test_work_that_failed_inside_its_run_exits_1_and_names_the_run(clean_db, arhiva_env, capsys):
    """Status 2 says the command could not start; a ValueError from the work itself (torch
    raises them mid-training) once exited 2 as well. Now 1, and the line names the run."""
    from flows.cli import ui

    with pytest.raises(ValueError) as caught, activity("training", "test", engine=clean_db) as run:
        raise ValueError("Expected more than 1 value per channel when training")
    assert ui._report(caught.value) == 1
    assert capsys.readouterr().err.strip() == (f"error: Expected more than 1 value per channel when training "
                                               f"(training run {run.id} failed)")
    assert ui._report(ValueError("--years: 2000-1900 ends before it starts")) == 2  # no run: could not start
    with pytest.raises(ValueError) as caught, activity("colorization", "outer", engine=clean_db):
        with activity("training", "inner", engine=clean_db) as inner:
            raise ValueError("bad")
    assert caught.value.arhiva_failed_run == f"training run {inner.id}"  # the innermost run


def test_error_text_from_a_bad_file_name_is_stored(clean_db):
    name = b"scan-\xff.jpg".decode("utf-8", "surrogateescape")  # not valid UTF-8, as os.listdir gives it
    with pytest.raises(OSError), activity("training", "test", {"file": name}, engine=clean_db,
                                          stats=lambda: {"last": name}) as run:
        raise FileNotFoundError(f"cannot read {name}")
    row = _row(clean_db, TrainingRun, run.id)
    assert row.status == "failed" and "scan-\\udcff.jpg" in row.error and row.stats["last"] == "scan-\\udcff.jpg"


def test_the_heartbeat_beats(clean_db):
    with activity("training", "test", engine=clean_db, heartbeat_s=0.2) as run:
        first = _row(clean_db, TrainingRun, run.id).heartbeat_at
        time.sleep(1.0)
        assert _row(clean_db, TrainingRun, run.id).heartbeat_at > first


def test_runs_whose_owner_is_gone_are_closed_by_the_next_command(clean_db):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with Session(clean_db) as s, s.begin():
        src = s.execute(text("INSERT INTO sources (slug, kind) VALUES ('t', 'file') RETURNING id")).scalar_one()
        host = socket.gethostname()
        rows = [CrawlRun(agent="killed", code_version="x", source_id=src, owner_host=host, owner_pid=gone.pid,
                         owner_start="0:0"),
                CrawlRun(agent="elsewhere, silent", code_version="x", source_id=src, owner_host="other-machine",
                         owner_pid=1),
                CrawlRun(agent="elsewhere, beating", code_version="x", source_id=src, owner_host="other-machine",
                         owner_pid=1)]
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
        s.execute(update(CrawlRun).where(CrawlRun.id == ids[1])
                  .values(heartbeat_at=text("now() - interval '10 minutes'")))
        s.execute(update(CrawlRun).where(CrawlRun.id.in_(ids[2:])).values(heartbeat_at=text("now()")))
    with activity("crawl", "alive", engine=clean_db, source_id=src) as mine:
        with Session(clean_db) as s, s.begin():
            assert reap_vanished(s) == []  # already closed when this run started
        with Session(clean_db) as s:
            statuses = dict(s.execute(select(CrawlRun.agent, CrawlRun.status)).all())
        assert statuses == {"killed": "failed", "elsewhere, silent": "failed", "elsewhere, beating": "running",
                            "alive": "running"}
    with Session(clean_db) as s:
        errors = dict(s.execute(select(CrawlRun.agent, CrawlRun.error)).all())
    assert errors["killed"].startswith("process vanished") and "no heartbeat" in errors["elsewhere, silent"]
    assert _row(clean_db, CrawlRun, mine.id).status == "succeeded"
