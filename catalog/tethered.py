"""Child processes that die with the process that started them (Linux), started without ``preexec_fn``.

A ``preexec_fn`` runs in the forked child before ``exec``, after CPython has run the at-fork
handlers of everything imported (Prefect's among them): a lock another thread held at the fork
(OpenSSL's, seen in CI) then leaves the child spinning for ever before it ever execs. So a child
that is our own code asks for its death signal itself, first thing (``die_with_parent``, as
``crawlers.run`` does), and any other program is started through this module:
``tethered(args)`` is the command line that runs ``python -m catalog.tethered PARENT_PID ARGS…``,
which asks for SIGKILL at its parent's death, checks the parent is still the one that started
it (it may have died before the request), and then becomes ``ARGS`` (``exec``: same process id,
and the death signal stays). Imports nothing of arhiva's, so it starts in a few milliseconds.
"""
from __future__ import annotations

import os
import sys


def die_with_parent() -> None:
    """SIGKILL when the parent process dies, so a killed command leaves no crawl or server behind
    (Linux; elsewhere a no-op). Call it first thing in the child's own code."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def tethered(args: list[str]) -> list[str]:
    """The command line that runs ``args`` as a child that dies with this process."""
    return [sys.executable, "-P", "-m", "catalog.tethered", str(os.getpid()), *args]  # -P: not a catalog/ in the cwd


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m catalog.tethered PARENT_PID PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    die_with_parent()
    if os.getppid() != int(argv[0]):
        return 1  # the parent died before the request: nobody is left to stop the program
    try:
        os.execvp(argv[1], argv[1:])
    except OSError as exc:
        print(f"cannot start {argv[1]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
