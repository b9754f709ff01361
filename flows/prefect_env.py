"""Prefect defaults for arhiva, set before Prefect is imported.

Offline by default (no telemetry), a startup timeout that fits the temporary
local server's first start, and ``PREFECT_HOME`` under ``ARHIVA_HOME`` unless
the user set one. Point ``PREFECT_API_URL`` at a running ``prefect server
start`` to use a real server (schedules need one).
"""
from __future__ import annotations

import os


def configure() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if "PREFECT_HOME" not in os.environ:
        from catalog.settings import get_settings

        home = get_settings().home / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)


configure()


def bind_console(stream=None) -> None:
    """Point Prefect's console log handlers at the current ``sys.stderr``.

    Prefect binds them once per process; a caller that swapped the streams since (a test
    runner, an embedding application) would otherwise get errors from a closed file.
    """
    import logging
    import sys

    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))):
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.stream = stream or sys.stderr  # not setStream(): it flushes the old, maybe closed, one
                handler.console.file = stream or sys.stderr
