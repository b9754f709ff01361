"""Running a flow from the command line: on which Prefect server, how quietly, with what progress.

``flow_session()`` wraps a flow call: the Prefect server in use (``PREFECT_API_URL``, or a
temporary one that stops last), Prefect's console output silenced unless ``-v`` (its logs go to
``$ARHIVA_HOME/logs/arhiva.log``), and, with ``-v``, a line naming the server.

``RunWatcher`` shows one progress line for the run this process owns, read from the run's row
(the stats its activity stores as it goes), so the line says what is stored, not what was sent.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flows.cli.ui import err, escape, say, verbose


@contextlib.contextmanager
def flow_session() -> Iterator[Any]:
    from flows.prefect_env import bind_console, prefect_server, quiet_prefect

    with prefect_server() as api:
        if verbose():
            say(f"using the {api}", "dim")
        bind_console()
        quiet_prefect(verbose())
        yield api


class RunWatcher:
    """A transient progress line for this process's newest run of ``kind``, updated from its row."""

    def __init__(self, kind: str, describe: Callable[[dict[str, Any]], str], *, every: float = 0.5,
                 on_news: Callable[[dict[str, Any]], str | None] | None = None):
        self.kind, self.describe, self.every, self.on_news = kind, describe, every, on_news
        self.run_id: int | None = None
        self.stats: dict[str, Any] = {}
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the runs before this one are known (those are not watched)
        self._said: set[str] = set()

    def __enter__(self) -> RunWatcher:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._t0 = time.time()
        # only on a terminal: elsewhere (a pipe, a log file) Rich would show nothing but end with an empty
        # line, which came out before the command's error line
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                            transient=True, redirect_stderr=False, redirect_stdout=False,
                            disable=not err.is_interactive)
        self.bar.__enter__()
        self.task = self.bar.add_task(f"starting the {self.kind}…", total=None)
        self.thread = threading.Thread(target=self._poll, name="arhiva-progress", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.bar.__exit__(*exc)

    def _poll(self) -> None:
        from sqlalchemy import func, select

        from catalog.db import open_catalog, session_scope
        from catalog.runs import RUN_MODELS

        model = RUN_MODELS[self.kind]
        try:
            engine = open_catalog()
            with session_scope(engine) as s:
                before = s.execute(select(func.coalesce(func.max(model.id), 0))).scalar_one()
        except Exception:
            return
        finally:
            self.ready.set()
        while not self._stop.wait(self.every):
            try:
                with session_scope(engine) as s:
                    row = s.execute(select(model.id, model.stats).where(
                        model.id > before, model.owner_host == socket.gethostname(), model.owner_pid == os.getpid())
                        .order_by(model.id.desc()).limit(1)).first()
            except Exception:
                continue
            if row is None:
                continue
            self.run_id, stats = row
            # a run that ends stores its final stats, without ``progress``: the line keeps the last it showed
            progress = (stats or {}).get("progress") or self.stats
            self.stats = progress
            self.bar.update(self.task, description=self.describe(dict(progress, run_id=self.run_id)))
            news = self.on_news(progress) if self.on_news else None
            if news and news.split(" — ")[0] not in self._said:  # once per host and kind, not per count
                self._said.add(news.split(" — ")[0])
                self.bar.console.print(f"[yellow]warning:[/yellow] {escape(news)}", highlight=False)
