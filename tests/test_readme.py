"""The README is a contract: every command in its ```bash blocks of the set-up, finding, harvesting and
day-to-day sections runs, verbatim and in order, as a newcomer runs it.

One brand-new ``ARHIVA_HOME`` and ``HOME``, **no** ``ARHIVA_DATABASE_URL`` (the embedded PostgreSQL
starts and migrates itself), the installed ``arhiva`` as a subprocess. What differs from a
newcomer's machine is only where the remote world is: PastVu (``ARHIVA_PASTVU_API_URL``/
``_BASE_URL``) and the archive sites (``ARHIVA_HOST_MAP``) are local fake servers, and the
installation's ``crawl_settings`` lift the politeness delay for them. Files the README asks the
user to have (``schedules.toml``, a folder of scans) are made from the README's own text.

A README edit that breaks a command breaks this test. Commands that are not arhiva's (``pip``,
``pytest``, ``apt-get``, ``prefect server start``) are not run; ``arhiva web`` and ``arhiva serve``
run until they answer, then get SIGTERM, as a service manager would stop them.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.archive_server import ArchiveServer
from tests.cli_user import Background, run, shell
from tests.helpers import jpeg_bytes
from tests.pastvu_server import FakePastvu, generate_photos, make_photo

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = ("Set-up", "Finding records", "Harvesting", "Day to day")
NOT_OURS = ("pip ", "pytest", "apt-get ", "sudo ", "prefect server start", "export PREFECT_API_URL", "python ")
pytestmark = pytest.mark.slow


def readme_commands(text: str) -> list[tuple[str, str]]:
    """(section, command) for each line of the ```bash blocks under the README's user sections."""
    out, section, block = [], None, None
    top = sub = ""
    pending = ""
    for line in text.splitlines():
        if line.startswith("## "):
            top, sub = line[3:].strip(), ""
        elif line.startswith("### "):
            sub = line[4:].strip()
        section = next((h for h in (sub, top) if h.startswith(SECTIONS)), None)
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
            continue
        if block != "bash" or not section or not section.startswith(SECTIONS):
            continue
        line = pending + line
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        command = _strip_comment(line).strip()
        if command:
            out.append((section, command))
    return out


def _strip_comment(line: str) -> str:
    """The command without its trailing ``# comment`` (a # inside quotes stays)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def schedule_toml(text: str) -> str:
    """The README's schedules.toml example."""
    m = re.search(r"```toml\n(.*?)```", text, re.S)
    assert m, "the README shows a schedules.toml"
    return m.group(1)


def pastvu_photos() -> dict:
    """Photos of Moldova as the fake PastVu serves them, with the ones the README looks for."""
    import random

    rng = random.Random(4)
    photos = generate_photos(30, (26.7, 45.5, 30.1, 48.4), seed=4)
    named = [(3000001, 47.0245, 28.8323, 1936, "Catedrala Nașterea Domnului, Chișinău"),
             (3000002, 47.0270, 28.8300, 1928, "Strada Lăpușneanu, Chișinău"),
             (3000003, 47.0150, 28.8450, 1931, "Vedere generală a Chișinăului")]
    for cid, lat, lon, year, title in named:
        doc = make_photo(cid, lat, lon, rng=rng, year=year)
        doc["title"] = title
        photos[cid] = doc
    return photos


def scans(home: Path) -> None:
    """The folder of the user's own scans the README imports."""
    folder = home / "scans" / "chisinau"
    folder.mkdir(parents=True)
    (folder / "piata_1936.jpg").write_bytes(jpeg_bytes(1, (120, 90), grey=True))
    (folder / "gara-anii-1930.jpg").write_bytes(jpeg_bytes(2, (120, 90)))


def check(section: str, command: str, result, env) -> None:
    """What the user must read after each command."""
    assert "Traceback" not in result.text, result
    assert result.code == 0, result
    words = shlex.split(command)
    if words[:3] == ["arhiva", "crawl", "pastvu"]:
        assert "crawl run" in result.out and "succeeded" in result.out, result
    if words[:2] == ["arhiva", "records"] and "--text" in words:
        assert "Catedrala" in result.out, result
    if words[:2] == ["arhiva", "search"]:
        assert "Lăpușneanu" in result.out, result
        if "OR" in words:  # the syntax: any of the words (vedere too), but not the phrase excluded
            assert "Catedrala" in result.out and "Vedere generală" not in result.out, result
    if words[:2] == ["arhiva", "train"]:
        assert "nothing to do" in result.err, result
    if words[:2] == ["arhiva", "colorize"]:
        assert "nothing to do: no model version yet" in result.err, result
    if words[:2] == ["arhiva", "import"]:
        assert "records new" in result.out, result


def long_running(command: str, env: dict, cwd: Path, tmp: Path) -> None:
    words = shlex.split(command)
    bg = Background(words[1:], env, tmp, cwd=cwd)
    if words[1] == "web":
        def answers():
            try:
                with urllib.request.urlopen("http://127.0.0.1:8000/api/sources", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None
        sources = bg.wait_for(answers, timeout=120)
        assert {s["slug"] for s in sources} >= {"pastvu"}, sources
    else:  # serve
        bg.wait_for(lambda: "serving" in bg.output(), timeout=180)
    t0 = bg.signal(signal.SIGTERM)
    result = bg.finish(timeout=30)
    assert time.monotonic() - t0 < 15, result  # 10 s promised; margin for a loaded test machine
    assert "Traceback" not in result.text, result
    if words[1] == "serve":
        assert "PREFECT_API_URL is not set" in result.err and "3 deployment(s)" in result.err, result


def test_every_readme_command_works_on_a_fresh_machine(tmp_path):
    text = README.read_text(encoding="utf-8")
    commands = readme_commands(text)
    sections = {s for s, _ in commands}
    assert any(c.startswith("arhiva crawl pastvu --region moldova --limit 200") for _, c in commands[:3]), \
        "the README's first command is the PastVu crawl of Moldova"
    assert {s.split()[0] for s in sections} >= {"Set-up", "Finding", "Harvesting", "Day"}, sections

    home = tmp_path / "user"
    home.mkdir()
    cwd = home / "work"
    cwd.mkdir()
    (cwd / "schedules.toml").write_text(schedule_toml(text), encoding="utf-8")
    scans(home)
    with FakePastvu(pastvu_photos()) as pastvu, ArchiveServer() as archive:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ARHIVA_", "PREFECT_API_URL")) and k != "PREFECT_HOME"}
        env.update(HOME=str(home), ARHIVA_HOME=str(home / "arhiva"), COLUMNS="200",
                   ARHIVA_ALLOW_PRIVATE=pastvu.base_url,
                   ARHIVA_PASTVU_API_URL=pastvu.api_url, ARHIVA_PASTVU_BASE_URL=pastvu.base_url,
                   ARHIVA_CRAWL_SETTINGS=json.dumps({
                       "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "ROBOTSTXT_OBEY": False,
                       "RETRY_BACKOFF_BASE": 0.05, "ARHIVA_HOST_MAP": archive.host_map()}))
        ran = []
        try:
            for section, command in commands:
                if command.startswith(NOT_OURS):
                    continue
                assert command.startswith("arhiva "), f"{section}: not an arhiva command: {command}"
                if command.split()[1] in ("web", "serve") and "--dry-run" not in command:
                    long_running(command, env, cwd, tmp_path)
                else:
                    result = shell(command, env, cwd=cwd, timeout=600)
                    check(section, command, result, env)
                ran.append(command)
        finally:
            run(["db", "stop"], env, timeout=60)
    assert len(ran) >= 15, ran
