"""The ``crawl`` flow: one spider run, in a child process, recorded as a crawl run.

Scrapy's reactor cannot restart inside a process, so the spider runs in a
child (``crawlers.runner.run_crawl``); the task retries when the crawl
process itself failed (network down, killed), not when it finished with
per-item errors, which are counted on the run. Optionally colorizes what the
crawl brought in, with the latest model.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows import prefect_env  # noqa: F401  (before prefect)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

# The CLI sets this to show a progress bar; flows on a server leave it unset.
progress_hook: Callable[[dict[str, Any]], None] | None = None


class CrawlFailed(RuntimeError):
    pass


@task(name="run-spider", retries=2, retry_delay_seconds=[30, 120], cache_policy=NO_CACHE)
def run_spider(spider: str, params: dict[str, Any], settings: dict[str, Any] | None) -> dict[str, Any]:
    from crawlers.runner import run_crawl

    log = get_run_logger()
    last = {"n": -1}

    def progress(p: dict[str, Any]) -> None:
        if progress_hook is not None:
            progress_hook(p)
        done = p.get("records/new", 0) + p.get("records/changed", 0) + p.get("records/unchanged", 0)
        if done // 100 != last["n"]:
            last["n"] = done // 100
            log.info("run %s: %s records, %s images, %s errors", p.get("run_id"), done, p.get("images/stored", 0),
                     p.get("errors", 0))

    summary = run_crawl(spider, params, settings_overrides=settings, progress=progress)
    if summary.get("status") == "failed":
        raise CrawlFailed(summary.get("error") or f"crawl run {summary.get('run_id')} failed")
    return summary


@flow(name="crawl", log_prints=True)
def crawl_flow(spider: str, params: dict[str, Any], settings: dict[str, Any] | None = None,
               retries: int | None = None, colorize_after: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``spider`` with ``params`` (as `arhiva crawl <spider>` takes them); return its summary.

    ``colorize_after``: e.g. ``{"years": "1850-1990"}`` colorizes the crawl's collection with the
    latest model when the crawl brought new or changed records.
    """
    from flows.artifacts import summary_table

    log = get_run_logger()
    task_fn = run_spider if retries is None else run_spider.with_options(retries=retries)
    summary = task_fn(spider, params, settings)
    flat = {"run_id": summary.get("run_id"), "status": summary.get("status")}
    for group in ("records", "images", "requests", "errors"):
        for k, v in (summary.get(group) or {}).items():
            if isinstance(v, (int, float, str)):
                flat[f"{group} {k}"] = v
    flat["duration_s"] = summary.get("duration_s")
    summary_table(f"crawl-{summary.get('run_id')}", flat, f"Crawl run {summary.get('run_id')} ({spider})")
    rec = summary.get("records") or {}
    collection = params.get("collection")
    if colorize_after is not None and collection and (rec.get("new", 0) + rec.get("changed", 0)) > 0:
        from catalog.db import open_catalog, session_scope
        from catalog.work import latest_model
        from flows.colorize import colorize_flow

        with session_scope(open_catalog()) as s:
            has_model = latest_model(s) is not None
        if has_model:
            summary["colorize"] = colorize_flow(collection=collection, **colorize_after)
        else:
            log.info("no model version yet: nothing colorized after the crawl")
    return summary
