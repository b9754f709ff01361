"""The crawl process: ``python -m crawlers.run`` with a job (JSON) on stdin.

Started by ``crawlers.runner.run_crawl`` (Scrapy's reactor cannot restart, so every crawl gets a
fresh process). The job names the spider, its parameters, settings overrides, and the run the
parent owns. This process runs the crawl and prints, as ``@@arhiva`` lines on stdout, its
progress, then either its summary (with the run's status and Scrapy's stats) or the one-line
reason it failed; the parent stores them on the run. Tracebacks go to stderr, which the parent
points at the crawl's log file.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
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


def _process_class():
    from scrapy.crawler import CrawlerProcess
    from scrapy.exceptions import IgnoreRequest
    from twisted.python.failure import Failure

    class Stopping(IgnoreRequest):
        """A download dropped because the crawl is stopping."""

    class Process(CrawlerProcess):
        """Scrapy's process, whose first Ctrl-C / SIGTERM also drops the downloads still waiting
        for their politeness delay, Scrapy's or the shared one (else a stopping crawl stays busy
        for DOWNLOAD_DELAY × queue)."""

        def _signal_shutdown(self, signum, frame):
            from twisted.internet import reactor

            reactor.callFromThread(self._drop_waiting)
            super()._signal_shutdown(signum, frame)

        def _drop_waiting(self) -> None:
            for crawler in self.crawlers:
                downloader = getattr(getattr(crawler, "engine", None), "downloader", None)
                for mw in getattr(getattr(downloader, "middleware", None), "middlewares", ()):
                    if hasattr(mw, "stop_waiting"):  # crawlers.politeness: the host's turns and start times
                        mw.stop_waiting()
                for slot in getattr(downloader, "slots", {}).values():
                    while slot.queue:
                        request, waiting = slot.queue.popleft()
                        request.meta["arhiva_stopping"] = True
                        waiting.errback(Failure(Stopping("the crawl is stopping")))

    return Process


def _stats_of(crawler) -> dict[str, Any]:
    try:  # Scrapy raises "not set yet" when the crawl failed before it started
        return crawler.stats.get_stats() if crawler.stats else {}
    except RuntimeError:
        return {}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from catalog.runs import json_safe, one_line
    from crawlers.progress import emit
    from crawlers.runlog import RunLog, summarize
    from crawlers.settings import crawler_settings

    overrides = {"ARHIVA_RUN_ID": job["run_id"], "ARHIVA_SOURCE_ID": job["source_id"],
                 "ARHIVA_COLLECTION": job.get("collection"), "ARHIVA_PROGRESS_STREAM": "stdout",
                 **(job.get("settings") or {})}
    process = _process_class()(crawler_settings(overrides))
    crawler = process.create_crawler(job["spider"])
    crash: list[str] = []

    def _crashed(failure):
        crash.append(one_line(failure.value))
        traceback.print_exception(failure.value, file=sys.stderr)
        return None

    process.crawl(crawler, **(job.get("params") or {})).addErrback(_crashed)
    process.start()

    stats = _stats_of(crawler)
    reason = stats.get("finish_reason")
    summary = summarize(stats, RunLog.from_crawler(crawler).examples if stats else [])
    status = status_for(reason, stats, crash[0] if crash else None)
    summary.update(run_id=job["run_id"], spider=job["spider"], status=status)
    error = crash[0] if crash else (str(stats["arhiva/failed"]) if stats.get("arhiva/failed") else None)
    emit("summary", summary=summary, scrapy=json_safe(stats), status=status, error=error)
    return summary


def main() -> int:
    from catalog.tethered import die_with_parent

    die_with_parent()  # SIGKILL when the command that started us dies; then check it had not already
    parent = os.environ.get("ARHIVA_PARENT_PID")
    if parent and os.getppid() != int(parent):
        return 1  # the parent died before we were ready: nobody would read our answer
    try:
        job = json.loads(sys.stdin.read())
        summary = run_job(job)
    except BaseException as exc:  # the parent gets the reason in one line, the log the traceback
        from catalog.runs import is_interrupt, one_line
        from crawlers.progress import emit

        traceback.print_exc()
        emit("failed", error="interrupted" if is_interrupt(exc) else one_line(exc))
        return 1
    return 0 if summary.get("status") == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
