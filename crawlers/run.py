"""The crawl process: ``python -m crawlers.run`` with a job (JSON) on stdin.

Started by ``crawlers.runner.run_crawl`` (Scrapy's reactor cannot restart,
so every crawl gets a fresh process). The job names the spider, its
parameters, settings overrides, and the run row the parent created. This
process runs the crawl, stores the summary on the run row, and prints
progress and the summary as ``@@arhiva`` lines on stdout.
"""
from __future__ import annotations

import json
import sys
from typing import Any


def status_for(reason: str | None, stats: dict[str, Any], crash: str | None) -> str:
    if crash:
        return "failed"
    if stats.get("arhiva/failed"):
        return "failed"
    if reason in ("shutdown", "cancelled"):
        return "cancelled"
    if reason == "finished" or (reason or "").startswith("closespider"):
        # a source that answered with errors (pages lost, an OAI list cut short): not all was harvested
        return "partial" if stats.get("arhiva/incomplete") else "succeeded"
    return "failed"


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from scrapy.crawler import CrawlerProcess

    from catalog.db import get_engine, session_scope
    from catalog.runs import finish_run
    from crawlers.progress import emit
    from crawlers.runlog import RunLog, json_safe, summarize
    from crawlers.settings import crawler_settings

    overrides = {"ARHIVA_RUN_ID": job["run_id"], "ARHIVA_SOURCE_ID": job["source_id"],
                 "ARHIVA_COLLECTION": job.get("collection"), "ARHIVA_PROGRESS_STREAM": "stdout",
                 **(job.get("settings") or {})}
    settings = crawler_settings(overrides)
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(job["spider"])
    crash: list[str] = []

    def _crashed(failure):
        crash.append(f"{failure.type.__name__}: {failure.getErrorMessage()}")
        return None

    process.crawl(crawler, **(job.get("params") or {})).addErrback(_crashed)
    process.start()

    stats = crawler.stats.get_stats() if crawler.stats else {}
    reason = stats.get("finish_reason")
    summary = summarize(stats, RunLog.from_crawler(crawler).examples if crawler.stats else [])
    status = status_for(reason, stats, crash[0] if crash else None)
    summary.update(run_id=job["run_id"], spider=job["spider"], status=status)
    error = crash[0] if crash else (str(stats.get("arhiva/failed")) if stats.get("arhiva/failed") else None)
    with session_scope(get_engine()) as s:
        finish_run(s, "crawl", job["run_id"], status, {"summary": summary, "scrapy": json_safe(stats)}, error)
    emit("summary", summary=summary, status=status, error=error)
    return summary


def main() -> int:
    job = json.loads(sys.stdin.read())
    summary = run_job(job)
    return 0 if summary.get("status") in ("succeeded",) else 1


if __name__ == "__main__":
    sys.exit(main())
