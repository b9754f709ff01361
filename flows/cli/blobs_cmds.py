"""``arhiva blobs …``: where the blobs are, moving a local store into S3, checking hashes, fetching one blob."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from flows.cli.ui import Table, console, err, escape, fail, progress

app = typer.Typer(name="blobs", help="The blob store: images, checkpoints and artifacts by sha256.",
                  no_args_is_help=True)


def _open(url: Optional[str]):
    from catalog.blobs import open_store, store_for_url
    from catalog.settings import get_settings

    settings = get_settings()
    try:
        return store_for_url(url, cache_dir=settings.blob_cache) if url else open_store(settings)
    except ValueError as exc:
        fail(str(exc))


def _bar():
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("·"),
                    DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())


class _Tracker:
    """Two rich tasks moved together: blobs (count) and bytes (shown as size and speed)."""

    def __init__(self, bar, description: str):
        self.bar = bar
        self.task = bar.add_task(description, total=None)
        self.blobs = self.bytes = 0

    def total(self, blobs: int, size: int) -> None:
        self.bar.update(self.task, total=size)
        self.blobs_total = blobs

    def advance(self, blobs: int, size: int) -> None:
        self.blobs += blobs
        self.bytes += size
        self.bar.update(self.task, completed=self.bytes,
                        description=f"{self.blobs:,} / {getattr(self, 'blobs_total', 0):,} blobs")


def _tracked(work, failure: str):
    """``work(progress=…, on_total=…)`` under a progress bar; a store that fails ends the command with why."""
    from catalog.blobs import BlobStoreError

    with _bar() as bar:
        track = _Tracker(bar, "listing…")
        try:
            return work(progress=track.advance, on_total=track.total)
        except BlobStoreError as exc:
            error = exc  # its message names the store; said once the bar is gone
        except OSError as exc:
            error = OSError(f"{failure}: {exc}")
    fail(str(error))


def _json(report, json_out: bool) -> bool:
    if json_out:
        console.print_json(json.dumps(report.as_dict()))
    return json_out


def _table(title: str, rows) -> None:
    t = Table(title=title, show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    for name, value in rows:
        t.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(t)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


@app.command("where")
def where() -> None:
    """Print where this machine's blobs are (ARHIVA_BLOBS, default ARHIVA_HOME/blobs)."""
    console.print(_open(None).url, markup=False, highlight=False, soft_wrap=True)


@app.command("migrate")
def migrate_cmd(
    to: str = typer.Option(..., "--to", help="Target store: s3://bucket/prefix (or another folder)."),
    source: Optional[Path] = typer.Option(None, "--from", help="Local store to copy (default ARHIVA_HOME/blobs)."),
    jobs: int = typer.Option(8, "--jobs", min=1, max=64, help="Uploads at once."),
    delete_local: bool = typer.Option(False, "--delete-local",
                                      help="Delete each local file once the target holds it (default: keep)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Copy a local blob store into TO, checking every hash: a second run copies nothing, a run killed
    midway is finished by running it again. Afterwards set ARHIVA_BLOBS=TO on every machine."""
    from catalog.blob_migrate import migrate
    from catalog.blobs import LocalBlobStore
    from catalog.settings import get_settings

    src = LocalBlobStore(source or get_settings().blob_root)
    if not src.root.is_dir():
        fail(f"no local blob store at {src.root}")
    target = _open(to)
    if isinstance(target, LocalBlobStore) and target.root.resolve() == src.root.resolve():
        fail("the target is the source")
    report = _tracked(lambda **kw: migrate(src, target, jobs=jobs, delete_local=delete_local, **kw),
                      f"cannot reach {target.url}")
    if not _json(report, json_out):
        _table(f"blobs {report.source} → {report.target}",
               (("blobs found", report.found), ("size", _size(report.found_bytes)),
                ("already there", report.already), ("copied", report.copied), ("copied size", _size(report.copied_bytes)),
                ("local files deleted", report.deleted), ("corrupt (not copied)", len(report.corrupt)),
                ("failed", len(report.failed)), ("seconds", f"{report.seconds:.1f}")))
        for sha in report.corrupt[:20]:
            err.print(f"  [yellow]corrupt[/yellow] {sha}: the local file does not hash to its name", highlight=False)
        for sha, error in report.failed[:20]:
            err.print(f"  [yellow]failed[/yellow] {sha}: {escape(str(error))}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(
    store: Optional[str] = typer.Option(None, "--store", help="Store to check (default: ARHIVA_BLOBS)."),
    quick: bool = typer.Option(False, "--quick", help="Compare listings and sizes only; read nothing."),
    catalogue: bool = typer.Option(True, "--catalogue/--no-catalogue",
                                   help="Check that every asset of the catalogue has its blob."),
    jobs: int = typer.Option(8, "--jobs", min=1, max=64, help="Reads at once."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Read every blob back and check its sha256; check the catalogue's assets are all there."""
    from sqlalchemy import select

    from catalog.blob_migrate import verify
    from catalog.db import open_catalog, session_scope
    from catalog.models import Asset

    target = _open(store)
    known = None
    if catalogue:
        with session_scope(open_catalog()) as s:
            known = dict(s.execute(select(Asset.sha256, Asset.bytes)).all())
    report = _tracked(lambda **kw: verify(target, catalogue=known, read=not quick, jobs=jobs, **kw),
                      f"cannot read {target.url}")
    if not _json(report, json_out):
        _table(f"blobs in {report.store}",
               (("blobs read and hashed", report.checked), ("size", _size(report.checked_bytes)),
                ("corrupt", len(report.corrupt)), ("unreadable", len(report.unreadable)),
                ("catalogue assets missing", len(report.missing) if known is not None else "not checked"),
                ("size differs from catalogue", len(report.wrong_size) if known is not None else "not checked"),
                ("blobs no asset names", report.unreferenced if known is not None else "not checked"),
                ("seconds", f"{report.seconds:.1f}")))
        for what, shas in (("corrupt", report.corrupt), ("missing", report.missing), ("wrong size", report.wrong_size)):
            for sha in shas[:20]:
                err.print(f"  [yellow]{what}[/yellow] {sha}", highlight=False)
        for sha, error in report.unreadable[:20]:
            err.print(f"  [yellow]unreadable[/yellow] {sha}: {escape(error)}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("get")
def get_cmd(
    sha256: str = typer.Argument(..., help="The blob's sha256."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: standard output)."),
) -> None:
    """Write one blob (an image, a checkpoint, an artifact) to a file or standard output, streamed and checked."""
    import hashlib
    import os

    from catalog.blobs import BlobKeyError, BlobMissing, BlobStoreError

    if output is not None and output.is_dir():
        fail(f"{output} is a folder: -o takes the name of the file to write")
    store = _open(None)
    try:
        stream = store.open(sha256)
    except BlobKeyError as exc:
        fail(str(exc))
    except BlobMissing as exc:
        fail(str(exc), 1)
    except BlobStoreError as exc:
        fail(str(exc))
    h = hashlib.sha256()
    part = None  # written beside the output, renamed to it once whole and checked; never left behind
    try:
        with stream:
            if output is not None:
                part = output.with_name(f".{output.name}.{os.getpid()}.part")
            with (open(part, "wb") if part else sys.stdout.buffer) as out:
                while block := stream.read(1 << 20):
                    h.update(block)
                    out.write(block)
        if h.hexdigest() != sha256:
            fail(f"blob {sha256} in {store.url} does not match its hash", 1)
        if part:
            part.replace(output)
    except BlobStoreError as exc:
        fail(str(exc))
    finally:
        if part:
            part.unlink(missing_ok=True)

