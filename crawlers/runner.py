"""Start a crawl from any Python code (the CLI, a Prefect flow, a test).

``run_crawl(spider_name, params)`` checks the parameters (once: a bad one is a ``CrawlError``
before anything starts), opens the catalogue the one way (``catalog.db.open_catalog``),
remembers the source with the URLs it is crawled from, and takes the crawl's scope lock (one
crawl of a source and area at a time, across processes and machines: a second one is skipped
with a message naming the run that holds it). The crawl run (``catalog.runs.activity``) is
owned by this process; the spider runs in a child (``python -m crawlers.run``: Scrapy's
reactor cannot restart) that:

- runs in its own session (a terminal's Ctrl-C reaches this process only, which stops the
  child in order) and dies with this process (``PR_SET_PDEATHSIG``);
- writes its log and any traceback to ``$ARHIVA_HOME/logs/crawl-<run>.log``;
- reports progress, its failure reason and its summary as ``@@arhiva`` lines on stdout.

Progress is stored on the run row as it comes (at most every ``SAVE_EVERY_S`` seconds), so
``arhiva runs`` and the CLI's progress line read the same counts.

Ctrl-C or SIGTERM: the child gets SIGINT (Scrapy closes: the current batch is written), then
SIGKILL after ``GRACE_S`` seconds or at a second signal; the run ends as cancelled.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from crawlers.progress import parse_line

GRACE_S = 6.0
SAVE_EVERY_S = 1.0


class CrawlError(RuntimeError):
    """The crawl could not start (unknown spider, bad parameters)."""


def spider_class(name: str):
    from scrapy.spiderloader import SpiderLoader

    from crawlers.settings import crawler_settings

    try:
        return SpiderLoader.from_settings(crawler_settings()).load(name)
    except KeyError:
        raise CrawlError(f"unknown spider {name!r}") from None


def checked_params(spider_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The spider's normalised parameters, or ``CrawlError`` saying what is wrong."""
    from catalog.ingest import collection_name_problem

    name = params.get("collection")
    if name is not None and collection_name_problem(name):
        raise CrawlError(f"--collection {name!r}: {collection_name_problem(name)}")
    try:
        return spider_class(spider_name).check_params(dict(params))
    except ValueError as exc:
        raise CrawlError(str(exc)) from None


def _sanitise(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v))
            for k, v in settings.items()}


