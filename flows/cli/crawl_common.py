"""Shared by the crawl commands: run a spider through the Prefect ``crawl`` flow with a progress
bar, then print the end-of-crawl summary. Prefect and Scrapy load only when a crawl runs."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from flows.cli.ui import Table, console, err, escape, say


def setting_option() -> Any:
    """The crawl commands' ``--setting NAME=VALUE`` option (one spelling and help for both)."""
    return typer.Option([], "--setting", help="Scrapy setting NAME=VALUE (repeatable), "
                                              "e.g. --setting DOWNLOAD_DELAY=2.")


def summary_table(summary: dict[str, Any]) -> Table:
    """The end-of-crawl summary as a table."""
    t = Table(title=f"crawl run {summary.get('run_id')}: {summary.get('status')}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("count", justify="right")
    rec = summary.get("records") or {}
    for name in ("new", "changed", "unchanged", "withdrawn", "rejected", "skipped"):
        t.add_row(f"records {name}", str(rec.get(name, 0)))
    img = summary.get("images") or {}
    t.add_row("images stored", str(img.get("stored", 0)))
    t.add_row("images failed", str(img.get("failed", 0)))
    req = summary.get("requests") or {}
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted((req.get("by_kind") or {}).items()))
    t.add_row("requests", f"{req.get('total', 0)}" + (f" ({by_kind})" if by_kind else ""))
    t.add_row("retries", str(req.get("retries", 0)))
    errors = summary.get("errors") or {}
    kinds = ", ".join(f"{k} {v}" for k, v in sorted((errors.get("by_kind") or {}).items()))
    t.add_row("errors", f"{errors.get('count', 0)}" + (f" ({kinds})" if kinds else ""))
    if summary.get("duration_s") is not None:
        t.add_row("duration", f"{summary['duration_s']:.1f} s")
    if summary.get("records_per_s"):
        t.add_row("records/s", f"{summary['records_per_s']:.1f}")
    return t


def network_news(progress: dict[str, Any]) -> str | None:
    """The one line about connections failing, when they do (``crawlers.netwatch``)."""
    return progress.get("network") or None


def crawl_and_report(spider: str, params: dict[str, Any], settings: dict[str, Any], *, json_out: bool,
                     describe: Callable[[dict[str, Any]], str], max_examples: int = 10) -> None:
    """Run the crawl flow, show progress, print the summary; exit 2 on bad input, 1 if the crawl failed
    or any record it found was not stored (rejected)."""
    from crawlers.runner import checked_params
    from flows.cli.flowrun import RunWatcher, flow_session

    allow_private_from(settings)
    checked_params(spider, params)  # bad parameters are answered before any flow or process starts
    with flow_session(), RunWatcher("crawl", describe, on_news=network_news) as watch:
        from flows import crawl as crawl_module  # Prefect loads once its home is ready

        try:
            summary = crawl_module.crawl_flow(spider=spider, params=params, settings=settings, retries=0)
        except crawl_module.CrawlFailed:
            summary = _run_summary(watch.run_id)
    if summary.get("status") == "skipped":
        say(f"skipped: {summary.get('reason')}", "yellow")
        return
    if json_out:
        console.print_json(json.dumps(summary, default=str))
    else:
        console.print(summary_table(summary))
        for e in ((summary.get("errors") or {}).get("examples") or [])[:max_examples]:
            key, url = e.get("key"), e.get("url")  # a record's key, and the URL that failed when another
            where = f"{key} {url}" if key and url and url != key else (key or url or "")
            detail = escape(f"{where} {e.get('message', '')}")
            err.print(f"  [yellow]{escape(str(e.get('kind')))}[/yellow] {detail}", highlight=False)
    limits = summary.get("limits") or {}
    if limits.get("max_pages_reached"):
        say("--max-pages reached: the rest of the source was not fetched (a higher --max-pages goes on)", "yellow")
    if limits.get("links_past_depth"):
        say(f"{limits['links_past_depth']:,} link(s) beyond --depth not followed (a higher --depth follows them)",
            "yellow")
    lost = _lost_records(summary)
    if summary.get("status") != "succeeded" or lost:
        n = (summary.get("errors") or {}).get("count", 0)
        reason = summary.get("error") or (
            f"the source answered {n} request(s) with errors or not at all; what did answer is stored "
            f"(the crawl log: {summary.get('log_file')})" if summary.get("status") == "partial"
            else f"{lost} record(s) found were not stored (rejected; see above)" if lost
            else f"the crawl ended {summary.get('status')}")
        err.print(f"[red]error:[/red] crawl run {summary.get('run_id')} {escape(str(summary.get('status')))}: "
                  f"{escape(str(reason))}", highlight=False)
        raise typer.Exit(1)


def allow_private_from(settings: dict[str, Any]) -> None:
    """``--setting ARHIVA_ALLOW_PRIVATE=…`` allows those origins as the environment variable does:
    added to it for this command (the start URLs' check here, and the crawl process after it)."""
    import os

    from catalog.settings import reset_settings_cache

    value = settings.get("ARHIVA_ALLOW_PRIVATE")
    if not value:
        return
    given = value if isinstance(value, str) else ",".join(map(str, value))
    os.environ["ARHIVA_ALLOW_PRIVATE"] = ",".join(filter(None, (os.environ.get("ARHIVA_ALLOW_PRIVATE"), given)))
    reset_settings_cache()


def _lost_records(summary: dict[str, Any]) -> int:
    """Records the crawl found but did not store (rejected, or a batch the catalogue refused)."""
    by_kind = (summary.get("errors") or {}).get("by_kind") or {}
    return int((summary.get("records") or {}).get("rejected") or 0) + int(by_kind.get("catalogue_write") or 0)


def _run_summary(run_id: int | None) -> dict[str, Any]:
    """The summary stored on a crawl run (the flow raised, the run row knows why)."""
    from catalog.db import open_catalog, session_scope
    from catalog.models import CrawlRun

    if run_id is None:
        return {"status": "failed", "error": "the crawl did not start"}
    with session_scope(open_catalog()) as s:
        run = s.get(CrawlRun, run_id)
        stats = run.stats or {}
        summary = dict(stats.get("summary") or {"partial": stats.get("progress") or {}})
        summary.update(run_id=run_id, status=run.status)
        if run.error:
            summary["error"] = run.error
        return summary
