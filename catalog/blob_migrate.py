"""Moving a local blob store into another store (S3), and checking a store against its hashes.

``migrate``: lists what the target already holds (one listing), then copies every
other local blob, each hashed before it leaves (a file whose bytes do not match
its name is reported, never copied). Objects appear in S3 only when complete, so a
migration killed midway is finished by running it again, and a second run copies
nothing. Local files are deleted only when asked, and only once the target holds
a copy of the same size.

``verify``: every blob of a store read back and hashed; with a catalogue, every
asset's blob present with the size the catalogue recorded.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from catalog.blobs import BlobCorrupt, BlobStore, LocalBlobStore

Progress = Callable[[int, int], None]  # (blobs done, bytes done) since the last call


@dataclass
class MigrateReport:
    source: str
    target: str
    found: int = 0
    found_bytes: int = 0
    already: int = 0
    copied: int = 0
    copied_bytes: int = 0
    deleted: int = 0
    corrupt: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "found": self.found, "found_bytes": self.found_bytes,
                "already_there": self.already, "copied": self.copied, "copied_bytes": self.copied_bytes,
                "deleted_local": self.deleted, "corrupt": self.corrupt,
                "failed": [{"sha256": s, "error": e} for s, e in self.failed], "seconds": round(self.seconds, 2)}


def migrate(source: LocalBlobStore, target: BlobStore, *, jobs: int = 8, delete_local: bool = False,
            progress: Progress | None = None, on_total: Callable[[int, int], None] | None = None) -> MigrateReport:
    """Copy every blob of ``source`` that ``target`` lacks (see the module's docstring)."""
    started = time.perf_counter()
    report = MigrateReport(source.url, target.url)
    there = dict(target.iter_blobs())
    todo: list[tuple[str, int]] = []
    skipped_bytes = 0
    for sha, size in source.iter_blobs():
        report.found += 1
        report.found_bytes += size
        if sha not in there:
            todo.append((sha, size))
        elif there[sha] != size:
            report.failed.append((sha, f"the target holds {there[sha]} bytes under this hash, the local file "
                                       f"{size}: delete it in the target and run again"))
        else:
            report.already += 1
        if sha in there:
            skipped_bytes += size
    if on_total:
        on_total(report.found, report.found_bytes)
    if progress:
        progress(report.found - len(todo), skipped_bytes)

    def copy(item: tuple[str, int]) -> tuple[str, int, str | None]:
        sha, size = item
        try:
            target.put_file(source.path(sha), expect=sha)
            return sha, size, None
        except BlobCorrupt:
            return sha, size, "corrupt"
        except Exception as exc:  # noqa: BLE001 - one blob's failure is reported; the others go on
            return sha, size, f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for sha, size, error in pool.map(copy, todo):
            if error == "corrupt":
                report.corrupt.append(sha)
            elif error:
                report.failed.append((sha, error[:500]))
            else:
                report.copied += 1
                report.copied_bytes += size
            if progress:
                progress(1, size)
    if delete_local:
        bad = set(report.corrupt) | {s for s, _ in report.failed}
        for sha, size in list(source.iter_blobs()):
            if sha not in bad and target.size(sha) == size:
                source.delete(sha)
                report.deleted += 1
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class VerifyReport:
    store: str
    checked: int = 0
    checked_bytes: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)       # catalogue assets without their blob
    wrong_size: list[str] = field(default_factory=list)    # blob size differs from the catalogue's
    unreferenced: int = 0                                  # blobs no asset names (artifacts, orphans)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.wrong_size)

    def as_dict(self) -> dict[str, Any]:
        return {"store": self.store, "checked": self.checked, "checked_bytes": self.checked_bytes,
                "corrupt": self.corrupt, "missing": self.missing, "wrong_size": self.wrong_size,
                "unreferenced": self.unreferenced, "seconds": round(self.seconds, 2)}


def verify(store: BlobStore, *, catalogue: dict[str, int | None] | None = None, read: bool = True, jobs: int = 8,
           progress: Progress | None = None, on_total: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Hash every blob (``read``) and compare the store with ``catalogue`` ({sha256: bytes} of the assets)."""
    started = time.perf_counter()
    report = VerifyReport(store.url)
    blobs = dict(store.iter_blobs())
    if on_total:
        on_total(len(blobs), sum(blobs.values()))
    if catalogue is not None:
        report.missing = sorted(s for s in catalogue if s not in blobs)
        report.wrong_size = sorted(s for s, n in catalogue.items() if s in blobs and n is not None and blobs[s] != n)
        report.unreferenced = sum(1 for s in blobs if s not in catalogue)

    def check(sha: str) -> tuple[str, bool]:
        try:
            with store.open(sha) as f:
                return sha, sha256_stream(f) == sha
        except Exception:  # noqa: BLE001 - unreadable counts as corrupt
            return sha, False

    if read:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for sha, good in pool.map(check, blobs):
                report.checked += 1
                report.checked_bytes += blobs[sha]
                if not good:
                    report.corrupt.append(sha)
                if progress:
                    progress(1, blobs[sha])
    report.seconds = time.perf_counter() - started
    return report


def sha256_stream(f) -> str:
    import hashlib

    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return h.hexdigest()

