"""Content-addressed blob store: the bytes of ``sha256/ab/cd/<sha256>``, on one of two backends.

The contract, the same on every backend:

* the key of a blob is the sha256 of its bytes (``blob_key``), so the same image
  from two places is stored once and a blob never changes;
* a blob is written once: a writer that finds it already there writes nothing, and
  two writers of the same key race harmlessly (same bytes);
* a reader never sees half a blob: the local store writes a temporary file, fsyncs it
  and renames it; S3 makes an object visible only when its upload is complete.
  Whole reads (``read``, ``local_path``) check the bytes against their hash.

``open_store(settings)`` picks the backend from one setting, ``ARHIVA_BLOBS``:
unset → the folder ``ARHIVA_HOME/blobs`` (``LocalBlobStore``); a folder path or
``file://`` URL → that folder; ``s3://bucket/prefix`` → S3-compatible object storage
(``catalog.blobs_s3.S3BlobStore``), whose endpoint, region and credentials come from
the usual ``AWS_*`` environment variables.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class BlobKeyError(ValueError):
    pass


class BlobMissing(LookupError):
    """The store has no blob of that hash."""


class BlobCorrupt(OSError):
    """Bytes read back do not hash to their key."""


class BlobStoreError(OSError):
    """The store failed an operation; the message names the store and says why (``reason``: the why alone)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class BlobStoreUnavailable(BlobStoreError):
    """The store cannot be reached (connection refused, timed out, dropped) or refuses this machine (no such
    bucket, wrong credentials): every blob would fail alike, so bulk work stops instead of going on."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(sha256: str) -> str:
    if not _SHA.match(sha256 or ""):
        raise BlobKeyError(f"not a sha256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def sha_of_key(key: str) -> str:
    """The sha256 a stored key names; refuses anything that is not exactly a blob key."""
    parts = (key or "").split("/")
    if len(parts) != 4 or parts[0] != "sha256" or not _SHA.match(parts[3]) or blob_key(parts[3]) != key:
        raise BlobKeyError(f"not a blob key: {key!r}")
    return parts[3]


class BlobStore(ABC):
    """What every backend does. ``url`` says where the blobs are (for messages and summaries)."""

    url: str

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def size(self, sha256: str) -> int | None:
        """Bytes of the stored blob, or None when it is not there."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store (once) and return the sha256."""

    @abstractmethod
    def put_file(self, path: Path | str, expect: str | None = None) -> str:
        """Store a file without holding it in memory; returns its sha256. With ``expect``, a file
        whose bytes hash to anything else is refused (``BlobCorrupt``) and nothing is stored."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """A stream of the blob's bytes (raises ``BlobMissing``); the caller closes it."""

    @abstractmethod
    def iter_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive), in chunks."""

    @abstractmethod
    def local_path(self, sha256: str) -> Path:
        """A local file holding the blob (for readers that want a path: training, checkpoints)."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        """(sha256, size) of every stored blob, in no particular order."""

    def put_stream(self, stream: BinaryIO) -> str:
        """Store a stream of unknown hash: spooled to a temporary file, then stored from it."""
        fd, tmp = tempfile.mkstemp(prefix="arhiva-blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                while block := stream.read(CHUNK):
                    f.write(block)
            return self.put_file(tmp)
        finally:
            os.unlink(tmp)

    def for_bulk(self) -> BlobStore:
        """This store for ``migrate`` and ``verify``: one that gives up on an unreachable store sooner."""
        return self

    def read(self, sha256: str) -> bytes:
        """The whole blob, checked against its hash."""
        with self.open(sha256) as f:
            data = f.read()
        if sha256_bytes(data) != sha256:
            raise BlobCorrupt(f"blob {sha256} in {self.url} does not match its hash")
        return data


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``: the default, one machine's store."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.url = str(self.root)

    def path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def path_for_key(self, key: str) -> Path:
        """Path of a stored key; refuses keys that would leave the store."""
        sha_of_key(key)
        return self.root / key

    def local_path(self, sha256: str) -> Path:
        return self.path(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def put_bytes(self, data: bytes) -> str:
        sha = sha256_bytes(data)
        target = self.path(sha)
        if not target.is_file():
            self._write_atomic(target, lambda f: f.write(data))
        return sha

    def put_stream(self, stream: BinaryIO, chunk: int = CHUNK, expect: str | None = None) -> str:
        """Store a stream without holding it in memory (hashed while written to a temporary file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                while block := stream.read(chunk):
                    h.update(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            sha = h.hexdigest()
            if expect is not None and sha != expect:
                raise BlobCorrupt(f"expected blob {expect}, the bytes hash to {sha}")
            target = self.path(sha)
            if target.is_file():
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return sha
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def put_file(self, path: Path | str, expect: str | None = None) -> str:
        with open(path, "rb") as f:
            return self.put_stream(f, expect=expect)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise BlobMissing(f"no blob {sha256} in {self.url}") from None

    def read(self, sha256: str) -> bytes:
        """The whole file (a local file is trusted as written: no second hash)."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"no blob {sha256} in {self.url}") from None

    def iter_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        with self.open(sha256) as f:
            f.seek(start)
            left = end - start
            while left > 0 and (block := f.read(min(CHUNK, left))):
                left -= len(block)
                yield block

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for first in sorted(os.scandir(base), key=lambda e: e.name):
            if not first.is_dir():
                continue
            for second in os.scandir(first.path):
                if not second.is_dir():
                    continue
                for entry in os.scandir(second.path):
                    name = entry.name
                    if entry.is_file() and _SHA.match(name) and name[:2] == first.name and name[2:4] == second.name:
                        yield name, entry.stat().st_size

    def delete(self, sha256: str) -> None:
        """Remove a blob (used only by ``arhiva blobs migrate --delete-local``)."""
        self.path(sha256).unlink(missing_ok=True)

    @staticmethod
    def _write_atomic(target: Path, write) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def store_for_url(url: str, *, cache_dir: Path | None = None) -> BlobStore:
    """A store from its address: ``s3://bucket/prefix``, ``file:///path`` or a folder path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from catalog.blobs_s3 import S3BlobStore

        return S3BlobStore.from_url(url, cache_dir=cache_dir)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"blob store {url!r}: use s3://bucket/prefix, file:///path or a folder path")
    return LocalBlobStore(Path(url).expanduser())


def open_store(settings) -> BlobStore:
    """The store ``settings`` name (``ARHIVA_BLOBS``; unset: ``ARHIVA_HOME/blobs``)."""
    if not settings.blobs:
        return LocalBlobStore(settings.blob_root)
    return store_for_url(settings.blobs, cache_dir=settings.blob_cache)

