"""Catalogue commands: db, sources, collections, records/search, export, runs.

Imports only the catalogue (SQLAlchemy, psycopg): these answer fast.
"""
from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from typing import Optional

import typer

from flows.cli.ui import Table, console, err, escape, fail, unquoted

app = typer.Typer()
db_app = typer.Typer(name="db", help="The catalogue database: migrate, inspect, stop the embedded server.",
                     no_args_is_help=True)
app.add_typer(db_app)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    dc = "dc"


class RecordStatus(str, Enum):
    active = "active"
    withdrawn = "withdrawn"
    any = "any"


class Colorized(str, Enum):
    yes = "yes"
    no = "no"


class RunKind(str, Enum):
    crawl = "crawl"
    training = "training"
    colorization = "colorization"


def _value(choice):
    """An Enum choice's text (commands calling commands pass plain strings)."""
    return choice.value if isinstance(choice, Enum) else choice


def _query(collection, source, years, include_undated, bbox, text, colorized, status, ids, limit, page):
    from catalog.queries import QueryError, RecordQuery, parse_bbox, parse_years

    for option, given in (("--text", text), ("--years", years), ("--bbox", bbox)):
        if given is not None and not given.strip():  # `arhiva search "$WORDS"` with WORDS unset: not everything
            fail(f"{option} is empty; leave it out to list every record")
    try:
        year_from, year_to = parse_years(years) if years else (None, None)
        box = parse_bbox(bbox) if bbox else None
    except QueryError as exc:
        fail(str(exc))
    for option, name in (("--collection", collection), ("--source", source)):
        if name is not None and not name.strip():  # an empty name is no filter: it would match everything
            fail(f"{option} is empty; leave it out to search every {option[2:]}")
    colorized, status = _value(colorized), _value(status)
    col = None if colorized is None else colorized == "yes"
    return RecordQuery(collection=collection, source=source, year_from=year_from, year_to=year_to,
                       include_undated=include_undated, bbox=box, text=text, colorized=col,
                       status=None if status == "any" else status, ids=ids or None,
                       limit=limit, offset=(page - 1) * limit)


def _query_failed(exc) -> None:
    """A search's QueryError as one error line (status 2); an unknown --collection or --source,
    a typo far more often than a wish for nothing, also says where to list what there is."""
    from catalog.queries import UnknownName

    fail(f"{exc}; arhiva {exc.kind}s lists them" if isinstance(exc, UnknownName) else str(exc))


