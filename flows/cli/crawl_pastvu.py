"""``arhiva crawl pastvu``: harvest PastVu photos of an area into the catalogue.

Scrapy and the crawlers are imported inside the command (the CLI starts fast).
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


class Images(str, Enum):
    none = "none"
    standard = "standard"
    original = "original"


def summary_table(summary: dict[str, Any]) -> Table:
    """The end-of-crawl summary as a table (shared by every crawl command)."""
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


def run_with_progress(spider: str, params: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from crawlers.runner import run_crawl

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(f"crawling {spider}…", total=None)

        def show(p: dict[str, Any]) -> None:
            new, changed = p.get("records/new", 0), p.get("records/changed", 0)
            bar.update(task, description=(
                f"run {p.get('run_id')}: {p.get('tiles', 0)} tiles, {new} new, {changed} changed, "
                f"{p.get('records/unchanged', 0)} unchanged, {p.get('images/stored', 0)} images, "
                f"{p.get('errors', 0)} errors, {p.get('requests', 0)} requests"))

        return run_crawl(spider, params, settings_overrides=settings, progress=show)


def register(app: typer.Typer, crawl_app: typer.Typer) -> None:
    @crawl_app.command("pastvu")
    def crawl_pastvu(
        bbox: Optional[str] = typer.Option(None, "--bbox", help="Area W,S,E,N in degrees (longitude first)."),
        region: Optional[str] = typer.Option(None, "--region", help="A built-in area: moldova."),
        years: Optional[str] = typer.Option(None, "--years", help="FROM-TO: photos whose year is in range."),
        collection: str = typer.Option("pastvu", "--collection", help="Collection the records join."),
        api_url: Optional[str] = typer.Option(None, "--api-url",
                                              help="API endpoint, for mirrors and tests (default: ARHIVA_PASTVU_API_URL, "
                                                   "else https://pastvu.com/api2)."),
        images: Images = typer.Option(Images.standard, "--images",
                                      help="none, standard (the 'd' size, ≤1050×700) or original ('a')."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                            help="Fetch at most N new or changed photos (no withdrawals then)."),
        tile_size: float = typer.Option(0.25, "--tile-size", help="Tile side in degrees (split when too big)."),
        set_: list[str] = typer.Option([], "--set", help="Scrapy setting NAME=VALUE (repeatable), "
                                                         "e.g. --set DOWNLOAD_DELAY=2."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Harvest PastVu photos of an area (tiles of photo.getByBounds, then giveForPage and the image once)."""
        import json

        from crawlers.runner import CrawlError
        from crawlers.settings import parse_setting

        if not bbox and not region:
            err.print("[red]error:[/red] give --bbox W,S,E,N or --region moldova")
            raise typer.Exit(2)
        try:
            settings = dict(parse_setting(s) for s in set_)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        params = {"bbox": bbox, "region": region, "years": years, "images": images.value, "limit": limit,
                  "api_url": api_url, "tile_size": tile_size, "collection": collection}
        params = {k: v for k, v in params.items() if v is not None}
        try:
            summary = run_with_progress("pastvu", params, settings)
        except CrawlError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if json_out:
            console.print_json(json.dumps(summary, default=str))
        else:
            console.print(summary_table(summary))
            for e in ((summary.get("errors") or {}).get("examples") or [])[:10]:
                err.print(f"  [yellow]{e.get('kind')}[/yellow] {e.get('key', '')} {e.get('message', '')}",
                          highlight=False)
            if summary.get("error"):
                err.print(f"[red]error:[/red] {summary['error']}", highlight=False)
        if summary.get("status") != "succeeded":
            raise typer.Exit(1)
