"""Import a user's own scans: every image file in a folder tree becomes a record with its asset.

* Files: ``.jpg .jpeg .png .tif .tiff .webp`` (also ``.gif .bmp``), at any depth; hidden files and
  folders are skipped. 16-bit and multi-page TIFFs are accepted (the first page is measured; the
  page count is kept). Files are stored as they are; the EXIF orientation is recorded
  (``extra.exif_orientation``) for derived use.
* Metadata, first found wins: a sidecar ``metadata.csv`` or ``metadata.json`` (``arhiva.csv`` /
  ``arhiva.json`` also read) in the file's folder or any folder above it — its ``file`` column is
  the path relative to the sidecar's folder; else a year or decade in the file name
  (``chisinau_1936.jpg``, ``piata-anii-1930.tif``); else the EXIF ``DateTimeOriginal``.
  The title defaults to the file name (``_`` and ``-`` become spaces).
* Sidecar columns: ``file`` (required), ``title``, ``description``, ``date``, ``place``, ``lat``,
  ``lon``, ``direction``, ``author``, ``licence`` (or ``license``), ``rights``, ``attribution``,
  ``url``; any other column is kept in ``extra.sidecar``. A bad row is reported with the sidecar's
  path and line; its file is imported without that row, the good rows are used.
* Records are keyed by the path relative to the folder (bytes of a name that are not UTF-8 are
  written ``\\xNN``, and ``extra.file_name_not_utf8`` is set). Re-running adds only what is new or
  changed (content hash or metadata); records whose files are gone are withdrawn. Every import is
  a crawl run (agent ``import``) and every record keeps its raw payload as a revision.
* Safety: symbolic links (to files or folders) are never followed: a link inside the tree adds
  nothing (its target is imported under its own path), a link out of the tree is skipped and
  reported. A file over
  ``ARHIVA_MAX_IMAGE_BYTES`` is refused from its size before it is read, a file that is not a
  regular file is never opened, and a file that is not an acceptable image (truncated, HTML, a
  decompression bomb, empty) is rejected: it becomes no record, and the import reports it.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.assets import ImageRejected, PreparedImage, get_store, link_assets, prepare_image, register_prepared
from catalog.dates import parse_date
from catalog.db import open_catalog, run_retrying, session_scope
from catalog.harvest import touch_records
from catalog.imaging import use_pixel_limit
from catalog.ingest import (
    RecordIn,
    add_to_collection,
    collection_name_problem,
    get_or_create_source,
    remember_source,
    upsert_records,
    validate,
    withdraw_records,
)
from catalog.licences import normalise_licence
from catalog.models import Record, RecordAsset
from catalog.names import collection_name, source_slug
from catalog.runs import activity
from catalog.settings import Settings, get_settings
from importers.sidecars import COLUMNS, SIDECAR_NAMES, read_sidecar, sidecars

__all__ = ["ImportReport", "import_folder", "IMAGE_SUFFIXES", "SIDECAR_NAMES", "COLUMNS", "read_sidecar"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif", ".bmp"}
BATCH = 50
ERRORS_KEPT = 200  # problems of an import kept on its run (all are counted)

Progress = Callable[[dict[str, Any]], None]


@dataclass
class ImportReport:
    run_id: int | None = None
    source: str = ""
    files: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    rejected: int = 0  # files not imported: unreadable, too big, not an image, record refused
    images_stored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.errors.append({"where": safe_text(where), "message": safe_text(message)})

    def reject(self, where: str, message: str) -> None:
        self.rejected += 1
        self.error(where, message)

    def merge(self, part: ImportReport) -> None:
        """Add what a committed batch stored (``part``: that batch's own report)."""
        self.new += part.new
        self.changed += part.changed
        self.rejected += part.rejected
        self.images_stored += part.images_stored
        self.errors += part.errors

    def as_stats(self) -> dict[str, Any]:
        return {"files": self.files, "records": {"new": self.new, "changed": self.changed,
                                                 "unchanged": self.unchanged, "withdrawn": self.withdrawn,
                                                 "rejected": self.rejected},
                "images": {"stored": self.images_stored}, "errors": {"count": len(self.errors),
                                                                     "examples": self.errors[:ERRORS_KEPT]}}


# -- files ------------------------------------------------------------------------------------------

def safe_text(text: str) -> str:
    """Text any JSON encoder and PostgreSQL accept: bytes of a file name that are not UTF-8 (kept
    by Python as lone surrogates) written as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _walk(folder: Path, report: ImportReport) -> tuple[list[Path], list[str]]:
    """Every file of the tree, sorted, and the folders that could not be read (relative, POSIX;
    "." for the folder itself); hidden files and folders skipped. The link rule,
    one for files and folders: a symbolic link is never followed. One whose target is inside the
    folder adds nothing (the target is imported under its own path); one that points out of the
    tree (or nowhere, or round in a loop) is skipped and reported."""
    root = folder.resolve()
    pending, found, unreadable = [folder], [], []
    while pending:
        here = pending.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as exc:
            unreadable.append(here.relative_to(folder).as_posix())
            report.error(unreadable[-1], f"folder cannot be read: {exc.strerror}; its records are left as they were")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve()
                except (RuntimeError, OSError):  # a loop (RuntimeError up to Python 3.12)
                    report.error(path.relative_to(folder).as_posix(), "symbolic link loop: skipped")
                    continue
                if not target.exists():
                    report.error(path.relative_to(folder).as_posix(), "broken symbolic link: skipped")
                elif not target.is_relative_to(root):
                    report.error(path.relative_to(folder).as_posix(),
                                 "symbolic link to a path outside the folder: not followed")
            elif entry.is_dir(follow_symlinks=False):
                pending.append(path)
            else:  # regular files, and special ones (a FIFO, a device) for _read to refuse by name
                found.append(path)
    return sorted(found), unreadable


_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_IFD = 0x8769


def _exif(data: bytes) -> dict[str, Any]:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # the header only: the pixels are checked by prepare_image
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            exif = im.getexif()
            out: dict[str, Any] = {}
            orientation = exif.get(0x0112)
            if orientation:
                out["orientation"] = int(orientation)
            original = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL)
            if original:
                out["datetime_original"] = str(original).strip("\x00 ")
            desc = exif.get(0x010E)
            if desc and str(desc).strip("\x00 "):
                out["description"] = str(desc).strip("\x00 ")
            return out
    except Exception:  # unreadable EXIF never sinks the file
        return {}


def _date_from_name(stem: str) -> str | None:
    """A single date phrase in a file name (``chisinau_1936``, ``piata-anii-1930``), else None."""
    words = re.sub(r"(?<=[^\W\d])-|-(?=[^\W\d])", " ", stem.replace("_", " ")).split()
    hits, i = [], 0
    while i < len(words):
        for n in (3, 2, 1):
            cand = " ".join(words[i:i + n])
            if len(words[i:i + n]) == n and re.search(r"\d{2}", cand) and parse_date(cand):
                hits.append(cand)
                i += n
                break
        else:
            i += 1
    return hits[0] if len(hits) == 1 else None


def _title_from_name(stem: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_]+|(?<=\D)-|-(?=\D)", " ", stem)).strip() or stem


def _record(rel: str, data: bytes, sha: str, meta: dict[str, Any] | None, exif: dict[str, Any]) -> RecordIn:
    meta = dict(meta or {})
    where = meta.pop("_where", None)
    sidecar = meta.pop("_sidecar", None)
    stem = Path(rel).stem
    date_text, date_from = meta.get("date"), "sidecar" if meta.get("date") else None
    if date_text is None:
        date_text = _date_from_name(stem)
        date_from = "file name" if date_text else None
    if date_text is None and exif.get("datetime_original"):
        m = re.match(r"^(\d{4}):(\d\d):(\d\d)", exif["datetime_original"])
        if m and m.group(1) != "0000":
            date_text, date_from = f"{m.group(1)}-{m.group(2)}-{m.group(3)}", "exif"
    rng = parse_date(str(date_text)) if date_text else None
    licence_raw = meta.get("licence")
    extra: dict[str, Any] = {"file": rel, "sha256": sha, "bytes": len(data)}
    if date_from:
        extra["date_from"] = date_from
    if rng:
        extra["date"] = rng.as_dict()
    if exif.get("orientation") and exif["orientation"] != 1:
        extra["exif_orientation"] = exif["orientation"]
    others = {k: v for k, v in meta.items() if k not in COLUMNS}
    if others:
        extra["sidecar"] = others
    raw = {"file": rel, "sha256": sha, "bytes": len(data), "sidecar": sidecar, "sidecar_row": where and meta,
           "exif": exif}
    return RecordIn(
        source_key=rel, title=str(meta.get("title") or exif.get("description") or _title_from_name(stem)),
        description=_s(meta.get("description")), date_text=str(date_text) if date_text else None,
        year_lo=rng.year_lo if rng else None, year_hi=rng.year_hi if rng else None,
        place=_s(meta.get("place")), lat=meta.get("lat"), lon=meta.get("lon"), direction=_s(meta.get("direction")),
        author=_s(meta.get("author")), licence=normalise_licence(licence_raw) if licence_raw else None,
        rights=_s(meta.get("rights")) or (_s(licence_raw) if licence_raw else None),
        attribution=_s(meta.get("attribution")), url=_s(meta.get("url")), extra=extra, raw=raw)


def _checked_record(rel: str, data: bytes, sha: str, row: dict[str, Any] | None, exif: dict[str, Any],
                    report: ImportReport) -> tuple[RecordIn, Any]:
    """The file's record and, when it cannot be stored, the problem. A value of the sidecar row or
    of the EXIF tags that the catalogue refuses (too long, a NUL) is left out and reported, and the
    file is imported without it; a problem of the file itself (its key) keeps it out."""
    row, exif = dict(row or {}), dict(exif)
    while True:
        rec = _record(rel, data, sha, row, exif)
        problem = validate(rec)
        if problem is None:
            return rec, None
        key = "date" if problem.field in ("date_text", "year_lo", "year_hi") else problem.field
        if key in row:
            where = f"{row.get('_where') or rel}: {key}"
            row.pop(key)
        elif problem.field == "title" and exif.get("description"):
            where = f"{rel}: EXIF image description"
            exif.pop("description")
        else:
            return rec, problem
        report.error(where, f"{problem.message}; the file is imported without it")


def _s(v: Any) -> str | None:
    return None if v is None or str(v).strip() == "" else str(v).strip()


def _source_slug(folder: Path) -> str:
    digest = hashlib.sha1(os.fsencode(folder)).hexdigest()[:8]
    return source_slug(f"folder:{safe_text(folder.name)[:60]}-{digest}")  # NFC, as stored


SLUG_MAX = 100  # characters of a source's slug (the sources table's column)


def checked_names(collection: str | None, source: str | None) -> None:
    """ValueError naming a collection or source name that cannot be one, before any work."""
    if collection is not None and collection_name_problem(collection):
        raise ValueError(f"--collection {collection!r}: {collection_name_problem(collection)}")
    if source is not None:
        if not source.strip():
            raise ValueError("--source: the slug must not be empty (leave it out for the folder's own)")
        if len(source) > SLUG_MAX:
            raise ValueError(f"--source: at most {SLUG_MAX} characters, got {len(source):,}")


def _folder_source(s: Session, slug: str, folder: Path):
    """The folder's source: created, or one that this folder's earlier imports made. A source of
    another kind (a crawl's, a loaded file's) or of another folder that is still there is refused:
    importing into it would withdraw its records as files gone. A folder that moved (the old path
    is gone) takes its source along."""
    path = safe_text(str(folder))
    src = get_or_create_source(s, slug, "folder", folder.as_uri(), {"path": path})
    if src.kind != "folder":
        raise ValueError(f"--source {slug}: a {src.kind} source, not a folder's; importing into it would withdraw "
                         "its records as files gone (name another --source, or leave it out)")
    earlier = (src.config or {}).get("path")
    if earlier and earlier != path:
        if Path(earlier).exists():
            raise ValueError(f"--source {slug}: holds the scans of {earlier}; importing {path} into it would "
                             "withdraw those as files gone (name another --source, or leave it out)")
        src = remember_source(s, slug, "folder", folder.as_uri(), {"path": path, "moved_from": earlier})
    return src


# -- the import ---------------------------------------------------------------------------------------

def import_folder(folder: Path | str, *, collection: str | None = None, source: str | None = None,
                  engine=None, settings: Settings | None = None, progress: Progress | None = None) -> ImportReport:
    """Import every image under ``folder`` (see the module docstring); returns the report (also on the run)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{safe_text(str(folder))} is not a folder")
    checked_names(collection, source)
    if collection is not None:  # as stored (NFC): the run's parameters name it as the catalogue does
        collection = collection_name(collection)
    settings = settings or get_settings()
    use_pixel_limit(settings.max_image_pixels)
    engine = engine or open_catalog(settings)
    store = get_store(settings)
    report = ImportReport(source=source_slug(source) if source else _source_slug(folder))
    with session_scope(engine) as s:
        source_id = _folder_source(s, report.source, folder).id
    with activity("crawl", "import", {"folder": safe_text(str(folder)), "collection": collection}, engine=engine,
                  stats=lambda: {"summary": report.as_stats()}, source_id=source_id) as run:
        report.run_id = run.id
        _import(folder, source_id, collection, engine, store, settings, report, progress)
        if report.rejected:  # not a success: the run says so (the command exits 1)
            kept = report.new + report.changed + report.unchanged
            run.end("partial" if kept else "failed",
                    f"{report.rejected:,} file(s) rejected" + ("" if kept else ", none imported")
                    + " (each is named in the run's errors)")
    return report


def _known(s: Session, source_id: int) -> dict[str, tuple[int, str, str, set[str]]]:
    """key → (record id, payload hash, status, linked original sha256s)."""
    out: dict[str, tuple[int, str, str, set[str]]] = {}
    for rid, key, h, status in s.execute(select(Record.id, Record.source_key, Record.payload_hash, Record.status)
                                         .where(Record.source_id == source_id)):
        out[key] = (rid, h, status, set())
    by_id = {v[0]: v for v in out.values()}
    if by_id:
        for rid, sha in s.execute(select(RecordAsset.record_id, RecordAsset.asset_sha256).join(
                Record, Record.id == RecordAsset.record_id).where(Record.source_id == source_id,
                                                                  RecordAsset.role == "original")):
            by_id[rid][3].add(sha)
    return out


def _read(path: Path, limit: int) -> bytes:
    """The file's bytes; refused before reading when it is not a regular file (a FIFO, a device)
    or is over ``limit`` bytes, and never more than ``limit`` + 1 bytes read."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise ImageRejected("not a regular file")
    if st.st_size > limit:
        raise ImageRejected(f"file is {st.st_size:,} bytes, over the limit of {limit:,}")
    with open(path, "rb") as f:
        data = f.read(min(st.st_size, limit) + 1)  # (read(n) sets n bytes aside first)
    if len(data) > limit:
        raise ImageRejected(f"file grew past the limit of {limit:,} bytes while it was read")
    return data


def _import(folder, source_id, collection, engine, store, settings, report, progress) -> None:
    files, unreadable = _walk(folder, report)
    meta = sidecars(folder, files, report)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    with session_scope(engine) as s:
        known = _known(s, source_id)
    total = len(images)
    seen_keys: set[str] = set()
    batch: list[tuple[RecordIn, PreparedImage]] = []
    unchanged: list[int] = []

    def flush() -> None:
        if not batch:
            return

        def store() -> ImportReport:
            with session_scope(engine) as s:
                return _store_batch(s, source_id, collection, report.run_id, batch)

        # a batch is one transaction: broken off to end a deadlock (a load or the web API writing the
        # same records), it is run again; its counts are added once, when it has committed
        report.merge(run_retrying(store))
        batch.clear()

    for i, path in enumerate(images, 1):
        name = path.relative_to(folder).as_posix()
        rel = safe_text(name)  # the key: a name that is not UTF-8 keeps its odd bytes as \xNN
        report.files += 1
        if rel in seen_keys:  # 'a\xff.jpg' written out, beside a name whose byte \xff is not UTF-8
            report.reject(rel, "another file's name reads the same once its bytes that are not UTF-8 are "
                               "written as \\xNN; rename one of them")
            continue
        seen_keys.add(rel)
        if progress:
            progress({"done": i, "total": total, "file": rel, "new": report.new, "changed": report.changed,
                      "unchanged": report.unchanged, "errors": len(report.errors)})
        try:
            data = _read(path, settings.max_image_bytes)
        except OSError as exc:
            report.reject(rel, f"cannot be read: {exc.strerror or exc}")
            continue
        except ImageRejected as exc:
            report.reject(rel, f"image rejected: {exc}")
            continue
        sha = hashlib.sha256(data).hexdigest()
        rec, problem = _checked_record(rel, data, sha, meta.get(rel), _exif(data), report)
        if rel != name:
            rec.extra["file_name_not_utf8"] = True
        if problem is not None:
            report.reject(rel, f"record rejected: {problem.field}: {problem.message}")
            continue
        k = known.get(rel)
        if k is not None and k[1] == rec.payload_hash() and sha in k[3]:
            report.unchanged += 1
            unchanged.append(k[0])
            continue
        try:  # measured (and its blob stored) before its record: a file that is no image is no record
            image = prepare_image(store, data, settings=settings)
        except ImageRejected as exc:
            report.reject(rel, f"image rejected: {exc}")
            continue
        batch.append((rec, image))
        if len(batch) >= BATCH:
            flush()
    flush()
    # a file gone is withdrawn; one under a folder that could not be read may be there still
    hidden = tuple("" if u == "." else u + "/" for u in unreadable)
    gone = [k for k, v in known.items() if k not in seen_keys and v[2] == "active" and not k.startswith(hidden or "\0")]

    def finish() -> None:
        with session_scope(engine) as s:
            touch_records(s, unchanged, run_id=report.run_id)  # last seen moves; withdrawn ones come back
            if collection:  # unchanged records join a collection named anew, as new and changed ones do
                add_to_collection(s, collection, unchanged)
            if gone:
                report.withdrawn = withdraw_records(s, source_id, gone, run_id=report.run_id)

    run_retrying(finish)  # as a batch: another writer of these records may deadlock with it


def _store_batch(s: Session, source_id, collection, run_id: int | None,
                 batch: list[tuple[RecordIn, PreparedImage]]) -> ImportReport:
    """Store a batch's records and images in the session's transaction; returns what it stored,
    for the import's report once the transaction has committed."""
    report = ImportReport(run_id=run_id)
    up = upsert_records(s, source_id, [r for r, _ in batch], run_id=run_id, collection=collection)
    report.new += up.new
    report.changed += up.changed
    for rej in up.rejected:
        report.reject(rej.source_key or "?", f"record rejected: {rej.field}: {rej.message}")
    stored = [(up.ids[rec.source_key], rec.source_key, image) for rec, image in batch if rec.source_key in up.ids]
    register_prepared(s, *(image for _, _, image in stored))
    link_assets(s, [{"record_id": rid, "asset_sha256": image.sha256, "source_url": f"file:{key}",
                     "first_seen_run_id": run_id, "last_seen_run_id": run_id}
                    for rid, key, image in stored])
    report.images_stored += len(stored)
    return report
