"""``arhiva import FOLDER``: a user's own scans into the catalogue (see ``catalog.folder_import``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer, crawl_app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        folder: Path = typer.Argument(..., help="Folder of scans (searched recursively)."),
        collection: str = typer.Option(..., "--collection", help="Collection the records join."),
        source: Optional[str] = typer.Option(None, "--source",
                                             help="Catalogue source slug (default: folder:<name>-<hash of path>)."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Import every image file under FOLDER (JPEG, PNG, TIFF incl. 16-bit and multi-page, WebP).

        Metadata comes from a sidecar metadata.csv / metadata.json (columns: file, title, description,
        date, place, lat, lon, direction, author, licence, rights, attribution, url), else from a year
        in the file name, else from the EXIF date. Re-running adds only what is new or changed."""
        import json

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from catalog.folder_import import import_folder

        if not folder.is_dir():
            err.print(f"[red]error:[/red] {folder} is not a folder")
            raise typer.Exit(2)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("importing…", total=None)

            def show(p: dict[str, Any]) -> None:
                bar.update(task, total=p["total"], completed=p["done"],
                           description=f"{p['new']} new, {p['changed']} changed, {p['unchanged']} unchanged, "
                                       f"{p['errors']} errors")

            report = import_folder(folder, collection=collection, source=source, progress=show)
        stats = report.as_stats() | {"run_id": report.run_id, "source": report.source}
        if json_out:
            console.print_json(json.dumps(stats, default=str))
        else:
            t = Table(title=f"import run {report.run_id} into {report.source}", show_header=False)
            t.add_column("what", style="bold")
            t.add_column("count", justify="right")
            for name, value in (("files", report.files), ("records new", report.new),
                                ("records changed", report.changed), ("records unchanged", report.unchanged),
                                ("records withdrawn (file gone)", report.withdrawn),
                                ("images stored", report.images_stored), ("errors", len(report.errors))):
                t.add_row(name, str(value))
            console.print(t)
            for e in report.errors[:20]:
                err.print(f"  [yellow]{e['where']}[/yellow] {e['message']}", highlight=False)
            if len(report.errors) > 20:
                err.print(f"  … and {len(report.errors) - 20} more (stored on run {report.run_id})")
