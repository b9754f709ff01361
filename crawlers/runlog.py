"""Errors and counts of one crawl, kept for its run row and its summary.

Every component logs problems through ``RunLog.from_crawler(crawler).error``:
the error is counted by kind in the crawl stats, logged, and an example is
kept (up to ``ARHIVA_MAX_ERRORS_KEPT``) for the run row. The crawl goes on.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

PREFIX = "arhiva/"


class RunLog:
    def __init__(self, stats, max_kept: int = 200):
        self.stats = stats
        self.max_kept = max_kept
        self.examples: list[dict[str, Any]] = []

    @classmethod
    def from_crawler(cls, crawler) -> RunLog:
        log = getattr(crawler, "_arhiva_runlog", None)
        if log is None:
            log = cls(crawler.stats, crawler.settings.getint("ARHIVA_MAX_ERRORS_KEPT"))
            crawler._arhiva_runlog = log
        return log

    def error(self, kind: str, message: str, *, url: str | None = None, key: str | None = None) -> None:
        self.stats.inc_value(f"{PREFIX}errors")
        self.stats.inc_value(f"{PREFIX}errors/{kind}")
        if len(self.examples) < self.max_kept:
            self.examples.append({k: v for k, v in
                                  {"kind": kind, "message": message[:500], "url": url, "key": key}.items() if v})
        logger.warning("%s: %s%s%s", kind, message, f" [{key}]" if key else "", f" <{url}>" if url else "")

    def count(self, name: str, n: int = 1) -> None:
        if n:
            self.stats.inc_value(f"{PREFIX}{name}", n)


def _get(stats: dict[str, Any], name: str) -> int:
    return int(stats.get(PREFIX + name, 0) or 0)


def summarize(stats: dict[str, Any], examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The end-of-crawl summary: what the CLI prints and the run row keeps."""
    start, end = stats.get("start_time"), stats.get("finish_time")
    duration = stats.get("elapsed_time_seconds")
    if duration is None and isinstance(start, datetime) and isinstance(end, datetime):
        duration = (end - start).total_seconds()
    errors_by_kind = {k[len(PREFIX + "errors/"):]: int(v) for k, v in stats.items()
                      if k.startswith(PREFIX + "errors/")}
    requests_by_kind = {k[len(PREFIX + "requests/"):]: int(v) for k, v in stats.items()
                        if k.startswith(PREFIX + "requests/")}
    records = {name: _get(stats, f"records/{name}") for name in
               ("new", "changed", "unchanged", "withdrawn", "rejected", "skipped")}
    return {
        "records": records,
        "images": {name: _get(stats, f"images/{name}") for name in ("downloaded", "stored", "failed")},
        "errors": {"count": _get(stats, "errors"), "by_kind": errors_by_kind, "examples": examples or []},
        # less arhiva's own no-op requests (the archive spider's flushes), which never leave the process
        "requests": {"total": int(stats.get("downloader/request_count", 0) or 0) - _get(stats, "internal_requests"),
                     "responses": int(stats.get("downloader/response_count", 0) or 0) - _get(stats, "internal_requests"),
                     "retries": int(stats.get("retry/count", 0) or 0), "by_kind": requests_by_kind},
        # links a crawl's own limits left unfollowed (--max-pages reached, beyond --depth)
        "limits": {"max_pages_reached": _get(stats, "limits/max_pages") > 0,
                   "links_past_depth": _get(stats, "limits/past_depth")},
        "duration_s": round(float(duration), 3) if duration is not None else None,
        "finish_reason": stats.get("finish_reason"),
        "records_per_s": (round((records["new"] + records["changed"] + records["unchanged"]) / float(duration), 2)
                          if duration else None),
    }


def json_safe(stats: dict[str, Any]) -> dict[str, Any]:
    """Scrapy stats as JSON (datetimes as ISO strings)."""
    out = {}
    for k, v in stats.items():
        out[k] = v.isoformat() if isinstance(v, datetime) else v
    return out
