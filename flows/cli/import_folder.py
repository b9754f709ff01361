"""``arhiva import FOLDER`` (a user's own scans, see ``importers.folder``) and ``arhiva load FILE``
(records from a JSON Lines file, see ``importers.jsonl``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from flows.cli.ui import Table, console, err, escape, fail, progress

app = typer.Typer()


@app.command("import")
def import_cmd(
    folder: Path = typer.Argument(..., help="Folder of scans (searched recursively)."),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection the records join."),
    source: Optional[str] = typer.Option(None, "--source", "-s",
                                         help="Catalogue source slug (default: folder:<name>-<hash of path>)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import every image file under FOLDER (JPEG, PNG, TIFF incl. 16-bit and multi-page, WebP, GIF, BMP).

    Metadata comes from a sidecar metadata.csv / metadata.json (columns: file, title, description,
    date, place, lat, lon, direction, author, licence, rights, attribution, url), else from a year
    in the file name, else from the EXIF date. Re-running adds only what is new or changed."""

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from importers.folder import ERRORS_KEPT as FOLDER_ERRORS_KEPT
    from importers.folder import checked_names, import_folder

    if not folder.is_dir():
        fail(f"{folder} is not a folder")
    try:
        checked_names(collection, source)  # before the progress line, which would leave a blank one
    except ValueError as exc:
        fail(str(exc))
    with progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("importing…", total=None)

        def show(p: dict[str, Any]) -> None:
            bar.update(task, total=p["total"], completed=p["done"],
                       description=f"{p['new']} new, {p['changed']} changed, {p['unchanged']} unchanged, "
                                   f"{p['errors']} errors")

        report = import_folder(folder, collection=collection, source=source, progress=show)
    _summary(report.as_stats() | {"run_id": report.run_id, "source": report.source}, json_out,
             f"import run {report.run_id} into {report.source}",
             (("files", report.files), ("records new", report.new), ("records changed", report.changed),
              ("records unchanged", report.unchanged), ("records withdrawn (file gone)", report.withdrawn),
              ("images stored", report.images_stored), ("files rejected", report.rejected)),
             report.errors, report.run_id, FOLDER_ERRORS_KEPT)
    if report.rejected:  # files that became no record (each is named above and on the run)
        raise typer.Exit(1)


@app.command("load")
def load_cmd(
    file: str = typer.Argument(..., help="JSON Lines file of records ('-' for standard input)."),
    source: str = typer.Option(..., "--source", "-s", help="Catalogue source slug the records belong to."),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help="Collection the records join."),
    workers: int = typer.Option(2, "--workers", min=1, max=16, help="Database connections working at once."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Load records from a JSON Lines file in bulk (one object per line, at least source_key).

    Fields: source_key, title, description, date_text, year_lo, year_hi, place, lat, lon, direction,
    author, licence, rights, attribution, url, extra, raw (default: the line itself). Lines from
    `arhiva export --format jsonl` load as they are. Re-loading the same file changes nothing."""

    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from importers.jsonl import ERRORS_KEPT as JSONL_ERRORS_KEPT
    from importers.jsonl import load_jsonl

    if file != "-" and not Path(file).is_file():
        fail(f"{file} is not a file")
    with progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()) as bar:
        task = bar.add_task("loading…", total=None)

        def show(r) -> None:
            bar.update(task, description=f"{r.stored:,} of {r.lines:,} lines stored: {r.new:,} new, "
                                         f"{r.changed:,} changed, {r.unchanged:,} unchanged, "
                                         f"{len(r.errors):,} errors")

        try:
            report = load_jsonl(file, source=source, collection=collection, workers=workers, progress=show)
        except ValueError as exc:
            fail(str(exc))
    _summary(report.as_stats(), json_out, f"load run {report.run_id} into {report.source}",
             (("lines", report.lines), ("records new", report.new), ("records changed", report.changed),
              ("records unchanged", report.unchanged)), report.errors, report.run_id, JSONL_ERRORS_KEPT)
    if report.errors:
        raise typer.Exit(1)



def _summary(stats: dict[str, Any], json_out: bool, title: str, counts, errors: list[dict[str, Any]],
             run_id: int | None, kept: int) -> None:
    """Print a run's summary: JSON, or a table and the first errors (all are stored on the run)."""
    import json

    if json_out:
        console.print_json(json.dumps(stats, default=str))
        return
    t = Table(title=title, show_header=False)
    t.add_column("what", style="bold")
    t.add_column("count", justify="right")
    for name, value in (*counts, ("errors", len(errors))):
        t.add_row(name, f"{value:,}")
    console.print(t)
    for e in errors[:20]:
        err.print(f"  [yellow]{escape(str(e['where']))}[/yellow] {escape(str(e['message']))}", highlight=False)
    if len(errors) > 20:
        err.print(f"  … and {len(errors) - 20:,} more (run {run_id} keeps the first {min(len(errors), kept):,})")
