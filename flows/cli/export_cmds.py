"""``arhiva export``: every matching record to a file, written atomically (or through a pipe)."""
from __future__ import annotations

import contextlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from flows.cli.catalog_cmds import Colorized, ExportFormat, _query, _query_failed
from flows.cli.ui import _quiet_exit_reader_gone, err, escape, fail, progress, say

app = typer.Typer()


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", "-o", help="File to write ('-' for standard output)."),
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", "-f", help="csv, jsonl or dc (Dublin Core XML)."),
    text: Optional[str] = typer.Option(None, "--text", "-t"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c"),
    source: Optional[str] = typer.Option(None, "--source", "-s"),
    years: Optional[str] = typer.Option(None, "--years", "-y"),
    include_undated: bool = typer.Option(False, "--include-undated"),
    bbox: Optional[str] = typer.Option(None, "--bbox"),
    colorized: Optional[Colorized] = typer.Option(None, "--colorized", help="yes: has a colorization; no: lacks one."),
    ids: Optional[list[int]] = typer.Option(None, "--id", help="Record id (repeatable).", min=1, max=2**63 - 1),
) -> None:
    """Export every matching record (streamed; written atomically)."""
    from catalog.db import open_catalog, session_scope
    from catalog.exports import WRITERS
    from catalog.queries import iter_records

    q = _query(collection, source, years, include_undated, bbox, text, colorized, "active", ids, 50, 1)
    writer = WRITERS[fmt.value]
    with session_scope(open_catalog()) as s:
        matching = _matching(s, q)
        to_file = str(out) != "-"
        target, stream = _destination(out) if to_file else (None, False)
        fd, tmp = _temporary_beside(out, target) if to_file and not stream else (None, None)
        with _export_progress(matching) as shown:
            records = shown(iter_records(s, q))
            if not to_file:
                n = writer(records, sys.stdout)
            elif stream:
                n = _write_through(out, target, lambda f: writer(records, f))
            else:
                n = _write_atomically(out, fd, tmp, lambda f: writer(records, f), target)
    say(f"exported {n} record(s) as {fmt.value}" + (f" to {out}" if to_file else ""))


def _destination(out: Path) -> tuple[Path, bool]:
    """Where ``--out`` writes, and whether it is written through rather than replaced: a pipe, a
    device, or a descriptor of this process (``/dev/stdout`` or ``/dev/fd/N`` redirected to a
    file or a pipe: the shell's ``>``, ``>>`` or ``|``). Anything else is a file replaced
    atomically, a link's target where ``--out`` is a link (the link stays a link)."""
    import os
    import stat

    try:
        mode = os.stat(out).st_mode  # through links: what --out is
    except (FileNotFoundError, NotADirectoryError):  # a new file (a missing folder or a file in the way is named then)
        return Path(os.path.realpath(out)), False
    except OSError as exc:
        fail(f"--out {out}: cannot write there ({exc.strerror or exc})")
    if stat.S_ISDIR(mode):
        fail(f"--out {out}: is a folder; name the file to write")
    if not stat.S_ISREG(mode) or str(out).startswith(("/dev/", "/proc/")):
        return out, True
    target = Path(os.path.realpath(out))
    if not os.access(target, os.W_OK):
        fail(f"--out {out}: is not writable")
    return target, False


def _temporary_beside(out: Path, target: Path) -> tuple[int, str]:
    """A private temporary file in the target's folder, or an error naming --out. A missing folder
    is not made: a mistyped mount point (``/mnt/archvie/x.csv``) would fill the system disk."""
    import tempfile

    blocking = next((p for p in reversed(target.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        fail(f"--out {out}: {blocking} is a file, not a folder")
    if not target.parent.is_dir():
        fail(f"--out {out}: the folder {target.parent} does not exist (nothing was written; create it first)")
    try:
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        fail(f"--out {out}: cannot write there ({exc.strerror or exc})")


def _write_through(out: Path, target: Path, write) -> int:
    """``write(file)`` straight into a pipe, a device or a descriptor (``/dev/stdout``, a FIFO a
    program reads); appending, so a file behind ``/dev/stdout`` (``>> all.jsonl``) keeps what the
    shell's redirection kept."""
    import os
    import stat

    into_pipe = False
    try:
        with open(target, "a", encoding="utf-8", newline="") as f:
            into_pipe = stat.S_ISFIFO(os.fstat(f.fileno()).st_mode)
            return write(f)
    except BrokenPipeError as exc:
        if not into_pipe:  # a socket whose other end hung up is an error like any other
            fail(f"--out {out}: cannot write there ({exc.strerror or exc})", code=1)
        # its reader has what it wanted (``| head``): quietly, as ``records`` ends
        raise typer.Exit(_quiet_exit_reader_gone()) from None
    except OSError as exc:
        fail(f"--out {out}: cannot write there ({exc.strerror or exc})", code=1)


def _write_atomically(out: Path, fd: int, tmp: str, write, target: Path) -> int:
    """``write(file)`` into the temporary file, which then replaces ``target`` (``out``, or the file
    its link names) with the permissions a file the user made gets; on failure it goes, and an
    earlier file stays as it was."""
    import os

    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            n = write(f)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private (0600)
        os.replace(tmp, target)
        return n
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):  # the folder gone with it: the real error is said below
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:  # disk full, the folder gone
            fail(f"--out {out}: cannot write there ({exc.strerror}); nothing was written", code=1)
        raise


def _matching(session, q):
    """How many records ``q`` matches (the search's own count: exact up to 10,000, else an
    estimate, said so); a bad filter or an unknown name stops the command here, before any file."""
    from dataclasses import replace

    from catalog.queries import QueryError, search_records
    from catalog.settings import get_settings

    settings = get_settings()
    try:
        return search_records(session, replace(q, limit=1), exact_max=settings.count_exact_max,
                              sample_rows=settings.count_sample_rows)
    except QueryError as exc:
        _query_failed(exc)


@contextmanager
def _export_progress(matching):
    """A progress line on stderr while an export runs: records written of how many match, elapsed time.
    Only on a terminal: into a file or a pipe it would leave a blank line."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    if not err.is_terminal:
        yield lambda records: records
        return
    with progress(TextColumn("exporting"), BarColumn(),
                  TextColumn("{task.completed:,} of " + escape(matching.total_label)), TimeElapsedColumn()) as bar:
        task = bar.add_task("export", total=max(1, matching.total))

        def shown(records):
            for i, record in enumerate(records, 1):
                yield record
                if i % 500 == 0:
                    bar.update(task, completed=i)

        yield shown
