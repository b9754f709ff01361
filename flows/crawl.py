"""The ``crawl`` flow: one spider run, in a child process, recorded as a crawl run.

Scrapy's reactor cannot restart inside a process, so the spider runs in a child
(``crawlers.runner.run_crawl``); the task retries when the crawl process itself failed (network
down, killed), not when it finished with per-item errors, which are counted on the run. A crawl
of a source and area that is already running elsewhere is skipped (the flow run ends Completed,
saying so). Optionally colorizes what the crawl brought in, with the latest model.

Progress is on the crawl run's row (``stats.progress``), where the CLI and ``arhiva runs`` read it,
and in this flow's logs.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE


class CrawlFailed(RuntimeError):
    pass


@task(name="run-spider", retries=2, retry_delay_seconds=[30, 120], cache_policy=NO_CACHE)
def run_spider(spider: str, params: dict[str, Any], settings: dict[str, Any] | None) -> dict[str, Any]:
    from crawlers.runner import run_crawl

    summary = run_crawl(spider, params, settings_overrides=settings)
    if summary.get("status") == "failed":
        raise CrawlFailed(summary.get("error") or f"crawl run {summary.get('run_id')} failed")
    return summary


@flow(name="crawl", log_prints=True)
def crawl_flow(spider: str, params: dict[str, Any], settings: dict[str, Any] | None = None,
               retries: int | None = None, colorize_after: dict[str, Any] | None = None):
    """Run ``spider`` with ``params`` (as `arhiva crawl <spider>` takes them); return its summary.

    ``colorize_after``: e.g. ``{"years": "1850-1990"}`` colorizes the crawl's collection with the
    latest model when the crawl brought new or changed records.
    """
    from flows.artifacts import summary_table
    from flows.outcome import nothing_to_do

    log = get_run_logger()
    task_fn = run_spider if retries is None else run_spider.with_options(retries=retries)
    summary = task_fn(spider, params, settings)
    if summary.get("status") == "skipped":
        return nothing_to_do(summary["reason"], summary)
    flat = {"run_id": summary.get("run_id"), "status": summary.get("status")}
    for group in ("records", "images", "requests", "errors"):
        for k, v in (summary.get(group) or {}).items():
            if isinstance(v, (int, float, str)):
                flat[f"{group} {k}"] = v
    flat["duration_s"] = summary.get("duration_s")
    summary_table(f"crawl-{summary.get('run_id')}", flat, f"Crawl run {summary.get('run_id')} ({spider})")
    rec = summary.get("records") or {}
    log.info("crawl run %s %s: %s new, %s changed, %s unchanged, %s images", summary.get("run_id"),
             summary.get("status"), rec.get("new", 0), rec.get("changed", 0), rec.get("unchanged", 0),
             (summary.get("images") or {}).get("stored", 0))
    collection = params.get("collection")
    if colorize_after is not None and collection and (rec.get("new", 0) + rec.get("changed", 0)) > 0:
        from flows.colorize import colorize_flow

        summary["colorize"] = colorize_flow(collection=collection, **colorize_after)
    return summary
