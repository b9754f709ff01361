"""Run the installed ``arhiva`` command as a user does: a subprocess, in an environment of the test's
choosing, with its exit status and what it printed; long-running commands in the background, in a
session of their own (so a test can send signals to them as a terminal or a service manager would).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def arhiva_exe() -> str:
    """The ``arhiva`` script installed beside this interpreter (what ``pip install`` made)."""
    here = Path(sys.executable).parent / "arhiva"
    found = str(here) if here.exists() else shutil.which("arhiva")
    assert found, "the arhiva command is not installed (pip install -e '.[test]')"
    return found


@dataclass
class Result:
    args: list[str]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self):
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"arhiva {' '.join(self.args)} → {self.code} in {self.seconds:.1f} s\n{self.out}\n{self.err}"


def run(args: list[str], env: dict[str, str], *, timeout: float = 300, cwd: Path | None = None) -> Result:
    t0 = time.monotonic()
    p = subprocess.run([arhiva_exe(), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    return Result(args, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def shell(command: str, env: dict[str, str], *, timeout: float = 300, cwd: Path | None = None) -> Result:
    """``command`` as a user's shell runs it (``~`` expanded, quotes as written), with this
    interpreter's ``arhiva`` first on the PATH."""
    env = dict(env, PATH=f"{Path(arhiva_exe()).parent}{os.pathsep}{env.get('PATH', '')}")
    t0 = time.monotonic()
    p = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    return Result(command.split()[1:], p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


class Background:
    """``arhiva ARGS`` running in its own session; output collected in files."""

    def __init__(self, args: list[str], env: dict[str, str], tmp: Path, cwd: Path | None = None):
        self.args = args
        self.out_path, self.err_path = tmp / f"bg-{os.getpid()}-{id(self)}.out", tmp / f"bg-{os.getpid()}-{id(self)}.err"
        self._out, self._err = open(self.out_path, "w"), open(self.err_path, "w")  # noqa: SIM115
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([arhiva_exe(), *args], env=env, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self._out.flush()
        self._err.flush()
        return self.out_path.read_text() + self.err_path.read_text()

    def wait_for(self, predicate, timeout: float = 120, every: float = 0.2):
        """Poll ``predicate()`` until it returns something truthy; fail with the output if the process ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = predicate()
            if got:
                return got
            if self.proc.poll() is not None:
                raise AssertionError(f"arhiva {' '.join(self.args)} ended ({self.proc.returncode}) first:\n"
                                     f"{self.output()}")
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s; output so far:\n{self.output()}")

    def signal(self, sig: int, group: bool = False) -> float:
        """Send ``sig`` (to the whole process group, as a terminal's Ctrl-C does, when ``group``)."""
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        return time.monotonic()

    def finish(self, timeout: float = 60) -> Result:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"still running after {timeout} s:\n{self.output()}") from None
        self._out.close()
        self._err.close()
        return Result(self.args, code, self.out_path.read_text(), self.err_path.read_text(),
                      time.monotonic() - self.t0)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
