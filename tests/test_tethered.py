"""A program arhiva starts (the temporary Prefect server, a worker) dies with the command that started
it, and is started without preexec_fn (catalog.tethered)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="Linux: PR_SET_PDEATHSIG")

PARENT = """
import subprocess, sys, time
from catalog.tethered import tethered
child = subprocess.Popen(tethered(["sleep", "600"]), start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_program_becomes_the_child_and_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
            assert time.monotonic() < deadline, "the launcher did not become the program"
            time.sleep(0.05)
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the program outlived the command that started it"
    finally:
        parent.kill()
        parent.wait()


def test_a_launcher_whose_parent_is_already_gone_starts_nothing(tmp_path):
    marker = tmp_path / "ran"
    # the parent named is not the launcher's parent (it died and the launcher was adopted)
    other = os.getppid()
    r = subprocess.run([sys.executable, "-m", "catalog.tethered", str(other), "touch", str(marker)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and not marker.exists(), r


def test_a_program_that_is_not_there_is_named():
    r = subprocess.run([sys.executable, "-m", "catalog.tethered", str(os.getpid()), "no-such-program-arhiva"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 127 and "cannot start no-such-program-arhiva" in r.stderr, r
