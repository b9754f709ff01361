"""Moving a local blob store into another store (S3), and checking a store against its hashes.

``migrate``: lists what the target already holds (one listing), then copies every
other local blob, each hashed before it leaves (a file whose bytes do not match
its name is reported, never copied). Objects appear in S3 only when complete, so a
migration killed midway is finished by running it again, and a second run copies
nothing. Local files are deleted only when asked, and only once the target holds
a copy of the same size.

``verify``: every blob of a store read back and hashed; with a catalogue, every
asset's blob present with the size the catalogue recorded. A blob that cannot be
read is reported as unreadable, with why; corrupt means its bytes were read and
hash to something else.

Both stop with ``BlobStoreUnavailable`` (one message: the store and why) once
``UNAVAILABLE_IN_A_ROW`` blobs in a row failed because the store cannot be reached
or refuses this machine, instead of failing every remaining blob alike; what was
copied is kept, so running ``migrate`` again resumes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from catalog.blobs import BlobCorrupt, BlobStore, BlobStoreError, BlobStoreUnavailable, LocalBlobStore

Progress = Callable[[int, int], None]  # (blobs done, bytes done) since the last call
UNAVAILABLE_IN_A_ROW = 3  # blobs failing in a row because the store is unreachable: stop


class _Breaker:
    """Counts blobs that failed in a row because the store is unavailable; any other outcome resets it."""

    def __init__(self, limit: int = UNAVAILABLE_IN_A_ROW):
        self.limit, self.run, self.last = limit, 0, None
        self.tripped = threading.Event()
        self._lock = threading.Lock()

    def outcome(self, exc: BaseException | None) -> None:
        with self._lock:
            if self.tripped.is_set():
                return  # the count that tripped it stands (a late success would reset it to 0)
            if isinstance(exc, BlobStoreUnavailable):
                self.run, self.last = self.run + 1, exc
                if self.run >= self.limit:
                    self.tripped.set()
            else:
                self.run = 0


def _each(pool: ThreadPoolExecutor, work: Callable, items: Iterable, breaker: _Breaker):
    """``work(item)`` for every item, results as they come; stops early (pending work dropped) once tripped."""
    futures = [pool.submit(work, item) for item in items]
    try:
        for done in as_completed(futures):
            yield done.result()
            if breaker.tripped.is_set():
                return
    finally:  # tripped, or the caller stopped (Ctrl-C, SIGTERM, an error): the work not started is dropped
        for f in futures:
            f.cancel()


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
    target = target.for_bulk()
    breaker = _Breaker()
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
        if breaker.tripped.is_set():
            return sha, size, "skipped"
        try:
            target.put_file(source.path(sha), expect=sha)
            breaker.outcome(None)
            return sha, size, None
        except BlobCorrupt as exc:
            breaker.outcome(exc)
            return sha, size, "corrupt"
        except Exception as exc:  # noqa: BLE001 - one blob's failure is reported; the others go on
            breaker.outcome(exc)
            return sha, size, _why(exc)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for sha, size, error in _each(pool, copy, todo, breaker):
            if error == "skipped":
                continue
            if error == "corrupt":
                report.corrupt.append(sha)
            elif error:
                report.failed.append((sha, error[:500]))
            else:
                report.copied += 1
                report.copied_bytes += size
            if progress:
                progress(1, size)
    if breaker.tripped.is_set():
        raise _stopped(target, breaker, f"{report.copied} blob{'s' if report.copied != 1 else ''} copied before "
                                        "it stopped are kept: run the command again to finish")
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
    corrupt: list[str] = field(default_factory=list)       # read whole, and the bytes hash to something else
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (sha256, why): could not be read
    missing: list[str] = field(default_factory=list)       # catalogue assets without their blob
    wrong_size: list[str] = field(default_factory=list)    # blob size differs from the catalogue's
    unreferenced: int = 0                                  # blobs no asset names (artifacts, orphans)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.unreadable or self.missing or self.wrong_size)

    def as_dict(self) -> dict[str, Any]:
        return {"store": self.store, "checked": self.checked, "checked_bytes": self.checked_bytes,
                "corrupt": self.corrupt, "unreadable": [{"sha256": s, "error": e} for s, e in self.unreadable],
                "missing": self.missing, "wrong_size": self.wrong_size,
                "unreferenced": self.unreferenced, "seconds": round(self.seconds, 2)}


def verify(store: BlobStore, *, catalogue: dict[str, int | None] | None = None, read: bool = True, jobs: int = 8,
           progress: Progress | None = None, on_total: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Hash every blob (``read``) and compare the store with ``catalogue`` ({sha256: bytes} of the assets)."""
    started = time.perf_counter()
    report = VerifyReport(store.url)
    store = store.for_bulk()
    breaker = _Breaker()
    blobs = dict(store.iter_blobs())
    if on_total:
        on_total(len(blobs), sum(blobs.values()))
    if catalogue is not None:
        report.missing = sorted(s for s in catalogue if s not in blobs)
        report.wrong_size = sorted(s for s, n in catalogue.items() if s in blobs and n is not None and blobs[s] != n)
        report.unreferenced = sum(1 for s in blobs if s not in catalogue)

    def check(sha: str) -> tuple[str, str | None, str | None]:
        """(sha, "corrupt" | "unreadable" | "skipped" | None, why)."""
        if breaker.tripped.is_set():
            return sha, "skipped", None
        try:
            with store.open(sha) as f:
                digest = sha256_stream(f)
        except Exception as exc:  # noqa: BLE001 - reported with its reason, never as corrupt
            breaker.outcome(exc)
            return sha, "unreadable", _why(exc)
        breaker.outcome(None)
        return sha, (None if digest == sha else "corrupt"), None

    if read:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for sha, verdict, why in _each(pool, check, blobs, breaker):
                if verdict == "skipped":
                    continue
                if verdict == "unreadable":
                    report.unreadable.append((sha, str(why)[:500]))
                else:
                    report.checked += 1
                    report.checked_bytes += blobs[sha]
                if verdict == "corrupt":
                    report.corrupt.append(sha)
                if progress:
                    progress(1, blobs[sha])
        if breaker.tripped.is_set():
            raise _stopped(store, breaker, f"{report.checked} of {len(blobs)} blobs read and hashed before it stopped")
    report.seconds = time.perf_counter() - started
    return report


def _why(exc: BaseException) -> str:
    """What went wrong with one blob (a store's error already says it short)."""
    return exc.reason if isinstance(exc, BlobStoreError) else f"{type(exc).__name__}: {exc}"


def _stopped(store: BlobStore, breaker: _Breaker, done: str) -> BlobStoreUnavailable:
    why = _why(breaker.last)
    return BlobStoreUnavailable(f"stopped: {store.url}: {why} ({breaker.run} blobs in a row failed alike); {done}",
                                why)


def sha256_stream(f) -> str:
    import hashlib

    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return h.hexdigest()

