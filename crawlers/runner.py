"""Start a crawl from any Python code (the CLI, a Prefect flow, a test).

``run_crawl(spider_name, params)`` creates the source and the crawl run row
(one PROV Activity per crawl), runs the spider in a child process
(``python -m crawlers.run``: Scrapy's reactor cannot be restarted in one
process), relays progress to a callback and returns the end-of-crawl
summary, which is also stored on the run row. If the child dies, the run is
marked failed here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from crawlers.progress import parse_line

Progress = Callable[[dict[str, Any]], None]


class CrawlError(RuntimeError):
    """The crawl could not start (unknown spider, bad parameters)."""


def spider_class(name: str):
    from scrapy.spiderloader import SpiderLoader

    from crawlers.settings import crawler_settings

    try:
        return SpiderLoader.from_settings(crawler_settings()).load(name)
    except KeyError:
        raise CrawlError(f"unknown spider {name!r}") from None


def _sanitise(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v))
            for k, v in settings.items()}


def run_crawl(spider_name: str, params: dict[str, Any], *, settings_overrides: dict[str, Any] | None = None,
              progress: Progress | None = None, collection: str | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run one crawl to the end and return its summary (see ``crawlers.runlog.summarize``)."""
    from catalog.db import get_engine, session_scope
    from catalog.ingest import get_or_create_source
    from catalog.runs import start_run
    from catalog.settings import get_settings

    cls = spider_class(spider_name)
    try:
        params = cls.check_params(dict(params))
    except ValueError as exc:
        raise CrawlError(str(exc)) from None
    collection = collection if collection is not None else params.pop("collection", None)
    overrides = dict(settings_overrides or {})
    engine = get_engine()
    src = cls.source_for(params, get_settings())
    with session_scope(engine) as s:
        source = get_or_create_source(s, src["slug"], src["kind"], src.get("base_url"), src.get("config"))
        run_id = start_run(s, "crawl", f"scrapy:{spider_name}",
                           {"params": params, "collection": collection, "settings": _sanitise(overrides)},
                           source_id=source.id)
        source_id = source.id
    if "LOG_FILE" not in overrides:  # the terminal keeps the progress; the log goes next to the blobs
        log_dir = get_settings().home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        overrides["LOG_FILE"] = str(log_dir / f"crawl-{run_id}.log")
    job = {"spider": spider_name, "params": params, "settings": overrides, "run_id": run_id,
           "source_id": source_id, "collection": collection}
    env = dict(os.environ, ARHIVA_DATABASE_URL=engine.url.render_as_string(hide_password=False),
               PYTHONUNBUFFERED="1")
    result = _run_child(job, env, progress, timeout)
    summary = _finish(engine, run_id, result)
    if overrides.get("LOG_FILE"):
        summary["log_file"] = overrides["LOG_FILE"]
    return summary


def _run_child(job: dict[str, Any], env: dict[str, str], progress: Progress | None,
               timeout: float | None) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-m", "crawlers.run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=None, env=env, text=True, encoding="utf-8")
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    state: dict[str, Any] = {"pid": proc.pid, "last": None, "summary": None}
    timer = threading.Timer(timeout, _stop, (proc,)) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        for line in proc.stdout:
            msg = parse_line(line)
            if msg is None:
                sys.stdout.write(line)
                continue
            if msg.get("event") == "summary":
                state["summary"] = msg
            elif msg.get("event") == "progress":
                state["last"] = msg.get("stats")
                if progress is not None:
                    progress(dict(msg.get("stats") or {}, run_id=job["run_id"]))
        state["returncode"] = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the child too: let it close cleanly, then insist
        state["interrupted"] = True
        try:
            proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            _stop(proc)
        state["returncode"] = proc.wait()
    finally:
        if timer:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return state


def _stop(proc: subprocess.Popen) -> None:
    """Ask the crawl to stop (Scrapy closes gracefully on SIGINT), then force it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _finish(engine, run_id: int, result: dict[str, Any]) -> dict[str, Any]:
    from catalog.db import session_scope
    from catalog.models import CrawlRun
    from catalog.runs import finish_run

    with session_scope(engine) as s:
        run = s.get(CrawlRun, run_id)
        if run.status == "running":  # the child died before it could finish its run
            status = "cancelled" if result.get("interrupted") else "failed"
            error = f"crawl process exited with code {result.get('returncode')} before finishing"
            summary = {"status": status, "run_id": run_id, "partial": result.get("last") or {}}
            finish_run(s, "crawl", run_id, status, {"summary": summary}, error)
            return summary | {"error": error}
        summary = dict((run.stats or {}).get("summary") or {})
        summary.setdefault("run_id", run_id)
        summary["status"] = run.status
        if run.error:
            summary["error"] = run.error
        return summary