def run_crawl(spider_name: str, params: dict[str, Any], *, settings_overrides: dict[str, Any] | None = None,
              collection: str | None = None, timeout: float | None = None,
              progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one crawl to the end and return its summary (see ``crawlers.runlog.summarize``).

    ``progress`` is called with each progress report of the child (its counts, ``pid``, ``run_id``)."""
    from sqlalchemy import select

    from catalog.db import open_catalog, session_scope
    from catalog.ingest import collection_name_problem, remember_source
    from catalog.models import CrawlRun
    from catalog.names import collection_name
    from catalog.runs import activity, exclusive
    from catalog.settings import get_settings

    cls = spider_class(spider_name)
    params = checked_params(spider_name, params)
    collection = collection if collection is not None else params.pop("collection", None)
    if collection is not None and collection_name_problem(collection):  # before any run starts
        raise CrawlError(f"--collection {collection!r}: {collection_name_problem(collection)}")
    if collection is not None:  # as stored (NFC): the run's parameters name it as the catalogue does
        collection = collection_name(collection)
    overrides = dict(settings_overrides or {})
    engine = open_catalog()
    app = get_settings()
    src = cls.source_for(params, app)
    scope = f"crawl {src['slug']} {cls.scope_of(params)}"
    with session_scope(engine) as s:
        source_id = remember_source(s, src["slug"], src["kind"], src.get("base_url"), src.get("config")).id
    with exclusive(engine, scope) as free:
        if not free:
            with session_scope(engine) as s:
                other = s.execute(select(CrawlRun.id).where(CrawlRun.source_id == source_id,
                                                            CrawlRun.status == "running")
                                  .order_by(CrawlRun.id)).scalars().first()
            return {"status": "skipped", "run_id": None, "source": src["slug"],
                    "reason": " ".join(filter(None, ("another crawl of", src["slug"], cls.scope_of(params), "is running")))
                              + (f" (run {other})" if other else "") + "; this one was not started"}
        state: dict[str, Any] = {"progress": {}, "summary": None, "scrapy": None}
        with activity("crawl", f"scrapy:{spider_name}",
                      {"params": params, "collection": collection, "settings": _sanitise(overrides), "scope": scope},
                      engine=engine, stats=lambda: _stats(state), source_id=source_id) as run:
            log_dir = app.home / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = overrides.setdefault("LOG_FILE", str(log_dir / f"crawl-{run.id}.log"))
            job = {"spider": spider_name, "params": params, "settings": overrides, "run_id": run.id,
                   "source_id": source_id, "collection": collection}
            env = dict(os.environ, ARHIVA_DATABASE_URL=engine.url.render_as_string(hide_password=False),
                       PYTHONUNBUFFERED="1", ARHIVA_PARENT_PID=str(os.getpid()))
            _run_child(job, env, run, state, log_file, timeout, progress)
            summary = dict(state["summary"] or {"partial": state["progress"]})
            summary.update(run_id=run.id, spider=spider_name, log_file=log_file)
            status = state.get("status") or "failed"
            error = state.get("error")
            if status == "failed" and not error:
                error = (f"crawl process exited with code {state.get('returncode')} before finishing "
                         f"(see {log_file})")
            summary["status"] = status
            if error:
                summary["error"] = error
            state["summary"] = summary
            if status != "succeeded":
                run.end(status, error)
    return summary


def _stats(state: dict[str, Any]) -> dict[str, Any]:
    if state.get("summary"):
        return {"summary": state["summary"], "scrapy": state.get("scrapy") or {}}
    return {"progress": state.get("progress") or {}}


def _run_child(job: dict[str, Any], env: dict[str, str], run, state: dict[str, Any], log_file: str,
               timeout: float | None, progress: Callable[[dict[str, Any]], None] | None) -> None:
    # no preexec_fn: with one, CPython runs the at-fork handlers in the child before exec (Prefect's
    # among them, which free objects), and a lock another thread held at the fork (OpenSSL's) left
    # that child spinning for ever; the child asks for its death signal itself (crawlers.run)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-P", "-m", "crawlers.run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, env=env, start_new_session=True)
    proc.stdin.write(json.dumps(job).encode("utf-8"))
    proc.stdin.close()
    deadline = time.monotonic() + timeout if timeout else None
    saved = 0.0
    try:
        for raw in proc.stdout:
            msg = parse_line(raw.decode("utf-8", "replace"))
            if msg is None:
                continue
            event = msg.get("event")
            if event == "progress":
                state["progress"] = dict(msg.get("stats") or {})
                if progress is not None:
                    progress(dict(state["progress"], run_id=run.id))
                now = time.monotonic()
                if now - saved >= SAVE_EVERY_S:
                    saved = now
                    run.stats = {"progress": state["progress"]}
                    try:
                        run.save_stats()
                    except Exception:  # progress is best effort; the run's end is not
                        pass
                if deadline and now > deadline:
                    raise TimeoutError(f"the crawl ran past its {timeout:.0f} s limit")
            else:
                _last_word(msg, state)
        state["returncode"] = proc.wait()
    except BaseException:  # Ctrl-C, SIGTERM, a time limit: stop the child in order, then go on unwinding
        stop_child(proc, on_line=lambda raw: _last_word(parse_line(raw.decode("utf-8", "replace")), state))
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _last_word(msg: dict[str, Any] | None, state: dict[str, Any]) -> None:
    """The child's summary (also the one it writes as it stops early) or its failure, into ``state``."""
    event = (msg or {}).get("event")
    if event == "summary":
        state.update(summary=msg.get("summary"), scrapy=msg.get("scrapy"), status=msg.get("status"),
                     error=msg.get("error"))
    elif event == "failed":
        state.update(status="failed", error=msg.get("error"))


def stop_child(proc: subprocess.Popen, grace: float = GRACE_S,
               on_line: Callable[[bytes], None] | None = None) -> None:
    """Ask the crawl to stop (SIGINT: Scrapy closes and writes its batch), kill it after ``grace``
    seconds or at a second Ctrl-C. ``on_line`` reads what it still writes (its summary: what it
    stored before it stopped), so the run keeps it."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
    killer = threading.Timer(grace, _kill_group, (proc,))
    killer.daemon = True
    killer.start()
    try:
        if on_line is not None and proc.stdout is not None:
            for raw in proc.stdout:
                try:
                    on_line(raw)
                except Exception:  # a line we cannot read does not stop the stopping
                    pass
        proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        killer.cancel()
        if proc.poll() is None:
            _kill_group(proc)
        proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the crawl and every process of its session (it leads one: ``start_new_session``):
    its image workers hold its output open, so killing it alone would leave the read waiting."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if proc.poll() is None:
            proc.kill()
