"""Prefect for arhiva: defaults set before Prefect is imported, the server a command talks to, and
how quiet Prefect is.

- Offline by default (no telemetry), a startup timeout that fits a first start, and
  ``PREFECT_HOME`` under ``ARHIVA_HOME`` unless the user set one.
- ``prefect_server()``: the API a flow command uses. ``PREFECT_API_URL`` when set (a real
  ``prefect server start``, needed for schedules); otherwise a temporary local server that this
  process starts in its own session (a Ctrl-C in the terminal does not reach it), that dies with
  this process (``PR_SET_PDEATHSIG``), and that stops *last*, after the work has ended and its
  final state was reported.
- ``quiet_prefect()``: Prefect's console output is silenced unless ``-v``; everything it logs
  still goes to ``$ARHIVA_HOME/logs/arhiva.log`` (and to the Prefect server).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_OURS = "_ARHIVA_SET_PREFECT_HOME"


def configure() -> None:
    """Set Prefect's defaults in the environment (``flows/__init__`` calls this before anything imports
    Prefect; the CLI again once ``--home`` is known). A ``PREFECT_HOME`` the user set is kept."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if "PREFECT_HOME" not in os.environ or os.environ.get(_OURS):
        from catalog.settings import get_settings

        try:
            home = get_settings().home / "prefect"
        except Exception:  # bad settings: the command that needs them says so
            return
        os.environ["PREFECT_HOME"] = str(home)
        os.environ[_OURS] = "1"


def ensure_home() -> None:
    """Create ``PREFECT_HOME`` before Prefect is imported (Prefect warns when it cannot)."""
    if os.environ.get("PREFECT_HOME"):
        Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_path() -> Path:
    from catalog.settings import get_settings

    path = get_settings().home / "logs" / "prefect-server.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class PrefectServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class PrefectApi:
    url: str
    temporary: bool

    def __str__(self) -> str:
        where = self.url.removesuffix("/").removesuffix("/api")
        return f"temporary Prefect server at {where}" if self.temporary else f"Prefect server at {where}"


@contextlib.contextmanager
def prefect_server() -> Iterator[PrefectApi]:
    """Yield the Prefect API in use; start (and finally stop) a temporary server when none is set."""
    ensure_home()
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield PrefectApi(configured, temporary=False)
        return
    import httpx
    import prefect
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from catalog.tethered import tethered

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    log = open(_log_path(), "ab")  # noqa: SIM115 - handed to the child
    # tethered: the server dies with this process (no preexec_fn: see catalog.tethered)
    proc = subprocess.Popen(
        tethered([sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "error", "--lifespan", "on"]),
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        deadline = time.monotonic() + limit
        with httpx.Client(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise PrefectServerError(f"the temporary Prefect server exited with code {proc.returncode} "
                                             f"(see {_log_path()})")
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise PrefectServerError(f"the temporary Prefect server did not start in {limit:.0f} s "
                                             f"(see {_log_path()})")
                time.sleep(0.1)
        with temporary_settings({PREFECT_API_URL: url}):
            os.environ["PREFECT_API_URL"] = url  # for anything that reads the environment
            try:
                yield PrefectApi(url, temporary=True)
            finally:
                _drain()  # what the run logged reaches the server before it stops
                os.environ.pop("PREFECT_API_URL", None)
    finally:
        _stop(proc)


def _drain() -> None:
    for module, name in (("prefect.logging.handlers", "APILogWorker"), ("prefect.events.worker", "EventsWorker")):
        try:
            worker = getattr(__import__(module, fromlist=[name]), name)
            worker.drain_all(timeout=5)
        except Exception:
            pass


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def quiet_prefect(verbose: bool = False) -> None:
    """Prefect's console handler prints nothing unless ``verbose``; its logs go to the log file."""
    # Prefect configures its handlers from the environment when it sets up logging (once, when
    # `prefect.main` is first imported): the console handler's level goes there first, unless the
    # user chose one.
    if os.environ.get("_ARHIVA_SET_CONSOLE_LEVEL") or "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" not in os.environ:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO" if verbose else "CRITICAL"
        os.environ["_ARHIVA_SET_CONSOLE_LEVEL"] = "1"
    import prefect.main  # noqa: F401 - Prefect sets up its logging here
    from prefect.logging.handlers import PrefectConsoleHandler

    from catalog.settings import get_settings

    path = get_settings().home / "logs" / "arhiva.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for logger in loggers:  # a process whose Prefect logging was set up before (an embedding program)
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
    prefect_logger = logging.getLogger("prefect")
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path) for h in prefect_logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        prefect_logger.addHandler(handler)


def bind_console(stream=None) -> None:
    """Point Prefect's console log handlers at the current ``sys.stderr``.

    Prefect binds them once per process; a caller that swapped the streams since (a test
    runner, an embedding application, a progress display) would otherwise write to a closed or
    stale file.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))):
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.stream = stream or sys.stderr  # not setStream(): it flushes the old, maybe closed, one
                handler.console.file = stream or sys.stderr
