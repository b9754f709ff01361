"""Shared by the crawl commands: run a spider through the Prefect ``crawl`` flow with a progress
bar, then print the end-of-crawl summary. Prefect and Scrapy load only when a crawl runs."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err = Console(stderr=True, soft_wrap=True)


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


def crawl_and_report(spider: str, params: dict[str, Any], settings: dict[str, Any], *, json_out: bool,
                     describe: Callable[[dict[str, Any]], str], max_examples: int = 10) -> None:
    """Run the crawl flow, show progress, print the summary; exit 2 on bad input, 1 if the crawl failed
    or any record it found was not stored (rejected)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from crawlers.runner import CrawlError, spider_class
    from flows import crawl as crawl_module

    try:  # bad parameters are answered before any flow or process starts
        spider_class(spider).check_params(dict(params))
    except (CrawlError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None

    from flows.prefect_env import bind_console

    bind_console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(f"crawling {spider}…", total=None)
        crawl_module.progress_hook = lambda p: bar.update(task, description=describe(p))
        try:
            summary = crawl_module.crawl_flow(spider=spider, params=params, settings=settings, retries=0)
        except CrawlError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        except crawl_module.CrawlFailed as exc:
            err.print(f"[red]error:[/red] crawl failed: {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
        finally:
            crawl_module.progress_hook = None
    if json_out:
        console.print_json(json.dumps(summary, default=str))
    else:
        console.print(summary_table(summary))
        for e in ((summary.get("errors") or {}).get("examples") or [])[:max_examples]:
            where = e.get("key") or e.get("url") or ""
            detail = escape(f"{where} {e.get('message', '')}")
            err.print(f"  [yellow]{escape(str(e.get('kind')))}[/yellow] {detail}", highlight=False)
        if summary.get("error"):
            err.print(f"[red]error:[/red] {escape(str(summary['error']))}", highlight=False)
    if summary.get("status") != "succeeded" or _lost_records(summary):
        raise typer.Exit(1)


def _lost_records(summary: dict[str, Any]) -> int:
    """Records the crawl found but did not store (rejected, or a batch the catalogue refused)."""
    by_kind = (summary.get("errors") or {}).get("by_kind") or {}
    return int((summary.get("records") or {}).get("rejected") or 0) + int(by_kind.get("catalogue_write") or 0)
