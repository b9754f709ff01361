"""``arhiva crawl pastvu``: harvest PastVu photos of an area into the catalogue.

Scrapy and the spiders are imported inside the command (the CLI starts fast).
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Optional

import typer

from crawlers.pastvu.tiles import TILE_SIZE  # a light module: no Scrapy
from flows.cli.crawl_common import setting_option
from flows.cli.ui import fail

app = typer.Typer()  # merged into `arhiva crawl`


class Images(str, Enum):
    none = "none"
    standard = "standard"
    original = "original"


def describe(p: dict[str, Any]) -> str:
    return (f"run {p.get('run_id')}: {p.get('tiles', 0)} tiles, {p.get('records/new', 0)} new, "
            f"{p.get('records/changed', 0)} changed, {p.get('records/unchanged', 0)} unchanged, "
            f"{p.get('images/stored', 0)} images, {p.get('errors', 0)} errors, {p.get('requests', 0)} requests")


@app.command("pastvu")
def crawl_pastvu(
    bbox: Optional[str] = typer.Option(None, "--bbox", help="Area W,S,E,N in degrees (longitude first)."),
    region: Optional[str] = typer.Option(None, "--region", help="A built-in area: moldova."),
    years: Optional[str] = typer.Option(None, "--years", "-y", help="FROM-TO: photos whose year is in range."),
    collection: str = typer.Option("pastvu", "--collection", "-c", help="Collection the records join."),
    api_url: Optional[str] = typer.Option(None, "--api-url",
                                          help="API endpoint, for mirrors and tests (default: ARHIVA_PASTVU_API_URL, "
                                               "else https://pastvu.com/api2)."),
    images: Images = typer.Option(Images.standard, "--images",
                                  help="none, standard (the 'd' size, ≤1050×700) or original ('a')."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1,
                                        help="Fetch at most N new or changed photos (no withdrawals then)."),
    tile_size: float = typer.Option(TILE_SIZE, "--tile-size", help="Tile side in degrees (split when too big)."),
    setting: list[str] = setting_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Harvest PastVu photos of an area (tiles of photo.getByBounds, then giveForPage and the image once).

    Runs through the Prefect `crawl` flow (a temporary local server starts unless PREFECT_API_URL is set)."""
    from crawlers.settings import parse_setting
    from flows.cli.crawl_common import crawl_and_report

    if not bbox and not region:
        fail("give --bbox W,S,E,N or --region moldova")
    settings = dict(parse_setting(s) for s in setting)
    params = {"bbox": bbox, "region": region, "years": years, "images": images.value, "limit": limit,
              "api_url": api_url, "tile_size": tile_size, "collection": collection}
    params = {k: v for k, v in params.items() if v is not None}
    crawl_and_report("pastvu", params, settings, json_out=json_out, describe=describe)
