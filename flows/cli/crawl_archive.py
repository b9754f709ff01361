"""``arhiva crawl archive``: archive sites, IIIF and OAI-PMH into the catalogue.

Scrapy and the spiders are imported inside the command (the CLI starts fast).
"""
from __future__ import annotations

from typing import Any, Optional

import typer

from flows.cli.crawl_common import setting_option

app = typer.Typer()  # merged into `arhiva crawl`


def describe(p: dict[str, Any]) -> str:
    pages = sum(v for k, v in p.items() if k.startswith("requests/") and k != "requests/image")
    return (f"run {p.get('run_id')}: {pages} pages, {p.get('oai/records', 0)} OAI records, "
            f"{p.get('records/new', 0)} new, {p.get('records/changed', 0)} changed, "
            f"{p.get('records/unchanged', 0)} unchanged, {p.get('images/stored', 0)} images, "
            f"{p.get('errors', 0)} errors")


@app.command("archive")
def crawl_archive(
    start_urls: list[str] = typer.Argument(..., metavar="START_URL…",
                                           help="Item or listing pages, IIIF manifests/collections, "
                                                "OAI-PMH endpoints or ListRecords URLs."),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection the records join."),
    allow_domain: list[str] = typer.Option([], "--allow-domain",
                                           help="Domain that may be fetched (repeatable; subdomains "
                                                "included). Default: the start URLs' hosts."),
    max_pages: int = typer.Option(10_000, "--max-pages", min=1,
                                  help="Fetch at most N pages, feeds and manifests (images not counted)."),
    depth: int = typer.Option(3, "--depth", min=0,
                              help="Link hops from a start URL (listing → item = 1; pagination, OAI "
                                   "tokens, manifests of a record are free)."),
    oai_set: Optional[str] = typer.Option(None, "--oai-set", help="OAI-PMH set (setSpec)."),
    oai_from: Optional[str] = typer.Option(None, "--from", help="OAI-PMH: records changed since YYYY-MM-DD."),
    source: Optional[str] = typer.Option(None, "--source", "-s",
                                         help="Catalogue source slug (default: archive:<first start host>)."),
    no_images: bool = typer.Option(False, "--no-images", help="Store records without fetching images."),
    setting: list[str] = setting_option(),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Harvest archive pages (schema.org, Dublin Core, Open Graph, Omeka S, Commons, captions),
    IIIF Presentation 2/3 and OAI-PMH (oai_dc), deciding by what each URL returns."""
    from crawlers.settings import parse_setting
    from flows.cli.crawl_common import crawl_and_report

    settings = dict(parse_setting(s) for s in setting)
    if no_images:
        settings["ARHIVA_IMAGES"] = False
    params = {"start_urls": start_urls, "allow_domains": allow_domain or None, "max_pages": max_pages,
              "depth": depth, "set": oai_set, "from_date": oai_from, "source": source, "collection": collection}
    params = {k: v for k, v in params.items() if v is not None}
    crawl_and_report("archive", params, settings, json_out=json_out, describe=describe, max_examples=15)
