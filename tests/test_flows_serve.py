"""`arhiva serve`: the schedule file is checked and becomes deployments with cron schedules."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.serve import ScheduleError, build_deployments, load_schedule

GOOD = """
timezone = "Europe/Chisinau"

[[crawl]]
name = "pastvu-moldova-nightly"
cron = "0 2 * * *"
spider = "pastvu"
params = { region = "moldova", collection = "moldova" }
colorize_after = { years = "1850-1990" }

[[train]]
name = "train-weekly"
cron = "0 4 * * 0"
collection = "moldova"

[[colorize]]
cron = "30 3 * * *"
collection = "moldova"
years = "1850-1990"
"""


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """The CLI's console is made once per process (its width from COLUMNS then): a wide one here,
    whichever test of this process made it, so the table's cells are not cut."""
    from flows.cli.ui import console

    monkeypatch.setattr(console, "width", 250)


def test_schedule_file_becomes_cron_deployments(tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text(GOOD, encoding="utf-8")
    entries = load_schedule(path)
    assert [(e["kind"], e["name"], e["cron"]) for e in entries] == [
        ("crawl", "pastvu-moldova-nightly", "0 2 * * *"), ("train", "train-weekly", "0 4 * * 0"),
        ("colorize", "colorize-1", "30 3 * * *")]
    assert entries[0]["parameters"] == {"spider": "pastvu", "params": {"region": "moldova", "collection": "moldova"},
                                        "settings": None, "colorize_after": {"years": "1850-1990"}}
    deployments = build_deployments(entries)
    assert [d.name for d in deployments] == ["pastvu-moldova-nightly", "train-weekly", "colorize-1"]
    for d, e in zip(deployments, entries):
        (schedule,) = d.schedules
        assert schedule.schedule.cron == e["cron"] and schedule.schedule.timezone == "Europe/Chisinau"
        assert d.parameters == e["parameters"]
    r = CliRunner().invoke(app, ["serve", "--config", str(path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "pastvu-moldova-nightly" in r.stdout and "0 4 * * 0" in r.stdout


@pytest.mark.parametrize("text, message", [
    ("[[crawl]]\ncron = '0 2 * * *'\n", "spider is required"),
    ("[[train]]\ncron = 'nightly'\ncollection = 'x'\n", "5-field cron"),
    ("[[colorize]]\ncron = '0 2 * * *'\n", "collection is required"),
    ("[[crawls]]\ncron = '0 2 * * *'\n", "unknown section"),
    ("[[crawl]]\ncron = '0 2 * * *'\nspider = 'pastvu'\nparms = {}\n", "unknown key"),
    ("timezone = 'UTC'\n", "no [[crawl]]"),
    ("[[train\n", "not valid TOML"),
])
def test_bad_schedule_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "schedules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[")):
        load_schedule(path)
    r = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert r.exit_code == 2 and message in r.stderr


def test_missing_schedule_file(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--config", str(tmp_path / "nope.toml")])
    assert r.exit_code == 2 and "does not exist" in r.stderr


@pytest.mark.parametrize("entry, words", [
    ("[[train]]\ncron = '0 4 * * 0'\ncollection = 'moldova'\nepochs = 1\n",
     ["unknown key(s) epochs", "allowed:", "stage2_epochs"]),
    ("[[colorize]]\ncron = '0 4 * * 0'\ncollection = 'moldova'\nlimit = 'many'\n", ["limit"]),
    ("[[crawl]]\ncron = '0 2 * * *'\nspider = 'pastvu'\nparams = { region = 'atlantis' }\n", ["unknown region"]),
    ("[[crawl]]\ncron = '0 2 * * *'\nspider = 'pastvu'\nparams = { region = 'moldova' }\n"
     "colorize_after = { yeras = '1900-1950' }\n", ["colorize_after", "unknown key(s) yeras"]),
    # values each scheduled run would have failed on (the flow refuses them before its run starts)
    ("[[colorize]]\ncron = '0 4 * * 0'\ncollection = 'moldova'\nclaim_size = 20000\n",
     ["colorize 'colorize-1'", "claim_size 20000: must be from 1 to 10,000"]),
    ("[[train]]\ncron = '0 4 * * 0'\ncollection = 'moldova'\ncrop_size = 32\n",
     ["train 'train-1'", "--crop-size 32: must be a multiple of 32 from 64"]),
    ("[[train]]\ncron = '0 4 * * 0'\ncollection = 'moldova'\ndevice = 'gpu'\n", ["--device 'gpu': unknown device"]),
    ("[[crawl]]\ncron = '0 2 * * *'\nspider = 'pastvu'\nparams = { region = 'moldova' }\n"
     "colorize_after = { batch_size = 0 }\n", ["batch_size 0: must be from 1"]),
])
def test_dry_run_checks_every_entry_against_its_flow(tmp_path, entry, words):
    path = tmp_path / "schedules.toml"
    path.write_text(entry, encoding="utf-8")
    r = CliRunner().invoke(app, ["serve", "--config", str(path), "--dry-run"])
    assert r.exit_code == 2, r.output
    for w in words:
        assert w in r.stderr, r.stderr