def _print_provenance(record_id: int, fmt: OutputFormat) -> None:
    from catalog.db import open_catalog, session_scope
    from catalog.provenance import lineage

    with session_scope(open_catalog()) as s:
        try:
            chain = lineage(s, record_id)
        except LookupError as exc:
            fail(unquoted(str(exc)))
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(chain, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    from rich.tree import Tree

    r = chain["record"]
    tree = Tree(escape(f"record {r['id']} {r['source']}:{r['source_key']} — {r['title'] or ''}"))
    tree.add(f"first seen by {_run(r['first_seen_run_kind'], r['first_seen_run_id'])}, "
             f"last by {_run(r['last_seen_run_kind'], r['last_seen_run_id'])}")
    revs = tree.add(f"{len(chain['revisions'])} revision(s)")
    for rev in chain["revisions"]:
        revs.add(f"revision {rev['revision']}: {_run(rev['run_kind'], rev['run_id'])} at {rev['seen_at']}")
    for o in chain["originals"]:
        tree.add(escape(f"original {o['asset_sha256'][:12]}… from {o['source_url'] or '?'} "
                        f"({_run(o['first_seen_run_kind'], o['first_seen_run_id'])})"))
    for c in chain["colorizations"]:
        node = tree.add(escape(f"colorized {c['result_sha256'][:12]}… ← source {c['source_sha256'][:12]}… "
                               f"(colorization run {c['colorization_run_id']}, params {c['params']})"))
        mv = node.add(escape(f"model version {c['model_version']} ({c['architecture']}), parent "
                             f"{c['parent_model_version_id']}, checkpoint {c['checkpoint_sha256'][:12]}…"))
        tr = mv.add(escape(f"training run {c['training_run_id']} at {c['trained_at']} (code {c['training_code_version']})"))
        for e in c["training_examples"]:
            tr.add(escape(f"{e['split']}: asset {e['asset_sha256'][:12]}… ← record {e['record_id']} "
                          f"{e['source']}:{e['source_key']} ← {_run(e['first_run_kind'], e['first_run_id'])}"))
    console.print(tree)


def _run(kind: str | None, run_id: int | None) -> str:
    """A run that brought records, named by its kind as the catalogue recorded it: ``import run 3``."""
    return "no run" if run_id is None else f"{kind or 'crawl'} run {run_id}"


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the catalogue schema."""
    from catalog import migrate
    from catalog.db import describe_url, get_engine

    engine = get_engine()
    migrate.upgrade(engine, revision)
    st = migrate.state(engine)
    console.print(f"catalogue at {describe_url(str(engine.url))} is at revision {st.current}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision ('base' drops everything)."),
                 yes: bool = typer.Option(False, "--yes", help="Confirm dropping data.")) -> None:
    """Migrate the schema down (drops tables: asks for --yes)."""
    from catalog import migrate
    from catalog.db import get_engine

    if not yes:
        fail("downgrading drops catalogue data; add --yes to confirm")
    migrate.downgrade(get_engine(), revision)
    console.print(f"downgraded to {revision}")


@db_app.command("status")
def db_status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Which database is in use and its migration state."""
    from sqlalchemy import func, select

    from catalog import migrate
    from catalog.db import describe_url, get_engine, session_scope
    from catalog.models import Asset, Record
    from catalog.settings import get_settings

    settings = get_settings()
    engine = get_engine(settings)
    if settings.database_url is None:
        migrate.ensure_current(engine)  # the embedded default is always migrated
    st = migrate.state(engine)
    counts = {}
    if st.current:
        with session_scope(engine) as s:
            counts = {"records": s.scalar(select(func.count()).select_from(Record)),
                      "assets": s.scalar(select(func.count()).select_from(Asset))}
    info = {
        "database": describe_url(str(engine.url)),
        "kind": "embedded" if settings.database_url is None else "configured",
        "embedded_data_dir": str(settings.embedded_pgdata) if settings.database_url is None else None,
        "home": str(settings.home), "revision": st.current, "head": st.head, "up_to_date": st.up_to_date,
        **counts,
    }
    if as_json:
        console.print_json(json.dumps(info))
        return
    t = Table(show_header=False, box=None)
    for k, v in info.items():
        if v is not None:
            t.add_row(k, str(v))
    console.print(t)
    if not st.up_to_date:
        console.print("[yellow]schema is behind: run `arhiva db upgrade`[/yellow]")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (it starts again on the next command)."""
    from catalog.embedded import stop
    from catalog.settings import get_settings

    stopped = stop(get_settings().embedded_pgdata)
    console.print("embedded server stopped" if stopped else "embedded server was not running")


@app.command("sources")
def sources(as_json: bool = typer.Option(False, "--json")) -> None:
    """Sources in the catalogue, with record counts (estimated beyond 200,000) and their last crawl."""
    from sqlalchemy import func, select

    from catalog.db import open_catalog, session_scope
    from catalog.models import CrawlRun, Source
    from catalog.queries import list_sources

    with session_scope(open_catalog()) as s:
        last = dict(s.execute(select(Source.slug, func.max(CrawlRun.started_at)).join(CrawlRun)
                              .group_by(Source.slug)).all())
        rows = [r | {"last_crawl": last[r["slug"]].isoformat(timespec="seconds") if r["slug"] in last else None}
                for r in list_sources(s)]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table("source", "kind", "records", "last crawl", "base URL")
    for r in rows:
        t.add_row(r["slug"], r["kind"], r["records_label"], r["last_crawl"] or "—", r["base_url"] or "")
    console.print(t)


@app.command("collections")
def collections(as_json: bool = typer.Option(False, "--json")) -> None:
    """Collections and how many records each holds (estimated beyond 200,000)."""
    from catalog.db import open_catalog, session_scope
    from catalog.queries import list_collections

    with session_scope(open_catalog()) as s:
        rows = list_collections(s)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table("collection", "records")
    for r in rows:
        t.add_row(r["name"], r["records_label"])
    console.print(t)


@app.command("records")
def records(
    text: Optional[str] = typer.Option(None, "--text", "-t", help='Words to find (any inflection, diacritics optional); "a phrase", a OR b, -without.'),
    collection: Optional[str] = typer.Option(None, "--collection", "-c"),
    source: Optional[str] = typer.Option(None, "--source", "-s", help="Source slug."),
    years: Optional[str] = typer.Option(None, "--years", "-y", help="FROM-TO, e.g. 1920-1940 (overlap)."),
    include_undated: bool = typer.Option(False, "--include-undated", help="Also list records with no date."),
    bbox: Optional[str] = typer.Option(None, "--bbox", help="W,S,E,N in degrees (longitude first)."),
    colorized: Optional[Colorized] = typer.Option(None, "--colorized", help="yes: has a colorization; no: lacks one."),
    status: RecordStatus = typer.Option(RecordStatus.active, "--status", help="active, withdrawn or any."),
    ids: Optional[list[int]] = typer.Option(None, "--id", help="Record id (repeatable).", min=1, max=2**63 - 1),
    limit: int = typer.Option(50, "--limit", "-n", help="Records per page."),
    page: int = typer.Option(1, "--page", "-p", min=1),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
    provenance: bool = typer.Option(False, "--provenance",
                                    help="With --id: the chain behind the record and its colorizations."),
    after: Optional[str] = typer.Option(None, "--after", help="Cursor printed under a page: the page after it "
                                        "(deep pages; --page stops at 10,000 records)."),
    exact_count: bool = typer.Option(False, "--exact-count", help="Count every match exactly (slower on broad "
                                     "searches; otherwise beyond 10,000 matches the count is an estimate)."),
) -> None:
    """List records matching every filter given."""
    if provenance:
        if not ids or len(ids) != 1:
            fail("--provenance needs exactly one --id")
        _print_provenance(ids[0], fmt)
        return
    from catalog.db import open_catalog, session_scope
    from catalog.queries import QueryError, decode_cursor, record_dict, search_records
    from catalog.settings import get_settings

    q = _query(collection, source, years, include_undated, bbox, text, colorized, status, ids, limit, page)
    settings = get_settings()
    with session_scope(open_catalog()) as s:
        try:
            if after:
                q.after, q.offset = decode_cursor(after), 0
            result = search_records(s, q, max_limit=settings.page_size_max, exact_max=settings.count_exact_max,
                                    sample_rows=settings.count_sample_rows, count="exact" if exact_count else "auto")
        except QueryError as exc:
            _query_failed(exc)
        data = [record_dict(r) for r in result.items]
    where = f"after {after}" if after else f"page {page}"
    estimate = "" if result.total_exact else " (estimate; --exact-count for the exact number)"
    summary = f"{result.total_label} record(s){estimate}, {where}"
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        from catalog.exports import CSV_COLUMNS, spreadsheet_safe

        w = csv.DictWriter(sys.stdout, fieldnames=[c for c in CSV_COLUMNS if not c.endswith("sha256")],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(spreadsheet_safe(d) for d in data)
    else:
        t = Table("id", "source", "key", "title", "date", "years", "place", "assets",
                  title=summary, title_justify="left")
        for d in data:
            yrs = "" if d["year_lo"] is None and d["year_hi"] is None else f"{d['year_lo'] or '…'}–{d['year_hi'] or '…'}"
            roles = ", ".join(sorted({a["role"] for a in d["assets"]}))
            t.add_row(str(d["id"]), d["source"], d["source_key"], (d["title"] or "")[:60], d["date_text"] or "",
                      yrs, (d["place"] or "")[:30], roles)
        console.print(t)
        if result.next_cursor:
            console.print(f"next page: --after {result.next_cursor}")
        return
    # JSON and CSV keep stdout for the records: the count and the next page's cursor go to stderr
    sys.stdout.flush()
    err.print(summary + (f"; next page: --after {result.next_cursor}" if result.next_cursor else ""), markup=False)


@app.command("search")
def search(words: str = typer.Argument(..., help='Words to find; "a phrase", a OR b, -without.'),
           collection: Optional[str] = typer.Option(None, "--collection", "-c"),
           years: Optional[str] = typer.Option(None, "--years", "-y"),
           limit: int = typer.Option(20, "--limit", "-n"),
           page: int = typer.Option(1, "--page", "-p", min=1),
           after: Optional[str] = typer.Option(None, "--after", help="Cursor printed under a page: the page after it."),
           fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
           exact_count: bool = typer.Option(False, "--exact-count", help="Count every match exactly.")) -> None:
    """Full-text search (shortcut for `records --text`; pages as it does: the cursor it prints works here)."""
    if not words.strip():
        fail("WORDS is empty: give at least one word to search for")
    records(text=words, collection=collection, source=None, years=years, include_undated=False,
            bbox=None, colorized=None, status="active", ids=None, limit=limit, page=page, fmt=fmt,
            provenance=False, after=after, exact_count=exact_count)


@app.command("runs")
def runs(kind: RunKind = typer.Option(RunKind.crawl, "--kind", help="crawl, training or colorization"),
         limit: int = typer.Option(20, "--limit", "-n"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Recent runs (crawls, trainings, colorizations) with their status and stats.

    Runs whose process is gone (killed, its terminal closed) are closed as failed first."""
    from sqlalchemy import select

    from catalog.db import open_catalog, session_scope
    from catalog.runs import RUN_MODELS, reap_vanished, stats_line

    model = RUN_MODELS[kind.value]
    with session_scope(open_catalog()) as s:
        for k, rid in reap_vanished(s):
            err.print(f"[yellow]{k} run {rid}: its process is gone; marked failed[/yellow]")
        rows = s.execute(select(model).order_by(model.id.desc()).limit(limit)).scalars().all()
        of = _runs_of(s, rows)
        data = [{"id": r.id, "agent": r.agent, **of(r), "status": r.status,
                 "started": r.started_at.isoformat(timespec="seconds"),
                 "ended": r.ended_at.isoformat(timespec="seconds") if r.ended_at else None,
                 "owner": f"{r.owner_host}:{r.owner_pid}" if r.owner_host else None,
                 "stats": stats_line(r.stats or {}), "error": r.error} for r in rows]
    if as_json:
        console.print_json(json.dumps(data, ensure_ascii=False))
        return
    from rich.table import Column

    t = Table("id", "agent", "source" if kind is RunKind.crawl else "collection", "status", "started", "ended",
              Column("stats", overflow="fold"), Column("error / note", overflow="fold"))  # wrapped, never cut
    for d in data:
        t.add_row(str(d["id"]), d["agent"], d.get("source") or d.get("collection") or "—", d["status"], d["started"],
                  d["ended"] or "—", d["stats"], d["error"] or "")
    console.print(t)


def _runs_of(session, rows):
    """What each run worked on: a crawl's source (slug), a training's or colorization's collection."""
    from sqlalchemy import select

    from catalog.models import Collection, Source

    if rows and hasattr(rows[0], "source_id"):
        slugs = dict(session.execute(select(Source.id, Source.slug).where(
            Source.id.in_({r.source_id for r in rows}))).all())
        return lambda r: {"source": slugs.get(r.source_id)}
    ids = {r.collection_id for r in rows if getattr(r, "collection_id", None)}
    names = dict(session.execute(select(Collection.id, Collection.name).where(Collection.id.in_(ids))).all()) \
        if ids else {}
    return lambda r: {"collection": names.get(getattr(r, "collection_id", None))}
