"""The embedded default: no ARHIVA_DATABASE_URL → a private PostgreSQL under ARHIVA_HOME."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def _arhiva(args, home):
    """The CLI on ``home``, as a service or ``su`` runs it: without XDG_RUNTIME_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARHIVA_") and k != "XDG_RUNTIME_DIR"} | {
        "ARHIVA_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=180)


def test_embedded_database_starts_migrates_and_is_reused(tmp_path):
    """Starting, reusing and stopping it print nothing on stderr, even without XDG_RUNTIME_DIR
    (``db stop`` printed platformdirs' RuntimeDirWarning)."""
    home = tmp_path / "arhiva-home"
    try:
        first = _arhiva(["db", "status", "--json"], home)
        assert first.returncode == 0 and first.stderr == "", first.stderr
        info = json.loads(first.stdout)
        assert info["kind"] == "embedded" and info["up_to_date"] and info["revision"] == info["head"]
        assert info["embedded_data_dir"] == str(home / "pg")
        assert (home / "pg" / "PG_VERSION").exists()
        pid = (home / "pg" / "postmaster.pid").read_text().split()[0]

        again = _arhiva(["records", "--format", "json"], home)
        assert again.returncode == 0 and again.stderr == "0 record(s), page 1\n", again.stderr
        assert json.loads(again.stdout) == []
        assert (home / "pg" / "postmaster.pid").read_text().split()[0] == pid  # the same server, reused
    finally:
        stop = _arhiva(["db", "stop"], home)
        assert stop.returncode == 0 and stop.stderr == "" and stop.stdout == "embedded server stopped\n", stop
    assert not (home / "pg" / "postmaster.pid").exists()
